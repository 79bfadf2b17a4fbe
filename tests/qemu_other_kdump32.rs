//! A real in-guest kdump of the 32-bit Debian kernels (6.1: i386
//! `686-pae` and `686`, armhf `armmp` and `armmp-lpae`) under QEMU TCG: the
//! kernel's own /proc/vmcore (ELF32) written by Debian's own makedumpfile
//! of the guest's architecture both as ELF (`-E -d 31`, ELF32 like
//! /proc/vmcore) and kdump-compressed (`-c -d 31`, 32-bit headers), and
//! read by corestub.
//!
//! The guest (3 CPUs, `crashkernel=192M` of 768 MiB) boots a busybox
//! /init that loads the capture kernel with `kexec -p` (the same vmlinuz;
//! its initramfs is in the first one's), then does what
//! `qemu_other_kernel`'s /init does: loop.ko, two sleepers, a marker in
//! the kernel log, a sysrq crash on the last CPU. The capture kernel
//! (`nr_cpus=1`) finds /proc/vmcore, prints its ELF class, runs
//! makedumpfile twice into its RAM, loads virtio-blk (a module in Debian's
//! 32-bit kernels, as every block driver and file system: the dumps go out
//! as a plain tar on the raw disk) and powers off. kexec-tools,
//! makedumpfile and the packages they depend on are the guest
//! architecture's own from the machine's Debian suite (a private apt
//! configuration, as the kernels'); the virtio modules come from the
//! kernel's image package.
//!
//! makedumpfile 1.7.2 cannot read the LPAE kernel ("check_release: Can't
//! get the kernel version."): asserted as a finding, and that guest's
//! capture kernel also copies /proc/vmcore as it is (`dd`, ELF32) past
//! the tar, which gets the checks instead.
//!
//! Checked against the first kernel's console (marker, sleepers, panic
//! CPU and PID), on each dump: the ELF's class and machine, `corestub
//! info` (format, paging, dump level 31, VMCOREINFO, 3 CPUs, the panic CPU
//! and task, the release), GDB `info threads` (the panic CPU `[panic]`, a
//! thread per sleeper), `bt` of the panic CPU reaching
//! `sysrq_handle_crash`, `dmesg` with the marker, `ps` with the sleepers;
//! and `ps` (every task, its address, state and memory) is the same in
//! the ELF and the kdump-compressed file of one crash.
//! `modsyms` with the debug loop.ko on the first dump: `info address` of
//! lo_release (.text) and loop_exit (.exit.text) is what the guest read
//! in /proc/kallsyms (logged before the crash), and `lsmod`'s base is
//! /proc/modules' address.
//!
//! Cache: `…/NAME-6.1/RELEASE/guest-kdump/` (console.log, the dumps,
//! makedumpfile's logs and exit codes), `…/RELEASE/kdump-modules/` (the
//! virtio modules) and `…/kdump-userland-DEB-SUITE/` (the unpacked user
//! space packages). Cold: one guest run (45-80 s under TCG) after the
//! downloads (about 60 MB, most of it the kernel image package for its
//! virtio modules). Cold and warm times are in the README.
//!
//! Missing tools (qemu-system-i386 or qemu-system-arm, gdb, apt-get,
//! dpkg-deb, tar) or packages: SKIP, or failure under
//! CORESTUB_REQUIRE_FIXTURES=1.

mod common;
// shared with qemu_other_kernel, which uses all of it
#[allow(dead_code)]
mod other_kernels;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use common::guest::{INIT_PREAMBLE, TempDir, cmd_ok, have, initramfs_with};
use other_kernels::boot::{Console, SMP, init_script};
use other_kernels::fetch::{self, Kernel, S61, Target, remove_stale};
use other_kernels::kdump::{self, KdumpCase, tree_file, tree_libraries, unpacked_packages};

const TEST: &str = "qemu_other_kdump32";
const GUEST: &str = "guest-kdump";

