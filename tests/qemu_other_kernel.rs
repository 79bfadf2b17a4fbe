//! corestub on dumps of a kernel, paging mode and CPU count the checked-in
//! fixtures (Debian 6.1, 4-level paging, 4 CPUs) do not cover: Debian's
//! 6.12 cloud kernel from bookworm-backports, booted under QEMU TCG with
//! **5-level paging** (`-cpu qemu64,+la57,-cx16`; without CX16 because
//! QEMU 7.2's TCG CMPXCHG16B breaks about one 6.12 boot in four) and
//! **3 CPUs**. Its busybox /init starts two sleepers, writes a marker to
//! the kernel log and panics through sysrq on the last CPU; QMP
//! `dump-guest-memory` then writes an ELF and a `kdump-zlib` dump. This
//! kernel registers no VMCOREINFO under QEMU (its fw_cfg driver is a
//! module), so KASLR and phys_base come from corestub's detection (CR3 +
//! IDT), not from notes.
//!
//! On both dumps, checked against what the guest printed on its console:
//! - `corestub info --json`: 5-level paging, 3 CPUs, panic CPU = the last
//!   one, panic task = the PID the panic message names, release = the
//!   kernel's.
//! - `corestub gdb`: `bt` on the (selected) panic thread reaches
//!   `sysrq_handle_crash`; `dmesg` has the marker; `monitor ps` lists a
//!   sleeper at the task address our `ps` script found; `task PID` + `bt`
//!   reaches `do_nanosleep`; and a user-space read through the sleeper's
//!   own page tables: `x/s mm->arg_start` prints its argv[0], "sleep".
//!
//! Cache: `fixtures::root()/x86_64-6.12/RELEASE/` holds vmlinuz, the debug
//! vmlinux and `guest/` (console log and the two dumps): 0.9 GB in all.
//! When it is missing, the newest `linux-image-6.12.*-cloud-amd64-unsigned`
//! with a matching `-dbg` is fetched with apt-get through a private apt
//! configuration (bookworm-backports; the system's sources are untouched)
//! and the guest is booted. Cold (~35 s): 330 MB of downloads, 5-10 s of
//! boot, ~2 s of dumps. Warm (~5 s) needs neither network nor QEMU. Delete
//! the directory to move to a newer 6.12 release.
//!
//! Missing tools (gdb; qemu-system-x86_64 and busybox-static to make the
//! dumps; apt-get, dpkg-deb and tar to fetch the kernel) or a failed fetch:
//! SKIP, or failure under CORESTUB_REQUIRE_FIXTURES=1. QEMU is killed by
//! PID on every path (guard).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::guest::{Proc, busybox, have, initramfs, wait_for};
use common::{corestub_bin, gdb_steps, run};
use corestub::qmp::Qmp;
use serde_json::{Value, json};

const TEST: &str = "qemu_other_kernel";
const SMP: u32 = 3;
/// Hang guards, not speed limits (boot is ~5 s, each dump a few seconds).
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
const DUMP_TIMEOUT: Duration = Duration::from_secs(300);
const SOURCE: &str = "deb http://deb.debian.org/debian bookworm-backports main";
const ELF: &str = "qemu.elf";
const KDUMP: &str = "qemu-kdump-zlib.kdump";

fn skip(why: &str) {
    common::guest::skip(TEST, why)
}

fn cache() -> PathBuf {
    corestub::fixtures::root().join("x86_64-6.12")
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
}

impl Kernel {
    fn at(dir: PathBuf) -> Option<Kernel> {
        let release = dir.file_name()?.to_str()?.to_string();
        let (vmlinuz, vmlinux) = (dir.join("vmlinuz"), dir.join("vmlinux"));
        (release.starts_with("6.12.") && vmlinuz.is_file() && vmlinux.is_file()).then_some(Kernel {
            release,
            dir,
            vmlinuz,
            vmlinux,
        })
    }
}

/// The newest release already in the cache.
fn cached_kernel() -> Option<Kernel> {
    std::fs::read_dir(cache())
        .ok()?
        .flatten()
        .filter_map(|e| Kernel::at(e.path()))
        .max_by_key(|k| version_key(&k.release))
}

