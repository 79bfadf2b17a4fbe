//! A live QEMU guest served without a dump (`--qemu-ram FILE --qmp SOCKET`).
//!
//! Boots Debian's 6.1 cloud kernel (the fixtures' kernel, KASLR on) under
//! QEMU TCG with a busybox initramfs built here, RAM in a
//! memory-backend-file and two QMP sockets (one for this harness, one for
//! corestub), then:
//! 1. `corestub gdb` (pausing mode): threads = vCPUs (+ tasks, the init
//!    script's sleepers among them), `bt` on each vCPU, `p jiffies` before
//!    and after a `continue` that this harness interrupts with SIGINT to GDB
//!    (GDB sends Ctrl-C, corestub QMP-stops the guest), the marker in our
//!    `dmesg`; the guest is paused while attached and running afterwards.
//! 2. `--no-pause`: jiffies advance between two reads, and QEMU emits no
//!    STOP event meanwhile.
//! 3. SIGINT and SIGTERM to an attached `corestub serve` leave the guest
//!    running.
//! 4. two sessions back to back on one QMP socket, the
//!    second `--no-pause` 8 s after the first ended: after `corestub
//!    serve` attached by GDB, detached and SIGTERMed; after `corestub gdb`
//!    SIGTERMed while GDB is attached (GDB and its pipe child must end
//!    too, the guest run again). The second must get QEMU's greeting.
//! 5. QEMU >= 8.2's `kdump-raw-*` formats (plain diskdump files): the paused
//!    guest dumped as ELF and as each kdump-raw-* QEMU offers; each is read
//!    as a plain kdump-compressed file with its codec, page for page equal
//!    to the ELF, and served to GDB (threads, bt, the marker in dmesg).
//!    Skipped, loudly, on an older QEMU.
//! 6. the protocol as GDB >= 16 speaks it (this machine's GDB may be
//!    older): `corestub serve` offers `binary-upload+` and `x` reads equal
//!    `m` reads of the paused guest; `vCont?` offers steps and a step is
//!    answered by a SIGINT stop with the guest left paused, the connection
//!    serving on; detach resumes the guest. Part 1's GDB also runs `stepi`.
//!
//! Needs qemu-system-x86_64, busybox-static, gdb, the x86_64 vmlinux
//! fixture, and Debian's linux-image-6.1.0-56-cloud-amd64 (fetched with
//! apt-get download into the fixture cache on first use). Missing pieces:
//! SKIP, or failure under CORESTUB_REQUIRE_FIXTURES=1. Every process the
//! test starts is killed by PID on the way out (guards), failure included.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::guest::{
    INIT_PREAMBLE, Proc, TempDir, busybox, cmd_ok, comm, descendants, downloaded, extract, have,
    initramfs, signal, wait_for,
};
use common::qemu_dump::{check_raw_info, compare_notes, compare_pages, raw_formats};
use common::server::{Server, text, x_and_m};
use common::{corestub_bin, gdb_steps};
use corestub::dump;
use corestub::qmp::Qmp;
use serde_json::json;

const TEST: &str = "live_qemu";
const KVER: &str = "6.1.0-56-cloud-amd64";
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

/// Skips loudly, or fails when fixtures are required.
fn skip(why: &str) {
    common::guest::skip(TEST, why)
}

/// The fixtures' kernel image, from Debian's package (cached).
fn vmlinuz() -> Option<PathBuf> {
    let dir = corestub::fixtures::root().join("live");
    let out = dir.join(format!("vmlinuz-{KVER}"));
    if out.is_file() {
        return Some(out);
    }
    std::fs::create_dir_all(&dir).ok()?;
    let pkg = format!("linux-image-{KVER}");
    let fetched = cmd_ok(
        Command::new("apt-get")
            .args(["download", &pkg])
            .current_dir(&dir),
        &format!("apt-get download {pkg}"),
    )
    .and_then(|_| downloaded(&dir, &pkg))
    .and_then(|deb| {
        let member = format!("./boot/vmlinuz-{KVER}");
        let got = extract(&deb, &dir, std::slice::from_ref(&member));
        let _ = std::fs::remove_file(&deb);
        got?;
        std::fs::rename(dir.join(&member), &out).map_err(|e| format!("{member}: {e}"))?;
        let _ = std::fs::remove_dir_all(dir.join("boot"));
        Ok(())
    });
    if let Err(e) = fetched {
        eprintln!("{TEST}: {e}");
        return None;
    }
    Some(out)
}