static ONE_GUEST: Mutex<()> = Mutex::new(());

/// The guest's user space: kexec-tools, makedumpfile and the libraries
/// they load (their dependencies, see `kdump::unpacked_packages`).
const USERLAND: &[&str] = &["kexec-tools", "makedumpfile"];

/// loop.ko's functions whose addresses the guest logs from /proc/kallsyms
/// (.text and .exit.text), for `modsyms` on the dumps.
const MODULE_FUNCTIONS: &[&str] = &["lo_release", "loop_exit"];

const KEXEC: &str = "sbin/kexec";
const MAKEDUMPFILE: &str = "usr/bin/makedumpfile";

/// A 32-bit guest.
struct Arch {
    /// The cache's `NAME-6.1/` (`qemu_other_kernel`'s) and the label.
    name: &'static str,
    /// Debian's architecture.
    deb: &'static str,
    flavour: &'static str,
    /// ELF e_machine of its dumps.
    elf_machine: u16,
    /// `corestub info`'s PAGING.
    paging: &'static str,
    qemu: &'static str,
    qemu_package: &'static str,
    /// Everything but what all guests share (-smp, serial, kernel,
    /// initrd, append, the disk).
    qemu_args: &'static [&'static str],
    console: &'static str,
    /// The first kernel's `crashkernel=`.
    crashkernel: &'static str,
    /// `kexec -p` options beyond the kernel, initrd and command line.
    kexec_args: &'static str,
    /// QEMU's virtio-blk device on this machine.
    disk_device: &'static str,
    /// The modules the capture kernel loads for the disk, in load order,
    /// under `lib/modules/RELEASE/kernel/`; those the image package lacks
    /// are built in.
    disk_modules: &'static [&'static str],
    /// The dynamic loader of the user space (made executable in /init).
    loader: &'static str,
    /// What bookworm's makedumpfile (1.7.2) does with this kernel's
    /// /proc/vmcore.
    makedumpfile: Makedumpfile,
}

/// What makedumpfile 1.7.2 does with a 32-bit kernel's /proc/vmcore.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Makedumpfile {
    /// Writes both dumps (`-E`, `-c`): every check on both.
    Works,
    /// Fails: "check_release: Can't get the kernel version." (armhf
    /// LPAE: its arm support walks the kernel's tables as short
    /// descriptors). The capture kernel then also copies /proc/vmcore
    /// itself (ELF32, unfiltered) onto the disk, which gets every check.
    CannotReadLpae,
}

/// Where on the disk the capture kernel copies /proc/vmcore when
/// makedumpfile cannot: past the tar of logs.
const RAW_AT_MIB: u64 = 64;

const I386_PAE: Arch = Arch {
    name: "i386",
    deb: "i386",
    flavour: "686-pae",
    elf_machine: 3,
    paging: "i386 PAE",
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
        "768",
    ],
    console: "ttyS0",
    crashkernel: "192M",
    kexec_args: "--elf32-core-headers",
    disk_device: "virtio-blk-pci",
    disk_modules: &[
        "drivers/virtio/virtio.ko",
        "drivers/virtio/virtio_ring.ko",
        "drivers/virtio/virtio_pci_modern_dev.ko",
        "drivers/virtio/virtio_pci_legacy_dev.ko",
        "drivers/virtio/virtio_pci.ko",
        "drivers/block/virtio_blk.ko",
    ],
    loader: "lib/ld-linux.so.2",
    makedumpfile: Makedumpfile::Works,
};

/// Debian's i386 kernel for CPUs without PAE: 2-level paging.
const I386_686: Arch = Arch {
    name: "i386-686",
    flavour: "686",
    paging: "i386 non-PAE",
    qemu_args: &[
        "-accel", "tcg", "-cpu", "qemu32", "-machine", "pc", "-m", "768",
    ],
    ..I386_PAE
};

