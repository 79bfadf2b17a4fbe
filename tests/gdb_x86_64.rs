//! The foundation: stock GDB on real x86_64 dumps through `corestub gdb`.
//! Expected values come from truth.json (crash / in-guest ground truth).

mod common;

use std::path::Path;

use common::{fixture, gdb_steps};
use serde_json::Value;

fn truth() -> Value {
    let p = corestub::fixtures::root().join("x86_64-6.1/truth.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn hex(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

fn check_kdump_boot(file: &str, test: &str) {
    let (Some(dump), Some(vmlinux)) = (
        fixture("x86_64-6.1", file, test),
        fixture("x86_64-6.1", "vmlinux", test),
    ) else {
        return;
    };
    let t = truth();
    let boot = &t["boots"]["kdump"];
    let panic_cpu = boot["panic_cpu"].as_u64().unwrap() as usize;
    let stack = boot["translations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["what"].as_str().unwrap().contains("STACK_END_MAGIC"))
        .unwrap();
    let stack_va = hex(&stack["va"]);
    let user_cpu = 3; // truth cpu_state: CPU 3 runs fixture-spinC in user mode
    let spin = boot["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["comm"] == "fixture-spinC")
        .unwrap();
    let percpu_cmd = format!(
        "p ((struct task_struct *)*(unsigned long *)((char *)&current_task + __per_cpu_offset[{user_cpu}]))->pid"
    );
    let (out, all) = gdb_steps(
        &dump,
        &vmlinux,
        &[
            ("threads", "info threads"),
            ("bt", "bt"),
            ("comm", "p init_task.comm"),
            ("jiffies", "p jiffies"),
            ("banner", "x/s linux_banner"),
            ("stack", &format!("x/gx {stack_va:#x}")),
            ("percpu", &percpu_cmd),
            ("unmapped", "x/gx 0x10"),
            ("after_error", "p jiffies"),
            ("dmesg", "dmesg"),
            ("write", "set var jiffies = 1"),
            ("cont", "continue"),
        ],
    );
    let step = |k: &str| out.get(k).cloned().unwrap_or_default();

    // 1. four CPU threads, in CPU order, the panicking one marked and selected
    let threads = step("threads");
    for cpu in 0..4 {
        assert!(
            threads.contains(&format!("(CPU {cpu} ")),
            "CPU {cpu} missing:\n{all}"
        );
    }
    let cur = threads
        .lines()
        .find(|l| l.starts_with('*'))
        .unwrap_or_else(|| panic!("{all}"));
    assert!(
        cur.starts_with(&format!("* {}", panic_cpu + 1))
            && cur.contains(&format!("CPU {panic_cpu} "))
            && cur.contains("[panic]"),
        "selected thread is not the panicking CPU:\n{threads}"
    );

    // 2. the crash path, in order
    let bt = step("bt");
    let mut pos = 0;
    for f in [
        "__crash_kexec",
        "panic",
        "sysrq_handle_crash",
        "__handle_sysrq",
        "write_sysrq_trigger",
        "proc_reg_write",
        "vfs_write",
        "ksys_write",
        "do_syscall_64",
    ] {
        let at = bt[pos..]
            .find(&format!(" {f} ("))
            .or_else(|| bt[pos..].find(&format!(" {f}.")))
            .unwrap_or_else(|| panic!("frame {f} missing or out of order in:\n{bt}"));
        pos += at + 1;
    }

    // 3. data through the page tables
    assert!(step("comm").contains("\"swapper/0"), "{all}");
    let jiffies = boot["jiffies_at_crash"].as_u64().unwrap();
    assert!(step("jiffies").contains(&format!("= {jiffies}")), "{all}");
    assert!(
        step("banner").contains(t["kernel_release"].as_str().unwrap()),
        "{all}"
    );
    assert!(
        step("stack").contains("0x0000000057ac6e9d"),
        "vmalloc stack: {all}"
    );
    assert!(
        step("percpu").contains(&format!("= {}", spin["pid"])),
        "per-CPU current_task of CPU {user_cpu}: {all}"
    );

    // 4. dmesg: marker and the panic line
    let dmesg = step("dmesg");
    assert!(
        dmesg.contains(boot["marker"].as_str().unwrap()),
        "marker missing"
    );
    assert!(dmesg.contains("Kernel panic - not syncing: sysrq triggered crash"));

    // 5. unreadable memory is an error, and the server keeps serving
    assert!(
        all.contains("Cannot access memory at address 0x10"),
        "{all}"
    );
    assert!(
        step("after_error").contains(&format!("= {jiffies}")),
        "{all}"
    );

    // writes and resumption are refused without hanging or crashing
    assert!(!all.contains("Remote connection closed"), "{all}");
}

#[test]
fn elf_vmcore_end_to_end() {
    check_kdump_boot("elf-d31.vmcore", "elf_vmcore_end_to_end");
}

#[test]
fn kdump_zlib_end_to_end() {
    check_kdump_boot("kdump-zlib-d31.kdump", "kdump_zlib_end_to_end");
}

/// The formats matrix: every other file of the same boot passes the same
/// checks (threads, panic backtrace, data, dmesg, errors).
#[test]
fn other_formats_end_to_end() {
    for f in [
        "kdump-lzo-d31.kdump",
        "kdump-zstd-d31.kdump",
        "kdump-snappy-d31.kdump",
        "flat-zlib-d31.flat",
    ] {
        check_kdump_boot(f, "other_formats_end_to_end");
    }
}

#[test]
fn dump_files_untouched() {
    // Runs a full session and compares size, mtime and content hashes.
    let test = "dump_files_untouched";
    let (Some(dump), Some(vmlinux)) = (
        fixture("x86_64-6.1", "elf-d31.vmcore", test),
        fixture("x86_64-6.1", "vmlinux", test),
    ) else {
        return;
    };
    let before = common::file_fingerprint(&dump);
    let (_out, _all) = gdb_steps(
        &dump,
        &vmlinux,
        &[("bt", "bt"), ("write", "set var jiffies = 5")],
    );
    assert_eq!(before, common::file_fingerprint(&dump));
    let _ = Path::new("");
}
