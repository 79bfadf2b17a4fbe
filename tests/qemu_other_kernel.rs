//! corestub on dumps of kernels, paging modes and a CPU count the checked-in
//! fixtures (Debian 6.1, x86_64 4-level and arm64 48-bit VAs, 4 CPUs) do
//! not cover: the oldest and newest kernels Debian serves and 6.12, booted
//! under QEMU TCG with **3 CPUs**, one test per kernel and architecture:
//! - 5.10 (bullseye's `linux-image-5.10.0-*-cloud-{amd64,arm64}`), 6.12
//!   (bookworm-backports) and 7.x (trixie-backports), each for x86_64 and
//!   arm64;
//! - x86_64 on a CPU with LA57 (`-cpu qemu64,+la57,-cx16`; without CX16
//!   because QEMU 7.2's TCG CMPXCHG16B breaks about one 6.12 boot in four):
//!   **5-level paging** with 6.12 and 7.x, 4 levels with 5.10 (built
//!   without X86_5LEVEL);
//! - arm64 with `-cpu max` (LPA2): 6.12's and 7.x's cloud-arm64 kernels are
//!   built with ARM64_VA_BITS_52 and run with 52-bit VAs and 5 levels of
//!   tables; 5.10's with 48-bit VAs and 4K pages;
//! - arm64-16k (6.12 only): Debian's generic arm64 kernel with **16K
//!   pages**, also 52-bit VAs with LPA2 (4 levels; 1 GB of debug package);
//! - 32-bit, Debian 12's own 6.1 (bookworm; the last with i386 kernels):
//!   i386 `686-pae` (**PAE**, `-cpu qemu32,+pae,+nx`) and `686` (**2-level**
//!   paging), armhf `armmp-lpae` (**LPAE**) and `armmp` (**short
//!   descriptors**) on `-M virt -cpu cortex-a15`; the 686-pae guest also
//!   once with qemu_fw_cfg loaded, whose dumps carry VMCOREINFO.
//!
//! Each guest's busybox /init insmods a real module (loop.ko, which has no
//! dependencies), starts two sleepers, logs the physical address of the
//! first sleeper's top stack page from /proc/PID/pagemap, writes a marker
//! to the kernel log and panics through sysrq on the last CPU; QMP
//! `dump-guest-memory` then writes, of one stop taken where the panic CPU
//! is not in an interrupt handler, an ELF, a flattened `kdump-zlib`, and
//! with QEMU >= 8.2 the plain diskdump files `kdump-raw-zlib`,
//! `kdump-raw-lzo` and `kdump-raw-snappy`. These kernels register no
//! VMCOREINFO under QEMU (their fw_cfg driver is a module, deliberately not
//! loaded), so the kernel's place comes from corestub's detection (x86_64:
//! CR3 + IDT; arm64: `linux_banner` in RAM and `kimage_voffset`), not from
//! notes.
//!
//! On every dump of each guest, checked against what the guest printed on
//! its console:
//! - `corestub info --json`: the paging, 3 CPUs, panic CPU = the last one,
//!   panic task = the PID the panic message names, release = the kernel's,
//!   KERNEL_ROOT_FROM names the detection without VMCOREINFO, KASLR offset
//!   = the console's "Kernel Offset:".
//! - `corestub gdb` (gdb-multiarch for arm64): `info threads` (3 CPU
//!   threads, the last one `[panic]`, and the sleepers' task threads);
//!   `bt` on the (selected) panic thread reaches `sysrq_handle_crash`;
//!   `dmesg` and `monitor log` have the marker; `sys` and `monitor sys` the
//!   release, 3 CPUs and the panic; `trapinfo` names the panic task, its
//!   write(2) (the syscall number of the ABI) and the panicking CPU;
//!   `trapinfo PID` the sleeper's entry; `lsmod` lists `loop`; `modsyms
//!   DIR` loads the debug loop.ko, after which `p lo_fops.release`
//!   (.rodata) prints `<lo_release>` (.text), `p loop_misc.fops` (.data)
//!   `<loop_ctl_fops>`, `p &__this_module` is lsmod's MODULE address and
//!   every symbol of the kernel's own kallsyms of loop.ko
//!   (`mod->kallsyms`, what /proc/kallsyms prints) is where GDB's `info
//!   symbol` has it (GDB 13 misplaces every symbol of .ko files whose
//!   sections carry non-zero addresses, 6.x x86_64/arm64 and 32-bit arm's
//!   `.plt`, unless modsyms works around it); `ps` and `monitor ps` list a sleeper
//!   at the same task address; `task PID` + `bt` reaches `do_nanosleep`;
//!   user memory through the sleeper's own page tables: `x/s
//!   mm->arg_start` prints its argv[0], "sleep"; `monitor vtop -p PID VA`
//!   of its top stack page gives the physical address the guest read from
//!   pagemap, `monitor rd -p PA` reads there what `x/4gx VA` (32-bit:
//!   `x/8wx`) reads in the task, in the kernel's words (crash's default
//!   unit: 8 hex digits on 32-bit kernels), `monitor ptov PA` and
//!   `monitor kmem -p PA` answer for it;
//!   `monitor help` and `monitor info version` answer.
//!
//! Cache: `fixtures::root()/ARCH-SERIES/RELEASE/` (`x86_64-5.10/…`,
//! `arm64-7/…`) holds vmlinuz, the debug vmlinux, loop.ko (for the
//! initramfs), `modules/` (the debug loop.ko) and `guest-v3/` (console log,
//! the dumps and `formats`, the list of them); `arm64-6.12/busybox` is an
//! arm64 static busybox. The .debs are deleted after unpacking. When a
//! kernel is missing, the newest release of its series with a `-dbg`
//! package is fetched with apt-get through a private apt configuration
//! (the machine's Debian mirror, the series' suite; the system's sources
//! are untouched) and the guest is booted. Delete a directory to move to a
//! newer release. The tests take turns (a lock): each boots a 3-CPU TCG
//! guest and loads a 300-500 MB vmlinux into GDB. Cold and warm times are
//! in the README's table of tested kernels.
//!
//! Missing tools (gdb or gdb-multiarch; qemu-system-x86_64,
//! qemu-system-aarch64, qemu-system-i386 or qemu-system-arm and a static
//! busybox to make the dumps: the host's busybox-static for x86_64,
//! `apt-get download busybox-static:DEB` through the private apt
//! configuration for arm64, i386 and armhf; apt-get, dpkg-deb, tar, xz and
//! zstd to fetch the kernel) or a
//! failed fetch: SKIP, or failure under CORESTUB_REQUIRE_FIXTURES=1. QEMU
//! is killed by PID on every path (guard).