/// armhf's LPAE kernel on QEMU's virt board (as `qemu_other_kernel`'s):
/// the disk is virtio-mmio.
const ARM_LPAE: Arch = Arch {
    name: "arm-lpae",
    deb: "armhf",
    flavour: "armmp-lpae",
    elf_machine: 40,
    paging: "arm LPAE",
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
        "768",
    ],
    console: "ttyAMA0",
    crashkernel: "192M",
    // kexec-tools 2.0.25 puts the initrd right after its estimate of the
    // kernel's space (0x1afb2c8 here: decompressed 0x1605288 + the
    // zImage), which the decompressor, relocating itself past the
    // decompressed image, overwrote: "Initramfs unpacking failed: invalid
    // magic at start of compressed archive". 64 MiB of the 192 leaves room.
    kexec_args: "--image-size=0x4000000",
    disk_device: "virtio-blk-device",
    disk_modules: &[
        "drivers/virtio/virtio.ko",
        "drivers/virtio/virtio_ring.ko",
        "drivers/virtio/virtio_mmio.ko",
        "drivers/block/virtio_blk.ko",
    ],
    loader: "lib/ld-linux-armhf.so.3",
    makedumpfile: Makedumpfile::CannotReadLpae,
};

/// armhf's kernel without LPAE (short descriptors), on the same board.
const ARM_SHORT: Arch = Arch {
    name: "arm",
    flavour: "armmp",
    paging: "arm short-descriptor",
    makedumpfile: Makedumpfile::Works,
    ..ARM_LPAE
};

struct Case {
    arch: &'static Arch,
    marker: &'static str,
}

impl KdumpCase for Case {
    fn label(&self) -> String {
        format!("{TEST} {} 6.1", self.arch.name)
    }
    fn kernel(&self) -> Option<Kernel> {
        kernel(self)
    }
    fn guest_kdump(&self, k: &Kernel) -> Option<PathBuf> {
        guest_kdump(self, k)
    }
}

fn kernel(c: &Case) -> Option<Kernel> {
    let cache = corestub::fixtures::root().join(format!("{}-{}", c.arch.name, S61.name));
    if let Some(k) = fetch::cached_kernel(&cache, &S61, c.arch.flavour) {
        return Some(k);
    }
    let label = c.label();
    let t = Target {
        label: &label,
        deb: c.arch.deb,
        flavour: c.arch.flavour,
    };
    fetch::fetch_kernel(&cache, &S61, &t)
        .map_err(|e| c.skip(&format!("cannot fetch the kernel: {e}")))
        .ok()
}

/// The module's file name without `.ko`: what /init insmods.
fn module_name(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.strip_suffix(".ko").unwrap_or(file)
}

