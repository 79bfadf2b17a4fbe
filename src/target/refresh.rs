//! A machine whose memory changes under us, served as a GDB target: the
//! running kernel ([`super::kcore`]) and a live QEMU guest ([`super::live`]).
//!
//! Everything derived from memory (CPU address spaces, the task list, the
//! thread table, the page-table walk cache of the session's `Kernel`) lives
//! in a [`Session`], and a **new Session replaces the old one** at every
//! refresh (a stop, `continue` on a machine that never stops, `monitor
//! refresh`): nothing read before is served after. [`RefreshTarget`] is the
//! one gdbstub target over such a machine: it serves each request from a
//! [`DumpTarget`] over the current session and refuses writes and steps;
//! how to take a snapshot, run and stop the machine is the [`Machine`]'s.

use std::io;
use std::num::NonZeroUsize;
use std::sync::Arc;

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

use super::conn::PACKET_SIZE;
use super::regs::{Regs, TableArch};
use super::{ArchSupport, DumpTarget, Session, ThreadMode};
use crate::dump::Dump;
use crate::kernel::Kernel;
use crate::kernel::symbols::Vmlinux;

/// What GDB's `continue` did to the machine.
pub enum Resumed {
    /// It runs: a stop comes from [`Machine::wait`] or GDB's interrupt.
    Running,
    /// It never stops (the running kernel): re-read it and stop at once.
    Reread,
}

/// What happened while the machine ran.
pub enum Waited {
    /// A byte from GDB (an interrupt, or a packet).
    Data(u8),
    /// The machine stopped by itself (a new snapshot is taken).
    Stopped(Signal),
    /// The machine is gone.
    Exited,
}

/// A machine served by [`RefreshTarget`]: how to read it anew and how it
/// runs. Shared by the serving thread and others (signals), so `&self`.
pub trait Machine {
    /// The connection GDB talks on (the running target may poll it).
    type Conn: ConnectionExt<Error = io::Error>;
    /// Why a memory write is refused (server log).
    const READ_ONLY: &'static str;
    /// Why a step is refused (server log).
    const NO_STEP: &'static str;
    /// `monitor help`'s line for `monitor refresh`, on the machines that
    /// have the command.
    const REFRESH_HELP: Option<&'static str> = None;
    /// What `monitor refresh` re-read, in its answer.
    const WHAT: &'static str;

    /// A new [`Session`] over the machine as it is now.
    fn snapshot(&self) -> Result<Session, String>;

    /// How many snapshots were taken.
    fn generation(&self) -> u64;

    /// GDB `continue`.
    fn resume(&self) -> Result<Resumed, String>;

    /// GDB's interrupt, before the new snapshot: stop the machine.
    fn pause(&self) -> Result<(), String> {
        Ok(())
    }

    /// While the machine runs: the next byte from GDB, or the machine
    /// stopping (or going away) by itself.
    fn wait(&self, conn: &mut Self::Conn) -> io::Result<Waited>;

    /// The thread a stop names. Default: thread 1 (CPU 0).
    fn stop_thread(&self, _session: &Session) -> Tid {
        tid(1)
    }
}

fn tid(n: usize) -> Tid {
    NonZeroUsize::new(n).expect("thread ids start at 1")
}

/// A session over `dump` as it is now, sharing the vmlinux (and its DWARF
/// caches) with earlier ones. Without a `panic_cpu` symbol the dump
/// heuristics would name CPU 0; a machine that runs has not panicked
/// unless its `panic_cpu` says so.
pub fn session_over(
    dump: Dump,
    vmlinux: Option<Vmlinux>,
    mode: ThreadMode,
) -> Result<Session, String> {
    let kernel = Kernel::with_vmlinux(dump, vmlinux).map_err(|e| e.to_string())?;
    let mut session = Session::new(kernel, mode);
    if session.kernel.symbol("panic_cpu").is_none() {
        session.panic_cpu = None;
    }
    Ok(session)
}

