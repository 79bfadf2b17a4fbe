//! QEMU's own arm64 kdump output (issue 4, item 5): `dump-guest-memory
//! format=kdump-zlib` of an arm64 guest is a *flattened* makedumpfile stream
//! with 64 KiB blocks for 4 KiB kernel pages, an empty utsname and no
//! timestamp. corestub must serve it as-is.
//!
//! QEMU >= 8.2 also writes `kdump-raw-*` formats: plain diskdump files of
//! the same moment (the recipe dumps every format QEMU offers while the guest
//! is stopped). Each is checked as such (`corestub info`: not flattened, its
//! codec), page for page against the flattened dump, and through GDB. With
//! an older QEMU there are none: that part is skipped, loudly.
//!
//! The dumps are cached in `fixtures::root()/qemu-arm64/`:
//! `qemu-kdump-zlib.kdump`, `qemu-kdump-raw-*.kdump`, the guest's serial log,
//! and `qemu-version.txt` (the QEMU that made them: a cache made by another
//! QEMU, or by a test older than the kdump-raw checks, is remade when
//! qemu-system-aarch64 is installed). When they are missing they are made
//! here with `../shared/fixtures/recipes/arm64/make-fixtures.sh fetch
//! initramfs qemudump` (Debian 6.1.0-56-cloud-arm64 under QEMU TCG, 4 vCPUs,
//! 512 MiB; about 40 s plus ~300 MB of downloads) in
//! `fixtures::root()/qemu-arm64-work`, which is deleted afterwards.
//! Missing tools or fixtures: SKIP, or failure under
//! CORESTUB_REQUIRE_FIXTURES=1.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::qemu_dump::{check_raw_info, compare_notes, compare_pages};
use common::{corestub_bin, fixture, gdb_steps, run};
use corestub::dump;
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

/// QEMU's dumps of one guest at one moment.
struct Dumps {
    /// `kdump-zlib`: a flattened stream.
    flattened: PathBuf,
    /// (`kdump-raw-*` format, file), one per format the QEMU offered.
    raw: Vec<(String, PathBuf)>,
    /// The QEMU that made them (`qemu-system-aarch64 --version`, first line).
    qemu: String,
}

/// `qemu-system-aarch64 --version`'s first line, if it runs.
fn installed_qemu() -> Option<String> {
    let out = Command::new("qemu-system-aarch64")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    out.status
        .success()
        .then(|| text.lines().next().unwrap_or_default().trim().to_string())
}

/// The cached dumps, if complete and made by the installed QEMU (or no
/// QEMU is installed to remake them).
fn cached(dir: &Path) -> Option<Dumps> {
    let flattened = dir.join("qemu-kdump-zlib.kdump");
    if !flattened.exists() {
        return None;
    }
    let installed = installed_qemu();
    let qemu = match std::fs::read_to_string(dir.join(VERSION_FILE)) {
        Ok(v) if installed.as_ref().is_none_or(|i| *i == v.trim()) => v.trim().to_string(),
        // made by another QEMU (or before the version was recorded): remake
        _ if installed.is_some() => return None,
        // nothing to remake it with: serve what there is
        _ => "an unrecorded QEMU".into(),
    };
    let mut raw: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let format = name.strip_prefix("qemu-")?.strip_suffix(".kdump")?;
            format
                .starts_with("kdump-raw-")
                .then(|| (format.to_string(), e.path()))
        })
        .collect();
    raw.sort();
    Some(Dumps {
        flattened,
        raw,
        qemu,
    })
}

const VERSION_FILE: &str = "qemu-version.txt";

