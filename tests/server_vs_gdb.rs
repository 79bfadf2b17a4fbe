//! One source of kernel knowledge: on every fixture kernel, the server's
//! `monitor ps --json`, `monitor sys --json`, `monitor lsmod --json` and
//! `monitor log --json` agree
//! with the GDB-side readers the gdb-scripts keep for other targets (native
//! cores, QEMU's gdbstub). One `corestub gdb` run per kernel sources
//! tests/server_vs_gdb.py, which writes both sides to a JSON file; this
//! test compares them field by field.
//!
//! Kernels: the 6.1 fixtures (x86_64, arm64) and every guest kernel other
//! tests cached beside them ([`cached_kernels`]: 6.12 from
//! tests/qemu_other_kernel.rs, and whatever the kernel-range tests add), so
//! a new kernel is compared as soon as its dump is cached. Warm cost: one
//! GDB start per kernel (a few seconds each; GDB indexes a new vmlinux
//! once). No downloads: kernels not cached are not made here.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{fixture, gdb_steps};
use serde_json::Value;

/// A kernel to compare on: a label, a dump and its vmlinux.
#[derive(Debug)]
struct FixtureKernel {
    label: String,
    dump: PathBuf,
    vmlinux: PathBuf,
}

/// Dump file names the guest tests write, preferred first.
const GUEST_DUMPS: &[&str] = &["qemu-kdump-zlib.kdump", "qemu.elf"];

/// Every cached guest kernel: `ROOT/SET/RELEASE/vmlinux` with a dump in one
/// of `RELEASE/`'s subdirectories (`guest-v2/qemu.elf`, ...), the newest
/// guest directory first. The checked-in 6.1 sets (a `truth.json` at the
/// set's top) are not guests.
fn cached_kernels() -> Vec<FixtureKernel> {
    let root = corestub::fixtures::root();
    let mut out = Vec::new();
    let Ok(sets) = std::fs::read_dir(&root) else {
        return out;
    };
    let mut sets: Vec<PathBuf> = sets.flatten().map(|e| e.path()).collect();
    sets.sort();
    for set in sets.iter().filter(|s| !s.join("truth.json").exists()) {
        let Ok(releases) = std::fs::read_dir(set) else {
            continue;
        };
        let mut releases: Vec<PathBuf> = releases.flatten().map(|e| e.path()).collect();
        releases.sort();
        for rel in releases {
            let vmlinux = rel.join("vmlinux");
            if !vmlinux.is_file() {
                continue;
            }
            if let Some(dump) = guest_dump(&rel) {
                out.push(FixtureKernel {
                    label: format!(
                        "{}/{}",
                        set.file_name().unwrap().to_string_lossy(),
                        rel.file_name().unwrap().to_string_lossy()
                    ),
                    dump,
                    vmlinux,
                });
            }
        }
    }
    out
}

/// The preferred dump in a release directory's guest subdirectories.
fn guest_dump(release: &Path) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(release)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    // guest-v2 before guest: the newest layout first
    dirs.sort();
    dirs.reverse();
    dirs.iter()
        .flat_map(|d| GUEST_DUMPS.iter().map(move |n| d.join(n)))
        .find(|p| p.is_file())
}

fn kernels(test: &str) -> Vec<FixtureKernel> {
    let mut ks = Vec::new();
    for set in ["x86_64-6.1", "arm64-6.1"] {
        if let (Some(dump), Some(vmlinux)) = (
            fixture(set, "kdump-zlib-d31.kdump", test),
            fixture(set, "vmlinux", test),
        ) {
            ks.push(FixtureKernel {
                label: set.to_string(),
                dump,
                vmlinux,
            });
        }
    }
    let cached = cached_kernels();
    if cached.is_empty() {
        eprintln!(
            "note {test}: no cached guest kernels under {} (tests/qemu_other_kernel.rs makes them)",
            corestub::fixtures::root().display()
        );
    }
    ks.extend(cached);
    ks
}

