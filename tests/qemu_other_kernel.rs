//! corestub on dumps of kernels, paging modes and a CPU count the checked-in
//! fixtures (Debian 6.1, x86_64 4-level and arm64 48-bit VAs, 4 CPUs) do
//! not cover: Debian's 6.12 kernels from bookworm-backports, booted under
//! QEMU TCG with **3 CPUs**, one test per configuration:
//! - x86_64: **5-level paging** (`-cpu qemu64,+la57,-cx16`; without CX16
//!   because QEMU 7.2's TCG CMPXCHG16B breaks about one 6.12 boot in four);
//! - arm64: **52-bit VAs with LPA2**, 4K pages (the cloud-arm64 kernel is
//!   built with ARM64_VA_BITS_52; `-cpu max` has LPA2, so it runs with 5
//!   levels of tables);
//! - arm64-16k: Debian's generic arm64 kernel with **16K pages**, also
//!   52-bit VAs with LPA2 (4 levels; 1 GB of debug package, ~75 s cold).
//!
//! Each guest's busybox /init insmods a real module (loop.ko, which has no
//! dependencies), starts two sleepers, writes a marker to the kernel log
//! and panics through sysrq on the last CPU; QMP `dump-guest-memory` then
//! writes an ELF and a `kdump-zlib` dump of one stop, taken where the
//! panic CPU is not in an interrupt handler. These kernels register no
//! VMCOREINFO under QEMU (their fw_cfg driver is a module, deliberately not
//! loaded), so the kernel's place comes from corestub's detection (x86_64:
//! CR3 + IDT; arm64: `linux_banner` in RAM and `kimage_voffset`), not from
//! notes.
//!
//! On both dumps of each guest, checked against what the guest printed on
//! its console:
//! - `corestub info --json`: the paging ("5-level"; "4K pages, 52-bit VAs
//!   (LPA2)"), 3 CPUs, panic CPU = the last one, panic task = the PID the
//!   panic message names, release = the kernel's, KERNEL_ROOT_FROM names
//!   the detection without VMCOREINFO, KASLR offset = the console's
//!   "Kernel Offset:".
//! - `corestub gdb` (gdb-multiarch for arm64): `bt` on the (selected) panic
//!   thread reaches `sysrq_handle_crash`; `dmesg` has the marker; `lsmod`
//!   lists `loop`; `modsyms DIR` loads the debug loop.ko, after which `p
//!   lo_fops.open` prints `<lo_open>` and `p max_loop` prints 8 (GDB 13
//!   misplaces every DWARF symbol of these .ko files, whose sections carry
//!   non-zero addresses, unless modsyms works around it; without it both
//!   print garbage); `monitor ps` lists a sleeper at the task address our
//!   `ps` script found; `task PID` + `bt` reaches `do_nanosleep`; and a
//!   user-space read through the sleeper's own page tables: `x/s
//!   mm->arg_start` prints its argv[0], "sleep".
//!
//! Cache: `fixtures::root()/{x86_64,arm64}-6.12/RELEASE/` holds vmlinuz,
//! the debug vmlinux, loop.ko (for the initramfs), `modules/` (the debug
//! loop.ko) and `guest-v2/` (console log and the two dumps; `guest/`, made
//! by the first version of this test without loop.ko, is not used);
//! `arm64-6.12/busybox` is an arm64 static busybox. 0.9 GB for x86_64
//! (512 MiB guest), 1.4 GB for arm64 (1 GiB guest). When a kernel is
//! missing, the newest `linux-image-6.12.*-cloud-{amd64,arm64}-unsigned`
//! with a matching `-dbg` is fetched with apt-get through a private apt
//! configuration (bookworm-backports; the system's sources are untouched)
//! and the guest is booted. Cold: x86_64 ~35 s (350 MB of downloads, ~20
//! s; boot ~8 s; dumps ~3 s; checks ~3 s), arm64 ~50 s (350 MB, ~30 s;
//! boot ~8 s; dumps ~2 s; checks ~4 s); with the kernel cached, remaking a
//! guest takes ~15 s. Warm: ~3.5 s (x86_64) and ~5 s (arm64), with neither
//! network nor QEMU (GDB's first index of each vmlinux adds ~3 s once).
//! Delete a directory to move to a newer 6.12 release. The two tests take
//! turns (a lock): each boots a 3-CPU TCG guest and loads a 340 MB vmlinux
//! into GDB.
//!
//! Missing tools (gdb or gdb-multiarch; qemu-system-x86_64 or
//! qemu-system-aarch64 and a static busybox to make the dumps: the host's
//! busybox-static for x86_64, `apt-get download busybox-static:arm64` for
//! arm64; apt-get, dpkg-deb, tar and xz to fetch the kernel) or a failed
//! fetch: SKIP, or failure under CORESTUB_REQUIRE_FIXTURES=1. QEMU is
//! killed by PID on every path (guard).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::guest::{
    INIT_PREAMBLE, Proc, cmd_ok, downloaded, extract, have, initramfs_with, static_busybox,
    wait_for,
};
use common::{corestub_bin, gdb_steps, run};
use corestub::qmp::Qmp;
use serde_json::{Value, json};

