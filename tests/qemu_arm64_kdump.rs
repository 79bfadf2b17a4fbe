//! QEMU's own arm64 kdump output (issue 4, item 5): `dump-guest-memory
//! format=kdump-zlib` of an arm64 guest is a *flattened* makedumpfile stream
//! with 64 KiB blocks for 4 KiB kernel pages, an empty utsname and no
//! timestamp. corestub must serve it as-is.
//!
//! The dump is cached at `fixtures::root()/qemu-arm64/qemu-kdump-zlib.kdump`
//! (with the guest's serial log beside it). When it is missing it is made
//! here with `../shared/fixtures/recipes/arm64/make-fixtures.sh fetch
//! initramfs qemudump` (Debian 6.1.0-56-cloud-arm64 under QEMU TCG, 4 vCPUs,
//! 512 MiB; about 40 s plus ~300 MB of downloads) in
//! `fixtures::root()/qemu-arm64-work`, which is deleted afterwards.
//! Missing tools or fixtures: SKIP, or failure under
//! CORESTUB_REQUIRE_FIXTURES=1.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{corestub_bin, fixture, gdb_steps, run};
use serde_json::Value;

const TEST: &str = "qemu_arm64_kdump";
const GEN_TIMEOUT: Duration = Duration::from_secs(900);

fn required() -> bool {
    std::env::var("CORESTUB_REQUIRE_FIXTURES").is_ok_and(|v| v == "1")
}

fn skip(why: &str) {
    assert!(!required(), "{TEST}: {why} and CORESTUB_REQUIRE_FIXTURES=1");
    eprintln!("SKIP {TEST}: {why}");
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn recipe() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/recipes/arm64/make-fixtures.sh")
}

/// Kills the recipe's whole process group (QEMU is started in the
/// background by the script) if the generation is abandoned.
struct GroupGuard(Option<Child>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", c.id())])
                .status();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The cached dump, else a freshly generated one; `None` = skipped.
fn dump() -> Option<PathBuf> {
    let dir = corestub::fixtures::root().join("qemu-arm64");
    let dump = dir.join("qemu-kdump-zlib.kdump");
    if dump.exists() {
        return Some(dump);
    }
    let recipe = recipe();
    if !recipe.exists() {
        skip(&format!(
            "no cached dump and no recipe at {}",
            recipe.display()
        ));
        return None;
    }
    for tool in [
        "qemu-system-aarch64",
        "aarch64-linux-gnu-readelf",
        "cpio",
        "apt-get",
        "dpkg-deb",
        "python3",
    ] {
        if !have(tool) {
            skip(&format!(
                "no cached {} and {tool} (to generate it) is missing",
                dump.display()
            ));
            return None;
        }
    }
    let work = corestub::fixtures::root().join("qemu-arm64-work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let log = work.join("make-fixtures.log");
    let t0 = Instant::now();
    eprintln!(
        "{TEST}: generating {} (log: {})",
        dump.display(),
        log.display()
    );
    let logf = std::fs::File::create(&log).unwrap();
    let child = {
        use std::os::unix::process::CommandExt;
        Command::new("bash")
            .arg(&recipe)
            .args(["fetch", "initramfs", "qemudump"])
            .env("WORK", &work)
            .env("MEM", "512M")
            .env("GDBPORT", free_port().to_string())
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .process_group(0)
            .spawn()
            .expect("run make-fixtures.sh")
    };
    let mut guard = GroupGuard(Some(child));
    let status = loop {
        if let Some(s) = guard.0.as_mut().unwrap().try_wait().unwrap() {
            guard.0 = None;
            break s;
        }
        if t0.elapsed() > GEN_TIMEOUT {
            drop(guard);
            panic!(
                "{TEST}: make-fixtures.sh took over {GEN_TIMEOUT:?}; log: {}",
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let out = work.join("out/qemu/qemu-kdump-zlib.kdump");
    assert!(
        status.success() && out.exists(),
        "{TEST}: make-fixtures.sh fetch initramfs qemudump failed ({status}), no {}; log {}:\n{}",
        out.display(),
        log.display(),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    eprintln!("{TEST}: generated in {:.0?}", t0.elapsed());
    std::fs::create_dir_all(&dir).unwrap();
    let _ = std::fs::copy(
        work.join("truth/qemu-serial.log"),
        dir.join("qemu-serial.log"),
    );
    // copy + rename: a half-written file is never taken for a cached dump
    let tmp = dir.join("qemu-kdump-zlib.kdump.tmp");
    std::fs::copy(&out, &tmp).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::rename(&tmp, &dump).unwrap();
    // ~2.5 GB of debs, extracted debug packages and a raw ELF dump
    let _ = std::fs::remove_dir_all(&work);
    Some(dump)
}

#[test]
fn qemu_arm64_kdump_zlib_flattened_64k_blocks() {
    let Some(vmlinux) = fixture("arm64-6.1", "vmlinux", TEST) else {
        return;
    };
    let Some(dump) = dump() else {
        return;
    };

    // corestub info --json: QEMU's layout is recognised and reported
    let out = run(Command::new(corestub_bin())
        .args(["info", "--json"])
        .arg(&dump));
    assert!(out.status.success(), "{out:?}");
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["block_size"], 65536, "{info:#}");
    assert_eq!(info["page_size"], 4096, "{info:#}");
    assert_eq!(info["machine"], "aarch64", "{info:#}");
    assert_eq!(info["cpus"], 4, "{info:#}");
    assert!(
        info["format"].as_str().unwrap().contains("flattened"),
        "{info:#}"
    );
    let quirks: Vec<&str> = info["quirks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q.as_str().unwrap())
        .collect();
    assert!(
        quirks.iter().any(|q| q.contains("block size 65536")),
        "{quirks:?}"
    );

    // real gdb-multiarch through corestub
    let (steps, all) = gdb_steps(
        &dump,
        &vmlinux,
        &[
            ("threads", "info threads"),
            ("bt", "bt"),
            ("comm", "p init_task.comm"),
            ("dmesg", "dmesg"),
        ],
    );
    let step = |k: &str| steps.get(k).cloned().unwrap_or_default();
    let threads = step("threads");
    let cpu_threads = threads.lines().filter(|l| l.contains("(CPU ")).count();
    assert_eq!(cpu_threads, 4, "{threads}\n{all}");
    // the recipe's /init starts these; with --vmlinux they are task threads
    for comm in ["fxsleeper_a", "fxwaiter_c"] {
        assert!(threads.contains(comm), "{comm} not in\n{threads}\n{all}");
    }
    let bt = step("bt");
    assert!(bt.contains("#0 "), "{bt}\n{all}");
    assert!(!bt.contains("Cannot access memory"), "{bt}\n{all}");
    let comm = step("comm");
    assert!(comm.contains("\"swapper/0"), "{comm}\n{all}");
    let dmesg = step("dmesg");
    assert!(dmesg.lines().count() > 50, "{dmesg}\n{all}");
    assert!(
        dmesg.contains("Linux version 6.1.0-56-cloud-arm64"),
        "{dmesg}\n{all}"
    );
    // the random marker /init wrote to /dev/kmsg, as the serial log saw it
    let serial = corestub::fixtures::root().join("qemu-arm64/qemu-serial.log");
    if let Ok(log) = std::fs::read_to_string(&serial)
        && let Some(m) = log
            .split_whitespace()
            .find(|w| w.starts_with("FIXTURE-MARKER-"))
    {
        assert!(dmesg.contains(m), "{m} not in dmesg:\n{dmesg}");
    }
}