/// /init: two sleepers, the marker in the kernel log, then a READY line.
fn init_script(marker: &str) -> String {
    format!(
        "{INIT_PREAMBLE}sleep 100001 &
sleep 100002 &
echo {marker} > /dev/kmsg
echo LIVE-READY {marker}
while true; do sleep 1000; done
"
    )
}

fn status(qmp: &Qmp) -> String {
    qmp.query_status().expect("query-status").status
}

/// `$N = VALUE` lines printed by `p jiffies`, in order.
fn printed_values(out: &str) -> Vec<u64> {
    out.lines()
        .filter_map(|l| {
            let (lhs, rhs) = l.split_once(" = ")?;
            lhs.trim()
                .starts_with('$')
                .then(|| rhs.trim().parse().ok())?
        })
        .collect()
}

/// Text between `@@STEP label` markers GDB echoed.
fn step<'a>(out: &'a str, label: &str) -> &'a str {
    let start = format!("@@STEP {label}\n");
    let Some(i) = out.find(&start) else {
        return "";
    };
    let rest = &out[i + start.len()..];
    &rest[..rest.find("@@STEP ").unwrap_or(rest.len())]
}

struct Guest {
    dir: PathBuf,
    ram: PathBuf,
    qmp_corestub: PathBuf,
    vmlinux: PathBuf,
    marker: String,
}

impl Guest {
    /// `corestub SUBCOMMAND --qemu-ram RAM --qmp QMP`: the live guest's
    /// session, to which callers add the rest.
    fn corestub(&self, subcommand: &str) -> Command {
        let mut c = Command::new(corestub_bin());
        c.arg(subcommand)
            .arg("--qemu-ram")
            .arg(&self.ram)
            .arg("--qmp")
            .arg(&self.qmp_corestub);
        c
    }

    /// `corestub gdb` on the guest with `gdb_cmds` as labelled steps;
    /// stdout+stderr go to a file.
    fn gdb(&self, extra: &[&str], steps: &[(&str, &str)], log: &str) -> (Proc, PathBuf) {
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        args.extend([
            "--vmlinux".into(),
            self.vmlinux.display().to_string(),
            "--".into(),
        ]);
        args.extend(common::GDB_BATCH.map(String::from));
        for (label, cmd) in steps {
            args.extend(common::step_args(label, cmd));
        }
        args.push("-ex".into());
        args.push("echo @@STEP end\\n".into());
        let path = self.dir.join(log);
        let f = std::fs::File::create(&path).unwrap();
        let p = Proc::spawn(
            "corestub gdb",
            self.corestub("gdb")
                .args(&args)
                .stdin(Stdio::null())
                .stdout(f.try_clone().unwrap())
                .stderr(f),
        );
        (p, path)
    }
}

/// GDB steps that read `jiffies` a second apart (`j1`, `j2`): on a
/// `--no-pause` session the second is larger.
const JIFFIES_TWICE: &[(&str, &str)] = &[
    ("j1", "p jiffies"),
    ("sleep", "shell sleep 1"),
    ("j2", "p jiffies"),
];

/// How long the second session waits after the first ended (as a user
/// would), longer than corestub's 5 s wait for QEMU's greeting.
const BETWEEN_SESSIONS: Duration = Duration::from_secs(8);