/// /init of both kernels: the capture kernel (it has /proc/vmcore) writes
/// both dumps and the logs as a tar onto the raw disk and powers off; the
/// first loads it and crashes.
fn guest_init(a: &Arch, marker: &str) -> String {
    let first = init_script(marker, 4096, false);
    let first = first.strip_prefix(INIT_PREAMBLE).expect("boot's preamble");
    // the guest's truth for modsyms, once loop.ko is in: where its
    // functions are (/proc/kallsyms) and its base (/proc/modules)
    let marker_line = "echo \"INIT-MARKER";
    assert!(first.contains(marker_line), "boot's /init logs its marker");
    let first = first.replacen(
        marker_line,
        &format!(
            "grep -w -E '{}' /proc/kallsyms | while read a t n m; do echo \"INIT-KALLSYMS $n $a $m\" > /dev/kmsg; done
echo \"INIT-PROC-MODULES $(grep '^loop ' /proc/modules)\" > /dev/kmsg
{marker_line}",
            MODULE_FUNCTIONS.join("|")
        ),
        1,
    );
    let modules: Vec<&str> = a.disk_modules.iter().map(|m| module_name(m)).collect();
    format!(
        "{INIT_PREAMBLE}chmod 755 /{KEXEC} /{MAKEDUMPFILE} /{loader} 2>/dev/null
if [ -e /proc/vmcore ]; then
echo \"KDUMP-CAPTURE vmcore-ident $(head -c 5 /proc/vmcore | od -An -tx1)\"
mkdir -p /dump
# rootfs may fill only half the RAM: both dumps need more (i386: 45-54 MB + 12-21 MB)
mount -t tmpfs -o size=90% tmpfs /dump
/{MAKEDUMPFILE} -c -d 31 /proc/vmcore /dump/vmcore.kdump > /dump/makedumpfile-c.log 2>&1
echo $? > /dump/rc-c
/{MAKEDUMPFILE} -E -d 31 /proc/vmcore /dump/vmcore.elf > /dump/makedumpfile-E.log 2>&1
echo $? > /dump/rc-E
echo \"KDUMP-CAPTURE rc-c=$(cat /dump/rc-c) rc-E=$(cat /dump/rc-E)\"
for m in {modules}; do [ ! -e /mod/$m.ko ] || insmod /mod/$m.ko || echo \"KDUMP-CAPTURE insmod $m failed\"; done
i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
tar cf /dev/vda -C /dump . && echo KDUMP-CAPTURE written
{raw}sync
poweroff -f
fi
/{KEXEC} -p /vmlinuz --initrd=/capture.gz {kexec_args} --append=\"console={console} irqpoll nr_cpus=1 reset_devices panic=-1\"
echo \"KDUMP-LOADED rc=$? $(cat /sys/kernel/kexec_crash_loaded)\" > /dev/kmsg
{first}",
        loader = a.loader,
        modules = modules.join(" "),
        raw = if a.makedumpfile == Makedumpfile::Works {
            String::new()
        } else {
            format!(
                "dd if=/proc/vmcore of=/dev/vda bs=1M seek={RAW_AT_MIB} 2>/dev/null && echo KDUMP-CAPTURE copied\n"
            )
        },
        kexec_args = a.kexec_args,
        console = a.console,
    )
}

/// The user space (cached, unpacked) and the kernel's disk modules
/// (cached beside the kernel). Err: why not.
fn guest_pieces(c: &Case, k: &Kernel) -> Result<(PathBuf, PathBuf), String> {
    let a = c.arch;
    let suite = common::guest::host_suite()?;
    let userland = corestub::fixtures::root().join(format!("kdump-userland-{}-{suite}", a.deb));
    unpacked_packages(&userland, &suite, a.deb, USERLAND, &[])?;
    let modules = k.dir.join("kdump-modules");
    let members: Vec<String> = a
        .disk_modules
        .iter()
        .map(|m| format!("./lib/modules/{}/kernel/{m}", k.release))
        .collect();
    let image = format!("linux-image-{}", k.release);
    unpacked_packages(&modules, S61.suite, a.deb, &[&image], &members)?;
    Ok((userland, modules))
}

/// The capture kernel's initramfs files (makedumpfile, its libraries, the
/// disk modules) and the first kernel's additions (kexec, the capture
/// kernel and its initramfs, loop.ko).
fn initramfs_files(
    c: &Case,
    k: &Kernel,
    userland: &Path,
    modules: &Path,
    bb: &[u8],
    init: &str,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut files = tree_libraries(userland)?;
    files.push((MAKEDUMPFILE.into(), tree_file(userland, MAKEDUMPFILE)?));
    for m in c.arch.disk_modules {
        let rel = format!("lib/modules/{}/kernel/{m}", k.release);
        // not in the image package: built in (armmp's virtio core)
        if modules.join(&rel).is_file() {
            files.push((
                format!("mod/{}.ko", module_name(m)),
                tree_file(modules, &rel)?,
            ));
        }
    }
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, b)| (p.as_str(), &b[..])).collect();
    let capture = initramfs_with(bb, init, &refs);
    files.push((KEXEC.into(), tree_file(userland, KEXEC)?));
    files.push(("capture.gz".into(), capture));
    files.push((
        "vmlinuz".into(),
        std::fs::read(&k.vmlinuz).map_err(|e| e.to_string())?,
    ));
    files.push((
        "loop.ko".into(),
        std::fs::read(&k.loop_ko).map_err(|e| e.to_string())?,
    ));
    Ok(files)
}

