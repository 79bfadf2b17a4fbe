//! crash-style monitor commands on real dumps: `vtop` against truth.json,
//! crash's own vtop output and the 833-address crash sample; `sys` and `log`;
//! bad arguments. The bulk calls `monitor::run` directly; one GDB run per
//! architecture checks the same answers arrive through `monitor` (qRcmd).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{corestub_bin, fixture};
use corestub::target::Session;
use corestub::target::monitor::{open_session, run};
use serde_json::{Value, json};

/// Runs `corestub gdb -batch` with GDB commands and returns each one's
/// output by label. GDB prints remote console output (what `monitor`
/// answers) on stderr, so the step markers are written there too.
fn gdb_monitor(
    dump: &Path,
    vmlinux: &Path,
    steps: &[(&str, &str)],
) -> (BTreeMap<String, String>, String) {
    let mut args = common::gdb_batch_args(dump, vmlinux);
    // The first DWARF lookups of `sys` scan compilation units: ~0.3 s in
    // a release build, over GDB's default 2 s timeout in a debug one.
    args.extend(["-iex".into(), "set remotetimeout 30".into()]);
    for (label, cmd) in steps {
        args.push("-ex".into());
        args.push(format!(
            "python import sys; sys.stderr.write('@@STEP {label}\\n')"
        ));
        args.push("-ex".into());
        args.push(cmd.to_string());
    }
    let out = common::run(std::process::Command::new(corestub_bin()).args(&args));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // `monitor` answers and the markers are on stderr; stdout (`p`, `x`
    // answers) is kept whole under "stdout".
    let mut map = common::split_steps(&stderr);
    map.insert("stdout".into(), stdout.to_string());
    (map, format!("{stdout}{stderr}"))
}

