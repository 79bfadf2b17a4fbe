//! The client matrix: every GDB (13 from the host, 16 and 18 from Debian
//! 13) and every LLDB (14, 19, 22) through `corestub gdb --gdb` / `corestub
//! lldb --lldb` on the x86_64 and arm64 kdump boots. Clients run in
//! parallel threads, one session each per check. Expected values come
//! from truth.json.
//!
//! GDB: the CPU threads with the panicking one selected, the crash path's
//! `bt`, `p` of a global, our `dmesg`, `ps` and `task PID` scripts (their
//! Python runs in each GDB's own interpreter), the task's user page,
//! `monitor sys`, and an MI session. LLDB: `thread list`, an expression,
//! a memory read and `bt` (on x86_64 only its first frame with LLDB <= 19:
//! see [`whole_function_ranges`]). Memory reads go as binary `x` packets for the clients that
//! know them (GDB >= 16.3, LLDB >= 20: our qSupported offers
//! `binary-upload+`) and as `m` for the others; both give the same bytes.

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::clients::{self, Client, Kind};
use common::{GDB_BATCH, fixture, split_steps, step_args};
use serde_json::Value;

/// One boot of the fixtures and what its GDB checks expect.
struct Boot {
    set: &'static str,
    dump: PathBuf,
    vmlinux: PathBuf,
    truth: Value,
    /// The crash path, innermost first, as `bt` prints it.
    crash_path: &'static [&'static str],
}

