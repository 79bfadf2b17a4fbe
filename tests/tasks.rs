//! Every kernel task is a thread, with its own registers and address space.

mod common;

use common::{fixture, gdb_steps};
use serde_json::Value;

fn truth(set: &str) -> Value {
    let p = corestub::fixtures::root().join(set).join("truth.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

const COUNT_PY: &str = r#"python tt = gdb.lookup_type("struct task_struct")
off = [f.bitpos // 8 for f in tt.fields() if f.name == "tasks"][0]
head = int(gdb.parse_and_eval("&init_task")) + off
p = int(gdb.parse_and_eval("init_task.tasks.next"))
n = 1  # init_task itself
while p != head and n < 1000000:
    n += 1
    p = int(gdb.Value(p - off).cast(tt.pointer())["tasks"]["next"])
print("TASKCOUNT %d" % n)"#;

/// Splits `thread apply all bt` output into (header, frames) blocks.
fn bt_blocks(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        if line.starts_with("Thread ") {
            out.push((line.to_string(), Vec::new()));
        } else if line.starts_with('#')
            && let Some(b) = out.last_mut()
        {
            b.1.push(line.to_string());
        }
    }
    out
}

#[test]
fn x86_64_tasks_are_threads() {
    let test = "x86_64_tasks_are_threads";
    let (Some(elf), Some(vmlinux)) = (
        fixture("x86_64-6.1", "elf-d31.vmcore", test),
        fixture("x86_64-6.1", "vmlinux", test),
    ) else {
        return;
    };
    let t = truth("x86_64-6.1");
    let procs = t["boots"]["kdump"]["processes"].as_array().unwrap().clone();
    let mut steps: Vec<(String, String)> = vec![
        ("threads".into(), "info threads".into()),
        ("count".into(), COUNT_PY.into()),
        ("bt".into(), "thread apply all bt".into()),
    ];
    for p in &procs {
        steps.push((format!("task{}", p["pid"]), format!("task {}", p["pid"])));
        steps.push((
            format!("page{}", p["pid"]),
            format!("x/s {}", p["user_va"].as_str().unwrap()),
        ));
    }
    let steps_ref: Vec<(&str, &str)> = steps
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let (out, all) = gdb_steps(&elf, &vmlinux, &steps_ref);
    let step = |k: &str| out.get(k).cloned().unwrap_or_default();

    // 1. one task thread per task, counted independently by walking the list
    let count: usize = step("count")
        .lines()
        .find_map(|l| l.strip_prefix("TASKCOUNT ")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count:\n{all}"));
    let threads = step("threads");
    let task_threads = threads.lines().filter(|l| l.contains("(pid ")).count();
    assert_eq!(
        task_threads, count,
        "task threads vs tasks in the dump:\n{threads}"
    );
    for p in &procs {
        let name = format!("pid {} {} [", p["pid"], p["comm"].as_str().unwrap());
        assert!(threads.contains(&name), "{name} missing:\n{threads}");
    }

    // 2. backtraces of sleeping tasks reach a sensible base, symbolised
    let bases = [
        "ret_from_fork",
        "kthread",
        "entry_SYSCALL_64",
        "do_syscall_64",
    ];
    let blocks = bt_blocks(&step("bt"));
    let sleeping: Vec<_> = blocks
        .iter()
        .filter(|(h, _)| h.contains("(pid ") && [" [S", " [D", " [I"].iter().any(|s| h.contains(s)))
        .collect();
    assert!(
        sleeping.len() > 50,
        "only {} sleeping tasks:\n{all}",
        sleeping.len()
    );
    let good = sleeping
        .iter()
        .filter(|(_, frames)| {
            let base = frames
                .iter()
                .position(|f| bases.iter().any(|b| f.contains(&format!(" {b} ("))));
            base.is_some_and(|i| frames[..=i].iter().all(|f| !f.contains(" ?? (")))
        })
        .count();
    assert!(
        good * 100 >= sleeping.len() * 95,
        "{good} of {} sleeping tasks have a full symbolised stack:\n{}",
        sleeping.len(),
        step("bt")
    );
    let sleeper = blocks
        .iter()
        .find(|(h, _)| h.contains("fixture-sleepA"))
        .unwrap_or_else(|| panic!("no fixture-sleepA block"));
    assert!(
        sleeper
            .1
            .iter()
            .any(|f| f.contains("schedule") || f.contains("nanosleep")),
        "{:?}",
        sleeper.1
    );

    // 3. each process's own page at the same address
    for p in &procs {
        let want = p["user_page_starts_with"].as_str().unwrap();
        let got = step(&format!("page{}", p["pid"]));
        assert!(got.contains(want), "pid {}: {got}\n{all}", p["pid"]);
    }
}

#[test]
fn x86_64_excluded_user_page_is_an_error() {
    let test = "x86_64_excluded_user_page_is_an_error";
    let (Some(kdump), Some(vmlinux)) = (
        fixture("x86_64-6.1", "kdump-zlib-d31.kdump", test),
        fixture("x86_64-6.1", "vmlinux", test),
    ) else {
        return;
    };
    let (out, all) = gdb_steps(
        &kdump,
        &vmlinux,
        &[
            ("task", "task 119"),
            ("page", "x/s 0x5a5a5a5a0000"),
            ("after", "p init_task.comm"),
        ],
    );
    assert!(out["task"].contains("task 119 is thread"), "{all}");
    assert!(
        all.contains("Cannot access memory at address 0x5a5a5a5a0000"),
        "{all}"
    );
    assert!(out["after"].contains("swapper/0"), "{all}");
}

#[test]
fn x86_64_qemu_tasks_read_their_own_pages() {
    let test = "x86_64_qemu_tasks_read_their_own_pages";
    let (Some(elf), Some(vmlinux)) = (
        fixture("x86_64-6.1", "qemu-panic.elf", test),
        fixture("x86_64-6.1", "vmlinux", test),
    ) else {
        return;
    };
    let t = truth("x86_64-6.1");
    let procs = t["boots"]["qemu"]["processes"].as_array().unwrap().clone();
    let mut steps = Vec::new();
    for p in &procs {
        steps.push((format!("task{}", p["pid"]), format!("task {}", p["pid"])));
        steps.push((
            format!("page{}", p["pid"]),
            "x/s 0x5a5a5a5a0000".to_string(),
        ));
    }
    let steps_ref: Vec<(&str, &str)> = steps
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let (out, all) = gdb_steps(&elf, &vmlinux, &steps_ref);
    for p in &procs {
        let want = format!("comm={} pid={}", p["comm"].as_str().unwrap(), p["pid"]);
        assert!(
            out[&format!("page{}", p["pid"])].contains(&want),
            "{want}:\n{all}"
        );
    }
}

#[test]
fn arm64_tasks_are_threads() {
    let test = "arm64_tasks_are_threads";
    let (Some(elf), Some(vmlinux)) = (
        fixture("arm64-6.1", "elf-d31.vmcore", test),
        fixture("arm64-6.1", "vmlinux", test),
    ) else {
        return;
    };
    let t = truth("arm64-6.1");
    let procs = t["boots"]["kdump"]["processes"].as_array().unwrap().clone();
    let mut steps: Vec<(String, String)> = vec![
        ("threads".into(), "info threads".into()),
        ("count".into(), COUNT_PY.into()),
    ];
    let mut expect = Vec::new();
    for p in &procs {
        steps.push((format!("task{}", p["pid"]), format!("task {}", p["pid"])));
        for (i, tr) in p["user_translations_from_pagemap"]
            .as_array()
            .map(|a| a.as_slice())
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            let label = format!("p{}_{i}", p["pid"]);
            steps.push((
                label.clone(),
                format!("x/2gx {}", tr["va"].as_str().unwrap()),
            ));
            expect.push((
                label,
                tr["pa"].is_null(),
                tr["va"].as_str().unwrap().to_string(),
            ));
        }
    }
    let steps_ref: Vec<(&str, &str)> = steps
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let (out, all) = gdb_steps(&elf, &vmlinux, &steps_ref);
    let count: usize = out["count"]
        .lines()
        .find_map(|l| l.strip_prefix("TASKCOUNT ")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count:\n{all}"));
    let task_threads = out["threads"]
        .lines()
        .filter(|l| l.contains("(pid "))
        .count();
    assert_eq!(task_threads, count, "{}", out["threads"]);
    for p in &procs {
        let name = format!("pid {} {} [", p["pid"], p["comm"].as_str().unwrap());
        assert!(out["threads"].contains(&name), "{name} missing");
    }
    assert!(!expect.is_empty());
    for (label, unmapped, va) in expect {
        if unmapped {
            assert!(
                all.contains(&format!("Cannot access memory at address {va}")),
                "{va}: {all}"
            );
        } else {
            assert!(
                out[&label].contains(&format!("{va}:")),
                "{label} {va}: {all}"
            );
        }
    }
    // page 0 of busybox: the ELF magic through the task's own TTBR0
    assert!(all.contains("0102464c457f"), "{all}");
}