mod common;
mod other_kernels;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use common::guest::have;
use common::{corestub_bin, run};
use other_kernels::boot::{self, Console, Machine, SMP, dump_name, guest_dumps};
use other_kernels::fetch::{self, Kernel, S7, S61, S510, S612, Series, Target};
use other_kernels::kscripts;
use serde_json::Value;

const TEST: &str = "qemu_other_kernel";

/// One guest at a time (see the top of the file).
static ONE_GUEST: Mutex<()> = Mutex::new(());

/// What differs between the architectures.
struct Arch {
    /// `x86_64`, `arm64`, `arm64-16k`: the test's label and the cache's
    /// `NAME-SERIES/`.
    name: &'static str,
    /// Debian's architecture: package suffix (`:arm64`).
    deb: &'static str,
    /// Debian's kernel flavour (`cloud-arm64`, `arm64-16k`).
    flavour: &'static str,
    /// The ELF e_machine of its binaries (the busybox is checked).
    elf_machine: u16,
    page_size: u64,
    /// Bytes in the kernel's `unsigned long`: `monitor rd`'s default unit.
    word: u64,
    qemu: &'static str,
    qemu_package: &'static str,
    /// Everything but what all guests share (-smp, vmcoreinfo, serial,
    /// kernel, initrd, append, QMP).
    qemu_args: &'static [&'static str],
    console: &'static str,
    gdb: &'static str,
    /// The host's busybox (x86_64) or busybox-static:DEB downloaded.
    host_busybox: bool,
    /// The flags register in HMP `info registers` and whether its value
    /// has interrupts enabled.
    flags: (&'static str, fn(u64) -> bool),
    /// The stack pointer in HMP `info registers`.
    sp: &'static str,
    /// What `trapinfo` prints for a task in write(2): the syscall-number
    /// register and write's number in this ABI.
    write_syscall: &'static str,
}

const X86_64: Arch = Arch {
    name: "x86_64",
    deb: "amd64",
    flavour: "cloud-amd64",
    elf_machine: 62,
    page_size: 4096,
    word: 8,
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
    host_busybox: true,
    flags: ("RFL", |f| f & 0x200 != 0), // IF
    sp: "RSP",
    write_syscall: "orig_ax=1",
};

/// Debian's i386 kernel for PAE CPUs: 3-level PAE paging with NX.
const I386_PAE: Arch = Arch {
    name: "i386",
    deb: "i386",
    flavour: "686-pae",
    elf_machine: 3,
    page_size: 4096,
    word: 4,
    qemu: "qemu-system-i386",
    qemu_package: "qemu-system-x86",
    qemu_args: &[
        "-accel",
        "tcg",
        "-cpu",
        "qemu32,+pae,+nx",
        "-machine",
        "pc",
        "-m",
        "512",
    ],
    console: "ttyS0",
    gdb: "gdb",
    host_busybox: false,
    flags: ("EFL", |f| f & 0x200 != 0), // IF
    sp: "ESP",
    write_syscall: "orig_ax=4",
};

/// Debian's i386 kernel for CPUs without PAE: 2-level paging, 32-bit
/// entries, 4 MiB pages for lowmem.
const I386_686: Arch = Arch {
    name: "i386-686",
    flavour: "686",
    qemu_args: &[
        "-accel", "tcg", "-cpu", "qemu32", "-machine", "pc", "-m", "512",
    ],
    ..I386_PAE
};

/// Debian's armhf kernel without LPAE (short descriptors) on the same
/// board and CPU.
const ARM_SHORT: Arch = Arch {
    name: "arm",
    flavour: "armmp",
    ..ARM_LPAE
};

/// Debian's armhf kernel for LPAE CPUs on QEMU's virt board with a
/// Cortex-A15: long descriptors, 3 levels.
const ARM_LPAE: Arch = Arch {
    name: "arm-lpae",
    deb: "armhf",
    flavour: "armmp-lpae",
    elf_machine: 40,
    page_size: 4096,
    word: 4,
    qemu: "qemu-system-arm",
    qemu_package: "qemu-system-arm",
    qemu_args: &[
        "-M",
        "virt",
        "-cpu",
        "cortex-a15",
        "-accel",
        "tcg,thread=multi",
        "-m",
        "512",
    ],
    console: "ttyAMA0",
    gdb: "gdb-multiarch",
    host_busybox: false,
    flags: ("PSR", |f| f & 0x80 == 0), // CPSR.I
    sp: "R13",
    write_syscall: "r7=4",
};