/// A `--no-pause` session `BETWEEN_SESSIONS` after another ended on the
/// same QMP socket: it must get QEMU's greeting and serve (jiffies advance
/// between two reads, no STOP).
fn second_session(qmp: &Qmp, guest: &Guest, log: &str) {
    std::thread::sleep(BETWEEN_SESSIONS);
    qmp.drain_events();
    let (mut gdb, log) = guest.gdb(&["--no-pause"], JIFFIES_TWICE, log);
    let st = gdb.wait_timeout(Duration::from_secs(90));
    let out = std::fs::read_to_string(&log).unwrap();
    assert!(
        !out.contains("no greeting"),
        "the first session left QEMU's monitor busy:\n{out}"
    );
    assert!(
        st.is_some_and(|s| s.success()),
        "second session: {st:?}\n{out}"
    );
    let (j1, j2) = (
        printed_values(step(&out, "j1")),
        printed_values(step(&out, "j2")),
    );
    assert!(
        matches!((j1.first(), j2.first()), (Some(a), Some(b)) if b > a),
        "second session: jiffies must advance: {j1:?} {j2:?}\n{out}"
    );
    let mut events = Vec::new();
    while let Some(ev) = qmp.next_event(Duration::from_millis(100)) {
        events.push(ev.name);
    }
    assert!(!events.iter().any(|e| e == "STOP"), "{events:?}");
}

