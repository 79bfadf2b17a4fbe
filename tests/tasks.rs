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

/// Undoes RSP run-length encoding ([`common::server::unrle`]) and then
/// binary escaping (`}` then byte ^ 0x20), as GDB does.
fn rsp_decode(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut it = common::server::unrle(body).into_iter();
    while let Some(b) = it.next() {
        out.push(if b == b'}' {
            it.next().unwrap() ^ 0x20
        } else {
            b
        });
    }
    out
}

/// `qXfer:threads:read` (gdbstub patch 8) lists exactly the threads of
/// qfThreadInfo, in order, each with the text qThreadExtraInfo gives it,
/// so GDB can drop its per-thread qThreadExtraInfo round trips.
#[test]
fn thread_list_xml_matches_per_thread_queries() {
    let test = "thread_list_xml_matches_per_thread_queries";
    let (Some(dump), Some(vmlinux)) = (
        fixture("x86_64-6.1", "kdump-zlib-d31.kdump", test),
        fixture("x86_64-6.1", "vmlinux", test),
    ) else {
        return;
    };
    let srv = common::server::Server::start(&dump, &["--vmlinux", vmlinux.to_str().unwrap()]);
    let mut c = srv.connect();
    let sup = c
        .request(b"qSupported:multiprocess+;xmlRegisters=i386")
        .unwrap();
    assert!(
        String::from_utf8_lossy(&sup).contains("qXfer:threads:read+"),
        "{}",
        String::from_utf8_lossy(&sup)
    );
    let mut ids = Vec::new();
    let mut r = c.request(b"qfThreadInfo").unwrap();
    while r.first() == Some(&b'm') {
        ids.extend(
            String::from_utf8_lossy(&r[1..])
                .split(',')
                .map(str::to_string),
        );
        r = c.request(b"qsThreadInfo").unwrap();
    }
    assert!(ids.len() > 70, "CPU and task threads: {ids:?}");

    // read the document the way GDB 13 does, 4 KiB at a time
    let mut doc = Vec::new();
    loop {
        let r = c
            .request(format!("qXfer:threads:read::{:x},1000", doc.len()).as_bytes())
            .unwrap();
        let data = rsp_decode(&r[1..]);
        assert!(data.len() <= 0x1000);
        doc.extend_from_slice(&data);
        match r[0] {
            b'l' => break,
            b'm' => assert!(!data.is_empty()),
            _ => panic!("{}", String::from_utf8_lossy(&r)),
        }
    }
    let doc = String::from_utf8(doc).unwrap();
    let threads: Vec<(&str, &str)> = doc
        .split("<thread id=\"")
        .skip(1)
        .map(|t| {
            let (id, rest) = t.split_once("\">").unwrap();
            (id, rest.split_once("</thread>").unwrap().0)
        })
        .collect();
    // `p<pid>.<tid>` in hex; gdbstub pads qfThreadInfo's to even digits
    let num = |id: &str| -> (u64, u64) {
        let (p, t) = id.trim_start_matches('p').split_once('.').unwrap();
        (
            u64::from_str_radix(p, 16).unwrap(),
            u64::from_str_radix(t, 16).unwrap(),
        )
    };
    assert_eq!(
        threads.iter().map(|t| num(t.0)).collect::<Vec<_>>(),
        ids.iter().map(|i| num(i)).collect::<Vec<_>>(),
        "{doc}"
    );
    let unescape = |s: &str| {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
    };
    for (id, text) in &threads {
        let hex = c
            .request(format!("qThreadExtraInfo,{id}").as_bytes())
            .unwrap();
        let hex = String::from_utf8(rsp_decode(&hex)).unwrap();
        let want: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        assert_eq!(unescape(text).as_bytes(), &want[..], "thread {id}");
    }
    assert!(doc.contains("[panic]"), "{doc}");
    // past the end: an empty last chunk
    let r = c.request(b"qXfer:threads:read::ffffff,1000").unwrap();
    assert_eq!(r, b"l");
}
