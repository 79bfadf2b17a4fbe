//! `corestub info`: a crash-like summary of a dump.

use std::process::ExitCode;

use corestub::kernel::{printk, uts};
use corestub::mmu::Paging;
use corestub::target::monitor::crash_date;
use serde_json::{Value, json};

use super::{CliResult, DumpArgs, session};

#[derive(clap::Args)]
pub struct InfoArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    dump: DumpArgs,
}

pub fn run(a: InfoArgs) -> CliResult {
    let opened = session::open(&a.dump)?;
    let s = &opened.session;
    let k = &s.kernel;
    let f = &k.dump.format;
    let t0 = std::time::Instant::now();
    let uts = uts::read(k).unwrap_or_default();
    let log = printk::read_log(k);
    log::debug!("uts + log in {:?}", t0.elapsed());
    let panic_msg = log.as_ref().ok().and_then(|l| printk::panic_message(l));
    let ram: u64 = k.dump.memory.ranges().iter().map(|r| r.len).sum();
    let levels = match &k.paging {
        Paging::X86_64(p) => format!("{}-level", p.levels),
        // e.g. "4K pages, 52-bit VAs (LPA2)": what crash's `help -m` says
        Paging::Aarch64(p) => {
            let va = if p.kernel_va_bits() == p.user_va_bits() {
                format!("{}-bit VAs", p.kernel_va_bits())
            } else {
                format!(
                    "{}-bit kernel / {}-bit user VAs",
                    p.kernel_va_bits(),
                    p.user_va_bits()
                )
            };
            let pa52 = match p.pa52() {
                corestub::mmu::aarch64::Pa52Mode::None => "",
                corestub::mmu::aarch64::Pa52Mode::Lpa => " (LPA)",
                corestub::mmu::aarch64::Pa52Mode::Lpa2 => " (LPA2)",
            };
            format!("{}K pages, {va}{pa52}", p.page_size() >> 10)
        }
        Paging::I386(p) => p.mode_name().to_string(),
        Paging::Arm(p) => p.mode_name().to_string(),
    };
    // QEMU numbers its notes by vCPU: pr_pid is a PID only in kdump notes.
    let panic_task = s
        .panic_cpu
        .and_then(|c| k.cpus.get(c))
        .filter(|_| k.notes_carry_pids())
        .map(|c| c.note_pid);
    let obj = json!({
        "dumpfile": k.dump.path.display().to_string(),
        "format": f.name,
        "compression": f.codec.clone().unwrap_or_else(|| "none".into()),
        "block_size": f.block_size,
        "dump_level": f.dump_level,
        "excluded_pages": f.excluded_pages,
        "stored_pages": f.stored_pages,
        "incomplete": f.incomplete,
        "quirks": f.quirks,
        "release": if uts.release.is_empty() { k.vmcoreinfo.osrelease().map(str::to_string) } else { Some(uts.release.clone()) },
        "version": uts.version,
        "nodename": uts.nodename,
        "machine": k.arch.name(),
        "cpus": k.cpus.len(),
        "panic_cpu": s.panic_cpu,
        "panic_cpu_label": s.panic_cpu.map(|c| s.cpu_label(c)),
        "panic_task": s.panic_cpu.and_then(|c| s.cpu_state().tasks.get(c)?.as_ref()).map(|t| format!("{} (pid {}, task {:#x})", t.comm, t.pid, t.addr)),
        "tasks": if s.cpu_state().error.is_some() { None } else { Some(s.tasks().len()) },
        "task_threads": s.cpu_state().error.clone().map(|e| format!("unavailable: {e}")),
        "panic_pid": panic_task,
        "panic": panic_msg,
        "crash_time": k.vmcoreinfo.crash_time().map(crash_date),
        "kaslr_offset": format!("{:#x}", k.kaslr_offset),
        "phys_base": if k.phys_base < 0 { format!("-{:#x}", k.phys_base.unsigned_abs()) } else { format!("{:#x}", k.phys_base) },
        "kernel_root": format!("{:#x}", k.kernel_root.0.0),
        "kernel_root_from": format!("{:?}", k.root_source),
        "page_size": k.paging.page_size(),
        "paging": levels,
        "memory_in_ranges": ram,
        "vmlinux": opened.vmlinux.as_ref().map(|v| v.display().to_string()),
        "log_error": log.as_ref().err().map(ToString::to_string),
    });
    if a.json {
        print_out(&format!("{}\n", serde_json::to_string_pretty(&obj)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    let Value::Object(map) = obj else {
        unreachable!()
    };
    let mut text = String::new();
    for (key, v) in map {
        let v = match v {
            Value::Null => continue,
            Value::String(s) if s.is_empty() => continue,
            Value::String(s) => s,
            Value::Array(a) if a.is_empty() => continue,
            v => v.to_string(),
        };
        let v = if key == "memory_in_ranges" {
            format!("{v} ({:.1} MiB)", ram as f64 / 1048576.0)
        } else {
            v
        };
        text.push_str(&format!("{:>18}: {v}\n", key.to_uppercase()));
    }
    print_out(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes `text` to stdout; a reader that went away (`corestub info | head`)
/// is not an error: println! would panic on the broken pipe.
fn print_out(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}
