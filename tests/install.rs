//! `cargo install` gives a complete tool (issue 22): the installed binary,
//! run from elsewhere with a fresh HOME, writes its built-in GDB scripts to
//! the cache and `corestub gdb` runs `dmesg` and `ps` with them; the man
//! pages render without groff warnings; the completions are valid shell;
//! `--version` names the gdbstub patch level.
//!
//! Cost: `cargo install --profile P --target-dir T` builds in the target
//! directory this test was built in (T, profile P as in T/P/corestub), so
//! cargo finds every unit fresh and only copies the binary (~1 s). cargo
//! releases its build-directory lock while tests run; should a cargo hold
//! it, the install would wait forever on itself, so on cargo's "Blocking
//! waiting for file lock on build directory" the test starts over in its
//! own directory, CARGO_TARGET_TMPDIR/install-target (a whole build the
//! first time, then ~1 s).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{corestub_bin, fixture, run};

/// A directory removed when the test ends (also when it fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p =
            std::env::temp_dir().join(format!("corestub-install-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The target directory and cargo profile this test's corestub was built
/// with: `T/debug/corestub` is profile `dev`, `T/NAME/corestub` profile NAME.
fn build_location() -> (PathBuf, String) {
    let exe = Path::new(corestub_bin());
    let profile_dir = exe.parent().unwrap();
    let profile = match profile_dir.file_name().unwrap().to_str().unwrap() {
        "debug" => "dev".to_string(),
        other => other.to_string(),
    };
    (profile_dir.parent().unwrap().to_path_buf(), profile)
}

/// Result of one `cargo install` attempt.
enum Attempt {
    Done,
    /// The target directory is locked (by the cargo running this test).
    Locked,
}

/// `cargo install --path REPO --root ROOT --locked --offline` into
/// `target_dir`. Panics with cargo's output if it fails.
fn cargo_install(root: &Path, target_dir: &Path, profile: &str) -> Attempt {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut child = Command::new(&cargo)
        .args(["install", "--path", env!("CARGO_MANIFEST_DIR")])
        .arg("--root")
        .arg(root)
        .arg("--target-dir")
        .arg(target_dir)
        .args(["--profile", profile, "--locked", "--offline"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cargo}: {e}"));
    let mut log = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.contains("waiting for file lock on build directory") {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("install: {} is locked: {line}", target_dir.display());
            return Attempt::Locked;
        }
        log.push_str(&line);
        log.push('\n');
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "cargo install failed ({status}):\n{log}");
    Attempt::Done
}

/// Installs the crate into `root`; returns ROOT/bin/corestub.
fn install(root: &Path) -> PathBuf {
    let (target_dir, profile) = build_location();
    let t0 = std::time::Instant::now();
    if let Attempt::Locked = cargo_install(root, &target_dir, &profile) {
        let own = Path::new(env!("CARGO_TARGET_TMPDIR")).join("install-target");
        if let Attempt::Locked = cargo_install(root, &own, &profile) {
            panic!("{} is locked too", own.display());
        }
    }
    eprintln!("install: cargo install took {:?}", t0.elapsed());
    let bin = root.join("bin/corestub");
    assert!(bin.is_file(), "cargo install made no {}", bin.display());
    bin
}

fn truth(set: &str) -> serde_json::Value {
    let p = corestub::fixtures::root().join(set).join("truth.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

#[test]
fn cargo_install_gives_a_working_corestub_gdb() {
    let test = "cargo_install_gives_a_working_corestub_gdb";
    let root = TempDir::new("root");
    let bin = install(&root.0);

    let version = run(Command::new(&bin).arg("--version"));
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(
        version.starts_with(&format!("corestub {} ", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );

    let (Some(dump), Some(vmlinux)) = (
        fixture("x86_64-6.1", "kdump-zlib-d31.kdump", test),
        fixture("x86_64-6.1", "vmlinux", test),
    ) else {
        return;
    };
    let truth = truth("x86_64-6.1");
    let marker = truth["boots"]["kdump"]["marker"].as_str().unwrap();
    let comm = truth["boots"]["kdump"]["processes"][0]["comm"]
        .as_str()
        .unwrap();

    // Another directory, and a HOME with nothing in it: the scripts can
    // come neither from the source tree nor from an earlier run's cache.
    let home = TempDir::new("home");
    let cwd = TempDir::new("cwd");
    let t0 = std::time::Instant::now();
    let out = run(Command::new(&bin)
        .current_dir(&cwd.0)
        .env("HOME", &home.0)
        .env_remove("XDG_CACHE_HOME")
        .env_remove("CORESTUB_SCRIPTS")
        .arg("gdb")
        .arg("--vmlinux")
        .arg(&vmlinux)
        .arg(&dump)
        .arg("--")
        .args(common::GDB_BATCH)
        .args(["-ex", "echo @@STEP dmesg\\n", "-ex", "dmesg"])
        .args(["-ex", "echo @@STEP ps\\n", "-ex", "ps"])
        .args(["-ex", "echo @@STEP end\\n"]));
    eprintln!(
        "install: corestub gdb -batch -ex dmesg -ex ps took {:?}",
        t0.elapsed()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let steps = common::split_steps(&stdout);
    let dmesg = &steps["dmesg"];
    let ps = &steps["ps"];
    assert!(out.status.success(), "{all}");
    assert!(
        !all.contains("Undefined command"),
        "scripts not loaded:\n{all}"
    );
    assert!(dmesg.contains(marker), "dmesg lacks {marker}:\n{all}");
    assert!(
        ps.lines()
            .any(|l| l.split_whitespace().last() == Some(comm)),
        "ps lacks {comm}:\n{all}"
    );

    // The scripts GDB ran are the built-in copy, written to the cache
    // beside the GDB index corestub wrote for the vmlinux and `pycache`
    // (corestub.py keeps corestub_common's compiled copy there).
    let cache = home.0.join(".cache/corestub");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&cache)
        .unwrap_or_else(|e| panic!("no scripts cache {}: {e}", cache.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name() != Some("pycache".as_ref()))
        .collect();
    dirs.sort();
    assert_eq!(
        dirs.first(),
        Some(&cache.join("gdb-index")),
        "the GDB index cache: {dirs:?}"
    );
    dirs.remove(0);
    assert_eq!(
        dirs.len(),
        1,
        "one scripts directory, no leftovers: {dirs:?}"
    );
    let name = dirs[0].file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with(&format!("scripts-{}-", env!("CARGO_PKG_VERSION"))),
        "{name}"
    );
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("gdb-scripts");
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        let cached = dirs[0].join(e.file_name());
        assert_eq!(
            std::fs::read(&cached).ok(),
            Some(std::fs::read(e.path()).unwrap()),
            "{} differs from the source tree",
            cached.display()
        );
    }
}

/// `corestub man` pages (the top one and every command's) render with
/// `man -l` and no groff warning; `corestub man CMD` is the page `--dir`
/// writes for it.
#[test]
fn man_pages_render_without_warnings() {
    let dir = TempDir::new("man");
    let out = run(Command::new(corestub_bin())
        .args(["man", "--dir"])
        .arg(&dir.0));
    assert!(out.status.success(), "{out:?}");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pages.sort();
    let commands = ["serve", "gdb", "lldb", "info", "man", "completions"];
    assert_eq!(pages.len(), commands.len() + 1, "{pages:?}");
    for page in &pages {
        let out = Command::new("man")
            .args(["--warnings=w", "-l"])
            .arg(page)
            .env("LC_ALL", "C.UTF-8")
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .output()
            .unwrap_or_else(|e| panic!("cannot run man (install man-db): {e}"));
        let text = String::from_utf8_lossy(&out.stdout);
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{}: {warnings}", page.display());
        assert!(warnings.is_empty(), "{}: {warnings}", page.display());
        assert!(text.contains("NAME") && text.contains("SYNOPSIS"), "{text}");
    }
    let top = std::fs::read_to_string(dir.0.join("corestub.1")).unwrap();
    for c in commands {
        let file = dir.0.join(format!("corestub-{c}.1"));
        let page = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(top.contains(&format!("corestub\\-{c}(1)")), "{top}");
        let single = run(Command::new(corestub_bin()).args(["man", c]));
        assert_eq!(single.stdout, page, "corestub man {c}");
    }
    let gdb = std::fs::read_to_string(dir.0.join("corestub-gdb.1")).unwrap();
    assert!(gdb.contains("CORESTUB_SCRIPTS"), "{gdb}");
    let bad = run(Command::new(corestub_bin()).args(["man", "nosuch"]));
    assert!(!bad.status.success());
}

/// `corestub completions bash` is valid bash that knows the commands and
/// their options; every other shell gets a script too.
#[test]
fn completions_are_valid_shell() {
    let out = run(Command::new(corestub_bin()).args(["completions", "bash"]));
    assert!(out.status.success(), "{out:?}");
    let script = String::from_utf8_lossy(&out.stdout);
    for word in ["gdb", "serve", "--vmlinux", "--threads", "completions"] {
        assert!(script.contains(word), "bash completion lacks {word}");
    }
    let mut bash = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut bash.stdin.take().unwrap(), &out.stdout).unwrap();
    let checked = bash.wait_with_output().unwrap();
    assert!(
        checked.status.success() && checked.stderr.is_empty(),
        "bash -n: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = run(Command::new(corestub_bin()).args(["completions", shell]));
        assert!(out.status.success() && out.stdout.len() > 100, "{shell}");
    }
}

/// `corestub --version`: our version, and the vendored gdbstub's with the
/// patches vendor/gdbstub/PATCHES.md lists (1 to N, N its last entry).
#[test]
fn version_names_the_gdbstub_patch_level() {
    let out = run(Command::new(corestub_bin()).arg("--version"));
    let text = String::from_utf8_lossy(&out.stdout);
    let patches = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/vendor/gdbstub/PATCHES.md"
    ))
    .unwrap();
    let last = (1..1000)
        .take_while(|n| patches.contains(&format!("\n{n}. ")))
        .last()
        .expect("PATCHES.md lists patches");
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
    let gdbstub = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"gdbstub\""))
        .and_then(|p| p.split("version = \"").nth(1))
        .and_then(|v| v.split('"').next())
        .expect("gdbstub in Cargo.lock");
    assert_eq!(
        text.trim(),
        format!(
            "corestub {} (gdbstub {gdbstub} + corestub patches 1-{last})",
            env!("CARGO_PKG_VERSION")
        )
    );
}