fn truth(set: &str) -> Value {
    let p = corestub::fixtures::root().join(set).join("truth.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim().trim_start_matches("0x"), 16)
        .unwrap_or_else(|_| panic!("not hex: {s:?}"))
}

/// The physical address on the second line of our vtop output, or None
/// when it says "(not mapped)" / "(not a canonical address)".
fn vtop_pa(out: &str) -> Option<u64> {
    let line = out.lines().nth(1).unwrap_or_else(|| panic!("{out}"));
    let pa = line.split_whitespace().nth(1)?;
    (!pa.starts_with('(')).then(|| hex(pa))
}

/// One crash vtop block: VA, PA and the levels ("PGD" is crash's PAGE
/// DIRECTORY value; other levels carry entry address and value), plus the
/// struct page address and flags.
#[derive(Debug, Default)]
struct CrashVtop {
    va: u64,
    levels: BTreeMap<String, (Option<u64>, u64)>,
    page: Option<(u64, u64)>,
}

/// Parses every vtop block in a crash transcript.
fn parse_crash_vtops(text: &str) -> Vec<CrashVtop> {
    let mut out: Vec<CrashVtop> = Vec::new();
    let mut lines = text.lines().peekable();
    let mut in_page_table = false;
    while let Some(l) = lines.next() {
        let t = l.trim();
        if t.starts_with("VIRTUAL") && t.contains("PHYSICAL") {
            let next = lines.next().unwrap_or_default();
            // crash's error transcripts ("[/usr/bin/crash] error trace") are not walks
            let Some(va) = next
                .split_whitespace()
                .next()
                .and_then(|w| u64::from_str_radix(w, 16).ok())
            else {
                continue;
            };
            out.push(CrashVtop {
                va,
                ..Default::default()
            });
            in_page_table = false;
            continue;
        }
        let Some(cur) = out.last_mut() else { continue };
        if let Some(v) = t.strip_prefix("PAGE DIRECTORY:") {
            cur.levels.insert("PGD".into(), (None, hex(v)));
        } else if let Some((lvl, rest)) = t.split_once(':')
            && ["PGD", "P4D", "PUD", "PMD", "PTE"].contains(&lvl)
            && let Some((a, v)) = rest.split_once("=>")
        {
            cur.levels.insert(lvl.into(), (Some(hex(a)), hex(v)));
        } else if t.starts_with("PAGE") && t.contains("MAPPING") {
            in_page_table = true;
        } else if in_page_table && !t.is_empty() && cur.page.is_none() {
            let w: Vec<&str> = t.split_whitespace().collect();
            if w.len() >= 6 {
                cur.page = Some((hex(w[0]), hex(w[5])));
            }
            in_page_table = false;
        }
    }
    out
}

fn x86_session(file: &str, test: &str) -> Option<Session> {
    let dump = fixture("x86_64-6.1", file, test)?;
    let vmlinux = fixture("x86_64-6.1", "vmlinux", test)?;
    Some(open_session(&dump, Some(&vmlinux)).unwrap())
}

#[test]
fn vtop_x86_matches_truth_and_crash() {
    let test = "vtop_x86_matches_truth_and_crash";
    for file in ["elf-d31.vmcore", "kdump-zlib-d31.kdump"] {
        let Some(s) = x86_session(file, test) else {
            return;
        };
        // 1. every kernel translation in truth.json
        let t = truth("x86_64-6.1");
        let trans = t["boots"]["kdump"]["translations"].as_array().unwrap();
        for x in trans {
            let (va, pa) = (
                hex(x["va"].as_str().unwrap()),
                hex(x["pa"].as_str().unwrap()),
            );
            let out = run(&s, &format!("vtop {va:#x}"));
            assert_eq!(vtop_pa(&out), Some(pa), "{file} {}:\n{out}", x["what"]);
        }

        // 2. crash's own walks: each level's entry address and value, and
        // the struct page address and flags
        let dir = corestub::fixtures::root().join("x86_64-6.1/truth");
        let mut blocks = Vec::new();
        for f in ["kdump.crash-vtop.txt", "kdump.crash-output.txt"] {
            blocks.extend(parse_crash_vtops(
                &std::fs::read_to_string(dir.join(f)).unwrap(),
            ));
        }
        assert!(blocks.len() >= 4, "crash vtop blocks: {blocks:?}");
        for b in &blocks {
            let out = run(&s, &format!("vtop {:x}", b.va));
            let ours = parse_crash_vtops(&out);
            assert_eq!(ours.len(), 1, "{out}");
            let ours = &ours[0];
            assert_eq!(ours.va, b.va);
            for (lvl, (addr, val)) in &b.levels {
                let (oa, ov) = ours
                    .levels
                    .get(lvl)
                    .unwrap_or_else(|| panic!("{lvl} missing for {:#x}:\n{out}", b.va));
                assert_eq!(ov, val, "{lvl} value of {:#x}:\n{out}", b.va);
                if addr.is_some() {
                    assert_eq!(oa, addr, "{lvl} entry address of {:#x}:\n{out}", b.va);
                }
            }
            assert_eq!(ours.page, b.page, "struct page of {:#x}:\n{out}", b.va);
        }

        // 3. the 833-address crash sample (mapped and unmapped), in batches
        let tsv = std::fs::read_to_string(dir.join("vtop-sample.tsv")).unwrap();
        let rows: Vec<(u64, Option<u64>)> = tsv
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let c: Vec<&str> = l.split('\t').collect();
                (hex(c[0]), (c[1] != "none").then(|| hex(c[1])))
            })
            .collect();
        assert!(rows.len() > 800);
        for chunk in rows.chunks(64) {
            let cmd: Vec<String> = chunk.iter().map(|(va, _)| format!("{va:#x}")).collect();
            let out = run(&s, &format!("vtop {}", cmd.join(" ")));
            let walks: Vec<&str> = out.split("VIRTUAL           PHYSICAL").skip(1).collect();
            assert_eq!(walks.len(), chunk.len(), "{out}");
            for ((va, pa), w) in chunk.iter().zip(&walks) {
                let w = format!("VIRTUAL{w}");
                assert_eq!(vtop_pa(&w), *pa, "{file} {va:#x}:\n{w}");
            }
        }
    }
}