/// Runs `cmd`; Ok(its stderr) if it exits 0, else Err(status + stderr).
fn cmd_ok(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stderr).to_string())
    } else {
        Err(format!(
            "{what}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `dpkg-deb --fsys-tarfile DEB | tar -x -C DIR MEMBER`.
fn extract(deb: &Path, dir: &Path, member: &str) -> Result<(), String> {
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("dpkg-deb: {e}"))?;
    let tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dir)
        .arg(member)
        .stdin(dpkg.stdout.take().unwrap())
        .status();
    let dpkg = dpkg.wait();
    match (dpkg, tar) {
        (Ok(d), Ok(t)) if d.success() && t.success() => Ok(()),
        (d, t) => Err(format!(
            "extracting {member} from {}: dpkg-deb {d:?}, tar {t:?}",
            deb.display()
        )),
    }
}

/// Fetches the newest 6.12 cloud kernel and its debug vmlinux from
/// bookworm-backports into the cache. Err: why not (network, packages).
fn fetch_kernel() -> Result<Kernel, String> {
    let cache = cache();
    std::fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    remove_stale(&cache, "apt-work-");
    remove_stale(&cache, "kernel.tmp-");
    let pid = std::process::id();
    let work = cache.join(format!("apt-work-{pid}"));
    let _work = common::guest::TempDir(work.clone());
    for d in ["lists/partial", "cache/archives/partial", "debs", "x"] {
        std::fs::create_dir_all(work.join(d)).map_err(|e| e.to_string())?;
    }
    std::fs::write(work.join("sources.list"), format!("{SOURCE}\n")).map_err(|e| e.to_string())?;
    let opts: Vec<String> = [
        format!(
            "Dir::Etc::SourceList={}",
            work.join("sources.list").display()
        ),
        "Dir::Etc::SourceParts=/dev/null".into(),
        format!("Dir::State::Lists={}", work.join("lists").display()),
        format!("Dir::Cache={}", work.join("cache").display()),
        "APT::Architecture=amd64".into(),
        "APT::Architectures=amd64".into(),
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
    let release = names
        .iter()
        .filter_map(|n| {
            n.strip_prefix("linux-image-")?
                .strip_suffix("-cloud-amd64-unsigned")
        })
        .map(|v| format!("{v}-cloud-amd64"))
        .filter(|r| names.contains(&format!("linux-image-{r}-dbg")))
        .max_by_key(|r| version_key(r))
        .ok_or_else(|| {
            format!(
                "no linux-image-6.12.*-cloud-amd64-unsigned with a -dbg in bookworm-backports (apt-cache search found {names:?}); apt-get update said:\n{update}"
            )
        })?;
    let (image, dbg) = (
        format!("linux-image-{release}-unsigned"),
        format!("linux-image-{release}-dbg"),
    );
    eprintln!("{TEST}: downloading {image} and {dbg}");
    cmd_ok(
        Command::new("apt-get")
            .args(&opts)
            .args(["-q", "download", &image, &dbg])
            .current_dir(work.join("debs")),
        "apt-get download",
    )?;
    let deb = |pkg: &str| {
        std::fs::read_dir(work.join("debs"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                let n = p.file_name().unwrap_or_default().to_string_lossy();
                n.starts_with(&format!("{pkg}_")) && n.ends_with(".deb")
            })
            .ok_or_else(|| format!("apt-get download left no {pkg}_*.deb"))
    };
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len()) >> 20;
    let (image_deb, dbg_deb) = (deb(&image)?, deb(&dbg)?);
    eprintln!(
        "{TEST}: downloaded {} MiB + {} MiB",
        size(&image_deb),
        size(&dbg_deb)
    );
    let x = work.join("x");
    extract(&image_deb, &x, &format!("./boot/vmlinuz-{release}"))?;
    extract(
        &dbg_deb,
        &x,
        &format!("./usr/lib/debug/boot/vmlinux-{release}"),
    )?;
    // assemble beside the cache and rename: never a half-written kernel
    let tmp = cache.join(format!("kernel.tmp-{pid}"));
    std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
    std::fs::rename(
        x.join(format!("boot/vmlinuz-{release}")),
        tmp.join("vmlinuz"),
    )
    .map_err(|e| format!("vmlinuz: {e}"))?;
    std::fs::rename(
        x.join(format!("usr/lib/debug/boot/vmlinux-{release}")),
        tmp.join("vmlinux"),
    )
    .map_err(|e| format!("vmlinux: {e}"))?;
    let dir = cache.join(&release);
    if std::fs::rename(&tmp, &dir).is_err() {
        // another run got there first
        let _ = std::fs::remove_dir_all(&tmp);
    }
    // the .debs (330 MB) go with `work`
    Kernel::at(dir).ok_or_else(|| format!("no kernel in {} after the fetch", cache.display()))
}

/// /init: two sleepers, the marker in the kernel log, then a sysrq crash
/// on the last CPU.
fn init_script(marker: &str) -> String {
    format!(
        "#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
sleep 100001 &
sleep 100002 &
echo {marker} > /dev/kmsg
echo \"SLEEPERS $(pidof sleep)\"
echo READY {marker}
sleep 2
taskset -c {} sh -c 'echo c > /proc/sysrq-trigger'
",
        SMP - 1
    )
}

fn dump_guest_memory(qmp: &Qmp, path: &Path, format: &str) {
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
    eprintln!("{TEST}: {format} dump in {:.1?}", t.elapsed());
}

/// `k.dir/guest/` (console.log and the two dumps): cached, else made by
/// booting the kernel. None: skipped.
fn guest_dumps(k: &Kernel) -> Option<PathBuf> {
    let done = k.dir.join("guest");
    if [ELF, KDUMP, "console.log"]
        .iter()
        .all(|f| done.join(f).is_file())
    {
        return Some(done);
    }
    if !have("qemu-system-x86_64", "--version") {
        skip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)");
        return None;
    }
    let Some(bb) = busybox() else {
        skip("no static /bin/busybox (apt-get install busybox-static)");
        return None;
    };
    remove_stale(&k.dir, "guest.tmp-");
    let dir = k.dir.join(format!("guest.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let marker = common::guest::marker("CORESTUB-LA57-MARKER");
    let initrd = dir.join("initrd.gz");
    std::fs::write(&initrd, initramfs(&bb, &init_script(&marker))).unwrap();
    let console = dir.join("console.log");
    let sock = dir.join("qmp.sock");
    let mut qemu = Proc::spawn(
        "qemu",
        Command::new("qemu-system-x86_64")
            // -cx16: QEMU 7.2's TCG CMPXCHG16B corrupts SLUB's per-CPU
            // freelists (this_cpu_cmpxchg128) in about one boot of four
            // (double faults, calls through NULL), with or without la57 and
            // MTTCG; without CX16 the kernel takes the locked path (24/24).
            .args(["-accel", "tcg", "-cpu", "qemu64,+la57,-cx16"])
            .args(["-machine", "pc"])
            .args(["-m", "512", "-smp", &SMP.to_string()])
            .args(["-device", "vmcoreinfo"])
            .args(["-display", "none", "-nodefaults", "-no-reboot"])
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .arg("-kernel")
            .arg(&k.vmlinuz)
            .arg("-initrd")
            .arg(&initrd)
            .args(["-append", "console=ttyS0 panic=0"])
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
                "the guest crashed before the sysrq (kernel or QEMU TCG bug); console:\n{text}"
            );
            break;
        }
        assert!(
            qemu.alive(),
            "QEMU exited: {}",
            std::fs::read_to_string(dir.join("qemu.err")).unwrap_or_default()
        );
        assert!(
            boot.elapsed() < BOOT_TIMEOUT,
            "guest did not panic within {BOOT_TIMEOUT:?}; console:\n{}",
            read_console()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "{TEST}: guest booted and panicked in {:.1?}",
        boot.elapsed()
    );
    // fail here, before the cache takes a console the checks cannot read
    parse_console(&read_console());
    wait_for("QMP socket", Duration::from_secs(30), || sock.exists());
    let qmp = Qmp::connect(&sock).expect("QMP");
    dump_guest_memory(&qmp, &dir.join(ELF), "elf");
    dump_guest_memory(&qmp, &dir.join(KDUMP), "kdump-zlib");
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

/// What the guest printed: its marker, the sleepers' PIDs, and the CPU and
/// PID named in the panic message (`CPU: 2 UID: 0 PID: 155 Comm: sh …`).
struct Console {
    marker: String,
    sleepers: Vec<u32>,
    panic_cpu: u32,
    panic_pid: u32,
}

fn after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_once(key)?.1.split_whitespace().next()
}

fn parse_console(text: &str) -> Console {
    let line = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line on the console:\n{text}"))
    };
    let marker = line("READY ").trim().to_string();
    let sleepers: Vec<u32> = line("SLEEPERS ")
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
    assert_eq!(sleepers.len(), 2, "two sleepers:\n{text}");
    Console {
        marker,
        sleepers,
        panic_cpu,
        panic_pid,
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

#[test]
fn qemu_612_la57_three_cpus() {
    let t0 = Instant::now();
    if !have("gdb", "--version") {
        return skip("gdb is not installed");
    }
    let k = match cached_kernel() {
        Some(k) => k,
        None => {
            for tool in ["apt-get", "apt-cache", "dpkg-deb", "tar"] {
                if !have(tool, "--version") {
                    return skip(&format!("{tool} is missing (to fetch the 6.12 kernel)"));
                }
            }
            match fetch_kernel() {
                Ok(k) => k,
                Err(e) => return skip(&format!("cannot fetch the 6.12 kernel: {e}")),
            }
        }
    };
    eprintln!(
        "{TEST}: kernel {} ready after {:.1?}",
        k.release,
        t0.elapsed()
    );
    let Some(guest) = guest_dumps(&k) else {
        return;
    };
    eprintln!("{TEST}: dumps ready after {:.1?}", t0.elapsed());
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

    for name in [ELF, KDUMP] {
        let t = Instant::now();
        let dump = guest.join(name);
        let out = run(Command::new(corestub_bin())
            .args(["info", "--json", "--vmlinux"])
            .arg(&k.vmlinux)
            .arg(&dump));
        assert!(out.status.success(), "{name}: {out:?}");
        let info: Value = serde_json::from_slice(&out.stdout).unwrap();
        eprintln!(
            "{TEST}: {name}: {} / KERNEL_ROOT_FROM {}",
            info["format"], info["kernel_root_from"]
        );
        assert_eq!(info["paging"], "5-level", "{name}: {info:#}");
        assert_eq!(info["cpus"], SMP, "{name}: {info:#}");
        assert_eq!(info["panic_cpu"], con.panic_cpu, "{name}: {info:#}");
        assert_eq!(info["release"], k.release.as_str(), "{name}: {info:#}");
        let panic_task = info["panic_task"].as_str().unwrap_or_default();
        assert!(
            panic_task.contains(&format!("(pid {},", con.panic_pid)),
            "{name}: panic task is not pid {}: {info:#}",
            con.panic_pid
        );

        let (steps, all) = gdb_steps(
            &dump,
            &k.vmlinux,
            &[
                ("bt", "bt"),
                ("dmesg", "dmesg"),
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
            "{name}: panic bt:\n{all}"
        );
        assert!(
            step("dmesg").contains(&con.marker),
            "{name}: {} not in dmesg:\n{all}",
            con.marker
        );
        // GDB 13 prints `monitor` answers on stderr: look in all the output
        assert!(
            ps_rows(&all).contains(&(sleeper, task.clone(), "sleep".into())),
            "{name}: pid {sleeper} sleep at {task} in monitor ps:\n{all}"
        );
        assert!(
            step("task_bt").contains("do_nanosleep"),
            "{name}: bt of pid {sleeper}:\n{all}"
        );
        assert!(
            step("argv0").contains("\"sleep\""),
            "{name}: argv[0] of pid {sleeper} through its page tables:\n{all}"
        );
        eprintln!("{TEST}: {name} checked in {:.1?}", t.elapsed());
    }
    eprintln!("{TEST}: total {:.1?}", t0.elapsed());
}