/// `…/RELEASE/guest-kdump/`, cached, else made by one guest run.
fn guest_kdump(c: &Case, k: &Kernel) -> Option<PathBuf> {
    let label = c.label();
    let a = c.arch;
    let done = k.dir.join(GUEST);
    if done.join("console.log").is_file() {
        return Some(done);
    }
    if !have(a.qemu, "--version") {
        c.skip(&format!(
            "{} is missing (apt-get install {})",
            a.qemu, a.qemu_package
        ));
        return None;
    }
    let suite = common::guest::host_suite().map_err(|e| c.skip(&e)).ok()?;
    let bb_cache = corestub::fixtures::root()
        .join(format!("{}-6.12", a.name))
        .join(format!("busybox-{suite}"));
    let pieces = fetch::guest_busybox(false, &bb_cache, a.deb, &suite, a.elf_machine)
        .and_then(|bb| Ok((bb, guest_pieces(c, k)?)));
    let (bb, (userland, modules)) = pieces.map_err(|e| c.skip(&e)).ok()?;
    remove_stale(&k.dir, "kdump.tmp-");
    let dir = k.dir.join(format!("kdump.tmp-{}", std::process::id()));
    let _tmp = TempDir(dir.clone());
    std::fs::create_dir_all(&dir).unwrap();
    let marker = common::guest::marker(c.marker);
    let init = guest_init(a, &marker);
    let files = initramfs_files(c, k, &userland, &modules, &bb, &init)
        .map_err(|e| c.skip(&e))
        .ok()?;
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, b)| (p.as_str(), &b[..])).collect();
    let initrd = dir.join("initrd.gz");
    std::fs::write(&initrd, initramfs_with(&bb, &init, &refs)).unwrap();
    // the dumps come back as a tar on the raw disk (sparse: zeros the
    // guest writes stay holes), /proc/vmcore copied past it if need be
    let disk = dir.join("disk.img");
    std::fs::File::create(&disk)
        .and_then(|f| f.set_len(1 << 30))
        .unwrap();
    let console = dir.join("console.log");
    let mut qemu = Command::new(a.qemu);
    qemu.args(a.qemu_args)
        .args(["-smp", &SMP.to_string()])
        .arg("-kernel")
        .arg(&k.vmlinuz)
        .arg("-initrd")
        .arg(&initrd)
        .arg("-append")
        .arg(format!(
            "console={} crashkernel={} panic=0",
            a.console, a.crashkernel
        ))
        .arg("-drive")
        .arg(format!(
            "file={},if=none,id=dumps,format=raw,cache=unsafe,discard=unmap,detect-zeroes=unmap",
            disk.display()
        ))
        .args(["-device", &format!("{},drive=dumps", a.disk_device)]);
    let text = kdump::run_guest(&label, &mut qemu, &console, "KDUMP-CAPTURE written");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    cmd_ok(
        Command::new("tar")
            .arg("-x")
            .arg("-C")
            .arg(&out)
            .arg("-f")
            .arg(&disk),
        "tar -x of the disk",
    )
    .unwrap_or_else(|e| panic!("{label}: {e}; console:\n{text}"));
    if a.makedumpfile != Makedumpfile::Works {
        assert!(
            text.contains("KDUMP-CAPTURE copied"),
            "{label}: the capture kernel did not copy /proc/vmcore; console:\n{text}"
        );
        copy_raw_vmcore(&disk, &out.join(RAW_VMCORE))
            .unwrap_or_else(|e| panic!("{label}: {e}; console:\n{text}"));
    }
    std::fs::rename(&console, out.join("console.log")).unwrap();
    for f in ["vmcore.elf", "vmcore.kdump", RAW_VMCORE] {
        // makedumpfile writes 0600; the shared cache is read by every run
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(out.join(f), std::fs::Permissions::from_mode(0o644));
    }
    kdump::keep(&out, &done);
    Some(done)
}

