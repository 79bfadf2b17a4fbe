//! A real in-guest kdump of the other Debian kernels `qemu_other_kernel`
//! boots (5.10, 6.12, 7.x; x86_64), written by the host's makedumpfile
//! (Debian's kexec-tools and makedumpfile, with their `ldd` libraries in
//! the initramfs) and read by corestub.
//!
//! The guest (3 CPUs, QEMU TCG, `crashkernel=256M`) boots its busybox
//! /init, which loads the capture kernel with `kexec -p` (the same vmlinuz
//! and initrd, from an ext4 disk made with `mke2fs -d`), then does what
//! `qemu_other_kernel`'s /init does: loop.ko, two sleepers, a marker in
//! the kernel log, a sysrq crash on the last CPU. The capture kernel
//! (`nr_cpus=1`) finds /proc/vmcore, runs `makedumpfile -c -d 31
//! /proc/vmcore` onto the same disk and powers off; the dump comes back
//! with `debugfs -R dump`. The disk is NVMe, built into Debian's cloud
//! kernels (virtio-blk is a module there, and 5.10's virtio core too).
//!
//! Checked against the first kernel's console (marker, sleepers, panic
//! CPU and PID): `corestub info` (kdump-compressed, dump level 31, 3 CPUs,
//! the panic CPU and task), GDB `info threads` (the panic CPU `[panic]`),
//! `bt` of the panic CPU reaching `sysrq_handle_crash`, `dmesg` with the
//! marker, `ps` with the sleepers.
//!
//! makedumpfile is bookworm's 1.7.2. It writes all three dumps, but for
//! 6.12 and 7.x ("The kernel version is not supported") its `-d 31`
//! filter drops pages in use (the first page of each slab, which carries
//! 6.12's new page-type encoding, `PGTY_slab` 0xf5000000): task_structs on
//! them are lost from the task list (which ones varies by boot), and
//! corestub names the excluded page. That
//! is a finding about makedumpfile, printed and asserted per kernel
//! (`Case::makedumpfile`), never a silent skip. Cache: `…/x86_64-SERIES/RELEASE/guest-kdump/`
//! (console.log, makedumpfile.log, `rc`, vmcore.kdump when written). Cold
//! and warm times are in the README's table of tested kernels.
//!
//! Missing tools (qemu-system-x86_64, busybox-static, kexec, makedumpfile,
//! mke2fs, debugfs, gdb) or a kernel that cannot be fetched: SKIP, or
//! failure under CORESTUB_REQUIRE_FIXTURES=1.

mod common;
// shared with qemu_other_kernel, which uses all of it
#[allow(dead_code)]
mod other_kernels;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use common::guest::{
    INIT_PREAMBLE, TempDir, cmd_ok, ext4_image, have, initramfs_with, with_libraries,
};
use other_kernels::boot::{Console, SMP, init_script};
use other_kernels::fetch::{self, Kernel, S7, S510, S612, Series, Target, remove_stale};
use other_kernels::kdump::{self, KdumpCase};

const TEST: &str = "qemu_other_kdump";
const GUEST: &str = "guest-kdump";
const KEXEC: &str = "/usr/sbin/kexec";
const MAKEDUMPFILE: &str = "/usr/bin/makedumpfile";
const CAPTURE_CMDLINE: &str = "console=ttyS0 irqpoll nr_cpus=1 reset_devices panic=-1";

static ONE_GUEST: Mutex<()> = Mutex::new(());

/// What makedumpfile 1.7.2 does with a kernel.
#[derive(Debug, PartialEq)]
enum Makedumpfile {
    /// Writes a whole dump: every check, the sleepers included.
    Works,
    /// Writes a dump (after "The kernel version is not supported") whose
    /// `-d 31` filter dropped pages in use: task_structs in the task list
    /// and stacks. corestub must say so (an excluded page, by its dump
    /// level) and still read the panic CPU, its bt and the log; the
    /// sleepers are not asserted.
    DropsPagesInUse,
}

struct Case {
    series: &'static Series,
    marker: &'static str,
    makedumpfile: Makedumpfile,
}

impl KdumpCase for Case {
    fn label(&self) -> String {
        format!("{TEST} x86_64 {}", self.series.name)
    }
    fn kernel(&self) -> Option<Kernel> {
        kernel(self)
    }
    fn guest_kdump(&self, k: &Kernel) -> Option<PathBuf> {
        guest_kdump(self, k)
    }
}

