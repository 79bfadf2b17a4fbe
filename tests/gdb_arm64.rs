//! arm64 dumps through gdb-multiarch (picked by `corestub gdb` when the host
//! GDB lacks aarch64): threads, PAC-stripped backtraces, data, dmesg.

mod common;

use common::{fixture, gdb_steps};
use serde_json::Value;

fn truth() -> Value {
    let p = corestub::fixtures::root().join("arm64-6.1/truth.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn check_kdump_boot(file: &str, test: &str) {
    let (Some(dump), Some(vmlinux)) = (
        fixture("arm64-6.1", file, test),
        fixture("arm64-6.1", "vmlinux", test),
    ) else {
        return;
    };
    let t = truth();
    let boot = &t["boots"]["kdump"];
    let panic_cpu = boot["panic_cpu"].as_u64().unwrap() as usize;
    let (out, all) = gdb_steps(
        &dump,
        &vmlinux,
        &[
            ("threads", "info threads"),
            ("bt", "bt"),
            ("comm", "p init_task.comm"),
            ("jiffies", "p jiffies"),
            ("dmesg", "dmesg"),
        ],
    );
    let step = |k: &str| out.get(k).cloned().unwrap_or_default();
    let threads = step("threads");
    let cpu_threads = threads.lines().filter(|l| l.contains("(CPU ")).count();
    assert_eq!(cpu_threads, 4, "{threads}");
    let cur = threads
        .lines()
        .find(|l| l.starts_with('*'))
        .unwrap_or_else(|| panic!("{all}"));
    assert!(
        cur.starts_with(&format!("* {}", panic_cpu + 1)) && cur.contains("[panic]"),
        "{threads}"
    );
    let bt = step("bt");
    let mut pos = 0;
    for f in [
        "__crash_kexec",
        "panic",
        "sysrq_handle_crash",
        "__handle_sysrq",
        "write_sysrq_trigger",
    ] {
        let at = bt[pos..]
            .find(&format!(" {f} ("))
            .unwrap_or_else(|| panic!("frame {f} missing or out of order in:\n{bt}"));
        pos += at + 1;
    }
    // every frame up to the syscall entry symbolised, no PAC-garbled PCs
    let frames: Vec<&str> = bt.lines().filter(|l| l.starts_with('#')).collect();
    let entry = frames
        .iter()
        .position(|f| f.contains("el0t_64_sync") || f.contains("el0_svc"))
        .unwrap_or_else(|| panic!("no syscall entry frame:\n{bt}"));
    for f in &frames[..=entry] {
        assert!(
            !f.contains("?? (") && !f.contains("[PAC]"),
            "unsymbolised frame {f}:\n{bt}"
        );
    }
    assert!(step("comm").contains("\"swapper/0"), "{all}");
    assert!(
        step("jiffies").contains(&format!("= {}", boot["jiffies_at_crash"])),
        "{all}"
    );
    assert!(
        step("dmesg").contains(boot["marker"].as_str().unwrap()),
        "marker"
    );
}

#[test]
fn arm64_kdump_zlib_end_to_end() {
    check_kdump_boot("kdump-zlib-d31.kdump", "arm64_kdump_zlib_end_to_end");
}

#[test]
fn arm64_elf_end_to_end() {
    check_kdump_boot("elf-d31.vmcore", "arm64_elf_end_to_end");
}

#[test]
fn arm64_qemu_elf_serves() {
    let test = "arm64_qemu_elf_serves";
    let (Some(dump), Some(vmlinux)) = (
        fixture("arm64-6.1", "qemu.elf", test),
        fixture("arm64-6.1", "vmlinux", test),
    ) else {
        return;
    };
    let t = truth();
    let boot = &t["boots"]["qemu"];
    let (out, all) = gdb_steps(
        &dump,
        &vmlinux,
        &[
            ("threads", "info threads"),
            ("comm", "p init_task.comm"),
            ("dmesg", "dmesg"),
        ],
    );
    assert_eq!(
        out["threads"]
            .lines()
            .filter(|l| l.contains("(CPU "))
            .count(),
        4,
        "{all}"
    );
    assert!(
        !out["threads"].contains("[panic]"),
        "a running guest has no panic CPU: {all}"
    );
    assert!(out["comm"].contains("\"swapper/0"), "{all}");
    assert!(
        out["dmesg"].contains(boot["marker"].as_str().unwrap()),
        "{all}"
    );
}