fn check(c: &Case) {
    let label = c.label();
    let t0 = Instant::now();
    let Some((_one, k, g)) = kdump::ready(&ONE_GUEST, c) else {
        return;
    };
    let text = std::fs::read_to_string(g.join("console.log")).unwrap();
    let con = Console::parse(&text, false);
    assert_eq!(
        con.panic_cpu,
        SMP - 1,
        "taskset put the crash on the last CPU"
    );
    // the kernel's /proc/vmcore: ELF, class 1 (ELFCLASS32)
    let ident: Vec<&str> = text
        .lines()
        .find_map(|l| l.split_once("KDUMP-CAPTURE vmcore-ident"))
        .map(|(_, b)| b.split_whitespace().collect())
        .unwrap_or_default();
    assert_eq!(
        ident,
        ["7f", "45", "4c", "46", "01"],
        "{label}: /proc/vmcore is not ELF32; console:\n{text}"
    );
    let dumps: &[(&str, Option<&str>)] = match c.arch.makedumpfile {
        Makedumpfile::Works => &[("vmcore.elf", Some("E")), ("vmcore.kdump", Some("c"))],
        Makedumpfile::CannotReadLpae => {
            for flag in ["E", "c"] {
                let rc = std::fs::read_to_string(g.join(format!("rc-{flag}"))).unwrap_or_default();
                let log = std::fs::read_to_string(g.join(format!("makedumpfile-{flag}.log")))
                    .unwrap_or_default();
                assert!(
                    rc.trim() != "0" && log.contains("Can't get the kernel version"),
                    "{label}: makedumpfile -{flag} reads this kernel now? rc {rc:?}, log:\n{log}"
                );
            }
            eprintln!(
                "{label}: FINDING: makedumpfile 1.7.2 cannot read this LPAE kernel (\"check_release: Can't get the kernel version.\"); /proc/vmcore copied as it is"
            );
            &[(RAW_VMCORE, None)]
        }
    };
    let mut ps = Vec::new();
    for &(name, flag) in dumps {
        let t = Instant::now();
        let dump = g.join(name);
        if let Some(flag) = flag {
            let rc = std::fs::read_to_string(g.join(format!("rc-{flag}"))).unwrap_or_default();
            let log = std::fs::read_to_string(g.join(format!("makedumpfile-{flag}.log")))
                .unwrap_or_default();
            assert!(
                rc.trim() == "0" && dump.is_file(),
                "{label}: makedumpfile -{flag} rc {rc:?}, log:\n{log}"
            );
            if log.contains("The kernel version is not supported") {
                eprintln!(
                    "{label}: makedumpfile -{flag}: \"The kernel version is not supported\" (1.7.2 and 6.1)"
                );
            }
        }
        let dl = format!("{label} {name}");
        let info = kdump::check_info(&dl, &k.vmlinux, &k.release, &con, &dump);
        let (format, elf) = if name.ends_with(".elf") {
            ("ELF vmcore", true)
        } else {
            ("kdump-compressed", false)
        };
        assert!(
            info["format"]
                .as_str()
                .is_some_and(|f| f.starts_with(format)),
            "{dl}: {info:#}"
        );
        assert_eq!(info["paging"], c.arch.paging, "{dl}: {info:#}");
        assert_eq!(info["kernel_root_from"], "Vmcoreinfo", "{dl}: {info:#}");
        if elf {
            check_elf32(&dl, &dump, c.arch.elf_machine);
        } else {
            assert_eq!(info["dump_level"], 31, "{dl}: {info:#}");
        }
        ps.push(kdump::check_gdb(&dl, &k.vmlinux, &con, &dump, false));
        eprintln!("{dl}: checked in {:.1?}", t.elapsed());
    }
    if let [elf, kdump] = &ps[..] {
        same_ps(&label, elf, kdump);
    }
    check_modsyms(&label, &k, &text, &g.join(dumps[0].0));
    eprintln!("{label}: total {:.1?}", t0.elapsed());
}