fn kernel(c: &Case) -> Option<Kernel> {
    let cache = corestub::fixtures::root().join(format!("x86_64-{}", c.series.name));
    if let Some(k) = fetch::cached_kernel(&cache, c.series, "cloud-amd64") {
        return Some(k);
    }
    let label = c.label();
    let t = Target {
        label: &label,
        deb: "amd64",
        flavour: "cloud-amd64",
    };
    fetch::fetch_kernel(&cache, c.series, &t)
        .map_err(|e| c.skip(&format!("cannot fetch the kernel: {e}")))
        .ok()
}

/// /init of both kernels: the capture kernel (it has /proc/vmcore) writes
/// the dump and powers off; the first loads it and crashes.
fn guest_init(marker: &str) -> String {
    let first = init_script(marker, 4096, false);
    let first = first.strip_prefix(INIT_PREAMBLE).expect("boot's preamble");
    format!(
        "{INIT_PREAMBLE}chmod 755 /usr/sbin/kexec /usr/bin/makedumpfile /lib64/*
mkdir -p /mnt
i=0; while [ ! -b /dev/nvme0n1 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
if [ -e /proc/vmcore ]; then
mount -t ext4 /dev/nvme0n1 /mnt || echo KDUMP-CAPTURE mount failed
/usr/bin/makedumpfile -c -d 31 /proc/vmcore /mnt/vmcore.kdump > /mnt/makedumpfile.log 2>&1
echo $? > /mnt/rc
echo \"KDUMP-CAPTURE rc=$(cat /mnt/rc)\"
sync; umount /mnt; sync
poweroff -f
fi
mount -t ext4 -o ro /dev/nvme0n1 /mnt || echo KDUMP-FAIL mount
/usr/sbin/kexec -p /mnt/vmlinuz --initrd=/mnt/initrd.gz --append=\"{CAPTURE_CMDLINE}\"
echo \"KDUMP-LOADED rc=$? $(cat /sys/kernel/kexec_crash_loaded)\" > /dev/kmsg
umount /mnt
{first}"
    )
}

/// `…/RELEASE/guest-kdump/`, cached, else made by one guest run.
fn guest_kdump(c: &Case, k: &Kernel) -> Option<PathBuf> {
    let label = c.label();
    let done = k.dir.join(GUEST);
    if done.join("rc").is_file() {
        return Some(done);
    }
    for (tool, why) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        (KEXEC, "kexec-tools"),
        (MAKEDUMPFILE, "makedumpfile"),
        ("mke2fs", "e2fsprogs"),
        ("debugfs", "e2fsprogs"),
    ] {
        if !have(tool, "-V") && !have(tool, "--version") && !Path::new(tool).is_file() {
            c.skip(&format!("{tool} is missing (apt-get install {why})"));
            return None;
        }
    }
    let Some(bb) = common::guest::busybox() else {
        c.skip("no static /bin/busybox (apt-get install busybox-static)");
        return None;
    };
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for bin in [KEXEC, MAKEDUMPFILE] {
        match with_libraries(Path::new(bin)) {
            Ok(f) => {
                for x in f {
                    if !files.iter().any(|(p, _)| *p == x.0) {
                        files.push(x);
                    }
                }
            }
            Err(e) => {
                c.skip(&e);
                return None;
            }
        }
    }
    files.push(("loop.ko".into(), std::fs::read(&k.loop_ko).unwrap()));
    remove_stale(&k.dir, "kdump.tmp-");
    let dir = k.dir.join(format!("kdump.tmp-{}", std::process::id()));
    let _tmp = TempDir(dir.clone());
    let stage = dir.join("disk");
    std::fs::create_dir_all(&stage).unwrap();
    let marker = common::guest::marker(c.marker);
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, b)| (p.as_str(), &b[..])).collect();
    let initrd = initramfs_with(&bb, &guest_init(&marker), &refs);
    std::fs::write(stage.join("initrd.gz"), &initrd).unwrap();
    std::fs::copy(&k.vmlinuz, stage.join("vmlinuz")).unwrap();
    let disk = dir.join("disk.img");
    ext4_image(&stage, &disk, 512).unwrap();
    let console = dir.join("console.log");
    let mut qemu = Command::new("qemu-system-x86_64");
    qemu
        // as qemu_other_kernel's x86_64 guests (-cx16: see there)
        .args([
            "-accel",
            "tcg",
            "-cpu",
            "qemu64,+la57,-cx16",
            "-machine",
            "pc",
        ])
        .args(["-m", "768", "-smp", &SMP.to_string()])
        .arg("-kernel")
        .arg(&k.vmlinuz)
        .arg("-initrd")
        .arg(stage.join("initrd.gz"))
        .args(["-append", "console=ttyS0 crashkernel=256M panic=0"])
        .arg("-drive")
        .arg(format!(
            "file={},if=none,id=dumps,format=raw,cache=unsafe",
            disk.display()
        ))
        .args(["-device", "nvme,drive=dumps,serial=dumps"]);
    let text = kdump::run_guest(&label, &mut qemu, &console, "KDUMP-CAPTURE rc=");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    for f in ["rc", "makedumpfile.log", "vmcore.kdump"] {
        // a file that is not there (no dump) leaves nothing
        let _ = cmd_ok(
            Command::new("debugfs")
                .arg("-R")
                .arg(format!("dump /{f} {}", out.join(f).display()))
                .arg(&disk),
            "debugfs dump",
        );
    }
    std::fs::rename(&console, out.join("console.log")).unwrap();
    if std::fs::read(out.join("vmcore.kdump")).is_ok_and(|d| d.is_empty()) {
        let _ = std::fs::remove_file(out.join("vmcore.kdump"));
    }
    assert!(
        out.join("rc").is_file(),
        "{label}: no rc on the disk; console:\n{text}"
    );
    kdump::keep(&out, &done);
    Some(done)
}

