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
        let mut child = Command::new(super::corestub_bin())
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .arg(dump)
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