const TEST: &str = "qemu_other_kernel";
const SMP: u32 = 3;
/// Hang guards, not speed limits (boot is ~10 s, each dump a few seconds).
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
const DUMP_TIMEOUT: Duration = Duration::from_secs(300);
/// The suite the 6.12 kernels come from, on the machine's Debian mirror.
const SUITE: &str = "bookworm-backports";
const ELF: &str = "qemu.elf";
const KDUMP: &str = "qemu-kdump-zlib.kdump";
/// A kernel's guest directory. `guest/` was made before /init loaded
/// loop.ko: never reused.
const GUEST: &str = "guest-v2";
/// The module /init loads, under lib/modules/RELEASE/ in the image package
/// (xz-compressed) and under usr/lib/debug/lib/modules/RELEASE/ in -dbg.
const MODULE: &str = "kernel/drivers/block/loop.ko";

/// One guest at a time (see the top of the file).
static ONE_GUEST: Mutex<()> = Mutex::new(());

/// Where a guest's static busybox comes from.
enum Busybox {
    /// /bin/busybox (busybox-static) of an x86_64 host.
    Host,
    /// `apt-get download busybox-static:DEB` with the system's apt
    /// sources, cached as `CACHE/busybox`.
    Download,
}

/// What differs between the two guests.
struct Arch {
    /// `x86_64`, `arm64`, `arm64-16k`: the test's label and the cache's
    /// `NAME-6.12/`.
    name: &'static str,
    /// Debian's architecture: package suffix (`:arm64`).
    deb: &'static str,
    /// Debian's kernel flavour (`cloud-arm64`, `arm64-16k`).
    flavour: &'static str,
    /// The ELF e_machine of its binaries (the busybox is checked).
    elf_machine: u16,
    qemu: &'static str,
    qemu_package: &'static str,
    /// Everything but what both guests share (-smp, vmcoreinfo, serial,
    /// kernel, initrd, append, QMP).
    qemu_args: &'static [&'static str],
    console: &'static str,
    gdb: &'static str,
    busybox: Busybox,
    marker: &'static str,
    /// `corestub info`'s PAGING.
    paging: &'static str,
    /// Pieces of KERNEL_ROOT_FROM: how the kernel was found without
    /// VMCOREINFO.
    root_from: &'static [&'static str],
    /// The flags register in HMP `info registers` and whether its value
    /// has interrupts enabled.
    flags: (&'static str, fn(u64) -> bool),
}

const X86_64: Arch = Arch {
    name: "x86_64",
    deb: "amd64",
    flavour: "cloud-amd64",
    elf_machine: 62,
    qemu: "qemu-system-x86_64",
    qemu_package: "qemu-system-x86",
    // -cx16: QEMU 7.2's TCG CMPXCHG16B corrupts SLUB's per-CPU freelists
    // (this_cpu_cmpxchg128) in about one boot of four (double faults,
    // calls through NULL), with or without la57 and MTTCG; without CX16
    // the kernel takes the locked path (24/24).
    qemu_args: &[
        "-accel",
        "tcg",
        "-cpu",
        "qemu64,+la57,-cx16",
        "-machine",
        "pc",
        "-m",
        "512",
    ],
    console: "ttyS0",
    gdb: "gdb",
    busybox: Busybox::Host,
    marker: "CORESTUB-LA57-MARKER",
    paging: "5-level",
    root_from: &[
        "no VMCOREINFO: CR3 of CPU",
        "kernel image mapping and IDT entry 0 agree",
    ],
    flags: ("RFL", |f| f & 0x200 != 0), // IF
};

