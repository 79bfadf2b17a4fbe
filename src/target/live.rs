//! A live QEMU/KVM guest as a GDB target that really runs.
//!
//! Memory is the guest's RAM file (shared, read-only map: [`LiveRam`]);
//! registers come from QMP (`info registers -a`) at each stop.
//!
//! Run control (default): a GDB attach pauses the guest (QMP `stop`,
//! confirmed by `query-status`); `continue` sends `cont`; GDB's interrupt
//! (Ctrl-C) sends `stop` and takes a fresh register snapshot; detach, a
//! dropped connection, corestub's SIGINT/SIGTERM and error paths resume the
//! guest if corestub paused it. A guest found already paused is left paused.
//! With `no_pause` corestub never changes the run state: every "stop" is a
//! snapshot of a running guest.
//!
//! A step is refused (QMP cannot single-step) with an immediate stop.
//!
//! Snapshots and caches: everything derived from guest memory lives in a
//! [`Session`] (CPU registers and address spaces, the task list, the thread
//! table — computed once per session). The target ([`super::refresh`])
//! builds a **new Session per stop** (generation counter in [`Live`]) and
//! drops the old one, so nothing read before a resume is served after it; the vmlinux and
//! its DWARF caches are shared between sessions ([`Vmlinux`] clones). The
//! page-table walk cache belongs to the session's `Kernel` (mmu/cache.rs)
//! and goes with it. The RAM source itself has no cache (reads copy from
//! the shared mapping), so there is nothing else to invalidate. GDB's own
//! caches are flushed by the stop it is sent.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gdbstub::common::Signal;
use gdbstub::stub::DisconnectReason;

use super::conn::{ByteSource, Conn};
use super::refresh::{Machine, Resumed, Waited, session_over};
use super::{ArchSupport, Session, ThreadMode};
use crate::dump::live::LiveRam;
use crate::dump::raw::find_vmcoreinfo;
use crate::kernel::symbols::Vmlinux;
use crate::qmp::Qmp;

/// How often the running target polls GDB and QMP.
const POLL: Duration = Duration::from_millis(20);

#[derive(Clone, Copy, Debug)]
pub struct LiveOptions {
    /// Never stop the guest: read it while it runs.
    pub no_pause: bool,
    pub mode: ThreadMode,
}

#[derive(Debug, Default)]
struct RunState {
    /// The guest is paused because corestub paused it (so corestub must
    /// resume it when it lets go).
    owned_pause: bool,
    /// corestub is exiting: no more stops.
    exiting: bool,
}

/// A live guest: QMP, RAM, and the run state corestub owns. Shared by the
/// serving thread and the signal thread.
pub struct Live {
    pub qmp: Qmp,
    pub ram: LiveRam,
    pub vmlinux: Option<Vmlinux>,
    pub opts: LiveOptions,
    vmcoreinfo: Mutex<Option<String>>,
    run: Mutex<RunState>,
    generation: AtomicU64,
    attached: AtomicBool,
}

impl Live {
    pub fn new(qmp: Qmp, ram: LiveRam, vmlinux: Option<Vmlinux>, opts: LiveOptions) -> Live {
        Live {
            qmp,
            ram,
            vmlinux,
            opts,
            vmcoreinfo: Mutex::new(None),
            run: Mutex::new(RunState::default()),
            generation: AtomicU64::new(0),
            attached: AtomicBool::new(false),
        }
    }