/// The gdbstub target over a [`Machine`]: a [`DumpTarget`] over the
/// current snapshot, replaced on refresh.
pub struct RefreshTarget<M: Machine, A: ArchSupport> {
    machine: Arc<M>,
    session: Arc<Session>,
    /// The machine stopped (or was re-read) without running: report a
    /// stop at once.
    stop_pending: bool,
    /// GDB asked to step: refused, answered by an immediate stop.
    step_asked: bool,
    _arch: std::marker::PhantomData<A>,
}

impl<M: Machine, A: ArchSupport> RefreshTarget<M, A> {
    pub fn new(machine: Arc<M>, session: Arc<Session>) -> Self {
        RefreshTarget {
            machine,
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
        self.session = Arc::new(self.machine.snapshot()?);
        Ok(())
    }

    fn stop(&self, signal: Signal) -> MultiThreadStopReason<u64> {
        MultiThreadStopReason::SignalWithThread {
            tid: self.machine.stop_thread(&self.session),
            signal,
        }
    }

    /// `monitor refresh`'s answer.
    fn refresh_command(&mut self) -> String {
        match self.refresh() {
            Ok(()) => format!(
                "corestub: {} re-read (snapshot {}); in GDB: maintenance flush register-cache, then info threads\n",
                M::WHAT,
                self.machine.generation()
            ),
            Err(e) => format!("refresh: {e}\n"),
        }
    }
}

impl<M: Machine, A: ArchSupport> Target for RefreshTarget<M, A> {
    type Arch = TableArch<A>;
    type Error = String;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::MultiThread(self)
    }

    // Breakpoints would be writes into the machine's memory: refused.
    fn guard_rail_implicit_sw_breakpoints(&self) -> bool {
        true
    }

    /// Binary memory reads (`x`), as for dumps ([`DumpTarget`]).
    fn use_x_lowcase_packet(&self) -> bool {
        true
    }

    fn support_monitor_cmd(&mut self) -> Option<MonitorCmdOps<'_, Self>> {
        Some(self)
    }
}

impl<M: Machine, A: ArchSupport> MultiThreadBase for RefreshTarget<M, A> {
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
        log::warn!("refused a memory write at {start:#x}: {}", M::READ_ONLY);
        Err(TargetError::Errno(30)) // EROFS
    }

    fn list_active_threads(&mut self, cb: &mut dyn FnMut(Tid)) -> Result<(), Self::Error> {
        self.inner().list_active_threads(cb)
    }

    fn is_thread_alive(&mut self, t: Tid) -> Result<bool, Self::Error> {
        self.inner().is_thread_alive(t)
    }

    /// The thread list with its labels in one `qXfer:threads:read` (gdbstub
    /// patch 8) instead of a `qThreadExtraInfo` per thread.
    fn use_threads_xml(&self) -> bool {
        true
    }

    // LLDB names threads only from stop replies (vendor patch 12).
    fn use_thread_stop_info(&self) -> bool {
        true
    }

    fn initial_stop_thread(&mut self) -> Result<Option<Tid>, Self::Error> {
        Ok(Some(self.machine.stop_thread(&self.session)))
    }

    fn support_resume(&mut self) -> Option<MultiThreadResumeOps<'_, Self>> {
        Some(self)
    }

    fn support_thread_extra_info(&mut self) -> Option<ThreadExtraInfoOps<'_, Self>> {
        Some(self)
    }
}

impl<M: Machine, A: ArchSupport> MultiThreadResume for RefreshTarget<M, A> {
    fn resume(&mut self) -> Result<(), Self::Error> {
        if std::mem::take(&mut self.step_asked) {
            // nothing runs, nothing is re-read: GDB stops its stepping at
            // the SIGINT stop instead of stepping on (or dropping us)
            log::warn!("refused a step: {}", M::NO_STEP);
            self.stop_pending = true;
            return Ok(());
        }
        match self.machine.resume()? {
            Resumed::Running => {}
            Resumed::Reread => {
                self.refresh()?;
                self.stop_pending = true;
            }
        }
        Ok(())
    }

