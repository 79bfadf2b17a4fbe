//! Booting a guest that panics, and its QEMU dumps (one stop, every
//! format this QEMU writes), cached beside its kernel; and what the guest
//! printed (the test's ground truth).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::fetch::{Kernel, remove_stale};
use crate::common;
use common::guest::{INIT_PREAMBLE, Proc, initramfs_with, wait_for};
use corestub::qmp::Qmp;
use serde_json::json;

pub const SMP: u32 = 3;
/// Hang guards, not speed limits (boot is ~10 s, each dump a few seconds).
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
const DUMP_TIMEOUT: Duration = Duration::from_secs(300);
/// A kernel's guest directory. `guest/` (no loop.ko) and `guest-v2/` (no
/// pagemap line, no kdump-raw-*) were made by earlier versions of this
/// test: never reused, deleted when this one is made.
pub const GUEST: &str = "guest-v3";
/// The same guest with qemu_fw_cfg loaded: it registers VMCOREINFO with
/// QEMU's `-device vmcoreinfo`, so the dumps carry it (the kdump path).
pub const GUEST_VMCOREINFO: &str = "guest-v3-vmcoreinfo";
const OLD_GUESTS: &[&str] = &["guest", "guest-v2"];
/// The list of formats a guest directory holds, one a line.
const MANIFEST: &str = "formats";

/// QEMU `dump-guest-memory` formats the test makes when QEMU has them:
/// ELF, the flattened kdump-zlib, and QEMU >= 8.2's plain (not flattened)
/// diskdump files kdump-raw-{zlib,lzo,snappy}.
pub const FORMATS: &[&str] = &[
    "elf",
    "kdump-zlib",
    "kdump-raw-zlib",
    "kdump-raw-lzo",
    "kdump-raw-snappy",
];

/// The dump file of `format` in a guest directory.
pub fn dump_name(format: &str) -> String {
    if format == "elf" {
        "qemu.elf".into()
    } else {
        format!("qemu-{format}.kdump")
    }
}

/// What the guest machine is (from the test's architecture).
pub struct Machine<'a> {
    pub label: &'a str,
    pub qemu: &'a str,
    pub qemu_args: &'a [&'a str],
    pub console: &'a str,
    /// Its page size (the pagemap's index unit).
    pub page_size: u64,
    /// The flags register in HMP `info registers` and whether its value
    /// has interrupts enabled.
    pub flags: (&'a str, fn(u64) -> bool),
    /// The stack pointer in HMP `info registers`.
    pub sp: &'a str,
    pub marker: &'a str,
    /// Load qemu_fw_cfg.ko (the kernel's, `Kernel::fw_cfg_ko`) after
    /// loop.ko, into [`GUEST_VMCOREINFO`].
    pub fw_cfg: bool,
}

/// The guest directory of a machine: with or without VMCOREINFO.
pub fn guest_dir(k: &Kernel, fw_cfg: bool) -> PathBuf {
    k.dir.join(if fw_cfg { GUEST_VMCOREINFO } else { GUEST })
}

