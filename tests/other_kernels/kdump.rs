//! Pieces of the in-guest kdump tests (`qemu_other_kdump`,
//! `qemu_other_kdump32`): a foreign architecture's user space and kernel
//! modules for the guest, and the checks every in-guest dump gets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::boot::Console;
use super::fetch::{Kernel, private_apt, remove_stale};
use crate::common;
use common::guest::{Proc, TempDir, cmd_ok, downloaded, extract, have};
use common::{corestub_bin, run};
use serde_json::Value;

/// First kernel boot, crash, capture kernel boot and makedumpfile: a hang
/// guard (about a minute under TCG).
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// Runs the kdump guest `qemu` (no display, no default devices, no
/// reboot; its serial console written to `console`,
/// its stderr to `qemu.err` beside it) until it powers off. The first
/// kernel must have loaded the capture kernel (`KDUMP-LOADED rc=0 1` in
/// its log) and the capture kernel printed `captured`. The console, parsed
/// (checked) and as text.
pub fn run_guest(label: &str, qemu: &mut Command, console: &Path, captured: &str) -> String {
    let err = console.with_file_name("qemu.err");
    let t = Instant::now();
    let mut qemu = Proc::spawn(
        "qemu",
        qemu.args(["-display", "none", "-nodefaults", "-no-reboot"])
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(err).unwrap()),
    );
    let read_console =
        || String::from_utf8_lossy(&std::fs::read(console).unwrap_or_default()).to_string();
    while qemu.alive() {
        let text = read_console();
        // the first kernel's panic() ends so only when no capture kernel
        // took over
        assert!(
            !text.contains("---[ end Kernel panic") && t.elapsed() < RUN_TIMEOUT,
            "{label}: no kdump (or not within {RUN_TIMEOUT:?}); console:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let text = read_console();
    drop(qemu);
    eprintln!("{label}: guest, kdump and capture in {:.1?}", t.elapsed());
    assert!(
        text.contains("KDUMP-LOADED rc=0 1"),
        "{label}: kexec -p did not load the capture kernel; console:\n{text}"
    );
    assert!(
        text.contains(captured),
        "{label}: the capture kernel did not print {captured:?}; console:\n{text}"
    );
    Console::parse(&text, false);
    text
}

/// Puts a finished guest directory `out` in place as `done`, whole; when
/// another run got there first, its copy stays and `out` goes.
pub fn keep(out: &Path, done: &Path) {
    if std::fs::rename(out, done).is_err() {
        let _ = std::fs::remove_dir_all(out);
    }
}

/// `pkgs` of Debian architecture `deb` from `suite` of the machine's
/// Debian mirror (private apt configuration), unpacked together into
/// `to`, which appears whole (a rename) or not at all: with their
/// dependencies ([`depends_closure`]) and whole; or, when `members` (`./path`
/// names) are given, only those of them a package has. Cached: an existing `to` is kept as it is.
pub fn unpacked_packages(
    to: &Path,
    suite: &str,
    deb: &str,
    pkgs: &[&str],
    members: &[String],
) -> Result<(), String> {
    if to.is_dir() {
        return Ok(());
    }
    for tool in ["apt-get", "dpkg-deb", "tar"] {
        if !have(tool, "--version") {
            return Err(format!("{tool} is missing (to fetch {pkgs:?} for {deb})"));
        }
    }
    let parent = to.parent().unwrap();
    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    remove_stale(parent, "packages-work-");
    let work = parent.join(format!("packages-work-{}", std::process::id()));
    let _work = TempDir(work.clone());
    let (debs, tree) = (work.join("debs"), work.join("tree"));
    for d in [&debs, &tree] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let opts = private_apt(&work.join("apt"), suite, deb)?;
    cmd_ok(
        Command::new("apt-get").args(&opts).args(["-q", "update"]),
        &format!("apt-get update ({suite})"),
    )?;
    let pkgs = if members.is_empty() {
        depends_closure(&opts, pkgs, deb)?
    } else {
        pkgs.iter().map(|p| p.to_string()).collect()
    };
    cmd_ok(
        Command::new("apt-get")
            .args(&opts)
            .args(["-q", "download"])
            .args(pkgs.iter().map(|p| format!("{p}:{deb}")))
            .current_dir(&debs),
        &format!("apt-get download {pkgs:?} ({deb})"),
    )?;
    for p in &pkgs {
        let deb = downloaded(&debs, p)?;
        // what a package lacks (a module built into this kernel) is not
        // asked of tar
        let files = super::fetch::deb_files(&deb)?;
        let have: Vec<String> = members
            .iter()
            .filter(|m| files.contains(m))
            .cloned()
            .collect();
        if members.is_empty() || !have.is_empty() {
            extract(&deb, &tree, &have)?;
        }
    }
    if std::fs::rename(&tree, to).is_err() && !to.is_dir() {
        return Err(format!(
            "{} → {}: rename failed",
            tree.display(),
            to.display()
        ));
    }
    Ok(())
}

/// `roots` and what they depend on, recursively, in architecture `deb`:
/// the `Depends:` of `apt-cache depends` that name a real package of that
/// architecture (not a virtual one such as debconf-2.0, not `perl:any`, a
/// tool for the maintainer scripts), alternatives aside. kexec-tools needs
/// it on armhf (its Xen support loads libxenctrl and a dozen more).
fn depends_closure(opts: &[String], roots: &[&str], deb: &str) -> Result<Vec<String>, String> {
    let mut todo: Vec<String> = roots.iter().map(|r| r.to_string()).collect();
    let mut seen: Vec<String> = Vec::new();
    while let Some(p) = todo.pop() {
        if seen.contains(&p) {
            continue;
        }
        let out = Command::new("apt-cache")
            .args(opts)
            .args(["depends", &format!("{p}:{deb}")])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("apt-cache depends {p}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "apt-cache depends {p}:{deb}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let suffix = format!(":{deb}");
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            let Some(d) = l.strip_prefix("  Depends: ") else {
                continue;
            };
            if !d.starts_with('<') && !d.ends_with(":any") {
                todo.push(d.trim_end_matches(suffix.as_str()).to_string());
            }
        }
        seen.push(p);
    }
    Ok(seen)
}

/// A file of an unpacked tree, its symbolic links followed inside the
/// tree (an absolute target is the tree's, never the host's).
pub fn tree_file(root: &Path, path: &str) -> Result<Vec<u8>, String> {
    let mut at = root.join(path.trim_start_matches('/'));
    for _ in 0..16 {
        match std::fs::read_link(&at) {
            Ok(target) if target.is_absolute() => {
                at = root.join(target.strip_prefix("/").unwrap());
            }
            Ok(target) => at = at.parent().unwrap().join(target),
            Err(_) => return std::fs::read(&at).map_err(|e| format!("{}: {e}", at.display())),
        }
    }
    Err(format!("{}: too many links", root.join(path).display()))
}

/// Every shared library (`*.so*`, links resolved) under the tree's `lib/`
/// and `usr/lib/`, gconv modules aside, as initramfs files at their own
/// paths: what the tree's programs load.
pub fn tree_libraries(root: &Path) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = vec![root.join("lib"), root.join("usr/lib")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                if name != "gconv" {
                    dirs.push(p);
                }
            } else if name.contains(".so") {
                out.push((rel.clone(), tree_file(root, &rel)?));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `corestub info --json` of an in-guest dump against the first kernel's
/// console: the CPUs, the panic CPU and PID, the release. The document,
/// for the format's own checks.
pub fn check_info(label: &str, vmlinux: &Path, release: &str, con: &Console, dump: &Path) -> Value {
    let out = run(Command::new(corestub_bin())
        .args(["info", "--json", "--vmlinux"])
        .arg(vmlinux)
        .arg(dump));
    assert!(out.status.success(), "{label}: {out:?}");
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!(
        "{label}: {} / level {} / {} stored pages / PAGING {} / KERNEL_ROOT_FROM {}",
        info["format"],
        info["dump_level"],
        info["stored_pages"],
        info["paging"],
        info["kernel_root_from"]
    );
    assert_eq!(info["cpus"], super::boot::SMP, "{label}: {info:#}");
    assert_eq!(info["panic_cpu"], con.panic_cpu, "{label}: {info:#}");
    assert_eq!(info["panic_pid"], con.panic_pid, "{label}: {info:#}");
    assert_eq!(info["release"], release, "{label}: {info:#}");
    info
}

/// A `corestub gdb` session on an in-guest dump against the console:
/// `info threads` (the panic CPU `[panic]`, a task thread per sleeper),
/// `bt` of the panic CPU reaching `sysrq_handle_crash`, `dmesg` with the
/// marker, `ps` with the first sleeper. `drops_pages_in_use`: makedumpfile
/// filtered out pages in use (task_structs), which corestub must name;
/// the sleepers are then not asserted. Each step's output by name.
pub fn check_gdb(
    label: &str,
    vmlinux: &Path,
    con: &Console,
    dump: &Path,
    drops_pages_in_use: bool,
) -> BTreeMap<String, String> {
    let sleeper = con.sleepers[0];
    let ps = format!("ps {sleeper}");
    let steps = [
        ("threads", "info threads"),
        ("bt", "bt"),
        ("dmesg", "dmesg"),
        ("ps", ps.as_str()),
        ("ps_all", "ps"),
    ];
    let (steps, all) = common::gdb_steps(dump, vmlinux, &steps);
    let step = |s: &str| steps.get(s).cloned().unwrap_or_default();
    assert!(
        step("threads")
            .lines()
            .any(|l| l.contains(&format!("CPU {} ", con.panic_cpu)) && l.contains("[panic]")),
        "{label}: CPU {} is not the [panic] thread:\n{all}",
        con.panic_cpu
    );
    assert!(
        step("bt").contains("sysrq_handle_crash"),
        "{label}: the panic CPU's bt:\n{all}"
    );
    assert!(
        step("dmesg").contains(&con.marker),
        "{label}: dmesg:\n{all}"
    );
    if drops_pages_in_use {
        assert!(
            all.contains("was excluded from the dump (filtered out by its dump level)"),
            "{label}: makedumpfile 1.7.2 was expected to drop task pages here:\n{all}"
        );
        let seen = con
            .sleepers
            .iter()
            .filter(|p| step("threads").contains(&format!("pid {p} sleep")))
            .count();
        eprintln!(
            "{label}: FINDING: makedumpfile 1.7.2 (-d 31) excluded pages in use ({} of {} sleepers listed); corestub names the excluded pages",
            seen,
            con.sleepers.len()
        );
        return steps;
    }
    for p in &con.sleepers {
        assert!(
            step("threads").contains(&format!("pid {p} sleep")),
            "{label}: no task thread for sleeper {p}:\n{all}"
        );
    }
    assert!(
        step("ps").lines().any(
            |l| l.split_whitespace().next() == Some(&sleeper.to_string())
                && l.trim_end().ends_with("sleep")
        ),
        "{label}: ps {sleeper}:\n{all}"
    );
    steps
}

/// An in-guest kdump test case: what [`ready`] needs of it.
pub trait KdumpCase {
    fn label(&self) -> String;
    /// Says loudly why the case did not run (`common::guest::skip`).
    fn skip(&self, why: &str) {
        common::guest::skip(&self.label(), why)
    }
    /// The case's kernel, fetched; `None` when skipped.
    fn kernel(&self) -> Option<Kernel>;
    /// The guest directory holding the capture kernel's dumps, cached or
    /// made now; `None` when skipped.
    fn guest_kdump(&self, k: &Kernel) -> Option<PathBuf>;
}

/// The start every in-guest kdump case shares: one guest at a time (the
/// guard, held for the whole check), GDB present, the case's kernel and
/// its kdump guest directory; `None` when the case was skipped.
pub fn ready<'g>(
    one_guest: &'g Mutex<()>,
    c: &impl KdumpCase,
) -> Option<(MutexGuard<'g, ()>, Kernel, PathBuf)> {
    let one = one_guest.lock().unwrap_or_else(|e| e.into_inner());
    let t0 = Instant::now();
    if !have("gdb", "--version") {
        c.skip("gdb is not installed");
        return None;
    }
    let k = c.kernel()?;
    let g = c.guest_kdump(&k)?;
    let label = c.label();
    eprintln!(
        "{label}: {} kdump ready after {:.1?}",
        k.release,
        t0.elapsed()
    );
    Some((one, k, g))
}