    /// Pauses the guest (unless `no_pause`) and waits until QEMU says it is
    /// paused. A guest that is already not running is left as found.
    pub fn pause(&self) -> Result<(), String> {
        if self.opts.no_pause {
            return Ok(());
        }
        let mut run = self.run.lock().map_err(|_| "run-state lock poisoned")?;
        if run.exiting {
            return Err("corestub is exiting".into());
        }
        let st = self.qmp.query_status()?;
        if !st.running {
            log::info!("guest is already {} (left as found)", st.status);
            return Ok(());
        }
        self.qmp.stop()?;
        run.owned_pause = true;
        for _ in 0..500 {
            if !self.qmp.query_status()?.running {
                log::info!("guest paused");
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err("QMP stop: the guest still runs after 5 s".into())
    }

    /// Lets the guest run (GDB `continue`). No-op with `no_pause`.
    pub fn resume(&self) -> Result<(), String> {
        if self.opts.no_pause {
            return Ok(());
        }
        let mut run = self.run.lock().map_err(|_| "run-state lock poisoned")?;
        if run.exiting {
            return Err("corestub is exiting".into());
        }
        self.qmp.drain_events();
        self.qmp.cont()?;
        run.owned_pause = false;
        log::info!("guest resumed");
        Ok(())
    }

    /// Resumes the guest if corestub paused it (detach, disconnect, exit).
    pub fn release(&self) {
        let Ok(mut run) = self.run.lock() else {
            // A panic while holding the lock: still try to resume.
            let _ = self.qmp.cont();
            return;
        };
        if run.owned_pause {
            match self.qmp.cont() {
                Ok(()) => log::info!("guest resumed (released)"),
                // not eprintln!, which panics when stderr is a closed pipe
                Err(e) => {
                    let _ = writeln!(io::stderr(), "corestub: could not resume the guest: {e}");
                }
            }
            run.owned_pause = false;
        }
    }

    /// [`Live::release`] for good: no stop happens afterwards.
    pub fn shutdown(&self) {
        self.release();
        if let Ok(mut run) = self.run.lock() {
            run.exiting = true;
        }
    }

    /// A guest stopped by someone else while GDB had it running: it is not
    /// corestub's to resume.
    fn stopped_externally(&self) {
        if let Ok(mut run) = self.run.lock() {
            run.owned_pause = false;
        }
    }

    /// A new [`Session`] over the guest as it is now: registers from QMP,
    /// VMCOREINFO from RAM (found once), vmlinux shared.
    pub fn snapshot(&self) -> Result<Session, String> {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let text = self.qmp.hmp("info registers -a")?;
        let vmcoreinfo = {
            let mut v = self.vmcoreinfo.lock().map_err(|_| "lock poisoned")?;
            if v.is_none() {
                *v = find_vmcoreinfo(&self.ram.memory).map(|(t, _)| t);
            }
            v.clone()
        };
        let dump = match self
            .ram
            .snapshot(Some(&text), 0, vmcoreinfo.clone(), generation)
        {
            Ok(d) => d,
            Err(e) => {
                log::warn!("{e}; CPU threads will have no registers");
                let n = text.matches("CPU#").count();
                self.ram.snapshot(None, n, vmcoreinfo, generation)?
            }
        };
        let session = session_over(dump, self.vmlinux.clone(), self.opts.mode)?;
        log::debug!("snapshot {generation} taken");
        Ok(session)
    }
}

impl Machine for Live {
    type Conn = LiveConn;
    const READ_ONLY: &'static str = "guest RAM is mapped read-only";
    const NO_STEP: &'static str =
        "QMP cannot single-step a live guest (QEMU's own gdbstub, -s, can)";
    const WHAT: &'static str = "live guest";

    fn snapshot(&self) -> Result<Session, String> {
        Live::snapshot(self)
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn resume(&self) -> Result<Resumed, String> {
        Live::resume(self)?;
        Ok(Resumed::Running)
    }

    fn pause(&self) -> Result<(), String> {
        Live::pause(self)
    }

    /// The guest runs: wait for GDB (an interrupt) or for QEMU to stop it
    /// (another QMP client, a guest panic with `-action panic=pause`, …).
    fn wait(&self, conn: &mut LiveConn) -> io::Result<Waited> {
        loop {
            if conn.reader.fill(Some(POLL))? {
                let b = conn.reader.buf.pop_front().expect("filled");
                return Ok(Waited::Data(b));
            }
            while let Some(ev) = self.qmp.next_event(Duration::ZERO) {
                match ev.name.as_str() {
                    "STOP" => {
                        log::info!("guest stopped by QEMU or another QMP client");
                        self.stopped_externally();
                        return Ok(Waited::Stopped(Signal::SIGSTOP));
                    }
                    "SHUTDOWN" => {
                        log::info!("guest shut down: {}", ev.data);
                    }
                    _ => {}
                }
            }
            if self.qmp.is_closed() {
                return Ok(Waited::Exited);
            }
        }
    }
}

/// Marks the guest attached for a connection's lifetime; releases the guest
/// on drop (detach, disconnect, error, panic unwinding).
struct Attached<'a>(&'a Live);

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        self.0.release();
        self.0.attached.store(false, Ordering::SeqCst);
    }
}

