//! `monitor` commands (qRcmd): crash-style answers computed server-side,
//! where memory reads cost no packets.

use super::Session;

/// Runs one monitor command line and returns the text to print.
pub fn run(session: &Session, line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        // The kernel's scripts/gdb probe for QEMU's stub this way, then
        // treat GDB thread N as CPU N-1 (which our numbering honours).
        ["info", "version"] => format!("corestub {}\n", env!("CARGO_PKG_VERSION")),
        // for gdb-scripts' `sys` (crash's DUMPFILE line)
        ["info", "dumpfile"] => format!("{}\n", session.kernel.dump.path.display()),
        [] | ["help"] => help(),
        _ => format!("corestub: unknown monitor command '{line}' (try 'monitor help')\n"),
    }
}

fn help() -> String {
    "corestub monitor commands:\n  info version   corestub's version (used by the kernel's scripts/gdb)\n  info dumpfile  the dump file being served\n  help           this list\n"
        .to_string()
}
