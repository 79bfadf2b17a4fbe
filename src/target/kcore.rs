//! The running kernel (/proc/kcore) as a GDB target: read-only, and never
//! stopped — the kernel runs on while GDB reads it.
//!
//! Served by [`super::refresh`] (a new Session per refresh): `monitor
//! refresh`, GDB `continue` (which re-reads the kernel and stops at once)
//! and an interrupt. kcore itself caches nothing ([`Kcore`] reads with
//! pread), and the vmlinux with its DWARF caches is shared between
//! sessions. Breakpoints and writes are refused (kcore is opened
//! read-only); a step is answered by an immediate stop, as nothing can run.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use gdbstub::common::Tid;
use gdbstub::conn::ConnectionExt;
use gdbstub::stub::DisconnectReason;

use super::conn::BufConn;
use super::refresh::{Machine, Resumed, Waited, session_over};
use super::session::TASK_TID_BASE;
use super::{ArchSupport, Session, ThreadMode};
use crate::dump::kcore::Kcore;
use crate::kernel::symbols::Vmlinux;

/// The running kernel: its kcore and the vmlinux, shared by connections.
pub struct RunningKernel {
    pub kcore: Kcore,
    pub vmlinux: Option<Vmlinux>,
    pub mode: ThreadMode,
    generation: AtomicU64,
    /// A connection has started: the next ones take a fresh snapshot.
    connected: AtomicBool,
}

impl RunningKernel {
    pub fn new(kcore: Kcore, vmlinux: Option<Vmlinux>, mode: ThreadMode) -> RunningKernel {
        RunningKernel {
            kcore,
            vmlinux,
            mode,
            generation: AtomicU64::new(0),
            connected: AtomicBool::new(false),
        }
    }

    /// A new [`Session`] over the kernel as it is now; nothing read for an
    /// earlier one is reused (the vmlinux excepted).
    pub fn snapshot(&self) -> Result<Session, String> {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let dump = self.kcore.snapshot(generation);
        let session = session_over(dump, self.vmlinux.clone(), self.mode)?;
        log::debug!("running kernel: snapshot {generation} taken");
        Ok(session)
    }
}

impl Machine for RunningKernel {
    type Conn = BufConn;
    const READ_ONLY: &'static str = "the running kernel is read-only to corestub";
    const NO_STEP: &'static str = "the running kernel cannot be stepped";
    const REFRESH_HELP: Option<&'static str> =
        Some("  refresh re-read the running kernel (task list, CPUs; caches dropped)\n");
    const WHAT: &'static str = "running kernel";

    fn snapshot(&self) -> Result<Session, String> {
        RunningKernel::snapshot(self)
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The kernel never stopped, so there is nothing to resume: re-read it
    /// and report a stop at once (GDB then re-fetches threads and
    /// registers).
    fn resume(&self) -> Result<Resumed, String> {
        Ok(Resumed::Reread)
    }

    // Only reached if a stop were not reported at once: wait for GDB.
    fn wait(&self, conn: &mut BufConn) -> io::Result<Waited> {
        conn.read().map(Waited::Data)
    }

    /// Init's task (PID 1), which sleeps and so has an exact frame, rather
    /// than CPU 0, whose current task's frame is stale (and can be garbage
    /// GDB spends long symbolising); CPU 0 when there are no task threads.
    fn stop_thread(&self, session: &Session) -> Tid {
        let init = TASK_TID_BASE + 1;
        let tid = match session.threads().get(init) {
            Some(_) => init,
            None => 1,
        };
        Tid::new(tid).expect("thread ids start at 1")
    }
}

/// Serves one GDB client over the running kernel. The first client starts
/// from `session` (the snapshot the caller took and warmed up at start);
/// later ones, maybe hours on, from a fresh one.
pub fn serve_kcore_connection<A: ArchSupport>(
    kernel: Arc<RunningKernel>,
    session: Arc<Session>,
    conn: BufConn,
) -> Result<DisconnectReason, String> {
    let session = if kernel.connected.swap(true, Ordering::SeqCst) {
        Arc::new(kernel.snapshot()?)
    } else {
        session
    };
    super::refresh::serve::<RunningKernel, A>(kernel, session, conn)
}