/// Part 4: two corestub sessions one after the other on the same QMP socket,
/// the second `--no-pause`, `BETWEEN_SESSIONS` after the first ended:
/// a. `corestub serve` (pausing, its stderr a pipe nobody reads any more)
///    attached by GDB, detached, then SIGTERM: it must exit;
/// b. `corestub gdb` (pausing) with GDB attached, then SIGTERM to
///    `corestub gdb`: GDB and its `target remote |` child (which holds the
///    QMP connection) must end with it and the guest run again; an
///    orphaned GDB kept the connection and QEMU greeted no one else.
fn back_to_back_sessions(qmp: &Qmp, guest: &Guest) {
    // a.
    let sock = guest.dir.join("corestub-first.sock");
    let mut serve = Proc::spawn(
        "corestub serve",
        guest
            .corestub("serve")
            .arg("--vmlinux")
            .arg(&guest.vmlinux)
            .arg("--unix")
            .arg(&sock)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    // its banner ends with the `target remote` line; then whoever read its
    // stderr goes away: its last words must not keep it from exiting
    let banner = std::io::BufReader::new(serve.child.stderr.take().unwrap());
    let ready = std::io::BufRead::lines(banner)
        .map_while(Result::ok)
        .any(|l| l.contains("target remote"));
    assert!(ready && sock.exists(), "corestub serve did not start");
    let out = Command::new("gdb")
        .args(["-nx", "-batch", "-iex", "set height 0"])
        .arg("-ex")
        .arg(format!("target remote {}", sock.display()))
        .args(["-ex", "info threads 1-2", "-ex", "detach"])
        .stdin(Stdio::null())
        .output()
        .expect("gdb");
    let gdb_out = String::from_utf8_lossy(&out.stdout);
    assert!(
        gdb_out.contains("CPU 1") && gdb_out.contains("detached"),
        "GDB on the first session:\n{gdb_out}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status(qmp), "running", "detach must resume the guest");
    signal(serve.pid(), libc::SIGTERM);
    assert!(
        serve.wait_timeout(Duration::from_secs(30)).is_some(),
        "corestub serve did not exit on SIGTERM"
    );
    second_session(qmp, guest, "gdb-second-a.log");

    // b.
    let log = guest.dir.join("gdb-first-b.log");
    let f = std::fs::File::create(&log).unwrap();
    let mut first = Proc::spawn(
        "corestub gdb",
        guest
            .corestub("gdb")
            .arg("--vmlinux")
            .arg(&guest.vmlinux)
            .args(["--", "-nx", "-iex", "set height 0"])
            .stdin(Stdio::piped())
            .stdout(f.try_clone().unwrap())
            .stderr(f),
    );
    // GDB reads its commands from our pipe and waits for more: attached
    let mut commands = first.child.stdin.take().unwrap();
    commands
        .write_all(b"info threads 1-2\necho @@ATTACHED\\n\n")
        .unwrap();
    wait_for("GDB to attach", Duration::from_secs(90), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("@@ATTACHED"))
    });
    assert_eq!(status(qmp), "paused", "attach must pause the guest");
    let family = descendants(first.pid());
    signal(first.pid(), libc::SIGTERM);
    let st = first.wait_timeout(Duration::from_secs(30));
    assert_eq!(
        st.and_then(|s| s.code()),
        Some(128 + libc::SIGTERM),
        "corestub gdb must end on SIGTERM, GDB with it"
    );
    wait_for(
        "GDB and corestub's pipe child to end with corestub gdb",
        Duration::from_secs(30),
        || family.iter().all(|&p| comm(p).is_empty()),
    );
    drop(commands);
    assert_eq!(
        status(qmp),
        "running",
        "SIGTERM to corestub gdb must resume the guest; log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    second_session(qmp, guest, "gdb-second-b.log");
}

/// `dump-guest-memory` of the whole guest (no paging) to `path` in
/// `format`. Synchronous: QEMU's detached dumps report "completed" before
/// their thread has cleaned up, and a dump started at that moment can fail
/// (seen with QEMU 10.0). 256 MiB take a few seconds, well inside the
/// QMP client's reply timeout.
fn dump_guest_memory(qmp: &Qmp, format: &str, path: &Path) {
    qmp.execute(
        "dump-guest-memory",
        Some(json!({
            "paging": false,
            "protocol": format!("file:{}", path.display()),
            "format": format,
        })),
    )
    .unwrap_or_else(|e| panic!("dump-guest-memory {format}: {e}"));
}

/// Part 5: with the guest paused, an ELF dump and every `kdump-raw-*` dump QEMU
/// offers (QEMU >= 8.2; none before), all of the same moment. Each raw one
/// is a plain kdump-compressed file with its codec (`corestub info`), has
/// the ELF's notes and every page of it, and serves GDB: vCPU and task
/// threads, backtraces, the marker in dmesg. The guest runs again after.
fn kdump_raw_dumps(qmp: &Qmp, guest: &Guest) {
    let cap = qmp
        .execute("query-dump-guest-memory-capability", None)
        .expect("query-dump-guest-memory-capability");
    let formats = raw_formats(&cap);
    if formats.is_empty() {
        eprintln!("SKIP {TEST}: kdump-raw-*: this QEMU offers none (QEMU >= 8.2 does): {cap}");
        return;
    }
    qmp.stop().expect("stop");
    wait_for("the guest to pause", Duration::from_secs(30), || {
        status(qmp) == "paused"
    });
    let elf_path = guest.dir.join("qemu.elf");
    dump_guest_memory(qmp, "elf", &elf_path);
    let mut raws = Vec::new();
    for f in &formats {
        let path = guest.dir.join(format!("qemu-{f}.kdump"));
        dump_guest_memory(qmp, f, &path);
        raws.push((f, path));
    }
    qmp.cont().expect("cont");
    assert_eq!(status(qmp), "running");
    eprintln!("{TEST}: dumped elf and {formats:?}");

    let elf = dump::open(&elf_path).expect("QEMU's ELF");
    for (f, path) in &raws {
        check_raw_info(path, f);
        let raw = dump::open(path).unwrap_or_else(|e| panic!("{f}: {e}"));
        compare_notes(&raw, &elf);
        compare_pages(&raw, &elf);
        drop(raw);
        let (steps, all) = gdb_steps(
            path,
            &guest.vmlinux,
            &[
                ("threads", "info threads"),
                ("bt", "thread apply 1-2 bt"),
                ("dmesg", "dmesg"),
            ],
        );
        let step = |k: &str| steps.get(k).cloned().unwrap_or_default();
        let threads = step("threads");
        assert!(
            threads.contains("CPU 0") && threads.contains("CPU 1") && !threads.contains("CPU 2"),
            "{f}: two vCPU threads:\n{all}"
        );
        assert!(
            threads.matches(" sleep [S]").count() >= 2,
            "{f}: the init script's sleepers as task threads:\n{all}"
        );
        let bt = step("bt");
        for t in ["Thread 1 ", "Thread 2 "] {
            let i = bt
                .find(t)
                .unwrap_or_else(|| panic!("{f}: no {t}in bt:\n{all}"));
            assert!(bt[i..].contains("#1 "), "{f}: bt {t}:\n{all}");
        }
        assert!(!bt.contains("#0  0x0000000000000000"), "{f}: {bt}");
        assert!(
            step("dmesg").contains(&guest.marker),
            "{f}: marker in dmesg:\n{all}"
        );
    }
}

/// Part 6: a raw client on `corestub serve` over the live guest: binary
/// reads and a refused step, with the guest paused throughout.
fn protocol_on_paused_guest(qmp: &Qmp, guest: &Guest) {
    let srv = Server::spawn(guest.corestub("serve").args(["--listen", "127.0.0.1:0"]));
    let mut c = srv.connect();
    let sup = c.request(b"qSupported:multiprocess+;swbreak+").unwrap();
    let sup = String::from_utf8_lossy(&sup).into_owned();
    assert!(sup.split(';').any(|f| f == "binary-upload+"), "{sup}");
    assert_eq!(status(qmp), "paused", "attach must pause the guest");
    let stop = c.request(b"?").unwrap();
    assert!(stop.starts_with(b"T"), "{}", text(&stop));

    // the direct map of 16 MiB of RAM: the kernel image's neighbourhood,
    // all of it in the RAM file
    let ptov = c.monitor("ptov 0x1000000").unwrap();
    let va = ptov
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| u64::from_str_radix(v, 16).ok())
        .unwrap_or_else(|| panic!("monitor ptov: {ptov}"));
    for (addr, len) in [(va, 0x10000), (va + 1, 0xfff)] {
        assert_eq!(x_and_m(&mut c, addr, len).len(), len, "{addr:#x},{len:#x}");
    }

    let vcont = c.request(b"vCont?").unwrap();
    assert!(
        text(&vcont).split(';').any(|a| a == "s"),
        "{}",
        text(&vcont)
    );
    let step = c.request(b"vCont;s:p1.1;c").unwrap();
    assert!(step.starts_with(b"T02"), "step: {}", text(&step));
    assert_eq!(
        status(qmp),
        "paused",
        "a refused step must not run the guest"
    );
    let again = x_and_m(&mut c, va, 0x100);
    assert_eq!(again.len(), 0x100, "reads after the step");
    assert_eq!(c.request(b"D").unwrap(), b"OK");
    wait_for(
        "detach to resume the guest",
        Duration::from_secs(30),
        || status(qmp) == "running",
    );
    let log = srv.stop();
    assert!(log.contains("refused a step"), "server log:\n{log}");
}

