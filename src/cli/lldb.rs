//! `corestub lldb`: start LLDB connected to the dump, with the vmlinux
//! loaded at the KASLR offset.
//!
//! LLDB cannot talk to a pipe (`target remote | CMD` has no LLDB
//! equivalent), so corestub serves the dump itself on a free loopback port
//! (`127.0.0.1:0`), in a thread of this process, and runs LLDB with
//! `gdb-remote 127.0.0.1:PORT`. The server lives exactly as long as LLDB:
//! when LLDB exits, this process exits and the listener with it. No second
//! process to clean up, and the port is loopback-only, like `corestub serve`.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, ExitCode};

use corestub::target::Session;
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};

use super::serve::{Served, serve_one};
use super::{CliResult, DumpArgs, session};

#[derive(clap::Args)]
pub struct LldbArgs {
    /// LLDB program to run.
    #[arg(long, default_value = "lldb")]
    lldb: String,
    #[command(flatten)]
    dump: DumpArgs,
    /// Arguments passed to LLDB after corestub's own (e.g. -b -o 'bt').
    #[arg(last = true)]
    lldb_args: Vec<String>,
}

/// Quotes an argument for LLDB's command parser.
fn lldb_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// LLDB commands that load `vmlinux` at the dump's KASLR offset.
///
/// On x86_64 `.data..percpu` is linked at address 0 (per-CPU symbols are
/// offsets into each CPU's area) in a PT_LOAD of its own; `--slide` would
/// shift it with the rest. So there we load segment by segment (LLDB names
/// them `PT_LOAD[i]`, i = program header index) and leave that one at 0.
/// Elsewhere (arm64) one `--slide` is right.
pub fn lldb_symbol_commands(session: &Session, vmlinux: &Path) -> Result<Vec<String>, String> {
    let k = &session.kernel;
    let name = vmlinux
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| vmlinux.display().to_string());
    let mut cmds = vec![format!(
        "target create {}",
        lldb_quote(&vmlinux.to_string_lossy())
    )];
    if !super::session::percpu_at_zero(k) {
        cmds.push(format!(
            "target modules load --file {} --slide {:#x}",
            lldb_quote(&name),
            k.kaslr_offset
        ));
        return Ok(cmds);
    }
    let map = corestub::dump::map_readonly(vmlinux).map_err(|e| e.to_string())?;
    let elf = ElfFile64::<object::Endianness>::parse(&*map)
        .map_err(|e| format!("{}: {e}", vmlinux.display()))?;
    let endian = elf.endian();
    let phdrs = elf
        .elf_header()
        .program_headers(endian, &*map)
        .map_err(|e| format!("{}: {e}", vmlinux.display()))?;
    let mut load = format!("target modules load --file {}", lldb_quote(&name));
    for (i, ph) in phdrs.iter().enumerate() {
        if ph.p_type(endian) != object::elf::PT_LOAD {
            continue;
        }
        let at = slid_segment(ph.p_vaddr(endian), k.kaslr_offset).ok_or_else(|| {
            format!(
                "{}: PT_LOAD[{i}] at {:#x} + KASLR offset {:#x} (from the dump) is past the top of the address space",
                vmlinux.display(),
                ph.p_vaddr(endian),
                k.kaslr_offset
            )
        })?;
        load.push_str(&format!(" PT_LOAD[{i}] {at:#x}"));
    }
    cmds.push(load);
    Ok(cmds)
}

/// Where a vmlinux segment linked at `vaddr` sits in the dumped kernel: the
/// per-CPU segment (linked at 0) stays at 0, the rest move by the KASLR
/// offset; `None` when the sum leaves the address space (the offset comes
/// from the dump, so it may be corrupt).
fn slid_segment(vaddr: u64, kaslr_offset: u64) -> Option<u64> {
    if vaddr == 0 {
        return Some(0);
    }
    vaddr.checked_add(kaslr_offset)
}

pub fn run(mut a: LldbArgs) -> CliResult {
    a.dump.threads.get_or_insert(super::Threads::Cpus);
    let opened = session::open(&a.dump)?;
    // the running kernel keeps its refresh (continue, monitor refresh);
    // everything else is served as the snapshot it is
    let served = match &opened.running {
        Some(k) => Served::Running(k.clone()),
        None => Served::Dump,
    };
    let session = opened.session;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;

    let mut args: Vec<String> = Vec::new();
    let mut o = |cmd: String| {
        args.push("-o".into());
        args.push(cmd);
    };
    // LLDB indexes a vmlinux's DWARF by hand (no accelerator tables): minutes
    // of CPU for a distribution kernel. Its index cache (LLDB >= 14) keeps
    // that to the first start.
    o("settings set symbols.enable-lldb-index-cache true".into());
    match &opened.vmlinux {
        Some(v) => {
            let v = std::fs::canonicalize(v)?;
            for c in lldb_symbol_commands(&session, &v)? {
                o(c);
            }
        }
        None => eprintln!(
            "corestub: no vmlinux matching the dump (build-id {}); LLDB will have no symbols. Pass --vmlinux FILE.",
            session.kernel.vmcoreinfo.build_id().unwrap_or("unknown")
        ),
    }
    o(format!("gdb-remote {addr}"));
    args.extend(a.lldb_args.iter().cloned());

    let server = session.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let _ = stream.set_nodelay(true);
            let Ok(w) = stream.try_clone() else { continue };
            let session = server.clone();
            let served = served.clone();
            std::thread::spawn(move || serve_one(session, served, Box::new(stream), Box::new(w)));
        }
    });

    log::info!("running {} {args:?}", a.lldb);
    let status = Command::new(&a.lldb)
        .args(&args)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", a.lldb))?;
    Ok(ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_slide_without_wrapping() {
        assert_eq!(slid_segment(0, 0x2600_0000), Some(0));
        assert_eq!(
            slid_segment(0xffff_ffff_8100_0000, 0x2600_0000),
            Some(0xffff_ffff_a700_0000)
        );
        // a corrupt offset that would wrap the kernel to low memory
        assert_eq!(slid_segment(0xffff_ffff_8100_0000, 0x8000_0000), None);
    }
}