/// /init: loop.ko, two sleepers, the physical address of the sleeper's
/// top stack page from /proc/PID/pagemap, then a sysrq crash on the last
/// CPU. Not qemu_fw_cfg: it would register VMCOREINFO. What the test
/// needs to know goes to the kernel log, never to stdout: the console
/// prints a kernel record whole, but user output shares the port and can
/// be cut by one (`INIT-MODULES loop[    3.570816] …` was seen on arm64).
/// Also the first kernel's part of the in-guest kdump test.
pub fn init_script(marker: &str, page: u64, fw_cfg: bool) -> String {
    let fw_cfg = if fw_cfg {
        "insmod /qemu_fw_cfg.ko\n"
    } else {
        ""
    };
    format!(
        "{INIT_PREAMBLE}insmod /loop.ko
{fw_cfg}echo \"INIT-MODULES $(cut -d' ' -f1 /proc/modules | tr '\\n' ' ')\" > /dev/kmsg
sleep 100001 &
sleep 100002 &
echo \"INIT-SLEEPERS $(pidof sleep)\" > /dev/kmsg
p=$(pidof sleep | cut -d' ' -f1)
s=$(grep '\\[stack\\]' /proc/$p/maps)
s=${{s%% *}}
va=$(( 0x${{s#*-}} - {page} ))
e=$(dd if=/proc/$p/pagemap bs=8 skip=$(( va / {page} )) count=1 2>/dev/null | od -An -tx8)
echo \"INIT-PAGEMAP $p $(printf %x $va) $e\" > /dev/kmsg
echo \"INIT-MARKER {marker}\" > /dev/kmsg
sleep 2
taskset -c {} sh -c 'echo c > /proc/sysrq-trigger'
",
        SMP - 1
    )
}

fn dump_guest_memory(label: &str, qmp: &Qmp, path: &Path, format: &str) {
    let t = Instant::now();
    qmp.execute(
        "dump-guest-memory",
        Some(json!({
            "paging": false,
            "protocol": format!("file:{}", path.display()),
            "format": format,
            "detach": true,
        })),
    )
    .unwrap_or_else(|e| panic!("dump-guest-memory {format}: {e}"));
    loop {
        let st = qmp.execute("query-dump", None).expect("query-dump");
        match st["status"].as_str() {
            Some("completed") => break,
            Some("failed") => panic!("dump-guest-memory {format} failed: {st}"),
            _ => {}
        }
        assert!(
            t.elapsed() < DUMP_TIMEOUT,
            "dump-guest-memory {format} not done after {DUMP_TIMEOUT:?}: {st}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("{label}: {format} dump in {:.1?}", t.elapsed());
}

/// `KEY=hex` in CPU `cpu`'s section of HMP `info registers -a`.
fn hmp_reg(text: &str, cpu: u32, key: &str) -> Option<u64> {
    let cpu = cpu.to_string();
    let section = text
        .split("CPU#")
        .find(|s| s.split_whitespace().next() == Some(cpu.as_str()))?;
    let v = section
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))?;
    u64::from_str_radix(v, 16).ok()
}

/// Stops the guest where the panic CPU has interrupts enabled and runs on
/// the stack panic() runs on. panic() ends in an endless mdelay loop with
/// interrupts on, so a stop can catch that CPU in an interrupt handler,
/// where GDB's bt ends at the IRQ stack and never reaches
/// sysrq_handle_crash (seen on arm64: `#7 call_on_irq_stack () at
/// arch/arm64/kernel/entry.S:893` / `Backtrace stopped: previous frame
/// identical to this frame (corrupt stack?)`). Interrupts are also still
/// masked just after the last panic line, while panic() flushes the
/// consoles (most arm64 first stops): also retried. A softirq runs on the
/// IRQ stack with interrupts on (seen on armmp: bt ended at
/// `call_with_stack`), so the flag alone is not enough: the stop must also
/// have its SP near the median SP of several stops, which lies in the
/// mdelay loop's frames where the CPU spends nearly all its time.
fn stop_outside_irq(m: &Machine, qmp: &Qmp) {
    let (key, irqs_on) = m.flags;
    let mut last = String::new();
    let mut sps = Vec::new();
    let mut masked = 0;
    for attempt in 1..=100 {
        qmp.execute("stop", None).expect("QMP stop");
        last = qmp.hmp("info registers -a").expect("info registers -a");
        let reg = |k: &str| {
            hmp_reg(&last, SMP - 1, k).unwrap_or_else(|| {
                panic!("no {k}= for CPU#{} in info registers -a:\n{last}", SMP - 1)
            })
        };
        if irqs_on(reg(key)) {
            let sp = reg(m.sp);
            sps.push(sp);
            if sps.len() >= PANIC_SP_SAMPLES && near_median(&sps, sp) {
                eprintln!(
                    "{}: CPU {} stopped at stop {attempt} ({masked} with interrupts masked, SP {sp:#x}, median of {} SPs)",
                    m.label,
                    SMP - 1,
                    sps.len()
                );
                return;
            }
        } else {
            masked += 1;
        }
        qmp.execute("cont", None).expect("QMP cont");
        // not a multiple of the guest's tick
        std::thread::sleep(Duration::from_millis(37));
    }
    panic!(
        "{}: CPU {} in an interrupt handler at 100 stops:\n{last}",
        m.label,
        SMP - 1
    );
}

/// Stops with interrupts on sampled before one is accepted.
const PANIC_SP_SAMPLES: usize = 5;

/// Whether `sp` is within a page of the median of `sps`: the same stack
/// and a nearby frame depth (an IRQ stack is a separate allocation).
fn near_median(sps: &[u64], sp: u64) -> bool {
    let mut sorted = sps.to_vec();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2];
    sp.abs_diff(median) < 4096
}

#[test]
fn a_stop_on_another_stack_is_not_near_the_median() {
    let task = [0xc1a0_3e80, 0xc1a0_3e88, 0xc1a0_3e80, 0xc1a0_3e90];
    let mut seen = task.to_vec();
    seen.push(0xc0ff_1f00); // the IRQ stack
    assert!(!near_median(&seen, 0xc0ff_1f00));
    assert!(near_median(&seen, 0xc1a0_3e80));
}

/// The formats a cached guest directory holds, if it is complete.
pub fn cached_formats(dir: &Path) -> Option<Vec<String>> {
    let list = std::fs::read_to_string(dir.join(MANIFEST)).ok()?;
    let formats: Vec<String> = list.lines().map(str::to_string).collect();
    (dir.join("console.log").is_file()
        && !formats.is_empty()
        && formats.iter().all(|f| dir.join(dump_name(f)).is_file()))
    .then_some(formats)
}

/// `k.dir/guest-v3/`: cached, else made by booting the kernel with
/// `busybox` as /bin/busybox (QEMU must be there: the caller checks). A
/// guest that misbehaves fails the test.
pub fn guest_dumps(m: &Machine, k: &Kernel, busybox: &[u8]) -> PathBuf {
    let label = m.label;
    let done = guest_dir(k, m.fw_cfg);
    if cached_formats(&done).is_some() {
        return done;
    }
    for old in OLD_GUESTS {
        let _ = std::fs::remove_dir_all(k.dir.join(old));
    }
    let loop_ko = std::fs::read(&k.loop_ko).unwrap();
    let fw_cfg_ko = if m.fw_cfg {
        std::fs::read(&k.fw_cfg_ko)
            .unwrap_or_else(|e| panic!("{label}: {}: {e}", k.fw_cfg_ko.display()))
    } else {
        Vec::new()
    };
    remove_stale(&k.dir, "guest.tmp-");
    let dir = k.dir.join(format!("guest.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let marker = common::guest::marker(m.marker);
    let initrd = dir.join("initrd.gz");
    std::fs::write(
        &initrd,
        initramfs_with(
            busybox,
            &init_script(&marker, m.page_size, m.fw_cfg),
            &[("loop.ko", &loop_ko), ("qemu_fw_cfg.ko", &fw_cfg_ko)],
        ),
    )
    .unwrap();
    let console = dir.join("console.log");
    let sock = dir.join("qmp.sock");
    let mut qemu = Proc::spawn(
        "qemu",
        Command::new(m.qemu)
            .args(m.qemu_args)
            .args(["-smp", &SMP.to_string()])
            .args(["-device", "vmcoreinfo"])
            .args(["-display", "none", "-nodefaults", "-no-reboot"])
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .arg("-kernel")
            .arg(&k.vmlinuz)
            .arg("-initrd")
            .arg(&initrd)
            .arg("-append")
            .arg(format!("console={} panic=0", m.console))
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", sock.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("qemu.err")).unwrap()),
    );
    let boot = Instant::now();
    let read_console =
        || String::from_utf8_lossy(&std::fs::read(&console).unwrap_or_default()).to_string();
    loop {
        // the last line panic() prints, after stopping the other CPUs;
        // an oops before it leaves a guest that may never panic
        let text = read_console();
        if text.contains("---[ end Kernel panic") || text.contains("Oops: ") {
            assert!(
                text.contains("Kernel panic - not syncing: sysrq triggered crash"),
                "{label}: the guest crashed before the sysrq (kernel or QEMU TCG bug); console:\n{text}"
            );
            break;
        }
        assert!(
            qemu.alive(),
            "{label}: QEMU exited: {}",
            std::fs::read_to_string(dir.join("qemu.err")).unwrap_or_default()
        );
        assert!(
            boot.elapsed() < BOOT_TIMEOUT,
            "{label}: guest did not panic within {BOOT_TIMEOUT:?}; console:\n{}",
            read_console()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "{label}: guest booted and panicked in {:.1?}",
        boot.elapsed()
    );
    // fail here, before the cache takes a console the checks cannot read
    Console::parse(&read_console(), m.fw_cfg);
    wait_for("QMP socket", Duration::from_secs(30), || sock.exists());
    let qmp = Qmp::connect(&sock).expect("QMP");
    let caps = qmp
        .execute("query-dump-guest-memory-capability", None)
        .expect("query-dump-guest-memory-capability");
    let has = |f: &str| {
        caps["formats"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == f))
    };
    let formats: Vec<&str> = FORMATS.iter().copied().filter(|f| has(f)).collect();
    let missing: Vec<&str> = FORMATS.iter().copied().filter(|f| !has(f)).collect();
    if !missing.is_empty() {
        // QEMU < 8.2 has no kdump-raw-*
        eprintln!("{label}: this QEMU cannot write {missing:?} (it offers {caps})");
    }
    stop_outside_irq(m, &qmp);
    // every dump of this one stop (the guest stays stopped)
    for f in &formats {
        dump_guest_memory(label, &qmp, &dir.join(dump_name(f)), f);
    }
    let _ = qmp.execute("quit", None);
    let _ = qemu.wait_timeout(Duration::from_secs(10));
    drop(qemu);
    let _ = std::fs::remove_file(&initrd);
    let _ = std::fs::remove_file(&sock);
    {
        use std::os::unix::fs::PermissionsExt;
        for f in &formats {
            let _ = std::fs::set_permissions(
                dir.join(dump_name(f)),
                std::fs::Permissions::from_mode(0o644),
            );
        }
    }
    std::fs::write(dir.join(MANIFEST), formats.join("\n") + "\n").unwrap();
    if std::fs::rename(&dir, &done).is_err() {
        // another run got there first
        let _ = std::fs::remove_dir_all(&dir);
    }
    done
}

/// What the guest printed: its marker, the sleepers' PIDs, a page of the
/// first sleeper (its top stack page and the pagemap entry the guest read
/// for it), the CPU and PID named in the panic message (`CPU: 2 UID: 0
/// PID: 155 Comm: sh …`) and the KASLR offset (`Kernel Offset: 0x… from
/// …`; None where the kernel does not print it: arm never, i386 prints
/// "disabled" whatever its relocation, its kaslr_enabled() being x86_64's;
/// and where a capture kernel (kdump) took over before the notifier that
/// prints it).
pub struct Console {
    pub marker: String,
    pub sleepers: Vec<u32>,
    /// (PID, user virtual address, its /proc/PID/pagemap entry)
    pub user_page: (u32, u64, u64),
    pub panic_cpu: u32,
    pub panic_pid: u32,
    pub kaslr_offset: Option<u64>,
}

fn after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_once(key)?.1.split_whitespace().next()
}

/// A /proc/PID/pagemap entry's physical address: bit 63 "present", PFN in
/// bits 0-54 (Documentation/admin-guide/mm/pagemap.rst).
fn pagemap_pa(entry: u64, page: u64) -> Option<u64> {
    (entry >> 63 == 1).then(|| (entry & ((1 << 55) - 1)) * page)
}

impl Console {
    /// `fw_cfg`: the guest loaded qemu_fw_cfg (and registered VMCOREINFO).
    pub fn parse(text: &str, fw_cfg: bool) -> Console {
        // what /init wrote to /dev/kmsg: `[    3.57] KEY rest of the line`
        let line = |key: &str| {
            text.lines()
                .find_map(|l| Some(l.split_once(key)?.1))
                .unwrap_or_else(|| panic!("no {key:?} on the console:\n{text}"))
        };
        let marker = line("INIT-MARKER ").trim().to_string();
        let modules: Vec<&str> = line("INIT-MODULES ").split_whitespace().collect();
        assert!(
            modules.contains(&"loop") && modules.contains(&"qemu_fw_cfg") == fw_cfg,
            "/init loaded loop.ko and qemu_fw_cfg iff {fw_cfg}: modules {modules:?}; console:\n{text}"
        );
        let sleepers: Vec<u32> = line("INIT-SLEEPERS ")
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        let page: Vec<&str> = line("INIT-PAGEMAP ").split_whitespace().collect();
        let user_page = match page[..] {
            [pid, va, entry] => {
                let va = u64::from_str_radix(va, 16).ok();
                let entry = u64::from_str_radix(entry, 16).ok();
                let pid: Option<u32> = pid.parse().ok();
                (pid, va, entry)
            }
            _ => (None, None, None),
        };
        let (Some(pid), Some(va), Some(entry)) = user_page else {
            panic!("INIT-PAGEMAP is not `PID VA ENTRY`: {page:?}; console:\n{text}")
        };
        let panic_at = text
            .find("Kernel panic - not syncing")
            .unwrap_or_else(|| panic!("no panic on the console:\n{text}"));
        let (panic_cpu, panic_pid) = text[panic_at..]
            .lines()
            .find_map(|l| {
                Some((
                    after(l, "CPU: ")?.parse().ok()?,
                    after(l, " PID: ")?.parse().ok()?,
                ))
            })
            .unwrap_or_else(|| panic!("no `CPU: N … PID: P` after the panic:\n{text}"));
        let kaslr_offset = text[panic_at..]
            .lines()
            .find_map(|l| u64::from_str_radix(after(l, "Kernel Offset: 0x")?, 16).ok());
        assert_eq!(sleepers.len(), 2, "two sleepers:\n{text}");
        assert_eq!(pid, sleepers[0], "INIT-PAGEMAP is the first sleeper's");
        Console {
            marker,
            sleepers,
            user_page: (pid, va, entry),
            panic_cpu,
            panic_pid,
            kaslr_offset,
        }
    }

    /// The user page's physical address per the guest's pagemap, for
    /// pages of `page` bytes.
    pub fn user_page_pa(&self, page: u64) -> u64 {
        let (pid, va, entry) = self.user_page;
        pagemap_pa(entry, page).unwrap_or_else(|| {
            panic!("pagemap entry {entry:#x} of pid {pid} at {va:#x}: page not present")
        })
    }
}