impl Boot {
    fn open(set: &'static str, crash_path: &'static [&'static str], test: &str) -> Option<Boot> {
        let dump = fixture(set, "elf-d31.vmcore", test)?;
        let vmlinux = fixture(set, "vmlinux", test)?;
        let truth = fixture(set, "truth.json", test)?;
        let truth = serde_json::from_str(&std::fs::read_to_string(truth).unwrap()).unwrap();
        Some(Boot {
            set,
            dump,
            vmlinux,
            truth,
            crash_path,
        })
    }

    fn kdump(&self) -> &Value {
        &self.truth["boots"]["kdump"]
    }

    fn panic_cpu(&self) -> u64 {
        self.kdump()["panic_cpu"].as_u64().unwrap()
    }

    fn jiffies(&self) -> u64 {
        self.kdump()["jiffies_at_crash"].as_u64().unwrap()
    }

    /// A fixture process and a user address of its own with what `x/...`
    /// must show there: x86_64's marker page, arm64's busybox ELF header.
    fn user_page(&self) -> (u64, String, String, String) {
        let procs = self.kdump()["processes"].as_array().unwrap();
        for p in procs {
            let pid = p["pid"].as_u64().unwrap();
            let comm = p["comm"].as_str().unwrap().to_string();
            if let (Some(va), Some(want)) =
                (p["user_va"].as_str(), p["user_page_starts_with"].as_str())
            {
                return (pid, comm, format!("x/s {va}"), want.to_string());
            }
            let elf_header = p["user_translations_from_pagemap"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|t| {
                    t["content"]
                        .as_str()
                        .is_some_and(|c| c.contains("ELF header"))
                });
            if let Some(t) = elf_header {
                let va = t["va"].as_str().unwrap();
                return (
                    pid,
                    comm,
                    format!("x/4xb {va}"),
                    "0x7f\t0x45\t0x4c\t0x46".into(),
                );
            }
        }
        panic!(
            "{}: no process with a known user page in truth.json",
            self.set
        )
    }
}

const X86_64_CRASH_PATH: &[&str] = &[
    "__crash_kexec",
    "panic",
    "sysrq_handle_crash",
    "__handle_sysrq",
    "write_sysrq_trigger",
    "proc_reg_write",
    "vfs_write",
    "ksys_write",
    "do_syscall_64",
];
const ARM64_CRASH_PATH: &[&str] = &[
    "__crash_kexec",
    "panic",
    "sysrq_handle_crash",
    "__handle_sysrq",
    "write_sysrq_trigger",
];

/// Whether `client` reads memory with `x` when the server offers
/// `binary-upload+`: GDB from 16.3 (16.1 and 16.2 have the packet but
/// probe it differently), LLDB from 20.
fn reads_binary(client: &Client) -> bool {
    let v = client.version_number();
    match client.kind {
        Kind::Gdb => v >= (16, 3),
        Kind::Lldb => v.0 >= 20,
    }
}

/// Runs `child` to its end, failing the test when it outlives `limit` (a
/// hang, not slowness: see HANG_GUARD). Returns (stdout, stderr).
fn wait_output(mut child: std::process::Child, limit: Duration, what: &str) -> (String, String) {
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let err = String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned();
            panic!("{what} did not finish in {limit:?}:\n{err}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (
        String::from_utf8_lossy(&reader.join().unwrap()).into_owned(),
        String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned(),
    )
}

/// A whole batch session may take a few HANG_GUARDs: GDB indexes a
/// 590 MB vmlinux first, and other tests share the 2 cores.
const SESSION_LIMIT: Duration = Duration::from_secs(600);

fn gdb_session(client: &Client, boot: &Boot) {
    let start = Instant::now();
    let (pid, comm, user_cmd, user_want) = boot.user_page();
    let steps: Vec<(&str, String)> = vec![
        // first, so that nothing read this memory before: the packets
        // GDB sends for it are logged
        ("debug_on", "set debug remote 1".into()),
        ("banner", "x/s linux_banner".into()),
        ("debug_off", "set debug remote 0".into()),
        ("threads", "info threads".into()),
        ("bt", "bt".into()),
        ("jiffies", "p jiffies".into()),
        ("dmesg", "dmesg".into()),
        ("ps", "ps".into()),
        ("task", format!("task {pid}")),
        ("user", user_cmd),
        ("monitor", "monitor sys".into()),
    ];
    let mut cmd = client.corestub();
    cmd.arg("--vmlinux")
        .arg(&boot.vmlinux)
        .arg(&boot.dump)
        .arg("--")
        .args(GDB_BATCH);
    for (label, c) in &steps {
        cmd.args(step_args(label, c));
    }
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let what = format!("{} on {}", client.name, boot.set);
    let (stdout, stderr) = wait_output(child, SESSION_LIMIT, &what);
    let out = split_steps(&stdout);
    let step = |k: &str| out.get(k).cloned().unwrap_or_default();
    let all = format!("{stdout}\n--- stderr ---\n{}", tail(&stderr, 60));

    let threads = step("threads");
    for cpu in 0..4 {
        assert!(
            threads.contains(&format!("(CPU {cpu} ")),
            "CPU {cpu} missing:\n{all}"
        );
    }
    let panic_cpu = boot.panic_cpu();
    let selected = threads
        .lines()
        .find(|l| l.starts_with('*'))
        .unwrap_or_default();
    assert!(
        selected.contains(&format!("CPU {panic_cpu} ")) && selected.contains("[panic]"),
        "selected thread is not the panicking CPU {panic_cpu}:\n{all}"
    );
    assert_in_order(&step("bt"), boot.crash_path, " ", &all);
    assert!(
        step("jiffies").contains(&format!("= {}", boot.jiffies())),
        "{all}"
    );
    let release = boot.truth["kernel_release"].as_str().unwrap();
    assert!(step("banner").contains(release), "{all}");
    assert!(
        step("dmesg").contains(boot.kdump()["marker"].as_str().unwrap()),
        "dmesg lacks the marker:\n{all}"
    );
    let ps = step("ps");
    assert!(
        ps.lines()
            .any(|l| l.contains(&format!(" {pid} ")) && l.contains(&comm)),
        "ps lacks {pid} {comm}:\n{all}"
    );
    assert!(
        step("task").contains(&format!("task {pid} is thread")),
        "{all}"
    );
    assert!(
        step("user").contains(&user_want),
        "pid {pid}'s page:\n{all}"
    );
    // monitor answers arrive on GDB's stderr
    assert!(
        stderr.contains(&format!("RELEASE: {release}")),
        "monitor sys:\n{all}"
    );

    // the packets of the linux_banner read (`set debug remote 1` logs them
    // to stderr as "Sending packet: $x..." / "$m...")
    let sent_x = reads_sent(&stderr, "Sending packet: $x") > 0;
    let sent_m = reads_sent(&stderr, "Sending packet: $m") > 0;
    if reads_binary(client) {
        assert!(sent_x, "{} did not read with `x`:\n{all}", client.version);
    } else {
        assert!(
            sent_m && !sent_x,
            "{} did not read with `m`:\n{all}",
            client.version
        );
    }
    eprintln!(
        "{}: {} batch session in {:.1} s ({} reads)",
        client.name,
        boot.set,
        start.elapsed().as_secs_f64(),
        if sent_x { "x" } else { "m" }
    );
}

/// How many memory reads of at least one byte a packet log shows, each
/// logged as `PREFIX` + `ADDR,LEN#`. LLDB <= 19 probe `x0,0` for a packet
/// of their own: not a read.
fn reads_sent(log: &str, prefix: &str) -> usize {
    log.split(prefix)
        .skip(1)
        .filter(|rest| {
            let len = rest.split('#').next().and_then(|p| p.split_once(','));
            len.is_some_and(|(addr, len)| {
                addr.bytes().all(|b| b.is_ascii_hexdigit())
                    && u64::from_str_radix(len, 16).is_ok_and(|n| n > 0)
            })
        })
        .count()
}

/// Each of `names` appears in `text` after the one before (as ` NAME (`
/// or `{sep}NAME`).
fn assert_in_order(text: &str, names: &[&str], sep: &str, all: &str) {
    let mut pos = 0;
    for f in names {
        let at = [format!("{sep}{f} ("), format!("{sep}{f}.")]
            .iter()
            .filter_map(|p| text[pos..].find(p.as_str()))
            .min()
            .unwrap_or_else(|| panic!("frame {f} missing or out of order in:\n{all}"));
        pos += at + 1;
    }
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// An MI session as IDE front ends hold it: commands on stdin, each result
/// record parsed by its token.
fn gdb_mi_session(client: &Client, boot: &Boot) {
    let mut cmd = client.corestub();
    cmd.arg("--vmlinux")
        .arg(&boot.vmlinux)
        .arg(&boot.dump)
        .args(["--", "-nx", "-q", "--interpreter=mi3"]);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(
            b"1-thread-info\n2-stack-list-frames\n3-data-evaluate-expression jiffies\n\
              4-data-read-memory-bytes &init_task.comm 16\n5-gdb-exit\n",
        )
        .unwrap();
    drop(stdin);
    let what = format!("{} MI on {}", client.name, boot.set);
    let (stdout, stderr) = wait_output(child, SESSION_LIMIT, &what);
    let all = format!("{stdout}\n--- stderr ---\n{}", tail(&stderr, 40));
    let result = |token: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{token}^")))
            .unwrap_or_else(|| panic!("no result for {token}:\n{all}"))
            .to_string()
    };
    let threads = result("1");
    assert!(threads.starts_with("done,threads=["), "{all}");
    for cpu in 0..4 {
        assert!(
            threads.contains(&format!("CPU {cpu} ")),
            "CPU {cpu}:\n{all}"
        );
    }
    assert!(
        threads.contains(&format!("current-thread-id=\"{}\"", boot.panic_cpu() + 1)),
        "{all}"
    );
    let frames = result("2");
    assert!(frames.starts_with("done,stack=["), "{all}");
    let funcs: Vec<&str> = frames
        .split("func=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    let mut pos = 0;
    for f in boot.crash_path {
        let at = funcs[pos..]
            .iter()
            .position(|g| g == f || g.starts_with(&format!("{f}.")))
            .unwrap_or_else(|| panic!("{f} missing or out of order in {funcs:?}:\n{all}"));
        pos += at + 1;
    }
    assert_eq!(
        result("3"),
        format!("done,value=\"{}\"", boot.jiffies()),
        "{all}"
    );
    // "swapper/0" in hex: contents="737761707065722f30..."
    assert!(
        result("4").contains("contents=\"737761707065722f30"),
        "{all}"
    );
    assert!(result("5").starts_with("exit"), "{all}");
}

fn lldb_session(client: &Client, boot: &Boot) {
    let start = Instant::now();
    let bt = if whole_function_ranges(client, boot) {
        "bt 1"
    } else {
        "bt"
    };
    // `bt` last: the rest is quick, and after LLDB 14's and 19's x86_64
    // backtrace their expressions failed ("Couldn't dematerialize a result
    // variable")
    let cmds = [
        "thread list",
        // `jiffies` is a linker-script alias without a DWARF type of its
        // own (LLDB prints it as `void *`); jiffies_64 is the same word
        "expression jiffies_64",
        "log enable gdb-remote packets",
        "memory read -s1 -c16 &init_task.comm",
        "log disable gdb-remote packets",
        bt,
    ];
    let mut cmd = client.corestub();
    cmd.arg("--vmlinux")
        .arg(&boot.vmlinux)
        .arg(&boot.dump)
        .args(["--", "-b", "--no-lldbinit"]);
    for c in cmds {
        cmd.arg("-o").arg(c);
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let what = format!("{} on {}", client.name, boot.set);
    // LLDB 14 needs minutes for the x86_64 backtrace on a busy 2-core
    // machine (its own DWARF work): lldb.rs says more.
    let (stdout, stderr) = wait_output(child, Duration::from_secs(900), &what);
    let all = format!("{stdout}\n--- stderr ---\n{}", tail(&stderr, 60));
    let out = lldb_steps(&format!("{stdout}\n{stderr}"));
    let step = |k: &str| out.get(k).cloned().unwrap_or_default();

    let threads = step("thread list");
    for cpu in 0..4u64 {
        let tid = cpu + 1;
        assert!(
            threads.contains(&format!("tid = {tid}, "))
                || threads.contains(&format!("tid = {tid:#06x}, ")),
            "CPU {cpu} missing:\n{all}"
        );
    }
    let tid = boot.panic_cpu() + 1;
    let selected = threads
        .lines()
        .find(|l| l.starts_with("* thread"))
        .unwrap_or_default();
    assert!(
        selected.contains(&format!("tid = {tid},"))
            || selected.contains(&format!("tid = {tid:#06x},")),
        "selected thread is not the panicking CPU:\n{all}"
    );
    // every LLDB names the threads from the stop replies (gdbstub patch 12)
    assert!(
        selected.contains(&format!("name = 'CPU {} ", boot.panic_cpu()))
            && selected.contains("[panic]'"),
        "the panicking CPU's thread is not named:\n{all}"
    );
    // LLDB shows frames as vmlinux`NAME; `bt 1` shows the first
    let frames = if bt == "bt" { 3 } else { 1 };
    let mut pos = 0;
    let bt = step(bt);
    for f in &boot.crash_path[..frames] {
        let at = bt[pos..]
            .find(&format!("`{f}"))
            .unwrap_or_else(|| panic!("frame {f} missing or out of order in:\n{all}"));
        pos += at + 1;
    }
    assert!(
        step("expression jiffies_64").contains(&format!(" = {}", boot.jiffies())),
        "{all}"
    );
    let read = step("memory read -s1 -c16 &init_task.comm");
    assert!(read.contains("swapper/0"), "{all}");
    // LLDB 22 replays its packet history when the log is enabled: the
    // reads of the whole session count
    let sent_x = reads_sent(&read, "send packet: $x") > 0;
    let sent_m = reads_sent(&read, "send packet: $m") > 0;
    if reads_binary(client) {
        assert!(sent_x, "{} did not read with `x`:\n{all}", client.version);
    } else {
        assert!(
            sent_m && !sent_x,
            "{} did not read with `m`:\n{all}",
            client.version
        );
    }
    eprintln!(
        "{}: {} batch session in {:.1} s ({} reads)",
        client.name,
        boot.set,
        start.elapsed().as_secs_f64(),
        if sent_x { "x" } else { "m" }
    );
}

/// Whether `client` takes a function split by GCC into hot and `.cold`
/// parts (the x86_64 fixture kernel has 2,413; the arm64 one none) as one
/// range from the lowest address to the highest: LLDB <= 19 do
/// (`image lookup -v` on `__handle_sysrq`: 3.4 MB, where LLDB 22 shows
/// two ranges) and their x86_64 unwinder then inspects that whole span,
/// so the crash path's `bt` takes many minutes of LLDB's own CPU with no
/// packet sent. Such a client unwinds only the first frame here;
/// tests/lldb.rs waits for LLDB 14's whole x86_64 backtrace.
fn whole_function_ranges(client: &Client, boot: &Boot) -> bool {
    boot.set.starts_with("x86_64") && client.version_number().0 < 20
}

/// LLDB's batch output split at its `(lldb) CMD` echoes, by command.
fn lldb_steps(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut map = std::collections::BTreeMap::new();
    let mut cur = String::from("prelude");
    let mut buf = String::new();
    for line in text.lines() {
        if let Some(cmd) = line.strip_prefix("(lldb) ") {
            let prev = std::mem::replace(&mut cur, cmd.to_string());
            map.insert(prev, std::mem::take(&mut buf));
        } else {
            buf.push_str(line);
            buf.push('\n');
        }
    }
    map.insert(cur, buf);
    map
}

fn boots(test: &str) -> Vec<Boot> {
    [
        Boot::open("x86_64-6.1", X86_64_CRASH_PATH, test),
        Boot::open("arm64-6.1", ARM64_CRASH_PATH, test),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn matrix(kind: Kind, test: &str, session: impl Fn(&Client, &Boot) + Sync) {
    let boots = boots(test);
    if boots.is_empty() {
        return;
    }
    let clients = clients::clients(kind, test);
    let names: Vec<&str> = clients.iter().map(|c| c.name.as_str()).collect();
    eprintln!("{test}: {names:?}");
    clients::for_each(&clients, |c| {
        for b in &boots {
            session(c, b);
        }
    });
}

#[test]
fn every_gdb_batch_session() {
    matrix(Kind::Gdb, "every_gdb_batch_session", gdb_session);
}

#[test]
fn every_gdb_mi_session() {
    matrix(Kind::Gdb, "every_gdb_mi_session", gdb_mi_session);
}

#[test]
fn every_lldb_session() {
    matrix(Kind::Lldb, "every_lldb_session", lldb_session);
}
