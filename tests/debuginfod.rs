//! The debug vmlinux fetched by build-id from a real debuginfod server
//! (elfutils' `debuginfod`), which indexes a folder holding the fixture's
//! vmlinux. The server runs in a network namespace of its own (`unshare
//! -n`, only loopback up) and corestub joins it with `nsenter`, so nothing
//! listens on the machine's interfaces.
//!
//! Checks: `corestub gdb DUMP` with no local vmlinux and `DEBUGINFOD_URLS`
//! gives the same `bt`, `p init_task.comm` and `dmesg` as with `--vmlinux`;
//! the cache then holds `BUILDID/debuginfo` and no partial file, and a second
//! start with no server uses it; a server that lacks the build-id gives a
//! warning that names it, and the session still starts.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TEST: &str = "debuginfod";
const PORT: u16 = 8002;

struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// debuginfod over `dir`, in a fresh network namespace.
    fn start(dir: &Path, db: &Path) -> Server {
        let script = format!(
            "ip link set lo up && exec debuginfod -F -L --disable-source-scan -t 0 -g 0 -c 1 -p {PORT} -d {} {}",
            db.display(),
            dir.display()
        );
        let child = Command::new("unshare")
            .args(["-n", "--", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start debuginfod under unshare -n");
        Server { child }
    }

    /// `cmd` run inside the server's network namespace.
    fn inside(&self, cmd: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.child.id().to_string(), "-n", "--"]);
        c.args(cmd);
        c
    }

    /// HTTP status of `GET path` on the server (0: no answer yet).
    fn status(&self, path: &str) -> u16 {
        let probe = format!(
            "import urllib.request,urllib.error\ntry:\n r=urllib.request.urlopen('http://127.0.0.1:{PORT}{path}',timeout=5); r.read(1); print(r.status)\nexcept urllib.error.HTTPError as e: print(e.code)\nexcept Exception: print(0)"
        );
        let out = self.inside(&["python3", "-c", &probe]).output();
        out.ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(0)
    }

    /// Waits until the server answers `path` with 200 (indexing done).
    fn wait_ready(&self, path: &str) {
        let t0 = Instant::now();
        // indexing the 590 MB vmlinux takes a while on a loaded machine;
        // this is a hang guard, not a speed check
        while self.status(path) != 200 {
            assert!(
                t0.elapsed() < Duration::from_secs(600),
                "debuginfod never served {path}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

fn usable() -> Result<(), String> {
    for (cmd, arg) in [
        ("debuginfod", "--version"),
        ("unshare", "--version"),
        ("nsenter", "--version"),
        ("ip", "-V"),
    ] {
        if !common::guest::have(cmd, arg) {
            return Err(format!("{cmd} is not installed"));
        }
    }
    let ok = Command::new("unshare")
        .args(["-n", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return Err("cannot make a network namespace (unshare -n; needs root)".into());
    }
    Ok(())
}

fn build_id(vmlinux: &Path) -> String {
    let out = common::run(Command::new("readelf").args(["-n"]).arg(vmlinux));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: ").map(str::to_string))
        .expect("vmlinux has a build-id")
}

fn symlink(target: &Path, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let link = dir.join(target.file_name().unwrap());
    std::os::unix::fs::symlink(target, &link).unwrap();
    link
}

const STEPS: &[(&str, &str)] = &[
    ("bt", "bt"),
    ("comm", "p init_task.comm"),
    ("dmesg", "dmesg"),
];

/// `corestub gdb` batch args running STEPS; `vmlinux` given or not.
fn gdb_args(dump: &Path, vmlinux: Option<&Path>) -> Vec<String> {
    let mut a = vec!["gdb".to_string()];
    if let Some(v) = vmlinux {
        a.extend(["--vmlinux".into(), v.display().to_string()]);
    }
    a.extend([dump.display().to_string(), "--".into()]);
    a.extend(common::GDB_BATCH.map(String::from));
    for (label, cmd) in STEPS {
        a.extend(common::step_args(label, cmd));
    }
    a.extend(["-ex".into(), "echo @@STEP end\\n".into()]);
    a
}

fn output_of(cmd: &mut Command) -> (std::collections::BTreeMap<String, String>, String) {
    let out = common::run(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    (common::split_steps(&stdout), all)
}

#[test]
fn vmlinux_from_debuginfod_gives_the_same_session() {
    let Some(f) = common::fixture_set("x86_64-6.1", &["kdump-zlib-d31.kdump", "vmlinux"], TEST)
    else {
        return;
    };
    if let Err(why) = usable() {
        common::guest::skip(TEST, &why);
        return;
    }
    let (dump, vmlinux) = (&f[0], &f[1]);
    let id = build_id(vmlinux);
    let tmp = tempdir();
    let _cleanup = common::guest::TempDir(tmp.clone());
    let served = tmp.join("served");
    symlink(vmlinux, &served);
    std::fs::create_dir_all(tmp.join("empty")).unwrap();
    // the dump alone in a folder: no vmlinux beside it
    let lone_dump = symlink(dump, &tmp.join("dump"));
    let cache = tmp.join("cache");

    // reference: the session with the vmlinux given
    let (want, all) =
        output_of(Command::new(common::corestub_bin()).args(gdb_args(dump, Some(vmlinux))));
    assert!(want["comm"].contains("swapper"), "{all}");

    let server = Server::start(&served, &tmp.join("db.sqlite"));
    server.wait_ready(&format!("/buildid/{id}/debuginfo"));
    let env_args = |urls: &str| {
        vec![
            "env".to_string(),
            format!("DEBUGINFOD_URLS={urls}"),
            format!("DEBUGINFOD_CACHE_PATH={}", cache.display()),
            common::corestub_bin().to_string(),
        ]
    };
    let mut args = env_args(&format!("http://127.0.0.1:{PORT}"));
    args.extend(gdb_args(&lone_dump, None));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (got, all) = output_of(&mut server.inside(&argv));
    for (label, _) in STEPS {
        assert_eq!(
            got.get(*label),
            want.get(*label),
            "step {label} differs:\n{all}"
        );
    }
    let cached = cache.join(&id).join("debuginfo");
    assert_eq!(
        std::fs::metadata(&cached).map(|m| m.len()).ok(),
        std::fs::metadata(vmlinux).map(|m| m.len()).ok(),
        "complete file in the cache"
    );
    let leftovers: Vec<_> = std::fs::read_dir(cache.join(&id))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "debuginfo")
        .collect();
    assert!(leftovers.is_empty(), "partial files left: {leftovers:?}");

    // second start: no server at all, the cache answers
    let mut args = env_args("");
    args.extend(gdb_args(&lone_dump, None));
    let (again, all) = output_of(Command::new(&args[0]).args(&args[1..]));
    assert_eq!(again.get("comm"), want.get("comm"), "{all}");
    drop(server);

    // a server without this build-id: a warning naming it, session still up
    let empty = Server::start(&tmp.join("empty"), &tmp.join("db2.sqlite"));
    let t0 = Instant::now();
    while empty.status("/metrics") != 200 {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "empty debuginfod never started"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let args = [
        "env".to_string(),
        format!("DEBUGINFOD_URLS=http://127.0.0.1:{PORT}"),
        format!("DEBUGINFOD_CACHE_PATH={}", tmp.join("cache2").display()),
        common::corestub_bin().to_string(),
        "info".into(),
        lone_dump.display().to_string(),
    ];
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = common::run(&mut empty.inside(&argv));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "info still works: {stderr}");
    assert!(
        stderr.contains(&id) && stderr.contains("404"),
        "the warning names the build-id and the server's answer: {stderr}"
    );
    assert!(!tmp.join("cache2").join(&id).join("debuginfo").exists());
}

fn tempdir() -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let d = base.join(format!("{TEST}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