/// /proc/vmcore as the capture kernel copied it (with `dd`).
const RAW_VMCORE: &str = "vmcore-raw.elf";

/// The ELF32 file the capture kernel copied `RAW_AT_MIB` into the disk,
/// as far as its headers and segments reach, to `to`: sparse, its zero
/// MiBs left as holes.
fn copy_raw_vmcore(disk: &Path, to: &Path) -> Result<(), String> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut d = std::fs::File::open(disk).map_err(|e| e.to_string())?;
    let at = RAW_AT_MIB << 20;
    let mut head = [0u8; 52];
    d.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
    d.read_exact(&mut head).map_err(|e| e.to_string())?;
    if !head.starts_with(b"\x7fELF") || head[4] != 1 || head[5] != 1 {
        return Err(format!(
            "no little-endian ELF32 at {at:#x} of the disk: {:02x?}",
            &head[..8]
        ));
    }
    let u16_at = |o: usize| u64::from(u16::from_le_bytes([head[o], head[o + 1]]));
    let u32_at =
        |b: &[u8], o: usize| u64::from(u32::from_le_bytes(b[o..o + 4].try_into().unwrap()));
    let (phoff, phentsize, phnum) = (u32_at(&head, 28), u16_at(42), u16_at(44));
    let mut phdrs = vec![0u8; (phentsize * phnum) as usize];
    d.seek(SeekFrom::Start(at + phoff))
        .map_err(|e| e.to_string())?;
    d.read_exact(&mut phdrs).map_err(|e| e.to_string())?;
    let end = phdrs
        .chunks(phentsize as usize)
        .map(|p| u32_at(p, 4) + u32_at(p, 16)) // p_offset + p_filesz
        .fold(phoff + phentsize * phnum, u64::max);
    let mut out = std::fs::File::create(to).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 1 << 20];
    d.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
    let mut done = 0;
    while done < end {
        let n = buf.len().min((end - done) as usize);
        d.read_exact(&mut buf[..n]).map_err(|e| e.to_string())?;
        if buf[..n].iter().all(|&b| b == 0) {
            out.seek(SeekFrom::Current(n as i64))
                .map_err(|e| e.to_string())?;
        } else {
            out.write_all(&buf[..n]).map_err(|e| e.to_string())?;
        }
        done += n as u64;
    }
    out.set_len(end).map_err(|e| e.to_string())
}

/// The ELF dump's class (1: ELFCLASS32, as /proc/vmcore) and machine.
fn check_elf32(label: &str, dump: &Path, machine: u16) {
    let mut head = [0u8; 20];
    use std::io::Read;
    std::fs::File::open(dump)
        .and_then(|mut f| f.read_exact(&mut head))
        .unwrap();
    assert!(
        head.starts_with(b"\x7fELF") && head[4] == 1,
        "{label}: not ELF32: {head:02x?}"
    );
    assert_eq!(
        u16::from_le_bytes([head[18], head[19]]),
        machine,
        "{label}: e_machine"
    );
}

