//! The user's macros work through corestub: our gdb-scripts (dmesg, ps,
//! trapinfo, sys, lsmod, modsyms), the kernel's own scripts/gdb (lx-*,
//! $lx_current()) and Documentation/admin-guide/kdump/gdbmacros.txt, on the
//! x86_64 and arm64 kdump fixtures with real GDB. One GDB run per dump.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use common::{fixture, gdb_steps};
use serde_json::Value;

fn truth(set: &str) -> Value {
    let p = corestub::fixtures::root().join(set).join("truth.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The kernel's scripts/gdb + gdbmacros.txt (GPL, used only as a test
/// client): `../shared/fixtures/clients/linux-6.1-gdb-scripts` beside the repo.
fn kernel_scripts(test: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/clients/linux-6.1-gdb-scripts");
    if p.join("vmlinux-gdb.py").is_file() && p.join("gdbmacros.txt").is_file() {
        return Some(p.canonicalize().unwrap());
    }
    let required = std::env::var("CORESTUB_REQUIRE_FIXTURES").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{test}: {} is missing and CORESTUB_REQUIRE_FIXTURES=1",
        p.display()
    );
    eprintln!(
        "SKIP {test}: the kernel's gdb scripts are not at {}",
        p.display()
    );
    None
}

/// crash's ps state for corestub's thread-label letter (ps(1) style).
fn crash_state(letter: &str) -> &'static str {
    match letter {
        "R" => "RU",
        "S" => "IN",
        "D" => "UN",
        "I" => "ID",
        "T" => "ST",
        "t" => "TR",
        "Z" => "ZO",
        "X" => "DE",
        "P" => "PA",
        _ => "??",
    }
}

/// Our `ps` rows: (running mark, pid, cpu, task address, state, comm).
#[derive(Debug)]
struct PsRow {
    running: bool,
    pid: i64,
    task: u64,
    st: String,
    comm: String,
}

fn parse_ps(text: &str) -> Vec<PsRow> {
    let mut rows = Vec::new();
    for line in text.lines() {
        let running = line.starts_with('>');
        let f: Vec<&str> = line.trim_start_matches('>').split_whitespace().collect();
        if f.len() < 9 || f[0] == "PID" {
            continue;
        }
        let (Ok(pid), Ok(task)) = (f[0].parse(), u64::from_str_radix(f[3], 16)) else {
            continue;
        };
        rows.push(PsRow {
            running,
            pid,
            task,
            st: f[4].to_string(),
            comm: f[8..].join(" "),
        });
    }
    rows
}

/// crash's `ps` table in truth/kdump.crash-output.txt: (pid, task, ST).
fn crash_ps(text: &str) -> Vec<(i64, u64, String)> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.contains("PID    PPID  CPU       TASK        ST") {
            inside = true;
            continue;
        }
        if inside {
            let f: Vec<&str> = line.trim_start_matches('>').split_whitespace().collect();
            match (f.first().and_then(|p| p.parse().ok()), f.get(3)) {
                (Some(pid), Some(task)) if f.len() >= 9 => {
                    let Ok(task) = u64::from_str_radix(task, 16) else {
                        break;
                    };
                    out.push((pid, task, f[4].to_string()));
                }
                _ => break,
            }
        }
    }
    out
}

/// crash's `sys` banner lines (KEY: value) from the crash output.
fn crash_sys(text: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for line in text.lines().take(40) {
        if let Some((k, v)) = line.split_once(": ") {
            let k = k.trim();
            if [
                "DATE",
                "UPTIME",
                "LOAD AVERAGE",
                "RELEASE",
                "VERSION",
                "MEMORY",
                "PANIC",
                "CPUS",
            ]
            .contains(&k)
            {
                m.entry(k.to_string()).or_insert(v.trim().to_string());
            }
        }
    }
    m
}