#[test]
fn vtop_arm64_matches_truth() {
    let test = "vtop_arm64_matches_truth";
    for file in ["kdump-zlib-d31.kdump", "elf-d31.vmcore"] {
        let (Some(dump), Some(vmlinux)) = (
            fixture("arm64-6.1", file, test),
            fixture("arm64-6.1", "vmlinux", test),
        ) else {
            return;
        };
        let s = open_session(&dump, Some(&vmlinux)).unwrap();
        let t = truth("arm64-6.1");
        for x in t["boots"]["kdump"]["translations"].as_array().unwrap() {
            let (va, pa) = (
                hex(x["va"].as_str().unwrap()),
                hex(x["pa"].as_str().unwrap()),
            );
            let out = run(&s, &format!("vtop {va:#x}"));
            assert_eq!(vtop_pa(&out), Some(pa), "{file} {}:\n{out}", x["what"]);
            // four levels, each with an entry address, then the struct page
            // at VMEMMAP_START + (pfn - PHYS_OFFSET>>12) * 64
            let ours = &parse_crash_vtops(&out)[0];
            assert_eq!(ours.levels.len(), 4, "{out}");
            let pfn = pa >> 12;
            let phys_offset = hex(t["boots"]["kdump"]["phys_offset"].as_str().unwrap());
            let page = 0xffff_fc00_0000_0000 + (pfn - (phys_offset >> 12)) * 64;
            assert_eq!(ours.page.map(|p| p.0), Some(page), "{out}");
        }
        // ptov inverts the linear map
        let out = run(&s, "ptov 7fddc380");
        assert!(out.contains("ffff00003fddc380"), "{out}");
        let sys = run(&s, "sys");
        assert!(
            sys.contains("sysrq triggered crash") && sys.contains("CPUS: 4"),
            "{sys}"
        );
    }
}

#[test]
fn sys_log_rd_kmem_x86() {
    let test = "sys_log_rd_kmem_x86";
    let Some(s) = x86_session("kdump-zlib-d31.kdump", test) else {
        return;
    };
    let t = truth("x86_64-6.1");
    let sys = run(&s, "sys");
    for want in [
        "        CPUS: 4\n",
        "PANIC: \"Kernel panic - not syncing: sysrq triggered crash\"",
        "DATE: Sat Nov 21 22:45:55 UTC 2026",
        "UPTIME: 00:00:22",
        "RELEASE: 6.1.0-56-cloud-amd64",
        "MEMORY: 511.5 MB",
        "MACHINE: x86_64  (2100 Mhz)",
    ] {
        assert!(sys.contains(want), "{want:?} missing in:\n{sys}");
    }
    let log = run(&s, "log");
    assert!(
        log.contains(t["boots"]["kdump"]["marker"].as_str().unwrap()),
        "marker missing"
    );
    assert!(log.starts_with("[    0.000000] Linux version 6.1.0-56-cloud-amd64"));

    // rd: crash's line for the vmalloc'd stack (STACK_END_MAGIC)
    let rd = run(&s, "rd ffffd286c0398000 2");
    assert_eq!(
        rd,
        "ffffd286c0398000:  0000000057ac6e9d 0000000000000000   .n.W............\n"
    );
    let rd = run(&s, "rd -p -32 23a2000 1");
    assert!(rd.contains("57ac6e9d"), "{rd}");
    let rd = run(&s, "rd -8 linux_banner 13");
    assert!(rd.contains("Linux version"), "{rd}");
    // kmem -p: crash's row for init_task's page
    let km = run(&s, "kmem -p 801aa40");
    assert!(
        km.contains(
            "fffff72c80200680  801a000                0        0  1 fffffc0001000 reserved"
        ),
        "{km}"
    );
    let pv = run(&s, "ptov 23a2000");
    assert!(pv.contains("ffff8977423a2000"), "{pv}");
}

