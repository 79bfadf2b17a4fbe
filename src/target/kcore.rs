//! The running kernel (/proc/kcore) as a GDB target: read-only, and never
//! stopped — the kernel runs on while GDB reads it.
//!
//! As for a live guest ([`super::live`]), everything derived from memory
//! (CPU address spaces, the task list, the thread table, the page-table
//! walk cache of the session's `Kernel`) lives in a [`Session`], and a
//! **new Session replaces the old one** at every refresh: `monitor
//! refresh`, GDB `continue` (which re-reads the kernel and stops at once)
//! and an interrupt. kcore itself caches nothing ([`Kcore`] reads with
//! pread), and the vmlinux with its DWARF caches is shared between
//! sessions. Breakpoints and writes are refused (kcore is opened
//! read-only); a step is answered by an immediate stop, as nothing can run.

use std::io;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use gdbstub::common::{Signal, Tid};
use gdbstub::conn::ConnectionExt;
use gdbstub::stub::run_blocking::{BlockingEventLoop, Event, WaitForStopReasonError};
use gdbstub::stub::{DisconnectReason, GdbStub, MultiThreadStopReason};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::base::multithread::{
    MultiThreadBase, MultiThreadResume, MultiThreadResumeOps, MultiThreadSingleStep,
    MultiThreadSingleStepOps,
};
use gdbstub::target::ext::monitor_cmd::{ConsoleOutput, MonitorCmd, MonitorCmdOps};
use gdbstub::target::ext::thread_extra_info::{ThreadExtraInfo, ThreadExtraInfoOps};
use gdbstub::target::{Target, TargetError, TargetResult};

use super::conn::{BufConn, PACKET_SIZE};
use super::regs::{Regs, TableArch};
use super::session::TASK_TID_BASE;
use super::{ArchSupport, DumpTarget, Session, ThreadMode};
use crate::dump::kcore::Kcore;
use crate::kernel::Kernel;
use crate::kernel::symbols::Vmlinux;

/// `monitor help` line for the command only this target has.
const REFRESH_HELP: &str =
    "  refresh re-read the running kernel (task list, CPUs; caches dropped)\n";

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

    /// How many snapshots were taken.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// A new [`Session`] over the kernel as it is now; nothing read for an
    /// earlier one is reused (the vmlinux excepted).
    pub fn snapshot(&self) -> Result<Session, String> {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let dump = self.kcore.snapshot(generation);
        let kernel = Kernel::with_vmlinux(dump, self.vmlinux.clone()).map_err(|e| e.to_string())?;
        log::debug!("running kernel: snapshot {generation} taken");
        let mut session = Session::new(kernel, self.mode);
        if session.kernel.symbol("panic_cpu").is_none() {
            // without symbols the dump heuristics would name CPU 0; a
            // running kernel has not panicked
            session.panic_cpu = None;
        }
        Ok(session)
    }
}

/// The gdbstub target over the running kernel: a [`DumpTarget`] over the
/// current snapshot, replaced on refresh.
pub struct KcoreTarget<A: ArchSupport> {
    kernel: Arc<RunningKernel>,
    session: Arc<Session>,
    /// `continue` re-read the kernel: report a stop at once.
    stop_pending: bool,
    /// GDB asked to step: refused, answered by an immediate stop.
    step_asked: bool,
    _arch: std::marker::PhantomData<A>,
}

impl<A: ArchSupport> KcoreTarget<A> {
    pub fn new(kernel: Arc<RunningKernel>, session: Arc<Session>) -> Self {
        KcoreTarget {
            kernel,
            session,
            stop_pending: false,
            step_asked: false,
            _arch: std::marker::PhantomData,
        }
    }

    fn inner(&self) -> DumpTarget<A> {
        DumpTarget::new(self.session.clone())
    }

    /// A fresh snapshot; the old session (and all it cached) is dropped.
    fn refresh(&mut self) -> Result<(), String> {
        self.session = Arc::new(self.kernel.snapshot()?);
        Ok(())
    }

    /// The thread a stop names: init's task (PID 1), which sleeps and so
    /// has an exact frame, rather than CPU 0, whose current task's frame is
    /// stale (and can be garbage GDB spends long symbolising); CPU 0 when
    /// there are no task threads.
    fn stop_thread(&self) -> Tid {
        let init = TASK_TID_BASE + 1;
        let tid = match self.session.threads().get(init) {
            Some(_) => init,
            None => 1,
        };
        NonZeroUsize::new(tid).expect("thread ids start at 1")
    }

    fn stop(&self, signal: Signal) -> MultiThreadStopReason<u64> {
        MultiThreadStopReason::SignalWithThread {
            tid: self.stop_thread(),
            signal,
        }
    }
}

impl<A: ArchSupport> Target for KcoreTarget<A> {
    type Arch = TableArch<A>;
    type Error = String;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::MultiThread(self)
    }

    // Breakpoints would be writes into the running kernel: refused.
    fn guard_rail_implicit_sw_breakpoints(&self) -> bool {
        true
    }

    fn use_x_lowcase_packet(&self) -> bool {
        true
    }

    fn support_monitor_cmd(&mut self) -> Option<MonitorCmdOps<'_, Self>> {
        Some(self)
    }
}

impl<A: ArchSupport> MultiThreadBase for KcoreTarget<A> {
    fn read_registers(&mut self, regs: &mut Regs<A>, t: Tid) -> TargetResult<(), Self> {
        self.inner().read_registers(regs, t)
    }