const ARM64: Arch = Arch {
    name: "arm64",
    deb: "arm64",
    flavour: "cloud-arm64",
    elf_machine: 183,
    qemu: "qemu-system-aarch64",
    qemu_package: "qemu-system-arm",
    // -cpu max: LPA2, so the kernel runs with 52-bit VAs; pauth-impdef:
    // QEMU's cheap pointer-authentication hash instead of QARMA (the
    // kernel signs every return address).
    qemu_args: &[
        "-M",
        "virt,gic-version=3",
        "-cpu",
        "max,pauth-impdef=on",
        "-accel",
        "tcg,thread=multi",
        "-m",
        "1G",
    ],
    console: "ttyAMA0",
    gdb: "gdb-multiarch",
    busybox: Busybox::Download,
    marker: "CORESTUB-LPA2-MARKER",
    paging: "4K pages, 52-bit VAs (LPA2)",
    root_from: &[
        "no VMCOREINFO: kernel image found at physical",
        "(linux_banner), kimage_voffset read there; 52-bit VAs (52 at run time), 4K pages; \
         linux_banner confirmed, linear map checked",
    ],
    flags: ("PSTATE", |f| f & 0x80 == 0), // the I of DAIF
};

/// Debian's generic arm64 kernel with 16 KiB pages: also ARM64_VA_BITS_52,
/// so LPA2 with the 16K granule (4 levels of tables, 47-bit fallback).
const ARM64_16K: Arch = Arch {
    name: "arm64-16k",
    flavour: "arm64-16k",
    marker: "CORESTUB-16K-MARKER",
    paging: "16K pages, 52-bit VAs (LPA2)",
    root_from: &[
        "no VMCOREINFO: kernel image found at physical",
        "(linux_banner), kimage_voffset read there; 52-bit VAs (52 at run time), 16K pages; \
         linux_banner confirmed, linear map checked",
    ],
    ..ARM64
};

impl Arch {
    fn label(&self) -> String {
        format!("{TEST} {}", self.name)
    }

    fn skip(&self, why: &str) {
        common::guest::skip(&self.label(), why)
    }

    fn cache(&self) -> PathBuf {
        corestub::fixtures::root().join(format!("{}-6.12", self.name))
    }
}

/// Scratch names carry the PID of the run that made them; one left by a
/// run that is gone is stale.
fn remove_stale(dir: &Path, prefix: &str) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(pid) = name.strip_prefix(prefix) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// `6.12.95+deb12-cloud-amd64` → [6, 12, 95], for picking the newest.
fn version_key(release: &str) -> Vec<u64> {
    release
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .next()
        .unwrap_or_default()
        .split('.')
        .filter_map(|n| n.parse().ok())
        .collect()
}

struct Kernel {
    release: String,
    dir: PathBuf,
    vmlinuz: PathBuf,
    vmlinux: PathBuf,
    /// The module as the guest loads it.
    loop_ko: PathBuf,
    /// `modsyms` directory: the debug loop.ko under it.
    modules: PathBuf,
}

impl Kernel {
    /// The kernel in `dir`, if every file is there (each is put in place
    /// by a rename: a file that exists is whole).
    fn at(dir: PathBuf) -> Option<Kernel> {
        let release = dir.file_name()?.to_str()?.to_string();
        let k = Kernel {
            vmlinuz: dir.join("vmlinuz"),
            vmlinux: dir.join("vmlinux"),
            loop_ko: dir.join("loop.ko"),
            modules: dir.join("modules"),
            release,
            dir,
        };
        (k.release.starts_with("6.12.")
            && [&k.vmlinuz, &k.vmlinux, &k.loop_ko, &k.modules.join(MODULE)]
                .iter()
                .all(|f| f.is_file()))
        .then_some(k)
    }
}

/// The newest complete release already in the cache.
fn cached_kernel(a: &Arch) -> Option<Kernel> {
    std::fs::read_dir(a.cache())
        .ok()?
        .flatten()
        .filter_map(|e| Kernel::at(e.path()))
        .max_by_key(|k| version_key(&k.release))
}