/// `ps` against crash's rows, and `vtop -p PID` / `-c CPU` on each fixture
/// process's user page (truth.json `user_pa`).
#[test]
fn ps_and_user_vtop_x86() {
    let test = "ps_and_user_vtop_x86";
    let Some(s) = x86_session("elf-d31.vmcore", test) else {
        return;
    };
    let ps = run(&s, "ps");
    // crash 8.0.2's rows (its PPID for 121/161 is -1: crash missed them in
    // its PID hash; the parent is init)
    for want in [
        ">       0       0   0  ffffffff98a1aa40  RU   0.0        0        0  [swapper/0]",
        ">       0       0   1  ffff8977412820c0  RU   0.0        0        0  [swapper/1]",
        "        0       0   2  ffff8977412a8000  RU   0.0        0        0  [swapper/2]",
        "        0       0   3  ffff8977412aa0c0  RU   0.0        0        0  [swapper/3]",
        ">     121       1   3  ffff89775ff5c180  RU   0.0      996       60  fixture-spinC",
        ">     161       1   2  ffff8977422b4180  RU   0.0     2260       56  sh",
    ] {
        assert!(ps.contains(want), "{want:?} missing in:\n{ps}");
    }
    assert!(ps.contains("[kthreadd]"), "{ps}");
    let t = truth("x86_64-6.1");
    for p in t["boots"]["kdump"]["processes"].as_array().unwrap() {
        let (pid, va) = (p["pid"].as_u64().unwrap(), p["user_va"].as_str().unwrap());
        let pa = hex(p["user_pa"].as_str().unwrap());
        let out = run(&s, &format!("vtop -p {pid} {va}"));
        assert_eq!(vtop_pa(&out), Some(pa), "pid {pid}:\n{out}");
        assert!(out.contains("(PRESENT|RW|USER|"), "{out}");
        let out = run(
            &s,
            &format!("vtop -p {pid} {}", p["unmapped_va"].as_str().unwrap()),
        );
        assert_eq!(vtop_pa(&out), None, "{out}");
    }
    // CPU 3 ran fixture-spinC (pid 121)
    let out = run(&s, "vtop -c 3 5a5a5a5a0000");
    assert_eq!(vtop_pa(&out), Some(0x7fc6000), "{out}");
    let rd = run(&s, "rd -8 -p 7fc6000 17");
    assert!(rd.contains("FIXTURE-USER-PAG"), "{rd}");
    let sys = run(&s, "sys");
    // TASKS counts what ps lists (crash's own TASKS here is wrong: 6)
    let rows = ps.lines().count() - 1;
    assert!(rows > 50, "{ps}");
    assert!(sys.contains(&format!("       TASKS: {rows}\n")), "{sys}");

    // --json: the same rows and values, with stable keys
    let doc: Value = serde_json::from_str(&run(&s, "ps --json")).unwrap();
    assert_eq!(
        doc["rss_counters"], "atomic_long_t[]",
        "6.1: {}",
        doc["rss_counters"]
    );
    let tasks = doc["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), rows);
    let sh = tasks.iter().find(|t| t["pid"] == 161).unwrap();
    for (k, v) in [
        ("ppid", json!(1)),
        ("cpu", json!(2)),
        ("task", json!("0xffff8977422b4180")),
        ("state", json!("R")),
        ("st", json!("RU")),
        ("running_on", json!(2)),
        ("kthread", json!(false)),
        ("comm", json!("sh")),
        ("vsz_kb", json!(2260)),
        ("rss_kb", json!(56)),
    ] {
        assert_eq!(sh[k], v, "{k}: {sh}");
    }
    // task threads are numbered by the server (--threads cpus: none here)
    assert!(tasks.iter().all(|t| t["thread"].is_null()), "{doc}");
    let sys: Value = serde_json::from_str(&run(&s, "sys --json")).unwrap();
    assert_eq!(sys["tasks"], json!(rows));
    assert_eq!(sys["cpus"], json!(4));
    assert_eq!(sys["release"], "6.1.0-56-cloud-amd64");
    assert_eq!(sys["date"], "Sat Nov 21 22:45:55 UTC 2026");
    // crash's MEMORY: 511.5 MB of present pages
    let mb = sys["memory_bytes"].as_f64().unwrap() / (1 << 20) as f64;
    assert!(
        (mb - 511.5).abs() < 0.05 && sys["memory_source"] == "present",
        "{sys}"
    );
    assert_eq!(
        sys["panic"],
        "Kernel panic - not syncing: sysrq triggered crash"
    );
    let log: Value = serde_json::from_str(&run(&s, "log --json")).unwrap();
    let recs = log["records"].as_array().unwrap();
    assert!(
        recs[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Linux version 6.1.0-56-cloud-amd64"),
        "{}",
        recs[0]
    );
    assert_eq!(recs.len(), run(&s, "log").matches("\n[").count() + 1);
}

/// arm64: ps, vtop -p against the guest's /proc/PID/pagemap, and the same
/// answers through gdb-multiarch's `monitor`.
#[test]
fn ps_user_vtop_and_gdb_arm64() {
    let test = "ps_user_vtop_and_gdb_arm64";
    let (Some(dump), Some(vmlinux)) = (
        fixture("arm64-6.1", "elf-d31.vmcore", test),
        fixture("arm64-6.1", "vmlinux", test),
    ) else {
        return;
    };
    let s = open_session(&dump, Some(&vmlinux)).unwrap();
    let t = truth("arm64-6.1");
    let boot = &t["boots"]["kdump"];
    let ps = run(&s, "ps");
    // CPU 1 ran fxspinner_b in user mode, CPU 3 the panicking sh
    for want in [
        "  125       1   1  ",
        "  200       1   3  ",
        "  124       1  ",
    ] {
        assert!(ps.contains(want), "{want:?} missing in:\n{ps}");
    }
    let marked = |pid: &str| {
        ps.lines()
            .any(|l| l.starts_with('>') && l.split_whitespace().nth(1) == Some(pid))
    };
    assert!(marked("125") && marked("200") && !marked("124"), "{ps}");
    let p = &boot["processes"][0];
    let pid = p["pid"].as_u64().unwrap();
    for x in p["user_translations_from_pagemap"].as_array().unwrap() {
        let va = x["va"].as_str().unwrap();
        let out = run(&s, &format!("vtop -p {pid} {va}"));
        let want = x["pa"].as_str().map(hex);
        assert_eq!(vtop_pa(&out), want, "pid {pid} {va}:\n{out}");
    }

    let trans: Vec<(u64, u64)> = boot["translations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                hex(x["va"].as_str().unwrap()),
                hex(x["pa"].as_str().unwrap()),
            )
        })
        .collect();
    let cmds: Vec<(String, String)> = trans
        .iter()
        .enumerate()
        .map(|(i, (va, _))| (format!("vtop{i}"), format!("monitor vtop {va:#x}")))
        .chain([("sys".to_string(), "monitor sys".to_string())])
        .collect();
    let steps: Vec<(&str, &str)> = cmds.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let (out, all) = gdb_monitor(&dump, &vmlinux, &steps);
    for (i, (_, pa)) in trans.iter().enumerate() {
        let o = out.get(&format!("vtop{i}")).cloned().unwrap_or_default();
        assert_eq!(vtop_pa(&o), Some(*pa), "{o}\n---\n{all}");
    }
    let sys = out.get("sys").cloned().unwrap_or_default();
    assert!(
        sys.contains("sysrq triggered crash") && sys.contains("CPUS: 4"),
        "{all}"
    );
    assert!(sys.contains("RELEASE: 6.1.0-56-cloud-arm64"), "{all}");
}

