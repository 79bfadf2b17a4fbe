//! Shared helpers for end-to-end tests with real debuggers on real dumps.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use corestub::fixtures::fixture;

/// The longest any single step may take before a test calls it hung. Only a
/// hang (a loop on hostile input, a lost reply) crosses it: speed is measured
/// by bench/, never asserted, because a loaded CI machine can be 10x slower.
pub const HANG_GUARD: std::time::Duration = std::time::Duration::from_secs(30);

pub fn corestub_bin() -> &'static str {
    env!("CARGO_BIN_EXE_corestub")
}

/// Runs `corestub gdb` in batch mode with `steps`, each a (label, command).
/// Returns each step's output by label (the text between markers).
pub fn gdb_steps(
    dump: &Path,
    vmlinux: &Path,
    steps: &[(&str, &str)],
) -> (BTreeMap<String, String>, String) {
    let mut args = gdb_batch_args(dump, vmlinux);
    for (label, cmd) in steps {
        args.extend(step_args(label, cmd));
    }
    args.push("-ex".into());
    args.push("echo @@STEP end\\n".into());
    let out = Command::new(corestub_bin())
        .args(&args)
        .output()
        .expect("run corestub gdb");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (split_steps(&String::from_utf8_lossy(&out.stdout)), all)
}

/// GDB in batch mode, no init files, an unlimited page.
pub const GDB_BATCH: [&str; 6] = [
    "-nx",
    "-batch",
    "-iex",
    "set width 0",
    "-iex",
    "set height 0",
];

/// `-ex` arguments that run `cmd` after a `@@STEP label` marker (see
/// [`split_steps`]).
pub fn step_args(label: &str, cmd: &str) -> [String; 4] {
    [
        "-ex".into(),
        format!("echo @@STEP {label}\\n"),
        "-ex".into(),
        cmd.to_string(),
    ]
}

/// `corestub gdb --vmlinux V DUMP -- -nx -batch` with an unlimited page.
pub fn gdb_batch_args(dump: &Path, vmlinux: &Path) -> Vec<String> {
    let mut a = vec![
        "gdb".into(),
        "--vmlinux".into(),
        vmlinux.display().to_string(),
        dump.display().to_string(),
        "--".into(),
    ];
    a.extend(GDB_BATCH.map(String::from));
    a
}

/// Splits text at `@@STEP label` markers into each step's output. GDB
/// writes command output to stdout and errors to stderr with no common
/// clock, so callers split the stream their markers went to.
pub fn split_steps(stdout: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut cur = String::from("prelude");
    let mut buf = String::new();
    for line in stdout.lines() {
        if let Some(at) = line.find("@@STEP ") {
            buf.push_str(&line[..at]);
            let l = &line[at + 7..];
            map.insert(
                std::mem::replace(&mut cur, l.to_string()),
                std::mem::take(&mut buf),
            );
        } else {
            buf.push_str(line);
            buf.push('\n');
        }
    }
    map.insert(cur, buf);
    map
}

/// Runs a command and returns its output, failing the test if it can't start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

pub fn fixture_set(set: &str, names: &[&str], test: &str) -> Option<Vec<PathBuf>> {
    names.iter().map(|n| fixture(set, n, test)).collect()
}

/// SHA-256-free content fingerprint: size + mtime + a strong-enough hash of
/// sampled bytes would miss a change; we hash all bytes with std's SipHash
/// in 1 MiB chunks (fast enough for the fixtures).
pub fn file_fingerprint(p: &Path) -> (u64, std::time::SystemTime, u64) {
    use std::hash::{Hash, Hasher};
    use std::io::Read;
    let meta = std::fs::metadata(p).unwrap();
    let mut f = std::fs::File::open(p).unwrap();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        buf[..n].hash(&mut h);
    }
    (meta.len(), meta.modified().unwrap(), h.finish())
}
pub mod clients;
pub mod guest;
pub mod qemu_dump;
pub mod server;

/// A symbol-file session's backtrace functions against the debug
/// vmlinux's: every physical frame's function the same; the outermost may
/// be an assembler label inside it (kallsyms lists
/// `entry_SYSCALL_64_after_hwframe`, `secondary_startup_64_no_verify` with
/// no size to tell them from the function around them).
pub fn same_functions(ours: &[String], theirs: &[String]) {
    assert!(theirs.len() > 3, "{theirs:?}");
    assert_eq!(ours.len(), theirs.len(), "{ours:?} vs {theirs:?}");
    let last = theirs.len() - 1;
    assert_eq!(ours[..last], theirs[..last]);
    assert!(
        ours[last].starts_with(&theirs[last]),
        "{ours:?} vs {theirs:?}"
    );
}

/// The function of each physical frame of a `bt` (the outermost of its
/// inlined frames, where a debug vmlinux shows them), up to the first
/// frame without a symbol; `.constprop.0`-style suffixes dropped.
pub fn frame_functions(bt: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in bt.lines().filter(|l| l.starts_with('#')) {
        let rest = line.split_once(' ').map_or("", |x| x.1).trim_start();
        let (physical, name) = match rest.split_once(" in ") {
            Some((addr, name)) if addr.starts_with("0x") => (true, name),
            _ => (out.is_empty(), rest),
        };
        let name = name.split([' ', '(', '.']).next().unwrap_or("").to_string();
        if name == "??" || name.is_empty() {
            break;
        }
        match (physical, out.last_mut()) {
            (false, Some(last)) => *last = name,
            _ => out.push(name),
        }
    }
    out
}