/// A connection whose reads can wait with a timeout (a reader thread feeds
/// a channel), so the running target can poll GDB and QMP in turn.
pub type LiveConn = Conn<ChannelSource>;

/// Bytes from the client, fed through a channel by a reader thread.
pub struct ChannelSource {
    rx: Receiver<io::Result<Vec<u8>>>,
    buf: VecDeque<u8>,
}

impl ChannelSource {
    pub fn conn(mut r: Box<dyn Read + Send>, w: Box<dyn Write + Send>) -> LiveConn {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            loop {
                let mut b = vec![0u8; 0x10000];
                match r.read(&mut b) {
                    Ok(0) => {
                        let _ = tx.send(Err(io::ErrorKind::UnexpectedEof.into()));
                        break;
                    }
                    Ok(n) => {
                        b.truncate(n);
                        if tx.send(Ok(b)).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                }
            }
        });
        Conn::with_reader(
            ChannelSource {
                rx,
                buf: VecDeque::new(),
            },
            w,
        )
    }

    /// Waits up to `timeout` (forever with `None`) for a byte.
    fn fill(&mut self, timeout: Option<Duration>) -> io::Result<bool> {
        if !self.buf.is_empty() {
            return Ok(true);
        }
        let got = match timeout {
            None => self
                .rx
                .recv()
                .map_err(|_| io::Error::from(io::ErrorKind::UnexpectedEof))?,
            Some(t) if t.is_zero() => match self.rx.try_recv() {
                Ok(v) => v,
                Err(TryRecvError::Empty) => return Ok(false),
                Err(TryRecvError::Disconnected) => {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            },
            Some(t) => match self.rx.recv_timeout(t) {
                Ok(v) => v,
                Err(RecvTimeoutError::Timeout) => return Ok(false),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            },
        };
        self.buf.extend(got?);
        Ok(!self.buf.is_empty())
    }
}

impl ByteSource for ChannelSource {
    fn read_byte(&mut self) -> io::Result<u8> {
        while !self.fill(None)? {}
        Ok(self.buf.pop_front().expect("filled"))
    }

    fn peek_byte(&mut self) -> io::Result<Option<u8>> {
        self.fill(Some(Duration::ZERO))?;
        Ok(self.buf.front().copied())
    }
}

/// Serves one GDB client over a live guest: pauses it (unless `no_pause`),
/// serves until detach or disconnect, then resumes it if corestub paused it.
/// One client at a time.
pub fn serve_live_connection<A: ArchSupport>(
    live: Arc<Live>,
    r: Box<dyn Read + Send>,
    w: Box<dyn Write + Send>,
) -> Result<DisconnectReason, String> {
    if live.attached.swap(true, Ordering::SeqCst) {
        return Err("another GDB client is attached to this live guest".into());
    }
    let _guard = Attached(&live);
    live.pause()?;
    let session = Arc::new(live.snapshot()?);
    let conn = ChannelSource::conn(r, w);
    super::refresh::serve::<Live, A>(live.clone(), session, conn)
}