/// The cached dumps, else freshly generated ones; `None` = skipped.
fn dump() -> Option<Dumps> {
    let dir = corestub::fixtures::root().join("qemu-arm64");
    if let Some(d) = cached(&dir) {
        return Some(d);
    }
    let dump = dir.join("qemu-kdump-zlib.kdump");
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
    // the version file goes last: it marks the cache complete
    let _ = std::fs::remove_file(dir.join(VERSION_FILE));
    let _ = std::fs::copy(
        work.join("truth/qemu-serial.log"),
        dir.join("qemu-serial.log"),
    );
    for e in std::fs::read_dir(work.join("out/qemu")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        // the flattened stream and QEMU >= 8.2's plain kdump-raw-* files
        // (not the recipe's reassembled copy, nor the 0.5 GB ELF)
        if name == "qemu-kdump-zlib.kdump" || name.starts_with("qemu-kdump-raw-") {
            cache_copy(&e.path(), &dir.join(&name));
        }
    }
    let qemu = installed_qemu().unwrap_or_default();
    std::fs::write(dir.join(VERSION_FILE), format!("{qemu}\n")).unwrap();
    // ~2.5 GB of debs, extracted debug packages and a raw ELF dump
    let _ = std::fs::remove_dir_all(&work);
    let d = cached(&dir);
    assert!(d.is_some(), "{TEST}: no cached dumps in {}", dir.display());
    d
}

/// copy + rename: a half-written file is never taken for a cached dump.
fn cache_copy(from: &Path, to: &Path) {
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::rename(&tmp, to).unwrap();
}

/// The dumps, made (or found) once for every test here.
fn dumps() -> Option<&'static Dumps> {
    static DUMPS: OnceLock<Option<Dumps>> = OnceLock::new();
    DUMPS.get_or_init(dump).as_ref()
}

/// `corestub info --json` on one of QEMU's arm64 dumps: QEMU's layout
/// (64 KiB blocks for 4 KiB pages, 4 vCPUs) recognised and reported.
fn check_info(dump: &Path) -> Value {
    let out = run(Command::new(corestub_bin())
        .args(["info", "--json"])
        .arg(dump));
    assert!(out.status.success(), "{out:?}");
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["block_size"], 65536, "{info:#}");
    assert_eq!(info["page_size"], 4096, "{info:#}");
    assert_eq!(info["machine"], "aarch64", "{info:#}");
    assert_eq!(info["cpus"], 4, "{info:#}");
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
    info
}

/// Real gdb-multiarch through corestub: CPU and task threads, a backtrace,
/// init_task, the kernel log with the marker the guest's /init logged.
fn check_gdb(dump: &Path, vmlinux: &Path) {
    let (steps, all) = gdb_steps(
        dump,
        vmlinux,
        &[
            ("threads", "info threads"),
            ("bt", "bt"),
            ("comm", "p init_task.comm"),
            ("dmesg", "dmesg"),
        ],
    );
    let all = format!("{}:\n{all}", dump.display());
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

#[test]
fn qemu_arm64_kdump_zlib_flattened_64k_blocks() {
    let Some(vmlinux) = fixture("arm64-6.1", "vmlinux", TEST) else {
        return;
    };
    let Some(dumps) = dumps() else {
        return;
    };
    let info = check_info(&dumps.flattened);
    assert!(
        info["format"].as_str().unwrap().contains("flattened"),
        "{info:#}"
    );
    check_gdb(&dumps.flattened, &vmlinux);
}

/// QEMU >= 8.2's `kdump-raw-*` dumps of the same moment: plain
/// kdump-compressed files with their codec, every 64 KiB block equal to the
/// flattened dump's, the same notes, and the same answers through GDB.
#[test]
fn qemu_arm64_kdump_raw_formats() {
    let Some(vmlinux) = fixture("arm64-6.1", "vmlinux", TEST) else {
        return;
    };
    let Some(dumps) = dumps() else {
        return;
    };
    if dumps.raw.is_empty() {
        // QEMU < 8.2 (e.g. Debian 12's 7.2) has no kdump-raw-* formats
        eprintln!(
            "SKIP {TEST}: kdump-raw-*: {} offered none (QEMU >= 8.2 does)",
            dumps.qemu
        );
        return;
    }
    eprintln!(
        "{TEST}: {} wrote {:?}",
        dumps.qemu,
        dumps.raw.iter().map(|(f, _)| f).collect::<Vec<_>>()
    );
    let flattened = dump::open(&dumps.flattened).unwrap();
    for (format, path) in &dumps.raw {
        check_info(path);
        check_raw_info(path, format);
        let raw = dump::open(path).unwrap_or_else(|e| panic!("{format}: {e}"));
        assert_eq!(raw.format.block_size, Some(65536), "{format}");
        compare_notes(&raw, &flattened);
        compare_pages(&raw, &flattened);
        check_gdb(path, &vmlinux);
    }
}