/// Fetches the newest 6.12 cloud kernel, its debug vmlinux and loop.ko
/// (plain and debug) from bookworm-backports into the cache; a release
/// directory made before loop.ko was needed is completed. Err: why not
/// (network, packages).
fn fetch_kernel(a: &Arch) -> Result<Kernel, String> {
    let label = a.label();
    let cache = a.cache();
    std::fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    remove_stale(&cache, "apt-work-");
    // left by the first version of this test
    remove_stale(&cache, "kernel.tmp-");
    let pid = std::process::id();
    let work = cache.join(format!("apt-work-{pid}"));
    let _work = common::guest::TempDir(work.clone());
    for d in ["lists/partial", "cache/archives/partial", "debs", "x"] {
        std::fs::create_dir_all(work.join(d)).map_err(|e| e.to_string())?;
    }
    let sources = common::guest::debian_sources_list(SUITE)?;
    std::fs::write(work.join("sources.list"), sources).map_err(|e| e.to_string())?;
    let native = Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "amd64".into());
    let archs = if native == a.deb {
        native.clone()
    } else {
        format!("{native},{}", a.deb)
    };
    let opts: Vec<String> = [
        format!(
            "Dir::Etc::SourceList={}",
            work.join("sources.list").display()
        ),
        "Dir::Etc::SourceParts=/dev/null".into(),
        format!("Dir::State::Lists={}", work.join("lists").display()),
        format!("Dir::Cache={}", work.join("cache").display()),
        format!("APT::Architecture={native}"),
        format!("APT::Architectures={archs}"),
    ]
    .into_iter()
    .flat_map(|o| ["-o".to_string(), o])
    .collect();
    // exits 0 even when nothing could be fetched: its warnings explain an
    // empty search below
    let update = cmd_ok(
        Command::new("apt-get").args(&opts).args(["-q", "update"]),
        "apt-get update (bookworm-backports)",
    )?;
    let out = Command::new("apt-cache")
        .args(&opts)
        .args(["search", "--names-only", r"^linux-image-6\.12\."])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("apt-cache: {e}"))?;
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(" - ").next())
        .map(|n| n.trim().to_string())
        .collect();
    let flavour = a.flavour;
    let release = names
        .iter()
        .filter_map(|n| {
            n.strip_prefix("linux-image-")?
                .strip_suffix(&format!("-{flavour}-unsigned"))
        })
        .map(|v| format!("{v}-{flavour}"))
        .filter(|r| names.contains(&format!("linux-image-{r}-dbg")))
        .max_by_key(|r| version_key(r))
        .ok_or_else(|| {
            format!(
                "no linux-image-6.12.*-{flavour}-unsigned with a -dbg in bookworm-backports (apt-cache search found {names:?}); apt-get update said:\n{update}"
            )
        })?;
    let (image, dbg) = (
        format!("linux-image-{release}-unsigned"),
        format!("linux-image-{release}-dbg"),
    );
    eprintln!("{label}: downloading {image} and {dbg}");
    cmd_ok(
        Command::new("apt-get")
            .args(&opts)
            .args(["-q", "download"])
            .arg(format!("{image}:{}", a.deb))
            .arg(format!("{dbg}:{}", a.deb))
            .current_dir(work.join("debs")),
        "apt-get download",
    )?;
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len()) >> 20;
    let debs = work.join("debs");
    let (image_deb, dbg_deb) = (downloaded(&debs, &image)?, downloaded(&debs, &dbg)?);
    eprintln!(
        "{label}: downloaded {} MiB + {} MiB",
        size(&image_deb),
        size(&dbg_deb)
    );
    let x = work.join("x");
    let (vmlinuz, loop_xz) = (
        format!("boot/vmlinuz-{release}"),
        format!("lib/modules/{release}/{MODULE}.xz"),
    );
    let (vmlinux, modules) = (
        format!("usr/lib/debug/boot/vmlinux-{release}"),
        format!("usr/lib/debug/lib/modules/{release}"),
    );
    extract(
        &image_deb,
        &x,
        &[format!("./{vmlinuz}"), format!("./{loop_xz}")],
    )?;
    extract(
        &dbg_deb,
        &x,
        &[format!("./{vmlinux}"), format!("./{modules}/{MODULE}")],
    )?;
    let loop_ko = x.join("loop.ko");
    cmd_ok(
        Command::new("xz")
            .arg("-dc")
            .arg(x.join(&loop_xz))
            .stdout(std::fs::File::create(&loop_ko).map_err(|e| e.to_string())?),
        "xz -d loop.ko.xz",
    )?;
    // Each piece goes in by a rename: never a half-written file, and what
    // an older run (or another run) put there is kept.
    let dir = cache.join(&release);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (from, to) in [
        (x.join(&vmlinuz), "vmlinuz"),
        (x.join(&vmlinux), "vmlinux"),
        (loop_ko, "loop.ko"),
        (x.join(&modules), "modules"),
    ] {
        let to = dir.join(to);
        if !to.exists()
            && let Err(e) = std::fs::rename(&from, &to)
            && !to.exists()
        {
            return Err(format!("{} → {}: {e}", from.display(), to.display()));
        }
    }
    // the .debs (330 MB) go with `work`
    Kernel::at(dir.clone())
        .ok_or_else(|| format!("no complete kernel in {} after the fetch", dir.display()))
}

/// An ELF executable's e_machine (little-endian ELF64).
fn elf_machine(b: &[u8]) -> Option<u16> {
    (b.len() > 20 && b.starts_with(b"\x7fELF")).then(|| u16::from_le_bytes([b[18], b[19]]))
}

