//! `sys`: crash's system banner.

use super::fmt::{crash_date, mem_size, uptime};
use super::{CmdResult, usage};
use crate::addr::{Arch, VirtAddr};
use crate::kernel::uts::Utsname;
use crate::kernel::{Kernel, printk, uts};
use crate::target::Session;
use serde_json::{Value, json};

/// What `sys` reports, each value or `None` when the dump cannot say.
struct SysInfo {
    kernel: Option<String>,
    dumpfile: String,
    cpus: usize,
    crash_time: Option<i64>,
    uptime: Option<(u64, &'static str)>,
    load_average: Option<Vec<String>>,
    tasks: Result<usize, String>,
    uts: Utsname,
    release: String,
    machine: String,
    cpu_mhz: Option<u64>,
    memory: (u64, &'static str),
    panic: Result<Option<String>, String>,
}

fn sys_info(s: &Session) -> SysInfo {
    let k = &s.kernel;
    let uts = uts::read(k).unwrap_or_else(|e| {
        log::warn!("sys: {e}");
        Utsname::default()
    });
    let log = printk::read_log(k);
    let release = if uts.release.is_empty() {
        k.vmcoreinfo.osrelease().unwrap_or_default().to_string()
    } else {
        uts.release.clone()
    };
    let machine = if uts.machine.is_empty() {
        k.arch.name().to_string()
    } else {
        uts.machine.clone()
    };
    SysInfo {
        kernel: k.vmlinux.as_ref().map(|v| v.path().display().to_string()),
        dumpfile: k.dump.path.display().to_string(),
        cpus: k.cpus.len(),
        crash_time: crash_time(k),
        uptime: uptime_secs(k, log.as_ref().ok().map(Vec::as_slice)),
        load_average: load_average(k),
        // crash counts every task_struct: idle tasks, processes and threads
        tasks: super::ps::all_tasks(s).map(|t| t.len()),
        uts,
        release,
        machine,
        cpu_mhz: cpu_mhz(k),
        memory: memory(k),
        panic: log
            .map(|l| printk::panic_message(&l))
            .map_err(|e| e.to_string()),
    }
}

/// `sys [--json]`
pub(super) fn sys(s: &Session, args: &[&str]) -> CmdResult {
    let json = match args {
        [] => false,
        ["--json"] => true,
        _ => return usage("sys takes only --json"),
    };
    let i = sys_info(s);
    if json {
        return Ok(sys_json(&i).to_string());
    }
    let mut rows: Vec<(&str, String)> = Vec::new();
    rows.push((
        "KERNEL",
        i.kernel.clone().unwrap_or_else(|| "(no vmlinux)".into()),
    ));
    rows.push(("DUMPFILE", i.dumpfile.clone()));
    rows.push(("CPUS", i.cpus.to_string()));
    if let Some(t) = i.crash_time {
        rows.push(("DATE", crash_date(t)));
    }
    if let Some((secs, source)) = i.uptime {
        rows.push(("UPTIME", format!("{}  ({source})", uptime(secs))));
    }
    if let Some(l) = &i.load_average {
        rows.push(("LOAD AVERAGE", l.join(", ")));
    }
    if let Ok(n) = i.tasks {
        rows.push(("TASKS", n.to_string()));
    }
    rows.push(("NODENAME", i.uts.nodename.clone()));
    rows.push(("RELEASE", i.release.clone()));
    rows.push(("VERSION", i.uts.version.clone()));
    let mut machine = i.machine.clone();
    if let Some(mhz) = i.cpu_mhz {
        machine.push_str(&format!("  ({mhz} Mhz)"));
    }
    rows.push(("MACHINE", machine));
    let (bytes, source) = i.memory;
    rows.push((
        "MEMORY",
        match source {
            "present" => mem_size(bytes),
            "spanned" => format!("{}  (spanned pages)", mem_size(bytes)),
            _ => format!("{}  ({source})", mem_size(bytes)),
        },
    ));
    let panic = match &i.panic {
        Ok(Some(m)) => format!("\"{m}\""),
        Ok(None) => "(no panic message in the log)".into(),
        Err(e) => format!("(log unreadable: {e})"),
    };
    rows.push(("PANIC", panic));
    let mut out = String::new();
    for (key, val) in rows {
        out.push_str(&format!("{key:>12}: {val}\n"));
    }
    Ok(out)
}

/// The `sys --json` document (keys documented in the command's usage).
fn sys_json(i: &SysInfo) -> Value {
    json!({
        "kernel": i.kernel,
        "dumpfile": i.dumpfile,
        "cpus": i.cpus,
        "crash_time": i.crash_time,
        "date": i.crash_time.map(crash_date),
        "uptime_seconds": i.uptime.map(|u| u.0),
        "uptime_source": i.uptime.map(|u| u.1),
        "load_average": i.load_average,
        "tasks": i.tasks.as_ref().ok(),
        "nodename": i.uts.nodename,
        "release": i.release,
        "version": i.uts.version,
        "machine": i.machine,
        "cpu_mhz": i.cpu_mhz,
        "memory_bytes": i.memory.0,
        "memory_source": i.memory.1,
        "panic": i.panic.as_ref().ok().cloned().flatten(),
        "errors": {
            "tasks": i.tasks.as_ref().err(),
            "log": i.panic.as_ref().err(),
        },
    })
}

/// An integer member of the core timekeeper (`tk_core.timekeeper.MEMBER`;
/// since 6.15 tk_core is `timekeeper_data[TIMEKEEPER_CORE]`, element 0),
/// where and as wide as the variable's DWARF type says (`ktime_sec` is an
/// `unsigned long`: 4 bytes on 32-bit kernels; tk_core's type has no name
/// before 6.13); `None` when the kernel has no such member or it is
/// unreadable. A 4-byte member is zero-extended (the only one read,
/// `ktime_sec`, is unsigned; the signed ones are 64-bit everywhere).
fn timekeeper(k: &Kernel, member: &str) -> Option<u64> {
    let di = k.debug_info()?;
    let (sym, f) = ["tk_core", "timekeeper_data"].into_iter().find_map(|v| {
        let a = k.symbol(v)?;
        Some((
            a,
            di.variable_field(v, &format!("timekeeper.{member}")).ok()?,
        ))
    })?;
    let at = sym.checked_add(f.offset)?;
    let space = k.kernel_space();
    match f.size? {
        8 => k.read_u64(&space, at).ok(),
        4 => k.read_u32(&space, at).ok().map(u64::from),
        _ => None,
    }
}

/// Uptime in seconds: the timekeeper's CLOCK_BOOTTIME (`ktime_sec` +
/// `offs_boot`, the time spent suspended), else the newest log timestamp;
/// with the source's name.
fn uptime_secs(k: &Kernel, log: Option<&[printk::LogRecord]>) -> Option<(u64, &'static str)> {
    let tk = timekeeper(k, "ktime_sec").and_then(|secs| {
        let boot = timekeeper(k, "offs_boot").unwrap_or(0) as i64;
        secs.checked_add_signed(boot / 1_000_000_000)
    });
    if let Some(secs) = tk.filter(|&s| s < 1 << 40) {
        return Some((secs, "timekeeper"));
    }
    let last = log?.iter().map(|r| r.ts_nsec).max()?;
    Some((last / 1_000_000_000, "newest log timestamp"))
}

/// Wall-clock seconds at the crash: VMCOREINFO's CRASHTIME (written by
/// the crash kernel path), else the timekeeper's `xtime_sec` (a dump taken
/// by QEMU or of a kernel that never ran crash_kexec).
fn crash_time(k: &Kernel) -> Option<i64> {
    k.vmcoreinfo
        .crash_time()
        .or_else(|| timekeeper(k, "xtime_sec").map(|s| s as i64))
}

/// `avenrun[3]`: fixed point with FSHIFT = 11, printed as crash does.
fn load_average(k: &Kernel) -> Option<Vec<String>> {
    const FSHIFT: u64 = 11;
    const FIXED_1: u64 = 1 << FSHIFT;
    let mut v = Vec::new();
    for i in 0..3 {
        // rounded as /proc/loadavg and crash do
        // unsigned long avenrun[3]
        let w = k.arch.pointer_size();
        let a = k.symbol("avenrun")?.checked_add(w * i)?;
        let x = k
            .read_ulong(&k.kernel_space(), a)
            .ok()?
            .saturating_add(FIXED_1 / 200);
        let int = x >> FSHIFT;
        let frac = ((x & (FIXED_1 - 1)) * 100) >> FSHIFT;
        v.push(format!("{int}.{frac:02}"));
    }
    Some(v)
}

/// x86's (x86_64 and i386) `cpu_khz` in MHz.
fn cpu_mhz(k: &Kernel) -> Option<u64> {
    if !matches!(k.arch, Arch::X86_64 | Arch::I386) {
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
    let (off, what) = node_pages_member(k)?;
    let Some(arr) = k.symbol("node_data") else {
        // !CONFIG_NUMA: the one node is contig_page_data itself
        let node = VirtAddr(k.symbol("contig_page_data")?.0);
        let pages = k.read_ulong(&space, node.checked_add(off)?).ok()?;
        return (pages > 0).then_some((pages, what));
    };
    let arr = arr.0;
    // MAX_NUMNODES (VMCOREINFO), else nr_node_ids (NUMA kernels), else one
    let len = k
        .vmcoreinfo
        .length("node_data")
        .or_else(|| Some(k.read_u32(&space, k.symbol("nr_node_ids")?).ok()? as u64))
        .unwrap_or(1)
        .min(4096);
    let w = k.arch.pointer_size() as usize;
    let mut ptrs = vec![0u8; len as usize * w];
    k.read_virt(&space, VirtAddr(arr), &mut ptrs).ok()?;
    let mut pages = 0u64;
    for p in ptrs.chunks(w) {
        let mut b = [0u8; 8];
        b[..w].copy_from_slice(p);
        let p = u64::from_le_bytes(b);
        if p != 0 {
            let n = k.read_ulong(&space, VirtAddr(p).checked_add(off)?).ok()?;
            pages = pages.checked_add(n)?;
        }
    }
    (pages > 0).then_some((pages, what))
}

/// Where a node's page count is: `node_present_pages` (DWARF), else
/// `node_spanned_pages` (VMCOREINFO).
fn node_pages_member(k: &Kernel) -> Option<(u64, &'static str)> {
    Some(
        match k
            .debug_info()
            .and_then(|d| d.offset_of("struct pglist_data", "node_present_pages").ok())
        {
            Some(o) => (o, "present"),
            None => (
                k.vmcoreinfo.offset("pglist_data.node_spanned_pages")?,
                "spanned",
            ),
        },
    )
}

/// Total RAM in bytes as crash's MEMORY ("present" pages), else
/// "spanned" pages, else what the dump's ranges cover ("in the dump").
fn memory(k: &Kernel) -> (u64, &'static str) {
    let page = k.paging.page_size();
    match total_ram_pages(k) {
        Some((pages, what)) => (pages.saturating_mul(page), what),
        None => (
            k.dump.memory.ranges().iter().map(|r| r.len).sum(),
            "in the dump",
        ),
    }
}
