//! `monitor` commands (qRcmd): crash-style answers computed server-side,
//! where memory reads cost no packets.
//!
//! Every command returns its text; bad arguments give a usage message and
//! unreadable memory gives the error (which names the address), never a panic.

mod fmt;

pub use fmt::crash_date;
mod lsmod;
mod mem;
mod ps;
mod sys;
mod vtop;

use std::path::Path;

use super::Session;
use crate::kernel::{Kernel, KernelError, printk};

/// One command: its name, a one-line summary and its usage text.
struct Command {
    name: &'static str,
    summary: &'static str,
    usage: &'static str,
    run: fn(&Session, &[&str]) -> Result<String, CmdError>,
}

/// Why a command failed.
#[derive(Debug)]
pub(crate) enum CmdError {
    /// Bad arguments: the usage text is printed after the reason.
    Usage(String),
    /// The command ran but could not answer (unreadable memory, missing symbol…).
    Failed(String),
}

impl From<String> for CmdError {
    fn from(s: String) -> Self {
        CmdError::Failed(s)
    }
}

impl From<KernelError> for CmdError {
    fn from(e: KernelError) -> Self {
        CmdError::Failed(e.to_string())
    }
}

pub(crate) type CmdResult = Result<String, CmdError>;

pub(crate) fn usage<T>(msg: impl Into<String>) -> Result<T, CmdError> {
    Err(CmdError::Usage(msg.into()))
}

const COMMANDS: &[Command] = &[
    Command {
        name: "sys",
        summary: "system summary (crash's banner)",
        usage: "sys [--json]\n  KERNEL, DUMPFILE, CPUS, DATE, UPTIME, LOAD AVERAGE, TASKS, NODENAME,\n  RELEASE, VERSION, MACHINE, MEMORY and PANIC, as crash prints them.\n  --json: one object with the keys kernel, dumpfile, cpus, crash_time\n  (seconds since the epoch), date, uptime_seconds, uptime_source,\n  load_average (3 strings), tasks, nodename, release, version, machine,\n  cpu_mhz, memory_bytes, memory_source (present|spanned|in the dump),\n  panic, errors {tasks, log}; null where the dump cannot say.",
        run: sys::sys,
    },
    Command {
        name: "vtop",
        summary: "translate a virtual address, showing every page-table level",
        usage: "vtop [-c CPU | -p PID] ADDR...\n  Walks the page tables for ADDR (hex, or a symbol name) and prints each\n  level's entry address and value, the PTE flags, the physical address and\n  the struct page. -c CPU: the address space of the task that CPU ran;\n  -p PID: that task's (both need the debug vmlinux for user addresses).",
        run: vtop::vtop,
    },
    Command {
        name: "ptov",
        summary: "physical address to its direct-map virtual address",
        usage: "ptov PADDR...\n  The kernel direct-map (linear map) address of each physical address.",
        run: vtop::ptov,
    },
    Command {
        name: "rd",
        summary: "read memory (hex dump with ASCII)",
        usage: "rd [-p] [-8|-16|-32|-64] ADDR [COUNT]\n  Reads COUNT (default 1) units of 8, 16, 32 or 64 bits (default: the kernel's word,\n  64 bits on x86_64/arm64, 32 on i386/arm) at ADDR\n  (hex, or a symbol name): virtual, or physical with -p.",
        run: mem::rd,
    },
    Command {
        name: "log",
        summary: "the kernel log (dmesg), read server-side",
        usage: "log [-l | --json]\n  Every record of the printk ring buffer, oldest first, as dmesg prints it;\n  -l prefixes each record with its log level as <N>.\n  --json: {\"records\": [{\"ts_nsec\", \"level\", \"text\"}]}, oldest first.",
        run: log,
    },
    Command {
        name: "kmem",
        summary: "the struct page of a physical address",
        usage: "kmem -p PADDR...\n  The struct page of each physical address: its address and the flags,\n  _refcount, mapping and index fields.",
        run: vtop::kmem,
    },
    Command {
        name: "ps",
        summary: "process list (crash's columns; '>' marks tasks running on a CPU)",
        usage: "ps [--json]\n  Every task (idle tasks, processes, threads): PID PPID CPU TASK ST %MEM VSZ\n  RSS COMM, '>' for the task each CPU was running. Needs the debug vmlinux.\n  --json: {page_kb, rss_counters, tasks: [{pid, ppid, tgid, cpu, task (hex),\n  state (the kernel's letter), st (crash's), running_on (CPU or null),\n  kthread, comm, mm (hex), vsz_kb, rss_kb, mem_pct, thread (GDB thread id\n  or null)}]}, sorted by PID, CPU, address.",
        run: ps::ps,
    },
    Command {
        name: "lsmod",
        summary: "loaded kernel modules (name, base, size, holders, state)",
        usage: "lsmod [--json]\n  Every module on the kernel's `modules` list, newest first: MODULE (struct\n  module address), NAME, BASE (start of its code), SIZE (all its regions, as\n  /proc/modules counts), REFS (holders), STATE. Needs the debug vmlinux.\n  --json: {modules: [{module (hex), name, base (hex), size, state (or null),\n  refs (or null), sect_attrs (hex)}], stopped (why the walk ended early, or\n  null)}.",
        run: lsmod::lsmod,
    },
    Command {
        name: "info",
        summary: "'info version' (used by the kernel's scripts/gdb), 'info dumpfile'",
        usage: "info version | info dumpfile\n  corestub's version (the kernel's scripts/gdb probe for QEMU's stub this way),\n  or the path of the dump being served.",
        run: info,
    },
    Command {
        name: "help",
        summary: "this list; 'help CMD' for one command",
        usage: "help [CMD]",
        run: help,
    },
];

fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// Runs one monitor command line and returns the text to print.
pub fn run(session: &Session, line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((&name, args)) = words.split_first() else {
        return help(session, &[]).unwrap_or_default();
    };
    let Some(cmd) = find(name) else {
        return format!("corestub: unknown monitor command '{name}' (try 'monitor help')\n");
    };
    let mut out = match (cmd.run)(session, args) {
        Ok(text) => text,
        Err(CmdError::Usage(msg)) => format!("{name}: {msg}\nusage: {}\n", cmd.usage),
        Err(CmdError::Failed(msg)) => format!("{name}: {msg}\n"),
    };
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn help(_s: &Session, args: &[&str]) -> CmdResult {
    match args {
        [] => {
            let mut out =
                String::from("corestub monitor commands (crash-style, computed in the server):\n");
            for c in COMMANDS {
                out.push_str(&format!("  {:<6} {}\n", c.name, c.summary));
            }
            out.push_str("'monitor help CMD' describes one command.\n");
            Ok(out)
        }
        [name] => match find(name) {
            Some(c) => Ok(format!("usage: {}\n", c.usage)),
            None => usage(format!("no command '{name}'")),
        },
        _ => usage("one command name at most"),
    }
}

fn info(s: &Session, args: &[&str]) -> CmdResult {
    match args {
        // The kernel's scripts/gdb probe for QEMU's stub this way, then
        // treat GDB thread N as CPU N-1 (which our numbering honours).
        ["version"] => Ok(format!("corestub {}\n", env!("CARGO_PKG_VERSION"))),
        // for gdb-scripts' `sys` (crash's DUMPFILE line)
        ["dumpfile"] => Ok(format!("{}\n", s.kernel.dump.path.display())),
        _ => usage("'info version' or 'info dumpfile'"),
    }
}

fn log(s: &Session, args: &[&str]) -> CmdResult {
    let show_level = match args {
        [] => false,
        ["-l"] => true,
        ["--json"] => {
            let records = printk::read_log(&s.kernel)?;
            let records: Vec<serde_json::Value> = records
                .iter()
                .map(
                    |r| serde_json::json!({"ts_nsec": r.ts_nsec, "level": r.level, "text": r.text}),
                )
                .collect();
            return Ok(serde_json::json!({ "records": records }).to_string());
        }
        _ => return usage("log takes only -l or --json"),
    };
    let records = printk::read_log(&s.kernel)?;
    let mut out = String::with_capacity(records.len() * 80);
    for r in &records {
        out.push_str(&r.format(show_level));
    }
    Ok(out)
}

/// Opens a dump (and optionally its vmlinux) into a [`Session`], as
/// `corestub serve`/`gdb` do (CPU threads only): for tests, examples
/// and benchmarks that call [`run`] directly.
pub fn open_session(
    dump: &Path,
    vmlinux: Option<&Path>,
) -> Result<Session, Box<dyn std::error::Error>> {
    let mut kernel = Kernel::new(crate::dump::open(dump)?)?;
    if let Some(v) = vmlinux {
        kernel.attach_vmlinux(crate::kernel::symbols::Vmlinux::open(v)?);
    }
    Ok(Session::new(kernel, super::ThreadMode::Cpus))
}

/// Parses an address: hex with or without 0x (crash takes bare hex), or a
/// symbol name (relocated for KASLR).
pub(crate) fn parse_addr(k: &Kernel, s: &str) -> Result<u64, CmdError> {
    let hex = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return u64::from_str_radix(hex, 16)
            .map_err(|_| CmdError::Usage(format!("address '{s}' does not fit in 64 bits")));
    }
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && let Some(a) = k.symbol(s)
    {
        return Ok(a.0);
    }
    let hint = if k.vmlinux.is_none() {
        " (without a vmlinux only VMCOREINFO's symbols are known)"
    } else {
        ""
    };
    usage(format!(
        "'{s}' is neither a hex address nor a known symbol{hint}"
    ))
}

/// Parses a decimal number argument.
pub(crate) fn parse_dec(what: &str, s: &str) -> Result<u64, CmdError> {
    s.parse::<u64>()
        .map_err(|_| CmdError::Usage(format!("{what} '{s}' is not a decimal number")))
}