#[test]
fn bad_arguments_give_usage_never_panic() {
    let test = "bad_arguments_give_usage_never_panic";
    let Some(s) = x86_session("kdump-zlib-d31.kdump", test) else {
        return;
    };
    for (cmd, want) in [
        ("vtop", "usage: vtop"),
        ("vtop -c", "usage: vtop"),
        ("vtop -c 99 0", "no CPU 99"),
        ("vtop -x 0", "unknown option"),
        ("vtop nosuchsymbol_xyz", "neither a hex address"),
        ("vtop 1ffffffffffffffff", "does not fit"),
        ("vtop 0x8000000000000000", "not a canonical address"),
        ("vtop -p 99999 0", "no task with PID 99999"),
        ("vtop -p", "-p needs a PID"),
        ("ps -x", "usage: ps"),
        ("ps --json extra", "usage: ps"),
        ("sys --yaml", "usage: sys"),
        ("log --json -l", "usage: log"),
        ("rd", "usage: rd"),
        ("rd 0 0", "COUNT must be"),
        ("rd 0 99999999", "COUNT must be"),
        ("rd -32 ffffd286c0398001", "not aligned"),
        ("rd 10", "virtual address 0x10"),
        ("rd -p 0xdead00000000", "physical address 0xdead00000000"),
        ("rd 1 2 3", "too many"),
        ("ptov", "usage: ptov"),
        ("kmem", "usage: kmem"),
        ("kmem -s", "usage: kmem"),
        ("help nope", "no command 'nope'"),
        ("sys extra", "usage: sys"),
        ("nope", "unknown monitor command"),
        ("info version", "corestub "),
        ("help", "vtop"),
        ("help vtop", "usage: vtop"),
        (
            "ps",
            "      PID    PPID  CPU       TASK        ST  %MEM      VSZ      RSS  COMM",
        ),
    ] {
        let out = run(&s, cmd);
        assert!(out.contains(want), "{cmd:?}: {want:?} not in:\n{out}");
    }
}