/// The guest's static busybox, or why there is none.
fn guest_busybox(a: &Arch) -> Result<Vec<u8>, String> {
    let bb = match a.busybox {
        Busybox::Host => static_busybox(Path::new("/bin/busybox"))
            .ok_or("no static /bin/busybox (apt-get install busybox-static)")?,
        Busybox::Download => {
            let cached = a.cache().join("busybox");
            match static_busybox(&cached) {
                Some(bb) => bb,
                None => download_busybox(a, &cached)?,
            }
        }
    };
    match elf_machine(&bb) {
        Some(m) if m == a.elf_machine => Ok(bb),
        m => Err(format!(
            "the busybox is not an {} executable (e_machine {m:?})",
            a.name
        )),
    }
}

/// `apt-get download busybox-static:DEB` (the system's sources) and its
/// bin/busybox moved to `to`.
fn download_busybox(a: &Arch, to: &Path) -> Result<Vec<u8>, String> {
    for tool in ["apt-get", "dpkg-deb", "tar"] {
        if !have(tool, "--version") {
            return Err(format!(
                "{tool} is missing (to fetch busybox-static:{})",
                a.deb
            ));
        }
    }
    let cache = a.cache();
    remove_stale(&cache, "busybox-work-");
    let work = cache.join(format!("busybox-work-{}", std::process::id()));
    let _work = common::guest::TempDir(work.clone());
    std::fs::create_dir_all(work.join("x")).map_err(|e| format!("{}: {e}", work.display()))?;
    let pkg = "busybox-static";
    cmd_ok(
        Command::new("apt-get")
            .args(["-q", "download", &format!("{pkg}:{}", a.deb)])
            .current_dir(&work),
        &format!("apt-get download {pkg}:{}", a.deb),
    )?;
    let deb = downloaded(&work, pkg)?;
    extract(&deb, &work.join("x"), &["./bin/busybox".into()])?;
    let bin = work.join("x/bin/busybox");
    let bb = static_busybox(&bin)
        .ok_or_else(|| format!("{} has no static bin/busybox", deb.display()))?;
    std::fs::rename(&bin, to).map_err(|e| format!("{}: {e}", to.display()))?;
    eprintln!("{}: {pkg}:{} cached as {}", a.label(), a.deb, to.display());
    Ok(bb)
}

/// /init: loop.ko, two sleepers, then a sysrq crash on the last CPU. Not
/// qemu_fw_cfg: it would register VMCOREINFO. What the test needs to know
/// goes to the kernel log, never to stdout: the console prints a kernel
/// record whole, but user output shares the port and can be cut by one
/// (`INIT-MODULES loop[    3.570816] …` was seen on arm64).
fn init_script(marker: &str) -> String {
    format!(
        "{INIT_PREAMBLE}insmod /loop.ko
echo \"INIT-MODULES $(cut -d' ' -f1 /proc/modules)\" > /dev/kmsg
sleep 100001 &
sleep 100002 &
echo \"INIT-SLEEPERS $(pidof sleep)\" > /dev/kmsg
echo \"INIT-MARKER {marker}\" > /dev/kmsg
sleep 2
taskset -c {} sh -c 'echo c > /proc/sysrq-trigger'
",
        SMP - 1
    )
}