const ARM64: Arch = Arch {
    name: "arm64",
    deb: "arm64",
    flavour: "cloud-arm64",
    elf_machine: 183,
    page_size: 4096,
    word: 8,
    qemu: "qemu-system-aarch64",
    qemu_package: "qemu-system-arm",
    // -cpu max: LPA2, so a 52-bit kernel runs with 52-bit VAs;
    // pauth-impdef: QEMU's cheap pointer-authentication hash instead of
    // QARMA (the kernel signs every return address).
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
    host_busybox: false,
    flags: ("PSTATE", |f| f & 0x80 == 0), // the I of DAIF
    sp: "SP",
    write_syscall: "syscallno=64",
};

/// Debian's generic arm64 kernel with 16 KiB pages.
const ARM64_16K: Arch = Arch {
    name: "arm64-16k",
    flavour: "arm64-16k",
    page_size: 16384,
    ..ARM64
};

const X86_ROOT_FROM: &[&str] = &[
    "no VMCOREINFO: CR3 of CPU",
    "kernel image mapping and IDT entry 0 agree",
];

/// One test: a kernel series on an architecture, and what corestub must
/// find in it.
struct Case {
    arch: &'static Arch,
    series: &'static Series,
    marker: &'static str,
    /// `corestub info`'s PAGING.
    paging: &'static str,
    /// Pieces of KERNEL_ROOT_FROM: how the kernel was found without
    /// VMCOREINFO.
    root_from: &'static [&'static str],
    /// The guest loads qemu_fw_cfg: its dumps carry VMCOREINFO.
    fw_cfg: bool,
}

impl Case {
    fn label(&self) -> String {
        format!("{TEST} {} {}", self.arch.name, self.series.name)
    }

    fn skip(&self, why: &str) {
        common::guest::skip(&self.label(), why)
    }

    fn cache(&self) -> PathBuf {
        corestub::fixtures::root().join(format!("{}-{}", self.arch.name, self.series.name))
    }

    /// Where the arm64 busybox is kept: one for every series (the first
    /// version of this test kept it under the 6.12 directory).
    /// One busybox per guest architecture, from the machine's own suite
    /// (named in the file: a cache filled from another suite is not
    /// reused). Not the kernel's suite: bullseye's busybox 1.30 has no
    /// `taskset -c`, and which case ran first on a fresh machine decided
    /// what every later guest of that architecture got.
    fn busybox_cache(&self, suite: &str) -> PathBuf {
        corestub::fixtures::root()
            .join(format!("{}-6.12", self.arch.name))
            .join(format!("busybox-{suite}"))
    }
}

/// `corestub gdb -batch` with `steps`, each a (label, command); each
/// step's output by label. GDB writes command output to stdout and errors
/// and `monitor` answers (remote console output) to stderr, so every
/// marker goes to both and a step's output is its stdout part followed
/// by its stderr part.
fn gdb_steps(
    dump: &Path,
    vmlinux: &Path,
    steps: &[(&str, String)],
) -> (BTreeMap<String, String>, String) {
    let mut args = common::gdb_batch_args(dump, vmlinux);
    // the first DWARF lookups of `monitor sys` take more than GDB's
    // default 2 s in a debug build on a loaded machine
    args.extend(["-iex".into(), "set remotetimeout 60".into()]);
    for (label, cmd) in steps {
        args.push("-ex".into());
        args.push(format!(
            "python import sys; sys.stdout.write('@@STEP {label}\\n'); sys.stdout.flush(); sys.stderr.write('@@STEP {label}\\n')"
        ));
        args.push("-ex".into());
        args.push(cmd.clone());
    }
    let out = run(Command::new(corestub_bin()).args(&args));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut map = common::split_steps(&stdout);
    for (k, v) in common::split_steps(&stderr) {
        map.entry(k).or_default().push_str(&v);
    }
    (map, format!("{stdout}\n--- stderr ---\n{stderr}"))
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
            // 16 digits on a 64-bit kernel, 8 on a 32-bit one
            if ![8, 16].contains(&task.len()) || !task.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            Some((f[0].parse().ok()?, task.to_string(), f.last()?.to_string()))
        })
        .collect()
}

/// The words of GDB's `x/Nx` output or `monitor rd` output (hex words
/// after the address, before any ASCII column), with the digits each was
/// printed with.
fn hex_words(text: &str) -> Vec<(u64, usize)> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .flat_map(|(_, rest)| {
            rest.split_whitespace().map_while(|w| {
                let digits = w.trim_start_matches("0x");
                Some((u64::from_str_radix(digits, 16).ok()?, digits.len()))
            })
        })
        .collect()
}

/// The kernel, fetched when not cached. None: skipped.
fn kernel(c: &Case) -> Option<Kernel> {
    if let Some(k) = fetch::cached_kernel(&c.cache(), c.series, c.arch.flavour) {
        return Some(k);
    }
    let label = c.label();
    let t = Target {
        label: &label,
        deb: c.arch.deb,
        flavour: c.arch.flavour,
    };
    match fetch::fetch_kernel(&c.cache(), c.series, &t) {
        Ok(k) => Some(k),
        Err(e) => {
            c.skip(&format!("cannot fetch the {} kernel: {e}", c.series.name));
            None
        }
    }
}