    fn write_registers(&mut self, _regs: &Regs<A>, _t: Tid) -> TargetResult<(), Self> {
        Err(TargetError::NonFatal)
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8], t: Tid) -> TargetResult<usize, Self> {
        self.inner().read_addrs(start, data, t)
    }

    fn write_addrs(&mut self, start: u64, _data: &[u8], _t: Tid) -> TargetResult<(), Self> {
        log::warn!(
            "refused a memory write at {start:#x}: the running kernel is read-only to corestub"
        );
        Err(TargetError::Errno(30)) // EROFS
    }

    fn list_active_threads(&mut self, cb: &mut dyn FnMut(Tid)) -> Result<(), Self::Error> {
        self.inner().list_active_threads(cb)
    }

    fn is_thread_alive(&mut self, t: Tid) -> Result<bool, Self::Error> {
        self.inner().is_thread_alive(t)
    }

    fn use_threads_xml(&self) -> bool {
        true
    }

    fn initial_stop_thread(&mut self) -> Result<Option<Tid>, Self::Error> {
        Ok(Some(self.stop_thread()))
    }

    fn support_resume(&mut self) -> Option<MultiThreadResumeOps<'_, Self>> {
        Some(self)
    }

    fn support_thread_extra_info(&mut self) -> Option<ThreadExtraInfoOps<'_, Self>> {
        Some(self)
    }
}

/// `continue`: the kernel never stopped, so there is nothing to resume;
/// re-read it and report a stop at once (GDB then re-fetches threads and
/// registers).
impl<A: ArchSupport> MultiThreadResume for KcoreTarget<A> {
    fn resume(&mut self) -> Result<(), Self::Error> {
        if std::mem::take(&mut self.step_asked) {
            // nothing ran, nothing is re-read: GDB stops its stepping at
            // the SIGINT stop instead of stepping on (or dropping us)
            log::warn!("refused a step: the running kernel cannot be stepped");
        } else {
            self.refresh()?;
        }
        self.stop_pending = true;
        Ok(())
    }

    fn clear_resume_actions(&mut self) -> Result<(), Self::Error> {
        self.step_asked = false;
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<MultiThreadSingleStepOps<'_, Self>> {
        Some(self)
    }

    fn set_resume_action_continue(
        &mut self,
        _tid: Tid,
        _signal: Option<Signal>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Steps are accepted only to be refused: without this, gdbstub drops the
/// connection on GDB's `vCont;s` (`stepi`, `step`, `next`).
impl<A: ArchSupport> MultiThreadSingleStep for KcoreTarget<A> {
    fn set_resume_action_step(
        &mut self,
        _tid: Tid,
        _signal: Option<Signal>,
    ) -> Result<(), Self::Error> {
        self.step_asked = true;
        Ok(())
    }
}

impl<A: ArchSupport> ThreadExtraInfo for KcoreTarget<A> {
    fn thread_extra_info(&self, t: Tid, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.inner().thread_extra_info(t, buf)
    }
}

impl<A: ArchSupport> MonitorCmd for KcoreTarget<A> {
    fn handle_monitor_cmd(
        &mut self,
        cmd: &[u8],
        mut out: ConsoleOutput<'_>,
    ) -> Result<(), Self::Error> {
        let line = String::from_utf8_lossy(cmd);
        let words: Vec<&str> = line.split_whitespace().collect();
        let text = match words.as_slice() {
            ["refresh"] => match self.refresh() {
                Ok(()) => format!(
                    "corestub: running kernel re-read (snapshot {}); in GDB: maintenance flush register-cache, then info threads\n",
                    self.kernel.generation()
                ),
                Err(e) => format!("refresh: {e}\n"),
            },
            _ => {
                let mut text = super::monitor::run(&self.session, &line);
                if matches!(words.as_slice(), [] | ["help"]) {
                    text.push_str(REFRESH_HELP);
                }
                text
            }
        };
        // one `O` packet per write: big answers in chunks (as DumpTarget)
        for chunk in text.as_bytes().chunks(0x2000) {
            out.write_raw(chunk);
            out.flush();
        }
        Ok(())
    }
}

struct KcoreLoop<A: ArchSupport>(std::marker::PhantomData<A>);

impl<A: ArchSupport> BlockingEventLoop for KcoreLoop<A> {
    type Target = KcoreTarget<A>;
    type Connection = BufConn;
    type StopReason = MultiThreadStopReason<u64>;

    fn wait_for_stop_reason(
        target: &mut KcoreTarget<A>,
        conn: &mut BufConn,
    ) -> Result<Event<Self::StopReason>, WaitForStopReasonError<String, io::Error>> {
        if std::mem::take(&mut target.stop_pending) {
            return Ok(Event::TargetStopped(target.stop(Signal::SIGINT)));
        }
        let b = conn.read().map_err(WaitForStopReasonError::Connection)?;
        Ok(Event::IncomingData(b))
    }

    fn on_interrupt(target: &mut KcoreTarget<A>) -> Result<Option<Self::StopReason>, String> {
        target.stop_pending = false;
        target.refresh()?;
        Ok(Some(target.stop(Signal::SIGINT)))
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
    let mut target = KcoreTarget::<A>::new(kernel, session);
    let gdb = GdbStub::builder(conn)
        .packet_buffer_size(PACKET_SIZE)
        .build()
        .map_err(|e| e.to_string())?;
    super::conn::session_end(gdb.run_blocking::<KcoreLoop<A>>(&mut target))
}