fn dump_guest_memory(a: &Arch, qmp: &Qmp, path: &Path, format: &str) {
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
    eprintln!("{}: {format} dump in {:.1?}", a.label(), t.elapsed());
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

/// Stops the guest where the panic CPU has interrupts enabled. panic()
/// ends in an endless mdelay loop with interrupts on, so a stop can catch
/// that CPU in an interrupt handler, where GDB's bt ends at the IRQ stack
/// and never reaches sysrq_handle_crash (seen on arm64: `#7
/// call_on_irq_stack () at arch/arm64/kernel/entry.S:893` / `Backtrace
/// stopped: previous frame identical to this frame (corrupt stack?)`).
/// Interrupts are also still masked just after the last panic line, while
/// panic() flushes the consoles (most arm64 first stops): also retried.
fn stop_outside_irq(a: &Arch, qmp: &Qmp) {
    let (key, irqs_on) = a.flags;
    let mut last = String::new();
    for attempt in 1..=100 {
        qmp.execute("stop", None).expect("QMP stop");
        last = qmp.hmp("info registers -a").expect("info registers -a");
        match hmp_reg(&last, SMP - 1, key) {
            Some(f) if irqs_on(f) => {
                if attempt > 1 {
                    eprintln!(
                        "{}: CPU {} had interrupts masked at {} stop(s) before this one",
                        a.label(),
                        SMP - 1,
                        attempt - 1
                    );
                }
                return;
            }
            Some(_) => {}
            None => panic!(
                "no {key}= for CPU#{} in info registers -a:\n{last}",
                SMP - 1
            ),
        }
        qmp.execute("cont", None).expect("QMP cont");
        // not a multiple of the guest's tick
        std::thread::sleep(Duration::from_millis(37));
    }
    panic!(
        "{}: CPU {} in an interrupt handler at 100 stops:\n{last}",
        a.label(),
        SMP - 1
    );
}

/// `k.dir/guest-v2/` (console.log and the two dumps): cached, else made by
/// booting the kernel. None: skipped.
fn guest_dumps(a: &Arch, k: &Kernel) -> Option<PathBuf> {
    let label = a.label();
    let done = k.dir.join(GUEST);
    if [ELF, KDUMP, "console.log"]
        .iter()
        .all(|f| done.join(f).is_file())
    {
        return Some(done);
    }
    if !have(a.qemu, "--version") {
        a.skip(&format!(
            "{} is not installed (apt-get install {})",
            a.qemu, a.qemu_package
        ));
        return None;
    }
    let bb = match guest_busybox(a) {
        Ok(bb) => bb,
        Err(e) => {
            a.skip(&e);
            return None;
        }
    };
    let loop_ko = std::fs::read(&k.loop_ko).unwrap();
    remove_stale(&k.dir, "guest.tmp-");
    let dir = k.dir.join(format!("guest.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let marker = common::guest::marker(a.marker);
    let initrd = dir.join("initrd.gz");
    std::fs::write(
        &initrd,
        initramfs_with(&bb, &init_script(&marker), &[("loop.ko", &loop_ko)]),
    )
    .unwrap();
    let console = dir.join("console.log");
    let sock = dir.join("qmp.sock");
    let mut qemu = Proc::spawn(
        "qemu",
        Command::new(a.qemu)
            .args(a.qemu_args)
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
            .arg(format!("console={} panic=0", a.console))
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
    parse_console(&read_console());
    wait_for("QMP socket", Duration::from_secs(30), || sock.exists());
    let qmp = Qmp::connect(&sock).expect("QMP");
    stop_outside_irq(a, &qmp);
    // both dumps of this one stop (the guest stays stopped)
    dump_guest_memory(a, &qmp, &dir.join(ELF), "elf");
    dump_guest_memory(a, &qmp, &dir.join(KDUMP), "kdump-zlib");
    let _ = qmp.execute("quit", None);
    let _ = qemu.wait_timeout(Duration::from_secs(10));
    drop(qemu);
    let _ = std::fs::remove_file(&initrd);
    let _ = std::fs::remove_file(&sock);
    {
        use std::os::unix::fs::PermissionsExt;
        for f in [ELF, KDUMP] {
            let _ = std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644));
        }
    }
    if std::fs::rename(&dir, &done).is_err() {
        // another run got there first
        let _ = std::fs::remove_dir_all(&dir);
    }
    Some(done)
}

/// What the guest printed: its marker, loaded modules, the sleepers' PIDs,
/// the CPU and PID named in the panic message (`CPU: 2 UID: 0 PID: 155
/// Comm: sh …`) and the KASLR offset (`Kernel Offset: 0x… from …`).
struct Console {
    marker: String,
    sleepers: Vec<u32>,
    panic_cpu: u32,
    panic_pid: u32,
    kaslr_offset: u64,
}

fn after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_once(key)?.1.split_whitespace().next()
}

fn parse_console(text: &str) -> Console {
    // what /init wrote to /dev/kmsg: `[    3.57] KEY rest of the line`
    let line = |key: &str| {
        text.lines()
            .find_map(|l| Some(l.split_once(key)?.1))
            .unwrap_or_else(|| panic!("no {key:?} on the console:\n{text}"))
    };
    let marker = line("INIT-MARKER ").trim().to_string();
    let modules: Vec<&str> = line("INIT-MODULES ").split_whitespace().collect();
    assert!(
        modules.contains(&"loop") && !modules.contains(&"qemu_fw_cfg"),
        "/init loaded loop.ko and not qemu_fw_cfg: modules {modules:?}; console:\n{text}"
    );
    let sleepers: Vec<u32> = line("INIT-SLEEPERS ")
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
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
        .find_map(|l| u64::from_str_radix(after(l, "Kernel Offset: 0x")?, 16).ok())
        .unwrap_or_else(|| panic!("no `Kernel Offset: 0x…` after the panic:\n{text}"));
    assert_eq!(sleepers.len(), 2, "two sleepers:\n{text}");
    Console {
        marker,
        sleepers,
        panic_cpu,
        panic_pid,
        kaslr_offset,
    }
}

/// (PID, TASK, COMM) rows of crash-style `ps` output (ours or `monitor
/// ps`) found anywhere in `text`.
fn ps_rows(ps: &str) -> Vec<(u32, String, String)> {
    ps.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l
                .trim_start_matches([' ', '>'])
                .split_whitespace()
                .collect();
            let task = f.get(3)?;
            if task.len() != 16 || !task.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            Some((f[0].parse().ok()?, task.to_string(), f.last()?.to_string()))
        })
        .collect()
}