/// The guest's dumps, made when not cached. None: skipped.
fn dumps(c: &Case, k: &Kernel, label: &str) -> Option<PathBuf> {
    let a = c.arch;
    let m = Machine {
        label,
        qemu: a.qemu,
        qemu_args: a.qemu_args,
        console: a.console,
        page_size: a.page_size,
        flags: a.flags,
        sp: a.sp,
        marker: c.marker,
        fw_cfg: c.fw_cfg,
    };
    let done = boot::guest_dir(k, c.fw_cfg);
    if boot::cached_formats(&done).is_some() {
        return Some(done);
    }
    if !have(a.qemu, "--version") {
        c.skip(&format!(
            "{} is not installed (apt-get install {})",
            a.qemu, a.qemu_package
        ));
        return None;
    }
    let suite = match common::guest::host_suite() {
        Ok(s) => s,
        Err(e) => {
            c.skip(&e);
            return None;
        }
    };
    match fetch::guest_busybox(
        a.host_busybox,
        &c.busybox_cache(&suite),
        a.deb,
        &suite,
        a.elf_machine,
    ) {
        Ok(bb) => Some(guest_dumps(&m, k, &bb)),
        Err(e) => {
            c.skip(&e);
            None
        }
    }
}

fn check(c: &Case) {
    let _one = ONE_GUEST.lock().unwrap_or_else(|e| e.into_inner());
    let label = c.label();
    let a = c.arch;
    let t0 = Instant::now();
    if !have(a.gdb, "--version") {
        return c.skip(&format!("{} is not installed", a.gdb));
    }
    let Some(k) = kernel(c) else { return };
    eprintln!(
        "{label}: kernel {} ready after {:.1?}",
        k.release,
        t0.elapsed()
    );
    let Some(guest) = dumps(c, &k, &label) else {
        return;
    };
    let formats = boot::cached_formats(&guest).unwrap();
    eprintln!(
        "{label}: dumps {formats:?} ready after {:.1?}",
        t0.elapsed()
    );
    let con = Console::parse(
        &std::fs::read_to_string(guest.join("console.log")).unwrap(),
        c.fw_cfg,
    );
    assert_eq!(
        con.panic_cpu,
        SMP - 1,
        "taskset put the crash on the last CPU"
    );
    without_vmlinux_option(
        c,
        &k,
        &guest.join(dump_name(&formats[1.min(formats.len() - 1)])),
    );
    for f in &formats {
        let t = Instant::now();
        let dump = guest.join(dump_name(f));
        check_info(c, &k, &con, &dump, f);
        check_gdb(c, &k, &con, &dump, f);
        eprintln!("{label}: {f} checked in {:.1?}", t.elapsed());
    }
    let t = Instant::now();
    check_kernel_scripts(c, &k, &con, &guest.join(dump_name(&formats[0])));
    eprintln!(
        "{label}: the kernel's scripts/gdb checked in {:.1?}",
        t.elapsed()
    );
    eprintln!("{label}: total {:.1?}", t0.elapsed());
}

/// Without --vmlinux: the release in the banner found in RAM names the
/// vmlinux (here `vmlinux-RELEASE` beside the dump, one of the places
/// looked in; /usr/lib/debug/boot/ is another), as `corestub gdb DUMP`
/// needs for a dump without VMCOREINFO or build-id.
fn without_vmlinux_option(c: &Case, k: &Kernel, dump: &Path) {
    let label = c.label();
    let dir = std::env::temp_dir().join(format!(
        "corestub-other-{}-{}-{}",
        c.arch.name,
        c.series.name,
        std::process::id()
    ));
    let _dir = common::guest::TempDir(dir.clone());
    std::fs::create_dir_all(&dir).unwrap();
    let beside = dir.join(format!("vmlinux-{}", k.release));
    std::os::unix::fs::symlink(&k.vmlinux, &beside).unwrap();
    let name = dump.file_name().unwrap();
    std::os::unix::fs::symlink(dump, dir.join(name)).unwrap();
    let out = run(Command::new(corestub_bin())
        .args(["info", "--json"])
        .arg(dir.join(name)));
    assert!(out.status.success(), "{label} without --vmlinux: {out:?}");
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        info["vmlinux"].as_str(),
        Some(beside.to_str().unwrap()),
        "{label}: vmlinux not found by the banner's release: {info:#}"
    );
    // with VMCOREINFO its release names the vmlinux as well
    let how = if c.fw_cfg {
        "Vmcoreinfo"
    } else {
        "linux_banner confirmed"
    };
    assert!(
        info["kernel_root_from"]
            .as_str()
            .is_some_and(|r| r.contains(how)),
        "{label}: {info:#}"
    );
}

