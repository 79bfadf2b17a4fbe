//! Eight GDB batch clients at once against one `corestub serve` (each: bt,
//! dmesg via gdb-scripts/dmesg.py, data reads), while a ninth client
//! connects and drops mid-packet and a tenth stalls without reading. All
//! eight must get correct results; the broken ones must not stall them.

mod common;

use std::net::Shutdown;
use std::process::Command;
use std::time::{Duration, Instant};

use common::server::{Server, frame};

#[test]
fn eight_gdb_clients_and_a_broken_one() {
    let test = "eight_gdb_clients_and_a_broken_one";
    let (Some(dump), Some(vmlinux)) = (
        common::fixture("x86_64-6.1", "kdump-zlib-d31.kdump", test),
        common::fixture("x86_64-6.1", "vmlinux", test),
    ) else {
        return;
    };
    let truth: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(corestub::fixtures::root().join("x86_64-6.1/truth.json")).unwrap(),
    )
    .unwrap();
    let boot = &truth["boots"]["kdump"];
    let marker = boot["marker"].as_str().unwrap().to_string();
    let jiffies = boot["jiffies_at_crash"].as_u64().unwrap();
    let release = truth["kernel_release"].as_str().unwrap().to_string();

    let mut srv = Server::start(&dump, &["--vmlinux", vmlinux.to_str().unwrap()]);
    let add_symbols = srv
        .banner
        .iter()
        .find_map(|l| l.split("in GDB: ").nth(1))
        .expect("add-symbol-file line")
        .to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/gdb-scripts/dmesg.py");

    let t = Instant::now();
    let gdbs: Vec<_> = (0..8)
        .map(|i| {
            let mut c = Command::new("gdb");
            c.args([
                "-nx",
                "-batch",
                "-iex",
                "set width 0",
                "-iex",
                "set height 0",
            ])
            .args(["-ex", &add_symbols])
            .args(["-ex", &format!("target remote {}", srv.addr)])
            .args(["-ex", "echo @@bt\\n", "-ex", "bt"])
            .args(["-ex", &format!("source {script}")])
            .args(["-ex", "echo @@dmesg\\n", "-ex", "dmesg"])
            .args(["-ex", "echo @@reads\\n", "-ex", "p jiffies"])
            .args(["-ex", "x/s linux_banner", "-ex", "p init_task.comm"])
            .args(["-ex", &format!("x/{}gx &jiffies", 1 + i)]);
            c.stdin(std::process::Stdio::null());
            c.spawn_output()
        })
        .collect();

    // the ninth client drops mid-packet, a tenth never reads its replies
    let mut broken = srv.connect();
    broken.send_raw(b"+$qSupported:multipro").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    broken.s.shutdown(Shutdown::Both).unwrap();
    let mut hog = srv.connect();
    for _ in 0..32 {
        if hog.send_raw(&frame(b"mffffffff81000000,20000")).is_err() {
            break;
        }
    }

    for (i, g) in gdbs.into_iter().enumerate() {
        let out = g.join().unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let bt = all.split("@@bt").nth(1).unwrap_or("");
        for f in [
            "panic",
            "sysrq_handle_crash",
            "__handle_sysrq",
            "ksys_write",
        ] {
            assert!(
                bt.contains(&format!(" {f} (")) || bt.contains(&format!(" {f}.")),
                "client {i}: no {f} in bt:\n{all}"
            );
        }
        let dmesg = all.split("@@dmesg").nth(1).unwrap_or("");
        assert!(
            dmesg.contains(&marker),
            "client {i}: marker missing:\n{all}"
        );
        assert!(
            dmesg.contains("Kernel panic - not syncing: sysrq triggered crash"),
            "client {i}"
        );
        let reads = all.split("@@reads").nth(1).unwrap_or("");
        assert!(
            reads.contains(&format!("= {jiffies}")),
            "client {i}:\n{reads}"
        );
        assert!(reads.contains(&release), "client {i}:\n{reads}");
        assert!(reads.contains("\"swapper/0"), "client {i}:\n{reads}");
        assert!(
            !all.contains("Remote connection closed"),
            "client {i}:\n{all}"
        );
    }
    eprintln!("8 GDB clients done in {:?}", t.elapsed());
    drop(hog);
    assert!(srv.alive());
    let log = srv.stop();
    assert!(!log.contains("panicked"), "{log}");
}

/// `Command::output` on a thread, so the eight run at once.
trait SpawnOutput {
    fn spawn_output(&mut self) -> std::thread::JoinHandle<std::process::Output>;
}

impl SpawnOutput for Command {
    fn spawn_output(&mut self) -> std::thread::JoinHandle<std::process::Output> {
        let child = self
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn gdb");
        std::thread::spawn(move || child.wait_with_output().unwrap())
    }
}