fn check(a: &Arch) {
    let _one = ONE_GUEST.lock().unwrap_or_else(|e| e.into_inner());
    let label = a.label();
    let t0 = Instant::now();
    if !have(a.gdb, "--version") {
        return a.skip(&format!("{} is not installed", a.gdb));
    }
    let k = match cached_kernel(a) {
        Some(k) => k,
        None => {
            for tool in ["apt-get", "apt-cache", "dpkg-deb", "tar", "xz"] {
                if !have(tool, "--version") {
                    return a.skip(&format!("{tool} is missing (to fetch the 6.12 kernel)"));
                }
            }
            match fetch_kernel(a) {
                Ok(k) => k,
                Err(e) => return a.skip(&format!("cannot fetch the 6.12 kernel: {e}")),
            }
        }
    };
    eprintln!(
        "{label}: kernel {} ready after {:.1?}",
        k.release,
        t0.elapsed()
    );
    let Some(guest) = guest_dumps(a, &k) else {
        return;
    };
    eprintln!("{label}: dumps ready after {:.1?}", t0.elapsed());
    let con = parse_console(&std::fs::read_to_string(guest.join("console.log")).unwrap());
    assert_eq!(
        con.panic_cpu,
        SMP - 1,
        "taskset put the crash on the last CPU"
    );
    let sleeper = con.sleepers[0];

    // The sleeper's task_struct, for its mm->arg_start (same guest, same
    // moment: the same address in both dumps).
    let ps = format!("ps {sleeper}");
    let (steps, all) = gdb_steps(&guest.join(ELF), &k.vmlinux, &[("ps", &ps)]);
    let rows = ps_rows(steps.get("ps").map_or("", |s| s.as_str()));
    let task = rows
        .iter()
        .find(|r| r.0 == sleeper)
        .map(|r| r.1.clone())
        .unwrap_or_else(|| panic!("pid {sleeper} not in `ps {sleeper}`:\n{all}"));

    // Without --vmlinux: the release in the banner found in RAM names the
    // vmlinux (here `vmlinux-RELEASE` beside the dump, one of the places
    // looked in; /usr/lib/debug/boot/ is another), as `corestub gdb DUMP`
    // needs for a dump without VMCOREINFO or build-id.
    {
        let dir =
            std::env::temp_dir().join(format!("corestub-612-{}-{}", a.name, std::process::id()));
        let _dir = common::guest::TempDir(dir.clone());
        std::fs::create_dir_all(&dir).unwrap();
        let beside = dir.join(format!("vmlinux-{}", k.release));
        std::os::unix::fs::symlink(&k.vmlinux, &beside).unwrap();
        std::os::unix::fs::symlink(guest.join(KDUMP), dir.join(KDUMP)).unwrap();
        let out = run(Command::new(corestub_bin())
            .args(["info", "--json"])
            .arg(dir.join(KDUMP)));
        assert!(out.status.success(), "{label} without --vmlinux: {out:?}");
        let info: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            info["vmlinux"].as_str(),
            Some(beside.to_str().unwrap()),
            "{label}: vmlinux not found by the banner's release: {info:#}"
        );
        assert!(
            info["kernel_root_from"]
                .as_str()
                .is_some_and(|r| r.contains("linux_banner confirmed")),
            "{label}: {info:#}"
        );
    }

    for name in [ELF, KDUMP] {
        let t = Instant::now();
        let dump = guest.join(name);
        let out = run(Command::new(corestub_bin())
            .args(["info", "--json", "--vmlinux"])
            .arg(&k.vmlinux)
            .arg(&dump));
        assert!(out.status.success(), "{label} {name}: {out:?}");
        let info: Value = serde_json::from_slice(&out.stdout).unwrap();
        eprintln!(
            "{label}: {name}: {} / KERNEL_ROOT_FROM {}",
            info["format"], info["kernel_root_from"]
        );
        assert_eq!(info["paging"], a.paging, "{label} {name}: {info:#}");
        assert_eq!(info["cpus"], SMP, "{label} {name}: {info:#}");
        assert_eq!(info["panic_cpu"], con.panic_cpu, "{label} {name}: {info:#}");
        assert_eq!(
            info["release"],
            k.release.as_str(),
            "{label} {name}: {info:#}"
        );
        let panic_task = info["panic_task"].as_str().unwrap_or_default();
        assert!(
            panic_task.contains(&format!("(pid {},", con.panic_pid)),
            "{label} {name}: panic task is not pid {}: {info:#}",
            con.panic_pid
        );
        let root_from = info["kernel_root_from"].as_str().unwrap_or_default();
        for piece in a.root_from {
            assert!(
                root_from.contains(piece),
                "{label} {name}: KERNEL_ROOT_FROM lacks {piece:?}: {info:#}"
            );
        }
        let kaslr = info["kaslr_offset"]
            .as_str()
            .and_then(|s| u64::from_str_radix(s.strip_prefix("0x")?, 16).ok());
        assert_eq!(
            kaslr,
            Some(con.kaslr_offset),
            "{label} {name}: KASLR offset vs the console's 0x{:x}: {info:#}",
            con.kaslr_offset
        );

        let modsyms = format!("modsyms \"{}\"", k.modules.display());
        let (steps, all) = gdb_steps(
            &dump,
            &k.vmlinux,
            &[
                ("bt", "bt"),
                ("dmesg", "dmesg"),
                ("lsmod", "lsmod"),
                ("modsyms", &modsyms),
                ("lo_open", "p lo_fops.open"),
                ("max_loop", "p max_loop"),
                ("ps", "monitor ps"),
                ("task", &format!("task {sleeper}")),
                ("task_bt", "bt"),
                (
                    "argv0",
                    &format!("x/s ((struct task_struct *)0x{task})->mm->arg_start"),
                ),
            ],
        );
        let step = |k: &str| steps.get(k).cloned().unwrap_or_default();
        assert!(
            step("bt").contains("sysrq_handle_crash"),
            "{label} {name}: panic bt:\n{all}"
        );
        assert!(
            step("dmesg").contains(&con.marker),
            "{label} {name}: {} not in dmesg:\n{all}",
            con.marker
        );
        assert!(
            step("lsmod")
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some("loop")),
            "{label} {name}: loop not in lsmod:\n{all}"
        );
        assert!(
            step("modsyms").contains("loaded 1 module"),
            "{label} {name}: modsyms {}:\n{all}",
            k.modules.display()
        );
        // symbols in loop.ko's .text, .rodata and .data, where modsyms
        // put them
        assert!(
            step("lo_open").contains("<lo_open>"),
            "{label} {name}: lo_fops.open after modsyms:\n{all}"
        );
        assert!(
            step("max_loop").trim().ends_with("= 8"),
            "{label} {name}: max_loop (Debian's default 8) after modsyms:\n{all}"
        );
        // GDB 13 prints `monitor` answers on stderr: look in all the output
        assert!(
            ps_rows(&all).contains(&(sleeper, task.clone(), "sleep".into())),
            "{label} {name}: pid {sleeper} sleep at {task} in monitor ps:\n{all}"
        );
        assert!(
            step("task_bt").contains("do_nanosleep"),
            "{label} {name}: bt of pid {sleeper}:\n{all}"
        );
        assert!(
            step("argv0").contains("\"sleep\""),
            "{label} {name}: argv[0] of pid {sleeper} through its page tables:\n{all}"
        );
        eprintln!("{label}: {name} checked in {:.1?}", t.elapsed());
    }
    eprintln!("{label}: total {:.1?}", t0.elapsed());
}