/// `corestub info --json` against the console.
fn check_info(c: &Case, k: &Kernel, con: &Console, dump: &Path, f: &str) {
    let label = c.label();
    let out = run(Command::new(corestub_bin())
        .args(["info", "--json", "--vmlinux"])
        .arg(&k.vmlinux)
        .arg(dump));
    assert!(out.status.success(), "{label} {f}: {out:?}");
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!(
        "{label}: {f}: {} / PAGING {} / KERNEL_ROOT_FROM {}",
        info["format"], info["paging"], info["kernel_root_from"]
    );
    assert_eq!(info["paging"], c.paging, "{label} {f}: {info:#}");
    assert_eq!(info["cpus"], SMP, "{label} {f}: {info:#}");
    assert_eq!(info["panic_cpu"], con.panic_cpu, "{label} {f}: {info:#}");
    assert_eq!(info["release"], k.release.as_str(), "{label} {f}: {info:#}");
    let panic_task = info["panic_task"].as_str().unwrap_or_default();
    assert!(
        panic_task.contains(&format!("(pid {},", con.panic_pid)),
        "{label} {f}: panic task is not pid {}: {info:#}",
        con.panic_pid
    );
    let root_from = info["kernel_root_from"].as_str().unwrap_or_default();
    for piece in c.root_from {
        assert!(
            root_from.contains(piece),
            "{label} {f}: KERNEL_ROOT_FROM lacks {piece:?}: {info:#}"
        );
    }
    let kaslr = info["kaslr_offset"]
        .as_str()
        .and_then(|s| u64::from_str_radix(s.strip_prefix("0x")?, 16).ok());
    // i386 and arm print none: the relocation is checked by the detection
    // reading linux_banner there (root_from) and by `bt` symbolizing
    if let Some(want) = con.kaslr_offset {
        assert_eq!(
            kaslr,
            Some(want),
            "{label} {f}: KASLR offset vs the console's 0x{want:x}: {info:#}"
        );
    }
}

/// One `corestub gdb` session on `dump`: threads, backtraces, scripts,
/// user memory and every `monitor` command, against the console.
fn check_gdb(c: &Case, k: &Kernel, con: &Console, dump: &Path, f: &str) {
    let label = format!("{} {f}", c.label());
    let sleeper = con.sleepers[0];
    let (upid, uva, _) = con.user_page;
    let upa = con.user_page_pa(c.arch.page_size);
    // the page's last 32 bytes: the end of the program's file name, then
    // the NULL that ends the stack (the start of the page is often zero)
    let tail = c.arch.page_size - 32;
    // those 32 bytes in the kernel's words: rd's default unit, GDB's
    // x/w (4 bytes) or x/g (8)
    let words = 32 / c.arch.word;
    let x_unit = if c.arch.word == 4 { 'w' } else { 'g' };
    let steps: Vec<(&str, String)> = vec![
        ("threads", "info threads".into()),
        ("bt", "bt".into()),
        ("trapinfo", "trapinfo".into()),
        ("dmesg", "dmesg".into()),
        ("sys", "sys".into()),
        ("lsmod", "lsmod".into()),
        ("modsyms", format!("modsyms \"{}\"", k.modules.display())),
        ("lo_release", "p lo_fops.release".into()),
        ("loop_misc", "p loop_misc.fops".into()),
        ("mod_kallsyms", format!("python exec({MODULE_KALLSYMS:?})")),
        ("this_module", "p/x &__this_module".into()),
        ("ps", format!("ps {sleeper}")),
        ("m_ps", "monitor ps".into()),
        ("m_sys", "monitor sys".into()),
        ("m_log", "monitor log".into()),
        ("m_help", "monitor help".into()),
        ("m_version", "monitor info version".into()),
        ("m_vtop", format!("monitor vtop -p {upid} {uva:x}")),
        ("m_rd", format!("monitor rd -p {:x} {words}", upa + tail)),
        ("m_ptov", format!("monitor ptov {upa:x}")),
        ("m_kmem", format!("monitor kmem -p {upa:x}")),
        ("trapinfo_s", format!("trapinfo {sleeper}")),
        ("task", format!("task {sleeper}")),
        ("task_bt", "bt".into()),
        ("user_x", format!("x/{words}{x_unit}x 0x{:x}", uva + tail)),
        (
            "argv0",
            format!(
                "python import corestub_common as cc; gdb.execute('x/s ((struct task_struct *)0x%x)->mm->arg_start' % cc.find_task({sleeper}).addr)"
            ),
        ),
    ];
    let (steps, all) = gdb_steps(dump, &k.vmlinux, &steps);
    let step = |k: &str| steps.get(k).cloned().unwrap_or_default();
    let has = |k: &str, what: &str, why: &str| {
        assert!(
            step(k).contains(what),
            "{label}: {why}: no {what:?} in `{k}`:\n{all}"
        )
    };
    // threads: 3 CPUs, the last one panicked; the sleepers are task threads
    let threads = step("threads");
    for cpu in 0..SMP {
        assert!(
            threads.contains(&format!("CPU {cpu} ")),
            "{label}: CPU {cpu} thread:\n{all}"
        );
    }
    assert!(
        threads
            .lines()
            .any(|l| l.contains(&format!("CPU {} ", SMP - 1)) && l.contains("[panic]")),
        "{label}: CPU {} is not the [panic] thread:\n{all}",
        SMP - 1
    );
    for p in &con.sleepers {
        has(
            "threads",
            &format!("pid {p} sleep"),
            "a task thread per sleeper",
        );
    }
    has("bt", "sysrq_handle_crash", "the panic CPU's backtrace");
    // the panic task is in write(2) to /proc/sysrq-trigger
    has(
        "trapinfo",
        &format!("PID {} ", con.panic_pid),
        "trapinfo of the panic task",
    );
    has(
        "trapinfo",
        c.arch.write_syscall,
        "the panic task entered write(2)",
    );
    has(
        "trapinfo",
        &format!("running on the panicking CPU {}", SMP - 1),
        "trapinfo of the panic task",
    );
    has(
        "trapinfo_s",
        &format!("PID {sleeper} (sleep)"),
        "trapinfo PID",
    );
    has(
        "trapinfo_s",
        "entered the kernel with",
        "the sleeper's syscall entry",
    );
    has("dmesg", &con.marker, "the marker in dmesg");
    has("m_log", &con.marker, "the marker in monitor log");
    for s in ["sys", "m_sys"] {
        has(s, &k.release, "RELEASE");
        has(s, &format!("CPUS: {SMP}"), "CPUS");
        has(s, "sysrq triggered crash", "PANIC");
    }
    assert!(
        step("lsmod")
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("loop")),
        "{label}: loop not in lsmod:\n{all}"
    );
    has("modsyms", "loaded 1 module", "modsyms of the debug loop.ko");
    // loop.ko's variables in .rodata and .data where modsyms put them:
    // their contents are the pointers the kernel relocated, into .text
    // and .rodata
    has(
        "lo_release",
        "<lo_release>",
        "lo_fops.release after modsyms",
    );
    has(
        "loop_misc",
        "<loop_ctl_fops>",
        "loop_misc.fops after modsyms",
    );
    check_module_kallsyms(&label, &step("mod_kallsyms"), &all);
    // loop.ko's struct module (its .gnu.linkonce.this_module section) is
    // where the kernel's module list has it
    let module = step("lsmod")
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("loop"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_default()
        .to_string();
    assert!(
        !module.is_empty() && step("this_module").trim().ends_with(&format!("0x{module}")),
        "{label}: &__this_module after modsyms vs lsmod's MODULE {module}:\n{all}"
    );
    // the sleeper at the same task address in our ps and monitor ps
    let task = ps_rows(&step("ps"))
        .into_iter()
        .find(|r| r.0 == sleeper)
        .unwrap_or_else(|| panic!("{label}: pid {sleeper} not in `ps {sleeper}`:\n{all}"));
    assert_eq!(task.2, "sleep", "{label}: {all}");
    assert!(
        ps_rows(&step("m_ps")).contains(&task),
        "{label}: {task:?} not in monitor ps:\n{all}"
    );
    has("m_help", "vtop", "monitor help lists the commands");
    has("m_version", "corestub", "monitor info version");
    has("task_bt", "do_nanosleep", "the sleeper's backtrace");
    has(
        "argv0",
        "\"sleep\"",
        "argv[0] through the sleeper's page tables",
    );
    // the guest's pagemap: vtop's PA, the same bytes physically and
    // through the task's page tables
    let vtop_pa = step("m_vtop").lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (u64::from_str_radix(w.next()?, 16).ok()? == uva)
            .then(|| u64::from_str_radix(w.next()?, 16).ok())
            .flatten()
    });
    assert_eq!(
        vtop_pa,
        Some(upa),
        "{label}: vtop -p {upid} {uva:#x} vs the guest's pagemap ({upa:#x}):\n{all}"
    );
    let (phys, user) = (hex_words(&step("m_rd")), hex_words(&step("user_x")));
    let value = |w: &[(u64, usize)]| w.iter().map(|&(v, _)| v).collect::<Vec<_>>();
    assert!(
        phys.len() == words as usize
            && value(&phys) == value(&user)
            && phys.iter().any(|&(v, _)| v != 0),
        "{label}: rd -p {upa:#x}+{tail:#x} {phys:x?} vs x/{words}{x_unit}x {uva:#x}+{tail:#x} in pid {upid} {user:x?}:\n{all}"
    );
    // crash's rd: the kernel's word, as many digits as it has
    assert!(
        phys.iter().all(|&(_, d)| d == 2 * c.arch.word as usize),
        "{label}: rd's default unit is not the {}-byte word:\n{all}",
        c.arch.word
    );
    has("m_ptov", &format!("{upa:x}"), "ptov of the user page");
    has("m_kmem", &format!("{upa:x}"), "kmem -p of the user page");
}

