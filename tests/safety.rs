//! Nothing lost, nothing let in: the dump is opened read-only and never
//! written, nothing is created beside it, a non-loopback listener needs
//! --allow-remote, the unix socket is 0600, stdio opens no socket. Uses the
//! small synthetic vmcore in fixtures/ (no fixture cache needed).

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::server::{Rsp, Server, frame};

fn synthetic_dump(what: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("corestub-safety-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let dump = dir.join("vmcore");
    // a private copy: the test watches the dump's directory
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/synthetic-x86_64.vmcore");
    std::fs::copy(&fixture, &dump).unwrap();
    std::fs::set_permissions(&dump, std::fs::Permissions::from_mode(0o444)).unwrap();
    (dir, dump)
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `pid`'s open fds and what they point at. An fd that closes while we list
/// them is skipped: the server's threads open and close files (vmlinux
/// lookup, /proc reads) at any moment, and a vanished fd holds nothing.
fn open_fds(pid: u32) -> Vec<(String, PathBuf)> {
    let mut fds = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let Ok(e) = e else { continue };
        if let Ok(target) = std::fs::read_link(e.path()) {
            fds.push((e.file_name().to_string_lossy().into_owned(), target));
        }
    }
    fds
}

/// Every mapping and open fd of `pid` that refers to `dump` is read-only.
fn assert_read_only(pid: u32, dump: &Path) {
    let dump = std::fs::canonicalize(dump).unwrap();
    let name = dump.to_string_lossy().into_owned();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut mapped = 0;
    for l in maps.lines().filter(|l| l.ends_with(&*name)) {
        let perms = l.split_whitespace().nth(1).unwrap();
        assert!(!perms.contains('w'), "dump mapped writable: {l}");
        mapped += 1;
    }
    assert!(mapped > 0, "dump not mapped?\n{maps}");
    for (fd, target) in open_fds(pid) {
        if target == dump {
            // The fd may close between the listing and this read (warm-up
            // threads open and close files); a closed fd is not a writable one.
            let Ok(info) = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")) else {
                continue;
            };
            let flags = info
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .map(|f| u32::from_str_radix(f.trim(), 8).unwrap())
                .unwrap();
            assert_eq!(flags & 3, 0, "dump fd not O_RDONLY: {info}");
        }
    }
}

#[test]
fn dump_read_only_and_untouched() {
    let (dir, dump) = synthetic_dump("ro");
    let before = common::file_fingerprint(&dump);
    let files = listing(&dir);
    let srv = Server::start(&dump, &[]);
    let mut c = srv.connect();
    c.request(b"?").unwrap();
    assert_eq!(
        c.request(b"mffffffff81000000,8").unwrap(),
        b"636f726573747562"
    ); // "corestub"
    // writes are refused
    let r = c.request(b"Mffffffff81000000,4:00000000").unwrap();
    assert!(r.starts_with(b"E"), "{}", String::from_utf8_lossy(&r));
    let r = c.request(b"Xffffffff81000000,1:\x00".as_slice()).unwrap();
    assert!(
        r.starts_with(b"E") || r.is_empty(),
        "{}",
        String::from_utf8_lossy(&r)
    );
    assert_eq!(
        c.request(b"mffffffff81000000,8").unwrap(),
        b"636f726573747562"
    );
    assert_read_only(srv.child.id(), &dump);
    drop(c);
    srv.stop();
    assert_eq!(before, common::file_fingerprint(&dump), "dump changed");
    assert_eq!(files, listing(&dir), "files appeared beside the dump");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn non_loopback_needs_allow_remote() {
    let (dir, dump) = synthetic_dump("remote");
    for addr in ["0.0.0.0:0", "[::]:0"] {
        let t = Instant::now();
        let out = common::run(
            Command::new(common::corestub_bin())
                .args(["serve", "--listen", addr])
                .arg(&dump)
                .stdin(Stdio::null()),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{addr}: served without --allow-remote"
        );
        assert!(
            err.contains("--allow-remote") && err.contains("loopback"),
            "{err}"
        );
        assert!(t.elapsed() < common::HANG_GUARD);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unix_socket_is_private() {
    let (dir, dump) = synthetic_dump("unix");
    let sock = dir.join("sock");
    let mut child = Command::new(common::corestub_bin())
        .args(["serve", "--unix"])
        .arg(&sock)
        .arg(&dump)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !sock.exists() && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "socket mode {mode:o}");
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(common::HANG_GUARD)).unwrap();
    s.write_all(&frame(b"?")).unwrap();
    let mut b = [0u8; 64];
    let n = s.read(&mut b).unwrap();
    assert!(n > 0);
    let _ = child.kill();
    let _ = child.wait();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn stdio_opens_no_socket() {
    let (dir, dump) = synthetic_dump("stdio");
    let mut child = Command::new(common::corestub_bin())
        .args(["serve", "--stdio"])
        .arg(&dump)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    stdin.write_all(&frame(b"?")).unwrap();
    stdin.flush().unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 256];
    while !got.contains(&b'#') {
        let n = stdout.read(&mut b).unwrap();
        assert!(n > 0, "stdio server closed");
        got.extend_from_slice(&b[..n]);
    }
    assert!(String::from_utf8_lossy(&got).contains("$T"), "{got:?}");
    let pid = child.id();
    for (_, l) in open_fds(pid) {
        assert!(
            !l.to_string_lossy().starts_with("socket:"),
            "stdio server opened {l:?}"
        );
    }
    assert_read_only(pid, &dump);
    drop(stdin);
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            t.elapsed() < common::HANG_GUARD,
            "stdio server did not exit on EOF"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[allow(dead_code)]
fn unused(_: Rsp) {}