/// `modsyms` with the debug loop.ko on `dump`: GDB's address of each of
/// [`MODULE_FUNCTIONS`] is the one the guest read in /proc/kallsyms, and
/// `lsmod`'s BASE is /proc/modules' address.
fn check_modsyms(label: &str, k: &Kernel, console: &str, dump: &Path) {
    let logged = |key: &str| -> Vec<Vec<String>> {
        console
            .lines()
            .filter_map(|l| l.split_once(key))
            .map(|(_, rest)| rest.split_whitespace().map(str::to_string).collect())
            .collect()
    };
    let kallsyms = logged("INIT-KALLSYMS ");
    let modsyms = format!("modsyms \"{}\"", k.modules.display());
    let mut steps: Vec<(&str, String)> = vec![("lsmod", "lsmod".into()), ("modsyms", modsyms)];
    for f in MODULE_FUNCTIONS {
        steps.push((f, format!("info address {f}")));
    }
    let refs: Vec<(&str, &str)> = steps.iter().map(|(l, c)| (*l, c.as_str())).collect();
    let (out, all) = common::gdb_steps(dump, &k.vmlinux, &refs);
    for f in MODULE_FUNCTIONS {
        // `lo_release ffffe07f94c0 [loop]`: the guest's line, `NAME ADDR [MODULE]`
        let want = kallsyms
            .iter()
            .find(|w| {
                w.first().map(String::as_str) == Some(*f)
                    && w.get(2).map(String::as_str) == Some("[loop]")
            })
            .and_then(|w| u64::from_str_radix(&w[1], 16).ok())
            .unwrap_or_else(|| panic!("{label}: no INIT-KALLSYMS {f} … [loop] on the console"));
        let said = out.get(*f).cloned().unwrap_or_default();
        assert!(
            said.contains(&format!("is a function at address {want:#x}.")),
            "{label}: `info address {f}` after modsyms vs the guest's /proc/kallsyms {want:#x}:\n{all}"
        );
    }
    let base = logged("INIT-PROC-MODULES ")
        .first()
        .and_then(|w| w.iter().find(|t| t.starts_with("0x")).cloned())
        .and_then(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok())
        .unwrap_or_else(|| panic!("{label}: no INIT-PROC-MODULES loop … 0xADDR on the console"));
    let lsmod_base = out.get("lsmod").and_then(|t| {
        t.lines()
            .find(|l| l.split_whitespace().nth(1) == Some("loop"))
            .and_then(|l| u64::from_str_radix(l.split_whitespace().nth(2)?, 16).ok())
    });
    assert_eq!(
        lsmod_base,
        Some(base),
        "{label}: lsmod's BASE vs /proc/modules:\n{all}"
    );
    eprintln!(
        "{label}: modsyms: {} at the guest's /proc/kallsyms addresses, lsmod's base {base:#x} = /proc/modules'",
        MODULE_FUNCTIONS.join(", ")
    );
}

/// `ps` of every task is the same in the ELF and the kdump-compressed
/// file of one crash.
fn same_ps(label: &str, elf: &BTreeMap<String, String>, kdump: &BTreeMap<String, String>) {
    let rows = |s: &BTreeMap<String, String>| -> Vec<String> {
        s.get("ps_all")
            .map(|t| t.lines().map(|l| l.trim_end().to_string()).collect())
            .unwrap_or_default()
    };
    let (e, k) = (rows(elf), rows(kdump));
    assert!(
        e.len() > 10 && e == k,
        "{label}: ps differs between the ELF and the kdump-compressed dump:\n{}\n---\n{}",
        e.join("\n"),
        k.join("\n")
    );
    eprintln!("{label}: ps: the same {} lines in both dumps", e.len());
}

#[test]
fn kdump_61_i386_pae() {
    check(&Case {
        arch: &I386_PAE,
        marker: "CORESTUB-KDUMP32-61-I386-PAE",
    })
}

#[test]
fn kdump_61_i386() {
    check(&Case {
        arch: &I386_686,
        marker: "CORESTUB-KDUMP32-61-I386",
    })
}

#[test]
fn kdump_61_arm_lpae() {
    check(&Case {
        arch: &ARM_LPAE,
        marker: "CORESTUB-KDUMP32-61-ARM-LPAE",
    })
}

#[test]
fn kdump_61_arm() {
    check(&Case {
        arch: &ARM_SHORT,
        marker: "CORESTUB-KDUMP32-61-ARM",
    })
}
