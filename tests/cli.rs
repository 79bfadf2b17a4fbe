//! The command line: `corestub info` on several formats of one boot, and
//! plain GDB against `corestub serve` over TCP with the printed commands.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{corestub_bin, fixture};
use serde_json::Value;

fn info_json(dump: &std::path::Path, vmlinux: &std::path::Path) -> Value {
    let out = Command::new(corestub_bin())
        .args(["info", "--json", "--vmlinux"])
        .arg(vmlinux)
        .arg(dump)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("corestub info --json parses")
}

#[test]
fn info_agrees_across_formats() {
    let test = "info_agrees_across_formats";
    let Some(vmlinux) = fixture("x86_64-6.1", "vmlinux", test) else {
        return;
    };
    let files = [
        "elf-d31.vmcore",
        "kdump-zlib-d31.kdump",
        "flat-zlib-d31.flat",
    ];
    let infos: Vec<Value> = files
        .iter()
        .filter_map(|f| fixture("x86_64-6.1", f, test))
        .map(|p| info_json(&p, &vmlinux))
        .collect();
    assert_eq!(infos.len(), files.len());
    for i in &infos {
        for key in [
            "release",
            "version",
            "cpus",
            "panic_cpu",
            "panic",
            "panic_task",
            "crash_time",
            "kaslr_offset",
        ] {
            assert_eq!(i[key], infos[0][key], "{key} differs: {i:#}");
        }
    }
    let i = &infos[0];
    assert_eq!(i["release"], "6.1.0-56-cloud-amd64");
    assert_eq!(i["cpus"], 4);
    assert_eq!(i["panic_cpu"], 2);
    assert_eq!(
        i["panic"],
        "Kernel panic - not syncing: sysrq triggered crash"
    );
    assert_eq!(i["kaslr_offset"], "0x16000000");
    assert!(i["panic_task"].as_str().unwrap().starts_with("sh (pid 161"));
    assert_eq!(infos[1]["compression"], "zlib");
    assert_eq!(infos[1]["dump_level"], 31);
}

#[test]
fn plain_gdb_against_tcp_server() {
    let test = "plain_gdb_against_tcp_server";
    let (Some(dump), Some(vmlinux)) = (
        fixture("x86_64-6.1", "kdump-zlib-d31.kdump", test),
        fixture("x86_64-6.1", "vmlinux", test),
    ) else {
        return;
    };
    let mut server = Command::new(corestub_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--vmlinux"])
        .arg(&vmlinux)
        .arg(&dump)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The banner names the GDB commands to use.
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let (mut sym, mut target) = (None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(c) = line.strip_prefix("corestub: in GDB: ") {
            sym = Some(c.to_string());
        }
        if let Some(c) = line
            .trim_start_matches("corestub:")
            .trim()
            .strip_prefix("target remote ")
        {
            target = Some(c.to_string());
            break;
        }
    }
    let (sym, target) = (sym.expect("relocation command"), target.expect("address"));
    let out = Command::new("gdb")
        .args(["-nx", "-batch", "-ex", "set confirm off", "-ex", &sym])
        .args(["-ex", &format!("target remote {target}")])
        .args(["-ex", "bt 3", "-ex", "p init_task.comm", "-ex", "p jiffies"])
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        sym.contains("-o 0x16000000") && sym.contains(".data..percpu 0"),
        "{sym}"
    );
    assert!(text.contains("__crash_kexec"), "{text}");
    assert!(text.contains("\"swapper/0"), "{text}");
    assert!(text.contains("4294897880"), "{text}");
}

#[test]
fn mismatched_vmlinux_is_refused() {
    let test = "mismatched_vmlinux_is_refused";
    let (Some(dump), Some(wrong)) = (
        fixture("x86_64-6.1", "elf-d31.vmcore", test),
        fixture("arm64-6.1", "vmlinux", test),
    ) else {
        return;
    };
    let out = Command::new(corestub_bin())
        .args(["info", "--vmlinux"])
        .arg(&wrong)
        .arg(&dump)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not match the dump") && err.contains("build-id"),
        "{err}"
    );
}

#[test]
fn refuses_non_loopback_without_flag() {
    let test = "refuses_non_loopback_without_flag";
    let Some(dump) = fixture("x86_64-6.1", "elf-d31.vmcore", test) else {
        return;
    };
    let out = Command::new(corestub_bin())
        .args(["serve", "--threads", "cpus", "--listen", "0.0.0.0:0"])
        .arg(&dump)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-remote"));
}

/// `corestub gdb` serves GDB's pipe from the session it warmed while GDB
/// loaded symbols (the pipe child hands its stdin/stdout over); a replayed
/// `target remote | ... --handoff-fd N` whose socket is gone serves by itself.
#[test]
fn gdb_pipe_is_handed_to_the_warm_server() {
    let test = "gdb_pipe_is_handed_to_the_warm_server";
    let (Some(vmlinux), Some(dump)) = (
        fixture("x86_64-6.1", "vmlinux", test),
        fixture("x86_64-6.1", "kdump-zlib-d31.kdump", test),
    ) else {
        return;
    };
    let replay = format!(
        "target remote | exec {} serve --stdio --handoff-fd 99 --threads cpus --vmlinux {} {}",
        corestub_bin(),
        vmlinux.display(),
        dump.display()
    );
    let out = Command::new(corestub_bin())
        .env("RUST_LOG", "corestub=info")
        .args(["gdb", "--threads", "cpus", "--vmlinux"])
        .arg(&vmlinux)
        .arg(&dump)
        .args([
            "--",
            "-nx",
            "-batch",
            "-ex",
            "p jiffies",
            "-ex",
            "disconnect",
        ])
        .args(["-ex", &replay, "-ex", "p jiffies"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("serving GDB's pipes handed over"),
        "no hand-off:\n{stderr}"
    );
    // both connections read the dump: the handed-over one and the replay
    let jiffies: Vec<&str> = stdout.lines().filter(|l| l.starts_with("$")).collect();
    assert_eq!(jiffies.len(), 2, "{stdout}\n{stderr}");
    assert!(
        jiffies.iter().all(|l| l.ends_with("= 4294897880")),
        "{stdout}"
    );
    assert!(!stderr.contains("WARN"), "{stderr}");
}
