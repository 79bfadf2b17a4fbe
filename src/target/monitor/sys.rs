//! `sys`: crash's system banner.

use super::fmt::{crash_date, mem_size, uptime};
use super::{CmdResult, usage};
use crate::addr::{Arch, VirtAddr};
use crate::kernel::{Kernel, printk, uts};
use crate::target::Session;

/// `sys`
pub(super) fn sys(s: &Session, args: &[&str]) -> CmdResult {
    if !args.is_empty() {
        return usage("sys takes no arguments");
    }
    let k = &s.kernel;
    let u = uts::read(k).unwrap_or_default();
    let mut rows: Vec<(&str, String)> = Vec::new();
    rows.push((
        "KERNEL",
        k.vmlinux
            .as_ref()
            .map(|v| v.path().display().to_string())
            .unwrap_or_else(|| "(no vmlinux)".into()),
    ));
    rows.push(("DUMPFILE", k.dump.path.display().to_string()));
    rows.push(("CPUS", k.cpus.len().to_string()));
    if let Some(t) = k.vmcoreinfo.crash_time() {
        rows.push(("DATE", crash_date(t)));
    }
    let log = printk::read_log(k);
    if let Some(up) = uptime_line(k, log.as_ref().ok().map(Vec::as_slice)) {
        rows.push(("UPTIME", up));
    }
    if let Some(l) = load_average(k) {
        rows.push(("LOAD AVERAGE", l));
    }
    // crash counts every task_struct: idle tasks, processes and threads
    if let Ok((_, tasks)) = super::ps::all_tasks(s) {
        rows.push(("TASKS", tasks.len().to_string()));
    }
    rows.push(("NODENAME", u.nodename.clone()));
    rows.push((
        "RELEASE",
        if u.release.is_empty() {
            k.vmcoreinfo.osrelease().unwrap_or_default().to_string()
        } else {
            u.release.clone()
        },
    ));
    rows.push(("VERSION", u.version.clone()));
    let mut machine = if u.machine.is_empty() {
        k.arch.name().to_string()
    } else {
        u.machine.clone()
    };
    if let Some(mhz) = cpu_mhz(k) {
        machine.push_str(&format!("  ({mhz} Mhz)"));
    }
    rows.push(("MACHINE", machine));
    rows.push(("MEMORY", memory(k)));
    let panic = match &log {
        Ok(l) => printk::panic_message(l)
            .map(|m| format!("\"{m}\""))
            .unwrap_or_else(|| "(no panic message in the log)".into()),
        Err(e) => format!("(log unreadable: {e})"),
    };
    rows.push(("PANIC", panic));
    let mut out = String::new();
    for (key, val) in rows {
        out.push_str(&format!("{key:>12}: {val}\n"));
    }
    Ok(out)
}

fn read_u64_sym(k: &Kernel, name: &str, off: u64) -> Option<u64> {
    let a = k.symbol(name)?;
    k.read_u64(&k.kernel_space(), a.plus(off)).ok()
}

/// Uptime from the timekeeper's CLOCK_MONOTONIC seconds (`tk_core.timekeeper
/// .ktime_sec`, DWARF offsets), else from the newest log timestamp; the
/// source is named after the value.
fn uptime_line(k: &Kernel, log: Option<&[printk::LogRecord]>) -> Option<String> {
    let tk = (|| {
        let di = k.debug_info()?;
        // tk_core is an anonymous `struct { seqcount_raw_spinlock_t seq;
        // struct timekeeper timekeeper; }` (its type has no name to look
        // up): the timekeeper follows the seqcount at 8-byte alignment.
        let tk = (di.size_of("struct seqcount_raw_spinlock").ok()? + 7) & !7;
        let off = tk + di.offset_of("struct timekeeper", "ktime_sec").ok()?;
        read_u64_sym(k, "tk_core", off)
    })();
    if let Some(secs) = tk.filter(|&s| s < 1 << 40) {
        return Some(format!("{}  (timekeeper)", uptime(secs)));
    }
    let last = log?.iter().map(|r| r.ts_nsec).max()?;
    Some(format!(
        "{}  (newest log timestamp)",
        uptime(last / 1_000_000_000)
    ))
}

/// `avenrun[3]`: fixed point with FSHIFT = 11, printed as crash does.
fn load_average(k: &Kernel) -> Option<String> {
    const FSHIFT: u64 = 11;
    const FIXED_1: u64 = 1 << FSHIFT;
    let mut v = Vec::new();
    for i in 0..3 {
        let x = read_u64_sym(k, "avenrun", 8 * i)?;
        let int = x >> FSHIFT;
        let frac = ((x & (FIXED_1 - 1)) * 100) >> FSHIFT;
        v.push(format!("{int}.{frac:02}"));
    }
    Some(v.join(", "))
}

/// x86_64 `cpu_khz` in MHz.
fn cpu_mhz(k: &Kernel) -> Option<u64> {
    if k.arch != Arch::X86_64 {
        return None;
    }
    let khz = k.read_u32(&k.kernel_space(), k.symbol("cpu_khz")?).ok()?;
    (khz > 0).then_some(khz as u64 / 1000)
}

/// Total RAM in pages and how it was counted: the sum of
/// `node_present_pages` over `node_data[]` (DWARF offset, "present"), else
/// `node_spanned_pages` (VMCOREINFO, "spanned").
pub(super) fn total_ram_pages(k: &Kernel) -> Option<(u64, &'static str)> {
    let space = k.kernel_space();
    let arr = k.symbol("node_data")?.0;
    let len = k.vmcoreinfo.length("node_data").unwrap_or(1).min(4096);
    let (off, what) = match k
        .debug_info()
        .and_then(|d| d.offset_of("struct pglist_data", "node_present_pages").ok())
    {
        Some(o) => (o, "present"),
        None => (
            k.vmcoreinfo.offset("pglist_data.node_spanned_pages")?,
            "spanned",
        ),
    };
    let mut ptrs = vec![0u8; len as usize * 8];
    k.read_virt(&space, VirtAddr(arr), &mut ptrs).ok()?;
    let mut pages = 0u64;
    for p in ptrs.chunks(8) {
        let p = u64::from_le_bytes(p.try_into().ok()?);
        if p != 0 {
            pages = pages.saturating_add(k.read_u64(&space, VirtAddr(p.checked_add(off)?)).ok()?);
        }
    }
    (pages > 0).then_some((pages, what))
}

/// Total RAM as crash's MEMORY, else what the dump's ranges cover.
fn memory(k: &Kernel) -> String {
    let page = k.paging.page_size();
    match total_ram_pages(k) {
        Some((pages, "present")) => mem_size(pages.saturating_mul(page)),
        Some((pages, what)) => format!("{}  ({what} pages)", mem_size(pages.saturating_mul(page))),
        None => {
            let ram: u64 = k.dump.memory.ranges().iter().map(|r| r.len).sum();
            format!("{}  (in the dump)", mem_size(ram))
        }
    }
}