/// GDB (Python), after modsyms: each symbol of loop.ko in the kernel's own
/// kallsyms of it (`mod->kallsyms`, what /proc/kallsyms prints), by
/// address, and what GDB's `info symbol` says is there: `KSYM ok|MISMATCH
/// ADDR NAMES: ANSWER`. Only C identifiers: GDB renames `x.isra.0` and
/// `x.cold`, and arm's mapping symbols (`$a`) are not symbols. The module
/// address is the server's (`monitor lsmod`).
const MODULE_KALLSYMS: &str = r#"import corestub_common as cc
mod = [int(m["module"], 16) for m in cc.server_json("lsmod")["modules"] if m["name"] == "loop"][0]
ks = gdb.parse_and_eval("((struct module *)%d)->kallsyms" % mod)
names = {}
for i in range(int(ks["num_symtab"])):
    s = ks["symtab"][i]
    name = (ks["strtab"] + int(s["st_name"])).string()
    if name.isidentifier():
        names.setdefault(int(s["st_value"]), set()).add(name)
for addr in sorted(names):
    said = gdb.execute("info symbol 0x%x" % addr, to_string=True).strip()
    ok = said.split(" in section ")[0] in names[addr] and said.endswith("/loop.ko")
    print("KSYM %s 0x%x %s: %s" % ("ok" if ok else "MISMATCH", addr, ",".join(sorted(names[addr])), said))
"#;

/// Every loop.ko symbol in the kernel's kallsyms of the module is where
/// GDB has it after modsyms (functions of .text and .exit.text; data too
/// on kernels with KALLSYMS_ALL), lo_release among them.
fn check_module_kallsyms(label: &str, out: &str, all: &str) {
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("KSYM ")).collect();
    let bad: Vec<&&str> = lines
        .iter()
        .filter(|l| !l.starts_with("KSYM ok "))
        .collect();
    assert!(
        bad.is_empty() && lines.iter().any(|l| l.contains(" lo_release")),
        "{label}: loop.ko's kallsyms vs GDB after modsyms: {bad:#?}\n{all}"
    );
    eprintln!(
        "{label}: {} loop.ko kallsyms where GDB has them",
        lines.len()
    );
}

