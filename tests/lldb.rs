//! Real LLDB in batch mode through `corestub lldb` on the x86_64 and arm64
//! kdump-compressed dumps: threads, the panicking CPU's registers, the
//! crash backtrace and kernel memory. One LLDB launch per architecture.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{corestub_bin, fixture};
use serde_json::Value;

fn have_lldb(test: &str) -> bool {
    let ok = Command::new("lldb")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let required = std::env::var("CORESTUB_REQUIRE_FIXTURES").is_ok_and(|v| v == "1");
        assert!(!required, "{test}: lldb is not installed");
        eprintln!("SKIP {test}: lldb not installed (apt-get install lldb)");
    }
    ok
}

/// Runs `corestub lldb VMLINUX DUMP -- -b -o CMD...` with a time limit and
/// returns each command's output, keyed by the command (LLDB echoes every
/// command as `(lldb) CMD`).
fn lldb_batch(dump: &Path, vmlinux: &Path, cmds: &[&str]) -> (BTreeMap<String, String>, String) {
    let mut args: Vec<String> = vec![
        "lldb".into(),
        "--vmlinux".into(),
        vmlinux.display().to_string(),
        dump.display().to_string(),
        "--".into(),
        "-b".into(),
        "--no-lldbinit".into(),
    ];
    for c in cmds {
        args.push("-o".into());
        args.push(c.to_string());
    }
    let out_path = std::env::temp_dir().join(format!(
        "corestub-lldb-{}-{}.out",
        std::process::id(),
        dump.parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
    ));
    let out_file = std::fs::File::create(&out_path).unwrap();
    let mut child = Command::new(corestub_bin())
        .args(&args)
        .stdin(Stdio::null())
        .stdout(out_file.try_clone().unwrap())
        .stderr(out_file)
        .spawn()
        .expect("run corestub lldb");
    // LLDB 14 needs minutes for the x86_64 backtrace on a busy 2-core
    // machine (its own DWARF work, not the server); a hang still fails.
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "corestub lldb did not finish in time:\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let all = std::fs::read_to_string(&out_path).unwrap();
    let _ = std::fs::remove_file(&out_path);
    let mut map = BTreeMap::new();
    let mut cur = String::from("prelude");
    let mut buf = String::new();
    for line in all.lines() {
        if let Some(cmd) = line.strip_prefix("(lldb) ") {
            map.insert(
                std::mem::replace(&mut cur, cmd.to_string()),
                std::mem::take(&mut buf),
            );
        } else {
            buf.push_str(line);
            buf.push('\n');
        }
    }
    map.insert(cur, buf);
    (map, all)
}

fn check(
    set: &str,
    pc_name: &str,
    pc_index: usize,
    test: &str,
) -> (BTreeMap<String, String>, String) {
    let (Some(dump), Some(vmlinux)) = (
        fixture(set, "kdump-zlib-d31.kdump", test),
        fixture(set, "vmlinux", test),
    ) else {
        return Default::default();
    };
    if !have_lldb(test) {
        return Default::default();
    }
    let truth: Value = serde_json::from_str(
        &std::fs::read_to_string(corestub::fixtures::root().join(set).join("truth.json")).unwrap(),
    )
    .unwrap();
    let panic_cpu = truth["boots"]["kdump"]["panic_cpu"].as_u64().unwrap() as usize;
    let saved_pc = corestub::dump::open(&dump).unwrap().notes.cpus[panic_cpu].regs[pc_index];

    let reg_cmd = format!("register read {pc_name}");
    let (out, all) = lldb_batch(
        &dump,
        &vmlinux,
        &[
            "thread list",
            &reg_cmd,
            "bt",
            "memory read -s1 -c16 &init_task.comm",
        ],
    );
    let step = |k: &str| out.get(k).cloned().unwrap_or_default();

    // four CPU threads (tid = CPU + 1), the panicking one selected
    let threads = step("thread list");
    for cpu in 0..4 {
        assert!(
            threads.contains(&format!("tid = {}, ", cpu + 1))
                || threads.contains(&format!("tid = {:#06x}, ", cpu + 1)),
            "CPU {cpu} missing:\n{all}"
        );
    }
    let selected = threads
        .lines()
        .find(|l| l.starts_with("* thread"))
        .unwrap_or_else(|| panic!("no selected thread:\n{all}"));
    let want_tid = panic_cpu + 1;
    assert!(
        selected.contains(&format!("tid = {want_tid},"))
            || selected.contains(&format!("tid = {want_tid:#06x},")),
        "selected thread is not CPU {panic_cpu}:\n{threads}"
    );
    // thread names from qThreadStopInfo / the stop reply (gdbstub patch 12)
    assert!(
        selected.contains(&format!("name = 'CPU {panic_cpu} ")) && selected.contains("[panic]'"),
        "the panicking CPU's thread is not named:\n{threads}"
    );
    for cpu in 0..4 {
        assert!(
            threads.contains(&format!("name = 'CPU {cpu} ")),
            "CPU {cpu} not named:\n{threads}"
        );
    }

    // the saved program counter, as the dump's note holds it
    let regs = step(&reg_cmd);
    assert!(
        regs.contains(&format!("{pc_name} = {saved_pc:#018x}")),
        "{pc_name} is not {saved_pc:#x}:\n{all}"
    );

    // kernel memory through the page tables
    let comm = step("memory read -s1 -c16 &init_task.comm");
    assert!(comm.contains("swapper/0"), "{all}");

    (out, all)
}

#[test]
fn lldb_x86_64_kdump() {
    let (out, all) = check("x86_64-6.1", "rip", 16, "lldb_x86_64_kdump");
    if out.is_empty() {
        return;
    }
    let bt = &out["bt"];
    let mut pos = 0;
    for f in ["__crash_kexec", "panic", "sysrq_handle_crash"] {
        let at = bt[pos..]
            .find(&format!("`{f}"))
            .unwrap_or_else(|| panic!("frame {f} missing or out of order in:\n{all}"));
        pos += at + 1;
    }
}

#[test]
fn lldb_arm64_kdump() {
    let (out, all) = check("arm64-6.1", "pc", 32, "lldb_arm64_kdump");
    if out.is_empty() {
        return;
    }
    // Return addresses on the stack carry PAC bits; LLDB strips them with
    // the code_mask register (our pauth_cmask, altname code_mask).
    let bt = &out["bt"];
    let mut pos = 0;
    for f in ["__crash_kexec", "panic", "sysrq_handle_crash"] {
        let at = bt[pos..]
            .find(&format!("`{f}"))
            .unwrap_or_else(|| panic!("frame {f} missing or out of order in:\n{all}"));
        pos += at + 1;
    }
}