fn check(c: &Case) {
    let label = c.label();
    let t0 = Instant::now();
    let Some((_one, k, g)) = kdump::ready(&ONE_GUEST, c) else {
        return;
    };
    let rc = std::fs::read_to_string(g.join("rc")).unwrap();
    let log = std::fs::read_to_string(g.join("makedumpfile.log")).unwrap_or_default();
    let dump = g.join("vmcore.kdump");
    assert!(
        rc.trim() == "0" && dump.is_file(),
        "{label}: makedumpfile rc {rc}, log:\n{log}"
    );
    if c.makedumpfile == Makedumpfile::DropsPagesInUse {
        assert!(
            log.contains("The kernel version is not supported"),
            "{label}: makedumpfile 1.7.2 knows this kernel now? log:\n{log}"
        );
    }
    let con = Console::parse(
        &std::fs::read_to_string(g.join("console.log")).unwrap(),
        false,
    );
    assert_eq!(
        con.panic_cpu,
        SMP - 1,
        "taskset put the crash on the last CPU"
    );
    check_info(c, &k, &con, &dump);
    check_gdb(c, &k, &con, &dump);
    eprintln!("{label}: total {:.1?}", t0.elapsed());
}

fn check_info(c: &Case, k: &Kernel, con: &Console, dump: &Path) {
    let label = c.label();
    let info = kdump::check_info(&label, &k.vmlinux, &k.release, con, dump);
    assert!(
        info["format"]
            .as_str()
            .is_some_and(|f| f.starts_with("kdump-compressed")),
        "{label}: {info:#}"
    );
    assert_eq!(info["dump_level"], 31, "{label}: {info:#}");
}

fn check_gdb(c: &Case, k: &Kernel, con: &Console, dump: &Path) {
    let drops = c.makedumpfile == Makedumpfile::DropsPagesInUse;
    kdump::check_gdb(&c.label(), &k.vmlinux, con, dump, drops);
}

#[test]
fn kdump_510_x86_64() {
    check(&Case {
        series: &S510,
        marker: "CORESTUB-KDUMP-510-X86",
        makedumpfile: Makedumpfile::Works,
    })
}

#[test]
fn kdump_612_x86_64() {
    check(&Case {
        series: &S612,
        marker: "CORESTUB-KDUMP-612-X86",
        makedumpfile: Makedumpfile::DropsPagesInUse,
    })
}

#[test]
fn kdump_7_x86_64() {
    check(&Case {
        series: &S7,
        marker: "CORESTUB-KDUMP-7-X86",
        makedumpfile: Makedumpfile::DropsPagesInUse,
    })
}