/// The kernel's own scripts/gdb of this exact version (lx-*), through
/// corestub on the ELF dump: lx-version, lx-dmesg, lx-ps, lx-lsmod and
/// $lx_current() against what the guest printed (on i386 and arm, where
/// the scripts' $lx_current() knows no architecture, `$lx_per_cpu`).
fn check_kernel_scripts(c: &Case, k: &Kernel, con: &Console, dump: &Path) {
    let label = format!("{} scripts/gdb", c.label());
    let t = Target {
        label: &label,
        deb: c.arch.deb,
        flavour: c.arch.flavour,
    };
    let scripts = match kscripts::kernel_scripts(k, c.series, &t) {
        Ok(s) => s,
        Err(e) => return c.skip(&format!("the kernel's scripts/gdb: {e}")),
    };
    let steps: Vec<(&str, String)> = vec![
        (
            "lx_load",
            format!("source {}", scripts.join("vmlinux-gdb.py").display()),
        ),
        ("lx_version", "lx-version".into()),
        ("lx_dmesg", "lx-dmesg".into()),
        ("lx_ps", "lx-ps".into()),
        ("lx_lsmod", "lx-lsmod".into()),
        ("lx_current", "p $lx_current().pid".into()),
        (
            "lx_per_cpu",
            format!("p {}.pid", per_cpu_current(c.arch.deb)),
        ),
    ];
    let (steps, all) = gdb_steps(dump, &k.vmlinux, &steps);
    let step = |k: &str| steps.get(k).cloned().unwrap_or_default();
    assert!(
        !step("lx_load").contains("Error") && !step("lx_load").contains("Traceback"),
        "{label}: loading vmlinux-gdb.py:\n{all}"
    );
    assert!(step("lx_version").contains(&k.release), "{label}:\n{all}");
    assert!(step("lx_dmesg").contains(&con.marker), "{label}:\n{all}");
    for p in &con.sleepers {
        assert!(
            step("lx_ps")
                .lines()
                .any(|l| l.contains(&format!(" {p} ")) && l.ends_with(" sleep")),
            "{label}: lx-ps lacks sleeper {p}:\n{all}"
        );
    }
    assert!(
        step("lx_lsmod").lines().any(|l| l.contains(" loop ")),
        "{label}: lx-lsmod lacks loop:\n{all}"
    );
    // $lx_current() reads the per-CPU `current_task`, which arm64 does
    // not have; the scripts learned arm64's SP_EL0 only after 5.10
    let cpus_py =
        std::fs::read_to_string(scripts.join("scripts/gdb/linux/cpus.py")).unwrap_or_default();
    if c.arch.deb == "arm64" && !cpus_py.contains("SP_EL0") {
        eprintln!("{label}: this version's $lx_current() has no arm64 support: not checked");
        return;
    }
    if matches!(c.arch.deb, "i386" | "armhf") {
        // The scripts' get_current_task() knows x86 by `"x86" in` GDB's
        // architecture name ("i386:x86-64") and aarch64: GDB names 32-bit
        // x86 "i386" and arm "arm", so it raises "not yet supported with
        // this arch". The scripts' own per-CPU reader gives the same
        // answer: i386 from `current_task` (what $lx_current() reads on
        // x86), arm (current in TPIDRURO, no per-CPU variable) from the
        // run queue's `curr`.
        let unsupported = "not yet supported with this arch";
        assert!(
            step("lx_current").contains(unsupported),
            "{label}: this version's $lx_current() answers on {} now: check it:\n{all}",
            c.arch.deb
        );
        eprintln!(
            "{label}: $lx_current(): {unsupported:?} (the scripts test GDB's architecture \
             name for \"x86\"/\"aarch64\"); checked {} instead",
            per_cpu_current(c.arch.deb)
        );
        assert!(
            step("lx_per_cpu").contains(&format!("= {}", con.panic_pid)),
            "{label}: $lx_per_cpu on the panicking CPU:\n{all}"
        );
        return;
    }
    assert!(
        step("lx_current").contains(&format!("= {}", con.panic_pid)),
        "{label}: $lx_current() on the panicking CPU's thread:\n{all}"
    );
}

/// The running task of the panicking CPU through the kernel scripts'
/// per-CPU reader: x86's `current_task`, else the run queue's `curr`.
fn per_cpu_current(deb: &str) -> String {
    let cpu = SMP - 1;
    match deb {
        "amd64" | "i386" => format!("$lx_per_cpu(\"current_task\", {cpu})"),
        _ => format!("$lx_per_cpu(\"runqueues\", {cpu}).curr"),
    }
}

const X86_64_612: Case = Case {
    arch: &X86_64,
    series: &S612,
    marker: "CORESTUB-612-X86-MARKER",
    paging: "5-level",
    root_from: X86_ROOT_FROM,
    fw_cfg: false,
};

#[test]
fn qemu_612_x86_64_la57_three_cpus() {
    check(&X86_64_612)
}

#[test]
fn qemu_612_arm64_lpa2_three_cpus() {
    check(&Case {
        arch: &ARM64,
        series: &S612,
        marker: "CORESTUB-612-ARM64-MARKER",
        paging: "4K pages, 52-bit VAs (LPA2)",
        root_from: &[
            "no VMCOREINFO: kernel image found at physical",
            "(linux_banner), kimage_voffset read there; 52-bit VAs (52 at run time), 4K pages; \
             linux_banner confirmed, linear map checked",
        ],
        fw_cfg: false,
    })
}

