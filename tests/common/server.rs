//! A `corestub serve` child process for protocol tests, and a raw RSP client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct Server {
    pub child: Child,
    pub addr: String,
    /// Lines the server printed on stderr up to the listen banner.
    pub banner: Vec<String>,
    stderr_rest: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `corestub serve --listen 127.0.0.1:0 EXTRA... DUMP` and waits
    /// for the `target remote ADDR` line.
    pub fn start(dump: &Path, extra: &[&str]) -> Server {
        Server::spawn(
            Command::new(super::corestub_bin())
                .arg("serve")
                .args(["--listen", "127.0.0.1:0"])
                .args(extra)
                .arg(dump),
        )
    }

    /// Starts `cmd`, a `corestub serve --listen …` of any source, and
    /// waits for its `target remote ADDR` line.
    pub fn spawn(cmd: &mut Command) -> Server {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn corestub serve");
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut banner = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("no listen banner; got {banner:?}"));
            banner.push(line.clone());
            if let Some(a) = line.split("target remote ").nth(1) {
                break a.trim().to_string();
            }
        };
        Server {
            child,
            addr,
            banner,
            stderr_rest: rx,
        }
    }

    pub fn connect(&self) -> Rsp {
        Rsp::connect(&self.addr)
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Peak resident memory (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Stops the server and returns everything it printed after the banner.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut out = String::new();
        while let Ok(l) = self.stderr_rest.recv_timeout(Duration::from_millis(200)) {
            out.push_str(&l);
            out.push('\n');
        }
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw RSP client (acks on, as GDB starts).
pub struct Rsp {
    pub s: TcpStream,
}

pub fn frame(body: &[u8]) -> Vec<u8> {
    let sum = body.iter().fold(0u8, |a, &b| a.wrapping_add(b));
    let mut v = vec![b'$'];
    v.extend_from_slice(body);
    v.extend_from_slice(format!("#{sum:02x}").as_bytes());
    v
}

impl Rsp {
    pub fn connect(addr: &str) -> Rsp {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(super::HANG_GUARD)).unwrap();
        s.set_write_timeout(Some(super::HANG_GUARD)).unwrap();
        Rsp { s }
    }

    pub fn send_raw(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.s.write_all(b)
    }

    /// Sends `body` as a packet and returns the reply's body (checksum
    /// verified), acking it. `Err` on timeout or a closed connection.
    pub fn request(&mut self, body: &[u8]) -> Result<Vec<u8>, String> {
        self.send_raw(&frame(body)).map_err(|e| e.to_string())?;
        loop {
            // console output (`O` + hex) comes before the real reply
            let r = self.reply()?;
            if !(r.starts_with(b"O") && r != b"OK") {
                return Ok(r);
            }
        }
    }

    /// `monitor CMD` (qRcmd): the console text (`O` packets) it sent
    /// before its final reply, which must be `OK`.
    pub fn monitor(&mut self, cmd: &str) -> Result<String, String> {
        let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
        self.send_raw(&frame(format!("qRcmd,{hex}").as_bytes()))
            .map_err(|e| e.to_string())?;
        let mut text = Vec::new();
        loop {
            let r = self.reply()?;
            if r == b"OK" {
                return Ok(String::from_utf8_lossy(&text).into_owned());
            }
            let Some(hex) = r.strip_prefix(b"O") else {
                return Err(format!("monitor {cmd}: {}", String::from_utf8_lossy(&r)));
            };
            for pair in hex.chunks(2) {
                let digits = std::str::from_utf8(pair).map_err(|e| e.to_string())?;
                text.push(u8::from_str_radix(digits, 16).map_err(|e| e.to_string())?);
            }
        }
    }

    pub fn reply(&mut self) -> Result<Vec<u8>, String> {
        let mut b = [0u8; 1];
        // skip acks up to '$'
        loop {
            match self.s.read(&mut b) {
                Ok(0) => return Err("connection closed".into()),
                Ok(_) if b[0] == b'$' => break,
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        let mut body = Vec::new();
        loop {
            match self.s.read(&mut b) {
                Ok(0) => return Err("closed mid-reply".into()),
                Ok(_) if b[0] == b'#' => break,
                Ok(_) => body.push(b[0]),
                Err(e) => return Err(format!("{e} after {} bytes", body.len())),
            }
        }
        let mut cs = [0u8; 2];
        self.s.read_exact(&mut cs).map_err(|e| e.to_string())?;
        let sum = body.iter().fold(0u8, |a, &b| a.wrapping_add(b));
        let want = u8::from_str_radix(std::str::from_utf8(&cs).unwrap_or("zz"), 16)
            .map_err(|e| e.to_string())?;
        if sum != want {
            return Err(format!("bad reply checksum {sum:02x} != {want:02x}"));
        }
        let _ = self.s.write_all(b"+");
        Ok(unrle(&body))
    }

    /// True if the server closed the connection (read returns EOF/reset)
    /// within the read timeout.
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 4096];
        loop {
            match self.s.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
            }
        }
    }
}

/// Expands RSP run-length encoding (`X*n`: X repeated n - 29 more times).
pub fn unrle(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'*' && i + 1 < body.len() && !out.is_empty() {
            let n = body[i + 1].saturating_sub(29) as usize;
            let last = *out.last().unwrap();
            out.extend(std::iter::repeat_n(last, n));
            i += 2;
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    out
}

/// A reply's start, for messages.
pub fn text(r: &[u8]) -> String {
    String::from_utf8_lossy(&r[..r.len().min(80)]).into_owned()
}

/// The data of an `x` reply: `b`, then bytes with `}` escapes (the client
/// has already expanded run-length encoding).
pub fn x_data(req: &str, r: &[u8]) -> Vec<u8> {
    assert_eq!(r.first(), Some(&b'b'), "{req}: {}", text(r));
    let mut out = Vec::with_capacity(r.len());
    let mut it = r[1..].iter();
    while let Some(&b) = it.next() {
        if b == b'}' {
            let e = it
                .next()
                .unwrap_or_else(|| panic!("{req}: reply ends in `}}`"));
            out.push(e ^ 0x20);
        } else {
            assert!(!b"#$*".contains(&b), "{req}: unescaped {:?}", b as char);
            out.push(b);
        }
    }
    out
}

/// The data of an `m` reply (hex).
pub fn m_data(req: &str, r: &[u8]) -> Vec<u8> {
    assert!(
        r.len().is_multiple_of(2) && r.iter().all(u8::is_ascii_hexdigit),
        "{req}: {}",
        text(r)
    );
    r.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// `x` and `m` for the same range: returns the bytes, which must agree.
pub fn x_and_m(c: &mut Rsp, addr: u64, len: usize) -> Vec<u8> {
    let xr = format!("x{addr:x},{len:x}");
    let mr = format!("m{addr:x},{len:x}");
    let x = x_data(&xr, &c.request(xr.as_bytes()).unwrap());
    let m = m_data(&mr, &c.request(mr.as_bytes()).unwrap());
    assert_eq!(
        x.len(),
        m.len(),
        "{xr}: {} bytes, {mr}: {}",
        x.len(),
        m.len()
    );
    assert!(x == m, "{xr} and {mr} differ");
    x
}