    fn clear_resume_actions(&mut self) -> Result<(), Self::Error> {
        self.step_asked = false;
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<MultiThreadSingleStepOps<'_, Self>> {
        Some(self)
    }

    // The whole machine runs: per-thread actions cannot be honoured.
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
impl<M: Machine, A: ArchSupport> MultiThreadSingleStep for RefreshTarget<M, A> {
    fn set_resume_action_step(
        &mut self,
        _tid: Tid,
        _signal: Option<Signal>,
    ) -> Result<(), Self::Error> {
        self.step_asked = true;
        Ok(())
    }
}

impl<M: Machine, A: ArchSupport> ThreadExtraInfo for RefreshTarget<M, A> {
    fn thread_extra_info(&self, t: Tid, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.inner().thread_extra_info(t, buf)
    }
}

impl<M: Machine, A: ArchSupport> MonitorCmd for RefreshTarget<M, A> {
    fn handle_monitor_cmd(&mut self, cmd: &[u8], out: ConsoleOutput<'_>) -> Result<(), String> {
        let line = String::from_utf8_lossy(cmd);
        let words: Vec<&str> = line.split_whitespace().collect();
        let text = match (words.as_slice(), M::REFRESH_HELP) {
            (["refresh"], Some(_)) => self.refresh_command(),
            (words, help) => {
                let mut text = super::monitor::run(&self.session, &line);
                if let (Some(help), [] | ["help"]) = (help, words) {
                    text.push_str(help);
                }
                text
            }
        };
        super::write_console(out, &text);
        Ok(())
    }
}

struct RefreshLoop<M, A>(std::marker::PhantomData<(M, A)>);

impl<M: Machine, A: ArchSupport> BlockingEventLoop for RefreshLoop<M, A> {
    type Target = RefreshTarget<M, A>;
    type Connection = M::Conn;
    type StopReason = MultiThreadStopReason<u64>;

    fn wait_for_stop_reason(
        target: &mut RefreshTarget<M, A>,
        conn: &mut M::Conn,
    ) -> Result<Event<Self::StopReason>, WaitForStopReasonError<String, io::Error>> {
        if std::mem::take(&mut target.stop_pending) {
            return Ok(Event::TargetStopped(target.stop(Signal::SIGINT)));
        }
        let waited = target
            .machine
            .wait(conn)
            .map_err(WaitForStopReasonError::Connection)?;
        Ok(match waited {
            Waited::Data(b) => Event::IncomingData(b),
            Waited::Stopped(signal) => {
                target.refresh().map_err(WaitForStopReasonError::Target)?;
                Event::TargetStopped(target.stop(signal))
            }
            Waited::Exited => Event::TargetStopped(MultiThreadStopReason::Exited(0)),
        })
    }

    fn on_interrupt(target: &mut RefreshTarget<M, A>) -> Result<Option<Self::StopReason>, String> {
        target.stop_pending = false;
        target.machine.pause()?;
        target.refresh()?;
        Ok(Some(target.stop(Signal::SIGINT)))
    }
}

/// Serves one GDB client over `machine`, starting from `session`.
pub fn serve<M: Machine, A: ArchSupport>(
    machine: Arc<M>,
    session: Arc<Session>,
    conn: M::Conn,
) -> Result<DisconnectReason, String> {
    let mut target = RefreshTarget::<M, A>::new(machine, session);
    let gdb = GdbStub::builder(conn)
        .packet_buffer_size(PACKET_SIZE)
        .build()
        .map_err(|e| e.to_string())?;
    super::conn::session_end(gdb.run_blocking::<RefreshLoop<M, A>>(&mut target))
}