#[test]
fn qemu_612_arm64_16k_lpa2_three_cpus() {
    check(&Case {
        arch: &ARM64_16K,
        series: &S612,
        marker: "CORESTUB-612-16K-MARKER",
        paging: "16K pages, 52-bit VAs (LPA2)",
        root_from: &[
            "no VMCOREINFO: kernel image found at physical",
            "(linux_banner), kimage_voffset read there; 52-bit VAs (52 at run time), 16K pages; \
             linux_banner confirmed, linear map checked",
        ],
        fw_cfg: false,
    })
}

/// Debian's 5.10 cloud kernel is built without X86_5LEVEL: 4 levels on
/// the same la57 CPU.
#[test]
fn qemu_510_x86_64_three_cpus() {
    check(&Case {
        series: &S510,
        marker: "CORESTUB-510-X86-MARKER",
        paging: "4-level",
        ..X86_64_612
    })
}

#[test]
fn qemu_510_arm64_three_cpus() {
    check(&Case {
        arch: &ARM64,
        series: &S510,
        marker: "CORESTUB-510-ARM64-MARKER",
        paging: "4K pages, 48-bit VAs",
        root_from: &[
            "no VMCOREINFO: kernel image found at physical",
            "(linux_banner), kimage_voffset read there; 48-bit VAs",
            "linux_banner confirmed, linear map checked",
        ],
        fw_cfg: false,
    })
}

#[test]
fn qemu_7_x86_64_la57_three_cpus() {
    check(&Case {
        series: &S7,
        marker: "CORESTUB-7-X86-MARKER",
        ..X86_64_612
    })
}

#[test]
fn qemu_7_arm64_lpa2_three_cpus() {
    check(&Case {
        arch: &ARM64,
        series: &S7,
        marker: "CORESTUB-7-ARM64-MARKER",
        paging: "4K pages, 52-bit VAs (LPA2)",
        root_from: &[
            "no VMCOREINFO: kernel image found at physical",
            "(linux_banner), kimage_voffset read there; 52-bit VAs (52 at run time), 4K pages; \
             linux_banner confirmed, linear map checked",
        ],
        fw_cfg: false,
    })
}

/// i386 with PAE (Debian 12's 686-pae): no VMCOREINFO, so CR3 and IDT
/// entry 0 of a CPU find the kernel and its relocation (this kernel is
/// relocated although it prints "Kernel Offset: disabled").
#[test]
fn qemu_61_i386_pae_three_cpus() {
    check(&Case {
        arch: &I386_PAE,
        series: &S61,
        marker: "CORESTUB-61-I386-PAE-MARKER",
        paging: "i386 PAE",
        root_from: &[
            "no VMCOREINFO: CR3 of CPU",
            "IDT entry 0",
            "linux_banner confirmed",
        ],
        fw_cfg: false,
    })
}

/// The same i386 PAE kernel with qemu_fw_cfg loaded: its dumps carry
/// VMCOREINFO (`SYMBOL(swapper_pg_dir)`, `CONFIG_X86_PAE=y`, no
/// KERNELOFFSET: the relocation is `SYMBOL(_stext)` minus the vmlinux's),
/// as a kdump's would.
#[test]
fn qemu_61_i386_pae_vmcoreinfo_three_cpus() {
    check(&Case {
        arch: &I386_PAE,
        series: &S61,
        marker: "CORESTUB-61-I386-PAE-VMCOREINFO-MARKER",
        paging: "i386 PAE",
        root_from: &["Vmcoreinfo"],
        fw_cfg: true,
    })
}

/// 32-bit arm with LPAE (Debian 12's armmp-lpae on a Cortex-A15): no
/// VMCOREINFO and no TTBR in QEMU's arm notes, so swapper_pg_dir from the
/// vmlinux, PHYS_OFFSET from the first RAM, LPAE from the walk that reads
/// linux_banner.
#[test]
fn qemu_61_arm_lpae_three_cpus() {
    check(&Case {
        arch: &ARM_LPAE,
        series: &S61,
        marker: "CORESTUB-61-ARM-LPAE-MARKER",
        paging: "arm LPAE",
        root_from: &[
            "no VMCOREINFO: swapper_pg_dir at",
            "arm LPAE; linux_banner confirmed",
        ],
        fw_cfg: false,
    })
}

/// i386 without PAE (Debian 12's 686).
#[test]
fn qemu_61_i386_three_cpus() {
    check(&Case {
        arch: &I386_686,
        series: &S61,
        marker: "CORESTUB-61-I386-MARKER",
        paging: "i386 non-PAE",
        root_from: &[
            "no VMCOREINFO: CR3 of CPU",
            "IDT entry 0",
            "linux_banner confirmed",
        ],
        fw_cfg: false,
    })
}

/// 32-bit arm with short descriptors (Debian 12's armmp).
#[test]
fn qemu_61_arm_three_cpus() {
    check(&Case {
        arch: &ARM_SHORT,
        series: &S61,
        marker: "CORESTUB-61-ARM-MARKER",
        paging: "arm short-descriptor",
        root_from: &[
            "no VMCOREINFO: swapper_pg_dir at",
            "arm short-descriptor; linux_banner confirmed",
        ],
        fw_cfg: false,
    })
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