/// Runs the two readers in one GDB session and returns the report.
fn report(k: &FixtureKernel) -> (Value, String) {
    let out = std::env::temp_dir().join(format!(
        "corestub-server-vs-gdb-{}-{}.json",
        std::process::id(),
        k.label.replace('/', "_")
    ));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/server_vs_gdb.py");
    let set = format!("set $corestub_diff_out = \"{}\"", out.display());
    let src = format!("source {}", script.display());
    let (_, all) = gdb_steps(&k.dump, &k.vmlinux, &[("set", &set), ("diff", &src)]);
    let text = std::fs::read_to_string(&out)
        .unwrap_or_else(|e| panic!("{}: no report ({e}):\n{all}", k.label));
    let _ = std::fs::remove_file(&out);
    (serde_json::from_str(&text).unwrap(), all)
}

fn side<'a>(r: &'a Value, cmd: &str, which: &str, label: &str) -> &'a Value {
    let v = &r[cmd][which];
    match v.get("ok") {
        Some(ok) if !ok.is_null() => ok,
        _ => panic!("{label}: {cmd} {which} side failed: {v}"),
    }
}

/// ps: the same tasks (by address), each with the same fields.
fn compare_ps(label: &str, r: &Value) -> usize {
    let by_task = |which| -> BTreeMap<String, Value> {
        side(r, "ps", which, label)
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["task"].as_str().unwrap().to_string(), t.clone()))
            .collect()
    };
    let (server, gdb) = (by_task("server"), by_task("gdb"));
    assert!(server.len() > 20, "{label}: only {} tasks", server.len());
    assert_eq!(
        server.keys().collect::<Vec<_>>(),
        gdb.keys().collect::<Vec<_>>(),
        "{label}: ps lists different tasks"
    );
    for (addr, s) in &server {
        let g = &gdb[addr];
        for key in [
            "pid",
            "ppid",
            "tgid",
            "cpu",
            "state",
            "st",
            "running_on",
            "kthread",
            "comm",
            "mm",
            "vsz_kb",
            "rss_kb",
        ] {
            assert_eq!(
                s[key], g[key],
                "{label}: ps {key} of task {addr}:\n{s}\n{g}"
            );
        }
        let pct = |v: &Value| v["mem_pct"].as_f64().unwrap();
        assert!(
            (pct(s) - pct(g)).abs() < 0.11,
            "{label}: ps %MEM of task {addr}:\n{s}\n{g}"
        );
        assert_ne!(s["st"], "??", "{label}: unknown state of {addr}: {s}");
    }
    // the order is the server's (PID, CPU, address) on both sides
    let order = |which| -> Vec<String> {
        side(r, "ps", which, label)
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["task"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(order("server"), order("gdb"), "{label}: ps order");
    // every process has resident pages, and no more than it maps
    for s in server
        .values()
        .filter(|t| t["mm"] != "0x0" && t["kthread"] == false)
    {
        let (rss, vsz) = (s["rss_kb"].as_u64().unwrap(), s["vsz_kb"].as_u64().unwrap());
        assert!(
            rss > 0 && rss <= vsz,
            "{label}: RSS {rss} KiB of {vsz}: {s}"
        );
    }
    server.len()
}

/// The RSS counters' kind follows the kernel: percpu_counter[] since 6.2
/// (read from the member's DWARF type, so this checks that reading).
fn check_rss_kind(label: &str, r: &Value) {
    let release = side(r, "sys", "server", label)["release"]
        .as_str()
        .unwrap()
        .to_string();
    let v: Vec<u64> = release
        .split(['.', '-'])
        .take(2)
        .map(|n| n.parse().unwrap_or(0))
        .collect();
    let kind = r["rss_counters"]["ok"].as_str().unwrap_or_default();
    let want = if (v[0], v[1]) >= (6, 2) {
        "percpu_counter"
    } else {
        "atomic_long_t"
    };
    assert!(
        kind.starts_with(want),
        "{label} ({release}): RSS counters {kind:?}"
    );
}

/// sys: every value both sides can know.
fn compare_sys(label: &str, r: &Value) {
    let (s, g) = (
        side(r, "sys", "server", label),
        side(r, "sys", "gdb", label),
    );
    for key in [
        "cpus",
        "crash_time",
        "uptime_seconds",
        "load_average",
        "tasks",
        "nodename",
        "release",
        "version",
        "machine",
        "cpu_mhz",
        "memory_bytes",
        "panic",
    ] {
        assert_eq!(s[key], g[key], "{label}: sys {key}:\n{s}\n{g}");
    }
    assert!(s["tasks"].as_u64().unwrap() > 20, "{label}: {s}");
    assert!(s["panic"].is_string(), "{label}: no panic message: {s}");
}

/// log: the same records, in order.
fn compare_log(label: &str, r: &Value) -> usize {
    let (s, g) = (
        side(r, "log", "server", label),
        side(r, "log", "gdb", label),
    );
    let (s, g) = (s.as_array().unwrap(), g.as_array().unwrap());
    assert!(s.len() > 100, "{label}: {} records", s.len());
    assert_eq!(s.len(), g.len(), "{label}: record counts");
    for (i, (a, b)) in s.iter().zip(g).enumerate() {
        assert_eq!(a, b, "{label}: log record {i}");
    }
    s.len()
}

/// lsmod: the same modules, in the same order, with the same fields; the
/// `lsmod` command and `monitor lsmod` print one line a module.
fn compare_lsmod(label: &str, r: &Value) -> usize {
    let (s, g) = (
        side(r, "lsmod", "server", label),
        side(r, "lsmod", "gdb", label),
    );
    let (s, g) = (s.as_array().unwrap(), g.as_array().unwrap());
    assert!(!s.is_empty(), "{label}: no modules");
    assert_eq!(s, g, "{label}: lsmod server vs GDB-side reader");
    for m in s {
        assert!(m["size"].as_u64().unwrap() > 0, "{label}: {m}");
        assert_eq!(m["state"], "live", "{label}: {m}");
        assert!(m["refs"].as_i64().unwrap() >= 0, "{label}: {m}");
    }
    for key in ["lsmod_text", "monitor_lsmod"] {
        let text = r[key]["ok"].as_str().unwrap_or_default();
        for m in s {
            let (addr, name) = (m["addr"].as_u64().unwrap(), m["name"].as_str().unwrap());
            // addresses print pointer-wide: 8 digits on 32-bit kernels
            let width = if addr <= u64::from(u32::MAX) { 8 } else { 16 };
            let start = format!("{addr:0width$x}  {name} ");
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&start) && l.ends_with(" live")),
                "{label}: {key} lacks {name}:\n{text}"
            );
        }
    }
    s.len()
}