#[test]
fn live_qemu_guest() {
    let t0 = Instant::now();
    if !have("qemu-system-x86_64", "--version") {
        return skip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)");
    }
    if !have("gdb", "--version") {
        return skip("gdb is not installed");
    }
    let Some(bb) = busybox() else {
        return skip("no static /bin/busybox (apt-get install busybox-static)");
    };
    let Some(vmlinux) = corestub::fixtures::fixture("x86_64-6.1", "vmlinux", "live_qemu") else {
        return;
    };
    let Some(kernel) = vmlinuz() else {
        return skip(&format!(
            "cannot fetch linux-image-{KVER} (apt-get download)"
        ));
    };

    let dir = std::env::temp_dir().join(format!("corestub-live-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let _tmp = TempDir(dir.clone());
    let marker = common::guest::marker("CORESTUB-LIVE-MARKER");
    let initrd = dir.join("initrd.gz");
    std::fs::write(&initrd, initramfs(&bb, &init_script(&marker))).unwrap();
    let ram = dir.join("guest.ram");
    let console = dir.join("console.log");
    let qmp_test = dir.join("qmp-test.sock");
    let qmp_corestub = dir.join("qmp-corestub.sock");

    let mut qemu = Proc::spawn(
        "qemu",
        Command::new("qemu-system-x86_64")
            .args(["-accel", "tcg", "-cpu", "max,la57=off"])
            .args([
                "-machine",
                "pc,memory-backend=mem",
                "-m",
                "256",
                "-smp",
                "2",
            ])
            .arg("-object")
            .arg(format!(
                "memory-backend-file,id=mem,share=on,mem-path={},size=256M",
                ram.display()
            ))
            .args(["-device", "vmcoreinfo"])
            .args(["-display", "none", "-nodefaults", "-no-reboot"])
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .arg("-kernel")
            .arg(&kernel)
            .arg("-initrd")
            .arg(&initrd)
            .args(["-append", "console=ttyS0 panic=-1"])
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", qmp_test.display()))
            .arg("-qmp")
            .arg(format!(
                "unix:{},server=on,wait=off",
                qmp_corestub.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("qemu.err")).unwrap()),
    );
    let boot0 = Instant::now();
    let ready = format!("LIVE-READY {marker}");
    loop {
        let log = std::fs::read(&console).unwrap_or_default();
        if String::from_utf8_lossy(&log).contains(&ready) {
            break;
        }
        assert!(
            qemu.alive(),
            "QEMU exited: {}",
            std::fs::read_to_string(dir.join("qemu.err")).unwrap_or_default()
        );
        assert!(
            boot0.elapsed() < BOOT_TIMEOUT,
            "guest not ready after {BOOT_TIMEOUT:?}; console:\n{}",
            String::from_utf8_lossy(&log)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("live_qemu: guest booted in {:.1?}", boot0.elapsed());
    let qmp = Qmp::connect(&qmp_test).expect("harness QMP");
    assert_eq!(status(&qmp), "running");
    let guest = Guest {
        dir: dir.clone(),
        ram,
        qmp_corestub,
        vmlinux,
        marker,
    };

    // 1. pausing mode: attach pauses; continue, interrupt, detach resumes.
    let t1 = Instant::now();
    qmp.drain_events();
    let (mut gdb, log) = guest.gdb(
        &[],
        &[
            ("threads", "info threads"),
            ("bt", "thread apply 1-2 bt"),
            ("j1", "p jiffies"),
            ("cont", "continue"),
            ("j2", "p jiffies"),
            ("dmesg", "dmesg"),
            ("threads2", "info threads 1-2"),
            // last: after a step GDB spends a while in its own symbol
            // lookups
            ("stepi", "stepi"),
            ("after-stepi", "p jiffies"),
        ],
        "gdb-pause.log",
    );
    // attach → STOP, paused while GDB reads
    let mut saw = Vec::new();
    let wait_event = |name: &str, saw: &mut Vec<String>, gdb: &mut Proc| {
        let end = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(ev) = qmp.next_event(Duration::from_millis(200)) {
                saw.push(ev.name.clone());
                if ev.name == name {
                    return;
                }
            }
            assert!(
                gdb.alive() && Instant::now() < end,
                "no QMP {name} event (saw {saw:?}); GDB log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
    };
    wait_event("STOP", &mut saw, &mut gdb);
    assert_eq!(status(&qmp), "paused", "attach must pause the guest");
    // `continue` → RESUME; then Ctrl-C (SIGINT to GDB) → STOP
    wait_event("RESUME", &mut saw, &mut gdb);
    assert_eq!(status(&qmp), "running");
    std::thread::sleep(Duration::from_millis(1500));
    let gdb_pid = descendants(gdb.pid())
        .into_iter()
        .find(|&p| comm(p) == "gdb")
        .expect("GDB under corestub gdb");
    signal(gdb_pid, libc::SIGINT);
    wait_event("STOP", &mut saw, &mut gdb);
    let st = gdb.wait_timeout(Duration::from_secs(90));
    let out = std::fs::read_to_string(&log).unwrap();
    assert!(
        st.is_some_and(|s| s.success()),
        "corestub gdb: {st:?}\n{out}"
    );
    // detach → RESUME
    wait_event("RESUME", &mut saw, &mut gdb);
    assert_eq!(status(&qmp), "running", "detach must resume the guest");

    let threads = step(&out, "threads");
    assert!(
        threads.contains("CPU 0") && threads.contains("CPU 1") && !threads.contains("CPU 2"),
        "two vCPU threads:\n{out}"
    );
    assert!(
        threads.matches(" sleep [S]").count() >= 2,
        "the init script's sleepers as task threads:\n{threads}"
    );
    let bt = step(&out, "bt");
    for t in ["Thread 1 ", "Thread 2 "] {
        let i = bt.find(t).unwrap_or_else(|| panic!("no {t}in bt:\n{out}"));
        let body = &bt[i..];
        assert!(
            body.contains("#0 ") && body.contains("#1 "),
            "bt {t}:\n{bt}"
        );
    }
    assert!(!bt.contains("#0  0x0000000000000000"), "{bt}");
    let j1 = printed_values(step(&out, "j1"));
    let j2 = printed_values(step(&out, "j2"));
    assert!(
        step(&out, "cont").contains("SIGINT"),
        "continue ended by the interrupt:\n{out}"
    );
    assert!(
        matches!((j1.first(), j2.first()), (Some(a), Some(b)) if b > a),
        "jiffies must advance across continue/interrupt: {j1:?} {j2:?}\n{out}"
    );
    assert!(
        step(&out, "dmesg").contains(&guest.marker),
        "marker in dmesg:\n{out}"
    );
    // a step is refused with a stop; the connection lives on
    assert!(
        step(&out, "stepi").contains("received signal SIGINT"),
        "stepi answered by a stop:\n{out}"
    );
    assert!(
        !printed_values(step(&out, "after-stepi")).is_empty(),
        "the connection after stepi:\n{out}"
    );
    eprintln!(
        "live_qemu: pause/continue/interrupt in {:.1?}",
        t1.elapsed()
    );

    // 2. --no-pause: jiffies move while GDB reads, no STOP
    let t2 = Instant::now();
    qmp.drain_events();
    let (mut gdb, log) = guest.gdb(&["--no-pause"], JIFFIES_TWICE, "gdb-nopause.log");
    let st = gdb.wait_timeout(Duration::from_secs(90));
    let out = std::fs::read_to_string(&log).unwrap();
    assert!(
        st.is_some_and(|s| s.success()),
        "corestub gdb --no-pause: {st:?}\n{out}"
    );
    let mut events = Vec::new();
    while let Some(ev) = qmp.next_event(Duration::from_millis(100)) {
        events.push(ev.name);
    }
    assert!(
        !events.iter().any(|e| e == "STOP"),
        "--no-pause must not stop the guest: {events:?}"
    );
    assert_eq!(status(&qmp), "running");
    let j1 = printed_values(step(&out, "j1"));
    let j2 = printed_values(step(&out, "j2"));
    assert!(
        matches!((j1.first(), j2.first()), (Some(a), Some(b)) if b > a),
        "jiffies must advance while the guest runs: {j1:?} {j2:?}\n{out}"
    );
    eprintln!("live_qemu: --no-pause in {:.1?}", t2.elapsed());

    // 3. SIGINT / SIGTERM to an attached corestub leave the guest running
    let t3 = Instant::now();
    for (sig, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM")] {
        let sock = dir.join(format!("corestub-{name}.sock"));
        let mut serve = Proc::spawn(
            "corestub serve",
            guest
                .corestub("serve")
                .arg("--unix")
                .arg(&sock)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join(format!("serve-{name}.log"))).unwrap()),
        );
        wait_for("corestub's unix socket", Duration::from_secs(60), || {
            sock.exists()
        });
        let _client = std::os::unix::net::UnixStream::connect(&sock).expect("connect");
        wait_for(
            "the attach to pause the guest",
            Duration::from_secs(30),
            || status(&qmp) == "paused",
        );
        signal(serve.pid(), sig);
        let st = serve.wait_timeout(Duration::from_secs(30));
        assert!(st.is_some(), "corestub serve did not exit on {name}");
        assert_eq!(
            status(&qmp),
            "running",
            "{name}: corestub must resume the guest before exiting; log:\n{}",
            std::fs::read_to_string(dir.join(format!("serve-{name}.log"))).unwrap_or_default()
        );
    }
    eprintln!("live_qemu: signals in {:.1?}", t3.elapsed());

    // 4. two sessions back to back on one QMP socket
    let t4 = Instant::now();
    back_to_back_sessions(&qmp, &guest);
    eprintln!("live_qemu: back-to-back sessions in {:.1?}", t4.elapsed());

    // 5. QEMU >= 8.2's kdump-raw-* dumps of the paused guest, against its ELF
    let t5 = Instant::now();
    kdump_raw_dumps(&qmp, &guest);
    eprintln!("live_qemu: kdump-raw dumps in {:.1?}", t5.elapsed());

    // 6. binary reads and a refused step, on the raw protocol
    let t6 = Instant::now();
    protocol_on_paused_guest(&qmp, &guest);
    eprintln!("live_qemu: protocol in {:.1?}", t6.elapsed());

    let _ = qmp.execute("quit", None);
    let _ = qemu.wait_timeout(Duration::from_secs(10));
    eprintln!("live_qemu: total {:.1?}", t0.elapsed());
}
