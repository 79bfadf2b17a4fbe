//! A small QMP (QEMU Machine Protocol) client over a unix socket.
//!
//! One reader thread parses the socket's JSON lines: command replies go to
//! the caller that is waiting for them (matched by `id`), asynchronous
//! events (`STOP`, `RESUME`, `SHUTDOWN`, …) are queued for [`Qmp::next_event`].
//! Commands are serialised by a lock, so the client can be shared between
//! the serving thread and a signal handler thread.
//!
//! A QMP socket serves one client at a time: while another client is
//! connected QEMU does not greet a new one, which [`Qmp::connect`] reports
//! after a timeout (give QEMU a second `-qmp` socket for corestub).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use serde_json::{Value, json};

/// How long a command may take before we give up on QEMU.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long QEMU may take to greet us.
const GREETING_TIMEOUT: Duration = Duration::from_secs(5);

/// An asynchronous QMP event.
#[derive(Clone, Debug, PartialEq)]
pub struct QmpEvent {
    /// e.g. "STOP", "RESUME", "SHUTDOWN".
    pub name: String,
    pub data: Value,
}

/// The guest's run state (`query-status`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunStatus {
    /// QEMU's status string: "running", "paused", "guest-panicked", …
    pub status: String,
    pub running: bool,
}

pub struct Qmp {
    writer: Mutex<UnixStream>,
    replies: Mutex<Receiver<Value>>,
    events: Mutex<Receiver<QmpEvent>>,
    next_id: AtomicU64,
    closed: Arc<AtomicBool>,
    path: String,
}

impl std::fmt::Debug for Qmp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qmp").field("path", &self.path).finish()
    }
}

fn reader_thread(
    stream: UnixStream,
    replies: Sender<Value>,
    events: Sender<QmpEvent>,
    closed: Arc<AtomicBool>,
) {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let Ok(v) = serde_json::from_str::<Value>(line.trim()) else {
            log::warn!("QMP: unparsable line {:?}", line.trim());
            continue;
        };
        if let Some(name) = v.get("event").and_then(Value::as_str) {
            log::debug!("QMP event {name}");
            let ev = QmpEvent {
                name: name.to_string(),
                data: v.get("data").cloned().unwrap_or(Value::Null),
            };
            let _ = events.send(ev);
        } else if replies.send(v).is_err() {
            break;
        }
    }
    closed.store(true, Ordering::SeqCst);
    log::debug!("QMP connection closed");
}

impl Qmp {
    /// Connects to a QMP unix socket and negotiates capabilities.
    pub fn connect(path: &Path) -> Result<Qmp, String> {
        let p = path.display().to_string();
        let stream = UnixStream::connect(path).map_err(|e| format!("QMP socket {p}: {e}"))?;
        let (rtx, rrx) = channel();
        let (etx, erx) = channel();
        let closed = Arc::new(AtomicBool::new(false));
        let rs = stream
            .try_clone()
            .map_err(|e| format!("QMP socket {p}: {e}"))?;
        {
            let closed = closed.clone();
            std::thread::Builder::new()
                .name("qmp-reader".into())
                .spawn(move || reader_thread(rs, rtx, etx, closed))
                .map_err(|e| e.to_string())?;
        }
        let qmp = Qmp {
            writer: Mutex::new(stream),
            replies: Mutex::new(rrx),
            events: Mutex::new(erx),
            next_id: AtomicU64::new(1),
            closed,
            path: p.clone(),
        };
        let greeting = qmp
            .replies
            .lock()
            .expect("qmp lock")
            .recv_timeout(GREETING_TIMEOUT);
        match greeting {
            Ok(v) if v.get("QMP").is_some() => {}
            Ok(v) => return Err(format!("QMP socket {p}: unexpected greeting {v}")),
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "QMP socket {p}: no greeting from QEMU within {}s. A QMP socket serves one client at a time: is another client connected? Give QEMU a second `-qmp unix:PATH,server=on,wait=off` for corestub.",
                    GREETING_TIMEOUT.as_secs()
                ));
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(format!("QMP socket {p}: QEMU closed the connection"));
            }
        }
        qmp.execute("qmp_capabilities", None)?;
        Ok(qmp)
    }

    /// True once QEMU closed the socket (e.g. it quit).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Runs a command; returns its `return` value or the error QEMU gave.
    pub fn execute(&self, command: &str, arguments: Option<Value>) -> Result<Value, String> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let mut msg = json!({ "execute": command, "id": id });
        if let Some(a) = arguments {
            msg["arguments"] = a;
        }
        let mut w = self.writer.lock().map_err(|_| "QMP lock poisoned")?;
        let replies = self.replies.lock().map_err(|_| "QMP lock poisoned")?;
        // Replies to an earlier command that timed out are stale.
        while replies.try_recv().is_ok() {}
        let mut line = msg.to_string();
        line.push('\n');
        w.write_all(line.as_bytes())
            .and_then(|_| w.flush())
            .map_err(|e| format!("QMP {command}: {e}"))?;
        loop {
            let v = match replies.recv_timeout(REPLY_TIMEOUT) {
                Ok(v) => v,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!("QMP {command}: no reply from QEMU"));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(format!("QMP {command}: QEMU closed the connection"));
                }
            };
            if v.get("id").and_then(Value::as_u64) != Some(id) {
                continue;
            }
            if let Some(r) = v.get("return") {
                return Ok(r.clone());
            }
            let e = v.get("error").cloned().unwrap_or(v);
            let desc = e.get("desc").and_then(Value::as_str).unwrap_or("?");
            return Err(format!("QMP {command}: {desc}"));
        }
    }

    /// An HMP command through `human-monitor-command`; returns its text.
    pub fn hmp(&self, command_line: &str) -> Result<String, String> {
        let r = self.execute(
            "human-monitor-command",
            Some(json!({ "command-line": command_line })),
        )?;
        Ok(r.as_str().unwrap_or_default().to_string())
    }

    pub fn query_status(&self) -> Result<RunStatus, String> {
        let r = self.execute("query-status", None)?;
        Ok(RunStatus {
            status: r
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string(),
            running: r.get("running").and_then(Value::as_bool).unwrap_or(false),
        })
    }

    pub fn stop(&self) -> Result<(), String> {
        self.execute("stop", None).map(drop)
    }

    pub fn cont(&self) -> Result<(), String> {
        self.execute("cont", None).map(drop)
    }

    /// The next queued event, waiting at most `timeout`.
    pub fn next_event(&self, timeout: Duration) -> Option<QmpEvent> {
        let ev = self.events.lock().ok()?;
        ev.recv_timeout(timeout).ok()
    }

    /// Drops every queued event.
    pub fn drain_events(&self) {
        if let Ok(ev) = self.events.lock() {
            while ev.try_recv().is_ok() {}
        }
    }
}

impl Qmp {
    /// Hangs up: QEMU sees the end of this client at once (and may greet
    /// the next one), even while another descriptor of the socket is still
    /// open somewhere (our reader thread's, or one a process inherited):
    /// shutdown(2) acts on the socket, close(2) only on a descriptor.
    pub fn close(&self) {
        let w = match self.writer.lock() {
            Ok(w) => w,
            Err(poisoned) => poisoned.into_inner(),
        };
        let _ = w.shutdown(std::net::Shutdown::Both);
    }
}

impl Drop for Qmp {
    fn drop(&mut self) {
        self.close();
    }
}