#[test]
fn server_json_matches_gdb_side_readers() {
    let test = "server_json_matches_gdb_side_readers";
    let ks = kernels(test);
    for k in &ks {
        let (r, all) = report(k);
        assert_eq!(
            r["on_corestub"], true,
            "{}: not on corestub?\n{all}",
            k.label
        );
        let tasks = compare_ps(&k.label, &r);
        compare_sys(&k.label, &r);
        check_rss_kind(&k.label, &r);
        let records = compare_log(&k.label, &r);
        let mods = compare_lsmod(&k.label, &r);
        // the `ps` command prints the server's rows on corestub
        let text = r["ps_text"]["ok"].as_str().unwrap_or_default();
        assert_eq!(text.lines().count(), tasks + 1, "{}: ps:\n{text}", k.label);
        eprintln!(
            "{test}: {}: {tasks} tasks, sys, {mods} modules, {records} log records agree",
            k.label
        );
    }
}

#[test]
fn cached_kernel_dirs_are_found() {
    // the helper's shape, on a scratch tree: SET/RELEASE/{vmlinux, guest-*/DUMP}
    let root = std::env::temp_dir().join(format!("corestub-kdirs-{}", std::process::id()));
    let rel = root.join("x86_64-9.9/9.9.1-cloud-amd64");
    std::fs::create_dir_all(rel.join("guest")).unwrap();
    std::fs::create_dir_all(rel.join("guest-v2")).unwrap();
    std::fs::write(rel.join("vmlinux"), b"").unwrap();
    std::fs::write(rel.join("guest/qemu.elf"), b"").unwrap();
    std::fs::write(rel.join("guest-v2/qemu.elf"), b"").unwrap();
    std::fs::write(rel.join("guest-v2/qemu-kdump-zlib.kdump"), b"").unwrap();
    assert_eq!(
        guest_dump(&rel),
        Some(rel.join("guest-v2/qemu-kdump-zlib.kdump"))
    );
    std::fs::remove_file(rel.join("guest-v2/qemu-kdump-zlib.kdump")).unwrap();
    std::fs::remove_file(rel.join("guest-v2/qemu.elf")).unwrap();
    assert_eq!(guest_dump(&rel), Some(rel.join("guest/qemu.elf")));
    std::fs::remove_dir_all(&root).unwrap();
}