#[test]
fn qemu_612_x86_64_la57_three_cpus() {
    check(&X86_64)
}

#[test]
fn qemu_612_arm64_lpa2_three_cpus() {
    check(&ARM64)
}

#[test]
fn qemu_612_arm64_16k_lpa2_three_cpus() {
    check(&ARM64_16K)
}

/// The Rust reading of the machine's apt sources agrees with the shell's
/// (.ci/debian-archive-uri, which .ci/run uses), and both entry styles
/// parse.
#[test]
fn debian_archive_uri_from_apt_sources() {
    use common::guest::source_uris;
    let deb822 =
        "Types: deb\n# URIs: http://commented/debian\nURIs: http://m.example/debian/\nSuites: x\n";
    assert_eq!(source_uris(deb822), ["http://m.example/debian/"]);
    let one_line = "# deb http://no/debian x main\ndeb [arch=amd64 signed-by=/k.gpg] https://m.example/debian x main\ndeb-src http://src/debian x main\n";
    assert_eq!(source_uris(one_line), ["https://m.example/debian"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/debian-archive-uri");
    let shell = Command::new("bash").arg(&script).output().unwrap();
    let rust = common::guest::debian_archive_uri();
    if shell.status.success() {
        assert_eq!(
            rust.as_deref().ok(),
            Some(String::from_utf8_lossy(&shell.stdout).trim()),
            "{rust:?}"
        );
    } else {
        assert!(rust.is_err(), "the script found none, Rust found {rust:?}");
    }
}