fn sys_map(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Builds a stand-in "virtio.ko" (a relocatable object with one function
/// and one variable) to check that modsyms places module symbols at the
/// module's .text and .data. (Real 6.12 modules, whose section addresses
/// GDB mishandles, are checked by tests/qemu_other_kernel.rs.)
fn fake_module_dir() -> Option<PathBuf> {
    let dir = std::env::temp_dir().join(format!("corestub-scripts-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("kernel/drivers")).ok()?;
    let src = dir.join("fake.c");
    std::fs::write(
        &src,
        "int corestub_fake_sym(int x) { return x + 1; }\nint corestub_fake_data = 5;\n",
    )
    .ok()?;
    let ok = Command::new("cc")
        .args(["-c", "-g", "-O1", "-o"])
        .arg(dir.join("kernel/drivers/virtio.ko"))
        .arg(&src)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("note: no C compiler: modsyms is checked without a module file");
        return None;
    }
    Some(dir)
}

fn check(set: &str, test: &str) {
    let (Some(dump), Some(vmlinux), Some(ks)) = (
        fixture(set, "kdump-zlib-d31.kdump", test),
        fixture(set, "vmlinux", test),
        kernel_scripts(test),
    ) else {
        return;
    };
    let t = truth(set);
    let boot = &t["boots"]["kdump"];
    let marker = boot["marker"].as_str().unwrap();
    let release = t["kernel_release"].as_str().unwrap();
    let panic_pid = boot["panic_task"]["pid"].as_i64().unwrap();
    let panic_comm = boot["panic_task"]["comm"].as_str().unwrap();
    let procs = boot["processes"].as_array().unwrap().clone();
    let x86 = set.starts_with("x86_64");
    let kodir = if x86 { fake_module_dir() } else { None };

    let mut steps: Vec<(String, String)> = vec![
        ("dmesg".into(), "dmesg".into()),
        ("dmesg_t".into(), "dmesg -T".into()),
        // dmesg's records come from the server (`monitor log --json`) on
        // corestub: it must print exactly what the GDB-side reader does
        ("dmesg_l".into(), "dmesg -l".into()),
        (
            "dmesg_gdb_side".into(),
            "python gdb.write(\"\\n\".join(format_lines(True, recs=gdb_records())) + \"\\n\")"
                .into(),
        ),
        ("threads".into(), "info threads".into()),
        ("ps".into(), "ps".into()),
        ("trapinfo".into(), "trapinfo".into()),
        ("trapinfo_pid".into(), format!("trapinfo {panic_pid}")),
        // the panicking thread's outermost frames: through the syscall
        // entry (entry_unwind.py) to the user pc, then a zero pc
        ("bt_outer".into(), "bt -3".into()),
        ("sys".into(), "sys".into()),
        ("lsmod".into(), "lsmod".into()),
        ("help".into(), "help ps".into()),
    ];
    if let Some(d) = &kodir {
        steps.push(("lsmod_dir".into(), format!("lsmod {}", d.display())));
        steps.push(("modsyms".into(), format!("modsyms {}", d.display())));
        steps.push(("fake_sym".into(), "info address corestub_fake_sym".into()));
        steps.push(("fake_data".into(), "info address corestub_fake_data".into()));
    }
    steps.extend([
        (
            "lx_load".into(),
            format!("source {}", ks.join("vmlinux-gdb.py").display()),
        ),
        ("lx_version".into(), "lx-version".into()),
        ("lx_dmesg".into(), "lx-dmesg".into()),
        ("lx_ps".into(), "lx-ps".into()),
        ("lx_lsmod".into(), "lx-lsmod".into()),
        ("lx_current".into(), "p $lx_current().comm".into()),
        (
            "lx_per_cpu".into(),
            "p $lx_per_cpu(\"runqueues\").curr->pid".into(),
        ),
        // gdbmacros.txt redefines `dmesg` (and trapinfo): it goes last
        (
            "gm_load".into(),
            format!("source {}", ks.join("gdbmacros.txt").display()),
        ),
        ("gm_help".into(), "help dmesg".into()),
        ("gm_dmesg".into(), "dmesg".into()),
    ]);
    let steps_ref: Vec<(&str, &str)> = steps
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let started = std::time::Instant::now();
    let (out, all) = gdb_steps(&dump, &vmlinux, &steps_ref);
    eprintln!("{test}: one GDB run took {:?}", started.elapsed());
    let step = |k: &str| out.get(k).cloned().unwrap_or_default();
    if let Some(d) = &kodir {
        let _ = std::fs::remove_dir_all(d);
    }

    // 1. our dmesg: the marker, and (x86_64) the first kernel's log in order
    let dmesg = step("dmesg");
    assert!(dmesg.contains(marker), "dmesg lacks the marker:\n{all}");
    assert!(dmesg.contains("Kernel panic - not syncing: sysrq triggered crash"));
    if x86 {
        let want = std::fs::read_to_string(
            corestub::fixtures::root()
                .join(set)
                .join("truth/kdump.first-kernel-dmesg.txt"),
        )
        .unwrap();
        let got: Vec<&str> = dmesg.lines().map(str::trim_end).collect();
        let mut at = 0;
        for line in want.lines().map(str::trim_end) {
            match got[at..].iter().position(|g| *g == line) {
                Some(i) => at += i + 1,
                None => panic!("first-kernel log line missing or out of order: {line:?}\n{dmesg}"),
            }
        }
    }
    assert_eq!(
        step("dmesg_l"),
        step("dmesg_gdb_side"),
        "server-side dmesg -l differs from GDB's reading"
    );
    assert!(step("dmesg_l").starts_with("<"), "{all}");
    let first_t = step("dmesg_t")
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(
        first_t.starts_with('[') && first_t.contains(" UTC 2026] "),
        "dmesg -T: {first_t:?}\n{all}"
    );

    // 2. ps: every task, crash's states; cross-checked with corestub's own
    //    task threads (Rust, DWARF) and crash's ps where it has one
    let rows = parse_ps(&step("ps"));
    let threads = step("threads");
    let mut labels = 0;
    for line in threads.lines() {
        let Some(at) = line.find("(pid ") else {
            continue;
        };
        labels += 1;
        // "(pid N comm [S, CPU 2, panic])"
        let rest = &line[at + 5..];
        let pid: i64 = rest.split_whitespace().next().unwrap().parse().unwrap();
        let letter = &rest[rest.find('[').unwrap() + 1..][..1];
        let row = rows
            .iter()
            .find(|r| r.pid == pid && (pid != 0 || r.comm == "[swapper/0]"))
            .unwrap_or_else(|| panic!("pid {pid} missing from ps:\n{}", step("ps")));
        assert_eq!(row.st, crash_state(letter), "state of pid {pid}: {line}");
    }
    let cpus = boot["cpus"].as_u64().unwrap() as usize;
    assert!(labels > 50, "{threads}");
    assert_eq!(
        rows.len(),
        labels + cpus - 1,
        "ps rows = task threads + the other CPUs' idle tasks:\n{}",
        step("ps")
    );
    for p in &procs {
        let pid = p["pid"].as_i64().unwrap();
        let row = rows
            .iter()
            .find(|r| r.pid == pid)
            .unwrap_or_else(|| panic!("{p} missing from ps"));
        assert_eq!(row.comm, p["comm"].as_str().unwrap());
        if let Some(st) = p["state"].as_str() {
            assert_eq!(row.st, crash_state(&st[..1]), "{p}");
        }
    }
    let sh = rows.iter().find(|r| r.pid == panic_pid).unwrap();
    assert!(
        sh.running && sh.st == "RU" && sh.comm == panic_comm,
        "{sh:?}"
    );
    assert_eq!(
        rows.iter().filter(|r| r.running).count(),
        cpus,
        "one '>' per CPU"
    );
    let crash_out = corestub::fixtures::root()
        .join(set)
        .join("truth/kdump.crash-output.txt");
    if let Ok(text) = std::fs::read_to_string(&crash_out) {
        let cps = crash_ps(&text);
        assert!(!cps.is_empty(), "no ps table in {}", crash_out.display());
        for (pid, task, st) in cps {
            let row = rows
                .iter()
                .find(|r| r.task == task)
                .unwrap_or_else(|| panic!("crash's task {task:#x} (pid {pid}) missing"));
            assert_eq!((row.pid, &row.st), (pid, &st), "task {task:#x}");
        }
        // sys: crash's banner values
        let want = crash_sys(&text);
        let got = sys_map(&step("sys"));
        for k in [
            "DATE",
            "UPTIME",
            "LOAD AVERAGE",
            "RELEASE",
            "VERSION",
            "MEMORY",
            "PANIC",
            "CPUS",
        ] {
            assert_eq!(got.get(k), want.get(k), "sys {k}:\n{}", step("sys"));
        }
    }

    // trapinfo of the panicking task: a decoded trap or a clear explanation
    for k in ["trapinfo", "trapinfo_pid"] {
        let ti = step(k);
        assert!(
            ti.contains(&format!("PID {panic_pid} ({panic_comm})")),
            "{k}:\n{all}"
        );
        assert!(
            ti.contains("no trap recorded")
                || ti.contains("no fault recorded")
                || ti.contains("trap:")
                || ti.contains("fault address:"),
            "{k}:\n{ti}"
        );
        assert!(ti.contains("panicking CPU"), "{k}:\n{ti}");
        // sh was in write(2) (syscall 1 on x86_64, 64 on arm64)
        let syscall = if x86 { "orig_ax=1 " } else { "syscallno=64 " };
        assert!(
            ti.contains("entered the kernel with: ") && ti.contains(syscall),
            "{k}:\n{ti}"
        );
    }

    // The backtrace goes through the syscall entry from its pt_regs: the
    // frame after entry_SYSCALL_64 / el0t_64_sync is the user pc trapinfo
    // read from the same pt_regs, and it ends there, with no garbage read
    // off the user stack and no "corrupt stack".
    let user_pc = step("trapinfo")
        .split([' ', '\n'])
        .find_map(|w| w.strip_prefix(if x86 { "ip=" } else { "pc=" }))
        .map(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap())
        .unwrap_or_else(|| panic!("no user pc in trapinfo:\n{}", step("trapinfo")));
    let bt = step("bt_outer");
    let lines: Vec<&str> = bt.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(lines.len(), 3, "bt -3:\n{bt}");
    let entry = if x86 {
        "entry_SYSCALL_64"
    } else {
        "el0t_64_sync"
    };
    assert!(lines[0].contains(&format!(" in {entry} ")), "bt -3:\n{bt}");
    assert!(
        lines[1].contains(&format!("0x{user_pc:016x} in ?? ()")),
        "user pc {user_pc:#x} after {entry}:\n{bt}"
    );
    assert!(
        lines[2].contains("0x0000000000000000 in ?? ()"),
        "bt -3:\n{bt}"
    );
    assert!(!bt.contains("corrupt stack"), "bt -3:\n{bt}");

    // sys banner
    let sys = sys_map(&step("sys"));
    assert_eq!(sys.get("RELEASE").map(String::as_str), Some(release));
    assert_eq!(sys.get("CPUS"), Some(&cpus.to_string()));
    assert!(sys["PANIC"].contains("sysrq triggered crash"), "{sys:?}");
    assert!(sys["DUMPFILE"].ends_with("kdump-zlib-d31.kdump"), "{sys:?}");
    assert!(step("help").contains("crash's `ps`"), "{all}");

    // lsmod agrees with the kernel's lx-lsmod
    let lsmod = step("lsmod");
    let lx_lsmod = step("lx_lsmod");
    let mods: Vec<&str> = lx_lsmod
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert!(mods.contains(&"virtio"), "lx-lsmod:\n{all}");
    for m in &mods {
        assert!(
            lsmod
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(m)),
            "module {m} missing from lsmod:\n{lsmod}"
        );
    }
    if kodir.is_some() {
        let line = step("lsmod_dir")
            .lines()
            .find(|l| l.starts_with("add-symbol-file ") && l.contains("/virtio.ko "))
            .unwrap_or_else(|| panic!("no add-symbol-file line for virtio:\n{all}"))
            .to_string();
        let text_addr = line.split_whitespace().nth(2).unwrap().to_string();
        assert!(line.contains(" -s .data 0x"), "{line}");
        assert!(step("modsyms").contains("loaded 1 module"), "{all}");
        let sym = step("fake_sym");
        let addr = u64::from_str_radix(text_addr.trim_start_matches("0x"), 16).unwrap();
        assert!(
            sym.contains(&format!("{addr:#x}")),
            "corestub_fake_sym should sit at virtio's .text {text_addr}: {sym}\n{all}"
        );
        let data_addr = line
            .split(" -s .data ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap();
        assert!(
            step("fake_data").contains(data_addr),
            "corestub_fake_data should sit at virtio's .data {data_addr}: {}\n{all}",
            step("fake_data")
        );
    }

    // 3. the kernel's scripts/gdb through corestub
    assert!(step("lx_version").contains(release), "{all}");
    assert!(step("lx_dmesg").contains(marker), "lx-dmesg:\n{all}");
    let lx_ps = step("lx_ps");
    for p in &procs {
        let (pid, comm) = (p["pid"].as_i64().unwrap(), p["comm"].as_str().unwrap());
        assert!(
            lx_ps
                .lines()
                .any(|l| l.ends_with(&format!(" {comm}")) && l.contains(&format!(" {pid} "))),
            "lx-ps lacks {pid} {comm}:\n{lx_ps}"
        );
    }
    assert!(
        step("lx_current").contains(&format!("= \"{panic_comm}\"")),
        "$lx_current().comm on the panicking CPU's thread:\n{all}"
    );
    assert!(
        step("lx_per_cpu").contains(&format!("= {panic_pid}")),
        "$lx_per_cpu(\"runqueues\") on the panicking CPU:\n{all}"
    );

    // 4. gdbmacros.txt's dmesg (one packet per byte: slow, but it works);
    //    it replaced ours (its help text says so)
    assert!(
        step("gm_help").contains("print the kernel ring buffer"),
        "gdbmacros did not define dmesg:\n{all}"
    );
    assert!(
        step("gm_dmesg").contains(marker),
        "gdbmacros dmesg lacks the marker:\n{all}"
    );
}

#[test]
fn x86_64_scripts_and_macros() {
    check("x86_64-6.1", "x86_64_scripts_and_macros");
}

#[test]
fn arm64_scripts_and_macros() {
    check("arm64-6.1", "arm64_scripts_and_macros");
}