/// The same answers through real GDB's `monitor` command (qRcmd).
#[test]
fn monitor_through_gdb_x86() {
    let test = "monitor_through_gdb_x86";
    let (Some(dump), Some(vmlinux)) = (
        fixture("x86_64-6.1", "kdump-zlib-d31.kdump", test),
        fixture("x86_64-6.1", "vmlinux", test),
    ) else {
        return;
    };
    let t = truth("x86_64-6.1");
    let trans: Vec<(u64, u64)> = t["boots"]["kdump"]["translations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                hex(x["va"].as_str().unwrap()),
                hex(x["pa"].as_str().unwrap()),
            )
        })
        .collect();
    let cmds: Vec<(String, String)> = trans
        .iter()
        .enumerate()
        .map(|(i, (va, _))| (format!("vtop{i}"), format!("monitor vtop {va:#x}")))
        .chain([
            ("sys".to_string(), "monitor sys".to_string()),
            ("log".to_string(), "monitor log".to_string()),
            ("bad".to_string(), "monitor rd".to_string()),
            ("after".to_string(), "p jiffies".to_string()),
        ])
        .collect();
    let steps: Vec<(&str, &str)> = cmds.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let (out, all) = gdb_monitor(&dump, &vmlinux, &steps);
    let step = |k: &str| out.get(k).cloned().unwrap_or_default();
    for (i, (_, pa)) in trans.iter().enumerate() {
        let o = step(&format!("vtop{i}"));
        assert_eq!(vtop_pa(&o), Some(*pa), "{o}\n---\n{all}");
    }
    let sys = step("sys");
    assert!(sys.contains("sysrq triggered crash"), "{all}");
    assert!(sys.contains("CPUS: 4"), "{all}");
    assert!(
        step("log").contains(t["boots"]["kdump"]["marker"].as_str().unwrap()),
        "{all}"
    );
    assert!(step("bad").contains("usage: rd"), "{all}");
    let jiffies = t["boots"]["kdump"]["jiffies_at_crash"].as_u64().unwrap();
    assert!(step("stdout").contains(&format!("= {jiffies}")), "{all}");
}
