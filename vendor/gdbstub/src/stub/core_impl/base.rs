use super::prelude::*;
use super::DisconnectReason;
use crate::arch::Arch;
use crate::arch::Registers;
use crate::common::Pid;
use crate::common::Tid;
use crate::protocol::commands::ext::Base;
use crate::protocol::IdKind;
use crate::protocol::SpecificIdKind;
use crate::protocol::SpecificThreadId;
use crate::target::ext::base::BaseOps;
use crate::target::ext::base::ResumeOps;
use crate::FAKE_PID;
use crate::SINGLE_THREAD_TID;

impl<T: Target, C: Connection> GdbStubImpl<T, C> {
    #[inline(always)]
    fn get_sane_any_tid(
        &mut self,
        target: &mut T,
    ) -> Result<Option<Tid>, Error<T::Error, C::Error>> {
        let tid = match target.base_ops() {
            BaseOps::SingleThread(_) => Some(SINGLE_THREAD_TID),
            BaseOps::MultiThread(ops) => {
                let mut first_tid = None;
                ops.list_active_threads(&mut |tid| {
                    if first_tid.is_none() {
                        first_tid = Some(tid);
                    }
                })
                .map_err(Error::TargetError)?;
                // It is possible for this to be `None` in the case where the target has
                // not yet called `register_thread()`. This can happen, for example, if
                // there are no active threads in the current target process.
                first_tid
            }
        };
        Ok(tid)
    }

    // corestub patch: whether `tid` is among the target's threads.
    fn is_active_tid(
        &mut self,
        target: &mut T,
        tid: Tid,
    ) -> Result<bool, Error<T::Error, C::Error>> {
        match target.base_ops() {
            BaseOps::SingleThread(_) => Ok(tid == SINGLE_THREAD_TID),
            BaseOps::MultiThread(ops) => ops.is_thread_alive(tid).map_err(Error::TargetError),
        }
    }

    pub(crate) fn get_current_pid(
        &mut self,
        target: &mut T,
    ) -> Result<Pid, Error<T::Error, C::Error>> {
        if let Some(ops) = target
            .support_extended_mode()
            .and_then(|ops| ops.support_current_active_pid())
        {
            ops.current_active_pid().map_err(Error::TargetError)
        } else {
            Ok(FAKE_PID)
        }
    }

    // Used by `?` and `vAttach` to return a "reasonable" stop reason.
    //
    // This is a bit of an implementation wart, since this is really something
    // the user ought to be able to customize.
    //
    // Works fine for now though...
    pub(crate) fn report_reasonable_stop_reason(
        &mut self,
        res: &mut ResponseWriter<'_, C>,
        target: &mut T,
    ) -> Result<HandlerStatus, Error<T::Error, C::Error>> {
        // Reply with a valid thread-id or GDB issues a warning when more
        // than one thread is active
        // corestub patch: let a multi-threaded target choose the thread.
        let preferred = match target.base_ops() {
            BaseOps::MultiThread(ops) => ops.initial_stop_thread().map_err(Error::TargetError)?,
            BaseOps::SingleThread(_) => None,
        };
        let tid = match preferred {
            // GDB takes the thread named in a stop reply as its current
            // thread without sending `Hg`, so the stub must follow (as
            // resume.rs does after a real stop).
            Some(tid) => {
                self.current_mem_tid = tid;
                Some(tid)
            }
            None => self.get_sane_any_tid(target)?,
        };
        if let Some(tid) = tid {
            res.write_str("T05")?;
            self.write_stop_thread_id(res, target, tid)?;
            self.stop_thread = Some((tid, 5));
            self.write_thread_name(res, target, tid)?;
        } else {
            res.write_str("W00;")?;
        }
        Ok(HandlerStatus::Handled)
    }

    pub(crate) fn handle_base(
        &mut self,
        res: &mut ResponseWriter<'_, C>,
        target: &mut T,
        command: Base<'_>,
    ) -> Result<HandlerStatus, Error<T::Error, C::Error>> {
        let handler_status = match command {
            // ------------------ Handshaking and Queries ------------------- //
            Base::qSupported(cmd) => {
                use crate::protocol::commands::_qSupported::Feature;

                // perform incoming feature negotiation
                for feature in cmd.features.into_iter() {
                    let (feature, supported) = match feature {
                        Ok(Some(v)) => v,
                        Ok(None) => continue,
                        Err(()) => {
                            return Err(Error::PacketParse(
                                crate::protocol::PacketParseError::MalformedCommand,
                            ))
                        }
                    };

                    match feature {
                        Feature::Multiprocess => self.features.set_multiprocess(supported),
                    }
                }

                res.write_str("PacketSize=")?;
                res.write_num(cmd.packet_buffer_len)?;

                // these are the few features that gdbstub unconditionally supports
                res.write_str(concat!(";vContSupported+", ";multiprocess+",))?;

                if target.use_no_ack_mode() {
                    res.write_str(";QStartNoAckMode+")?;
                }

                if target.use_fork_stop_reason() {
                    res.write_str(";fork-events+")?;
                }

                if target.use_vfork_stop_reason() {
                    res.write_str(";vfork-events+")?;
                }

                if target.use_vforkdone_stop_reason() {
                    res.write_str(";vforkdone-events+")?;
                }

                // corestub patch (PATCHES.md, 9)
                if target.use_x_lowcase_packet() {
                    res.write_str(";binary-upload+")?;
                }

                if let Some(resume_ops) = target.base_ops().resume_ops() {
                    let (reverse_cont, reverse_step) = match resume_ops {
                        ResumeOps::MultiThread(ops) => (
                            ops.support_reverse_cont().is_some(),
                            ops.support_reverse_step().is_some(),
                        ),
                        ResumeOps::SingleThread(ops) => (
                            ops.support_reverse_cont().is_some(),
                            ops.support_reverse_step().is_some(),
                        ),
                    };

                    if reverse_cont {
                        res.write_str(";ReverseContinue+")?;
                    }

                    if reverse_step {
                        res.write_str(";ReverseStep+")?;
                    }
                }

                if let Some(ops) = target.support_extended_mode() {
                    if ops.support_configure_aslr().is_some() {
                        res.write_str(";QDisableRandomization+")?;
                    }

                    if ops.support_configure_env().is_some() {
                        res.write_str(";QEnvironmentHexEncoded+")?;
                        res.write_str(";QEnvironmentUnset+")?;
                        res.write_str(";QEnvironmentReset+")?;
                    }

                    if ops.support_configure_startup_shell().is_some() {
                        res.write_str(";QStartupWithShell+")?;
                    }

                    if ops.support_configure_working_dir().is_some() {
                        res.write_str(";QSetWorkingDir+")?;
                    }
                }

                if let Some(ops) = target.support_breakpoints() {
                    if ops.support_sw_breakpoint().is_some() {
                        res.write_str(";swbreak+")?;
                    }

                    if ops.support_hw_breakpoint().is_some()
                        || ops.support_hw_watchpoint().is_some()
                    {
                        res.write_str(";hwbreak+")?;
                    }
                }

                if let Some(ops) = target.support_tracepoints() {
                    // There are a number of optional tracepoint extensions that
                    // gdbstub should eventually implement.
                    // * `StaticTracepoint` for static tracepoint support.
                    // * `EnableDisableTracepoints` for enabling/disabling tracepoints during a
                    //   trace experiment.
                    // * `tracenz` for the tracenz agent bytecode operation.
                    // * The `Qbtrace:*` family for branch tracing.
                    // * `InstallInTrace` allows for gdbstub to deliver tracepoint configuration
                    //   commands while the trace experiment is running instead of them only taking
                    //   affect on the next `tstart` command.
                    //
                    // For now, gdbstub doesn't provide trait extensions for these
                    // options and so we don't report support. We do report support
                    // for one extension however:
                    // * `QTBuffer:size` for configuring the trace buffer size, since the target is
                    //   allowed to implement it as a no-op.
                    res.write_str(";QTBuffer:size+")?;
                    if ops.support_tracepoint_source().is_some() {
                        res.write_str(";TracepointSource+")?;
                    }
                }

                if target.support_catch_syscalls().is_some() {
                    res.write_str(";QCatchSyscalls+")?;
                }

                if target.use_target_description_xml()
                    && (T::Arch::target_description_xml().is_some()
                        || target.support_target_description_xml_override().is_some())
                {
                    res.write_str(";qXfer:features:read+")?;
                }

                if target.support_memory_map().is_some() {
                    res.write_str(";qXfer:memory-map:read+")?;
                }

                if target.support_exec_file().is_some() {
                    res.write_str(";qXfer:exec-file:read+")?;
                }

                if target.support_auxv().is_some() {
                    res.write_str(";qXfer:auxv:read+")?;
                }

                if target.support_libraries_svr4().is_some() {
                    res.write_str(";qXfer:libraries-svr4:read+")?;
                }

                if target.support_libraries().is_some() {
                    res.write_str(";qXfer:libraries:read+")?;
                }

                // corestub patch (PATCHES.md, 8)
                if let BaseOps::MultiThread(ops) = target.base_ops() {
                    if ops.use_threads_xml() {
                        res.write_str(";qXfer:threads:read+")?;
                    }
                }

                HandlerStatus::Handled
            }

            // -------------------- "Core" Functionality -------------------- //
            Base::QuestionMark(_) => {
                // TODO: Improve the '?' response.
                // this will be particularly relevant when working on non-stop mode.
                self.report_reasonable_stop_reason(res, target)?
            }
            Base::qAttached(cmd) => {
                let is_attached = match target.support_extended_mode() {
                    // when _not_ running in extended mode, just report that we're attaching to an
                    // existing process.
                    None => true, // assume attached to an existing process
                    // When running in extended mode, we must defer to the target
                    Some(ops) => {
                        match cmd.pid {
                            Some(pid) => ops.query_if_attached(pid).handle_error()?.was_attached(),
                            None => true, // assume attached to an existing process
                        }
                    }
                };
                res.write_str(if is_attached { "1" } else { "0" })?;
                HandlerStatus::Handled
            }
            Base::g(_) => {
                let mut regs: <T::Arch as Arch>::Registers = Default::default();
                match target.base_ops() {
                    BaseOps::SingleThread(ops) => ops.read_registers(&mut regs),
                    BaseOps::MultiThread(ops) => {
                        ops.read_registers(&mut regs, self.current_mem_tid)
                    }
                }
                .handle_error()?;

                let mut err = Ok(());
                regs.gdb_serialize(|val| {
                    let res = match val {
                        Some(b) => res.write_hex_buf(&[b]),
                        None => res.write_str("xx"),
                    };
                    if let Err(e) = res {
                        err = Err(e);
                    }
                });
                err?;
                HandlerStatus::Handled
            }
            Base::G(cmd) => {
                let mut regs: <T::Arch as Arch>::Registers = Default::default();
                regs.gdb_deserialize(cmd.vals)
                    .map_err(|_| Error::TargetMismatch)?;

                match target.base_ops() {
                    BaseOps::SingleThread(ops) => ops.write_registers(&regs),
                    BaseOps::MultiThread(ops) => ops.write_registers(&regs, self.current_mem_tid),
                }
                .handle_error()?;

                HandlerStatus::NeedsOk
            }
            Base::m(cmd) => {
                let data = read_addr_handler::<C, T>(
                    self.current_mem_tid,
                    target,
                    cmd.buf,
                    cmd.len,
                    cmd.addr,
                )?;
                res.write_hex_buf(data)?;
                HandlerStatus::Handled
            }
            Base::M(cmd) => {
                let addr = <T::Arch as Arch>::Usize::from_be_bytes(cmd.addr)
                    .ok_or(Error::TargetMismatch)?;

                match target.base_ops() {
                    BaseOps::SingleThread(ops) => ops.write_addrs(addr, cmd.val),
                    BaseOps::MultiThread(ops) => {
                        ops.write_addrs(addr, cmd.val, self.current_mem_tid)
                    }
                }
                .handle_error()?;

                HandlerStatus::NeedsOk
            }
            Base::k(_) | Base::vKill(_) => {
                match target.support_extended_mode() {
                    // When not running in extended mode, stop the `GdbStub` and disconnect.
                    None => HandlerStatus::Disconnect(DisconnectReason::Kill),

                    // When running in extended mode, a kill command does not necessarily result in
                    // a disconnect...
                    Some(ops) => {
                        let pid = match command {
                            Base::vKill(cmd) => Some(cmd.pid),
                            _ => None,
                        };

                        let should_terminate = ops.kill(pid).handle_error()?;
                        if should_terminate.into_bool() {
                            // manually write OK, since we need to return a DisconnectReason
                            res.write_str("OK")?;
                            HandlerStatus::Disconnect(DisconnectReason::Kill)
                        } else {
                            HandlerStatus::NeedsOk
                        }
                    }
                }
            }
            Base::D(cmd) => {
                // TODO: plumb-through Pid when exposing full multiprocess + extended mode
                let _pid = cmd.pid;
                res.write_str("OK")?; // manually write OK, since we need to return a DisconnectReason
                HandlerStatus::Disconnect(DisconnectReason::Disconnect)
            }

            // ------------------- Multi-threading Support ------------------ //
            Base::H(cmd) => {
                use crate::protocol::commands::_h_upcase::Op;
                match cmd.kind {
                    Op::Other => match cmd.thread.tid {
                        // corestub patch: `Hg0` ("any thread") keeps the
                        // current thread while it exists, as gdbserver does.
                        // GDB 18 sends `Hg0` after a stop reply that named
                        // a thread and caches the registers it then reads as
                        // that thread's.
                        IdKind::Any if self.is_active_tid(target, self.current_mem_tid)? => {}
                        IdKind::Any => match self.get_sane_any_tid(target)? {
                            Some(tid) => self.current_mem_tid = tid,
                            None => {
                                return Err(Error::NonFatalError(1));
                            }
                        },
                        // "All" threads doesn't make sense for memory accesses
                        IdKind::All => return Err(Error::PacketUnexpected),
                        IdKind::WithId(tid) => self.current_mem_tid = tid,
                    },
                    // technically, this variant is deprecated in favor of vCont...
                    Op::StepContinue => match cmd.thread.tid {
                        IdKind::Any => match self.get_sane_any_tid(target)? {
                            Some(tid) => self.current_resume_tid = SpecificIdKind::WithId(tid),
                            None => {
                                return Err(Error::NonFatalError(1));
                            }
                        },
                        IdKind::All => self.current_resume_tid = SpecificIdKind::All,
                        IdKind::WithId(tid) => {
                            self.current_resume_tid = SpecificIdKind::WithId(tid)
                        }
                    },
                }
                HandlerStatus::NeedsOk
            }
            Base::qfThreadInfo(_) => {
                res.write_str("m")?;
                let pid = self.get_current_pid(target)?;

                match target.base_ops() {
                    BaseOps::SingleThread(_) => res.write_specific_thread_id(SpecificThreadId {
                        pid: self
                            .features
                            .multiprocess()
                            .then_some(SpecificIdKind::WithId(pid)),
                        tid: SpecificIdKind::WithId(SINGLE_THREAD_TID),
                    })?,
                    BaseOps::MultiThread(ops) => {
                        let mut err: Result<_, Error<T::Error, C::Error>> = Ok(());
                        let mut first = true;
                        ops.list_active_threads(&mut |tid| {
                            // TODO: replace this with a try block (once stabilized)
                            let e = (|| {
                                if !first {
                                    res.write_str(",")?
                                }
                                first = false;
                                res.write_specific_thread_id(SpecificThreadId {
                                    pid: self
                                        .features
                                        .multiprocess()
                                        .then_some(SpecificIdKind::WithId(pid)),
                                    tid: SpecificIdKind::WithId(tid),
                                })?;
                                Ok(())
                            })();

                            if let Err(e) = e {
                                err = Err(e)
                            }
                        })
                        .map_err(Error::TargetError)?;
                        err?;
                    }
                }

                HandlerStatus::Handled
            }
            Base::qsThreadInfo(_) => {
                res.write_str("l")?;
                HandlerStatus::Handled
            }
            Base::T(cmd) => {
                let alive = match cmd.thread.tid {
                    IdKind::WithId(tid) => match target.base_ops() {
                        BaseOps::SingleThread(_) => tid == SINGLE_THREAD_TID,
                        BaseOps::MultiThread(ops) => {
                            ops.is_thread_alive(tid).map_err(Error::TargetError)?
                        }
                    },
                    _ => return Err(Error::PacketUnexpected),
                };
                if alive {
                    HandlerStatus::NeedsOk
                } else {
                    // any error code will do
                    return Err(Error::NonFatalError(1));
                }
            }
        };
        Ok(handler_status)
    }
}

/// corestub patch: the memory read shared by the `m` and `x` handlers (as
/// upstream's `read_addr_handler`, PATCHES.md 9), one read, at most one
/// packet buffer long (PATCHES.md 3). Upstream looped over `len` in
/// buffer-sized chunks and streamed all of it: `m ADDR,ffffffff` made the
/// stub stream gigabytes in one reply, an error in a later chunk wrote
/// `E..` into the middle of an already-started reply, a short read in one
/// chunk shifted every later byte, and `addr + i` could overflow near the
/// top of the address space. The protocol lets a reply be shorter than
/// asked (GDB asks again for the rest), so clamp instead. Returns the bytes
/// read (`buf`'s start); an empty request reads nothing and returns an
/// empty slice without calling the target.
pub(crate) fn read_addr_handler<'b, C: Connection, T: Target>(
    current_mem_tid: Tid,
    target: &mut T,
    buf: &'b mut [u8],
    len: usize,
    addr: &[u8],
) -> Result<&'b [u8], Error<T::Error, C::Error>> {
    let addr = <T::Arch as Arch>::Usize::from_be_bytes(addr).ok_or(Error::TargetMismatch)?;
    let chunk_size = len.min(buf.len());
    if chunk_size == 0 {
        return Ok(&[]);
    }
    let data = &mut buf[..chunk_size];
    let data_len = match target.base_ops() {
        BaseOps::SingleThread(ops) => ops.read_addrs(addr, data),
        BaseOps::MultiThread(ops) => ops.read_addrs(addr, data, current_mem_tid),
    }
    .handle_error()?;

    // TODO: add more specific error variant?
    let data = buf.get(..data_len).ok_or(Error::PacketBufferOverflow)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    //! corestub patch 10: `Hg0` after a stop reply keeps the stop thread.
    use crate::arch::{Arch, Registers};
    use crate::common::Tid;
    use crate::conn::Connection;
    use crate::stub::state_machine::GdbStubStateMachine;
    use crate::stub::GdbStub;
    use crate::target::ext::base::multithread::MultiThreadBase;
    use crate::target::ext::base::BaseOps;
    use crate::target::{Target, TargetError, TargetResult};
    use alloc::vec::Vec;

    enum TestArch {}

    /// One register: the program counter, 8 bytes little-endian.
    #[derive(Debug, Default, Clone, PartialEq)]
    struct Pc(u64);

    impl Registers for Pc {
        type ProgramCounter = u64;
        fn pc(&self) -> u64 {
            self.0
        }
        fn gdb_serialize(&self, mut write_byte: impl FnMut(Option<u8>)) {
            for b in self.0.to_le_bytes() {
                write_byte(Some(b));
            }
        }
        fn gdb_deserialize(&mut self, _bytes: &[u8]) -> Result<(), ()> {
            Err(())
        }
    }

    impl Arch for TestArch {
        type Usize = u64;
        type Registers = Pc;
        type BreakpointKind = usize;
        type RegId = ();
    }

    /// Threads 1, 2, 3 with PC = tid; the stop reply names thread 3.
    struct Cpus;

    impl Target for Cpus {
        type Arch = TestArch;
        type Error = ();
        fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
            BaseOps::MultiThread(self)
        }
        fn guard_rail_implicit_sw_breakpoints(&self) -> bool {
            true
        }
    }

    impl MultiThreadBase for Cpus {
        fn read_registers(&mut self, regs: &mut Pc, tid: Tid) -> TargetResult<(), Self> {
            regs.0 = tid.get() as u64;
            Ok(())
        }
        fn write_registers(&mut self, _regs: &Pc, _tid: Tid) -> TargetResult<(), Self> {
            Err(TargetError::NonFatal)
        }
        fn read_addrs(
            &mut self,
            _start: u64,
            _data: &mut [u8],
            _tid: Tid,
        ) -> TargetResult<usize, Self> {
            Err(TargetError::Errno(14))
        }
        fn write_addrs(&mut self, _start: u64, _data: &[u8], _tid: Tid) -> TargetResult<(), Self> {
            Err(TargetError::Errno(30))
        }
        fn list_active_threads(&mut self, active: &mut dyn FnMut(Tid)) -> Result<(), ()> {
            for t in 1..=3 {
                active(Tid::new(t).unwrap());
            }
            Ok(())
        }
        fn initial_stop_thread(&mut self) -> Result<Option<Tid>, ()> {
            Ok(Tid::new(3))
        }
        fn use_thread_stop_info(&self) -> bool {
            true
        }
        fn support_thread_extra_info(
            &mut self,
        ) -> Option<crate::target::ext::thread_extra_info::ThreadExtraInfoOps<'_, Self>> {
            Some(self)
        }
    }

    /// Thread N is called `cpu N` (patch 12's `hexname:`).
    impl crate::target::ext::thread_extra_info::ThreadExtraInfo for Cpus {
        fn thread_extra_info(&self, tid: Tid, buf: &mut [u8]) -> Result<usize, ()> {
            let name = alloc::format!("cpu {}", tid.get());
            buf[..name.len()].copy_from_slice(name.as_bytes());
            Ok(name.len())
        }
    }

    struct Wire(Vec<u8>);

    impl Connection for Wire {
        type Error = ();
        fn write(&mut self, byte: u8) -> Result<(), ()> {
            self.0.push(byte);
            Ok(())
        }
        fn flush(&mut self) -> Result<(), ()> {
            Ok(())
        }
    }

    /// Sends each packet; returns each reply's body (between `$` and `#`).
    fn exchange(packets: &[&[u8]]) -> Vec<Vec<u8>> {
        let target = &mut Cpus;
        let stub = GdbStub::<Cpus, Wire>::builder(Wire(Vec::new()))
            .packet_buffer_size(0x1000)
            .build()
            .unwrap();
        let mut sm = stub.run_state_machine(target).unwrap();
        let mut replies = Vec::new();
        for p in packets {
            let sum = p.iter().fold(0u8, |a, &b| a.wrapping_add(b));
            let mut framed = alloc::vec![b'$'];
            framed.extend_from_slice(p);
            framed.extend_from_slice(alloc::format!("#{:02x}", sum).as_bytes());
            for &b in &framed {
                sm = match sm {
                    GdbStubStateMachine::Idle(s) => s.incoming_data(target, b).unwrap(),
                    _ => panic!("stub left the idle state"),
                };
            }
            let GdbStubStateMachine::Idle(mut s) = sm else {
                panic!("stub left the idle state")
            };
            let wire = core::mem::take(&mut s.borrow_conn().0);
            sm = GdbStubStateMachine::Idle(s);
            let hash = wire.iter().rposition(|&b| b == b'#').unwrap();
            replies.push(wire[2..hash].to_vec());
        }
        replies
    }

    /// The PC in a `g` reply, its run-length encoding undone.
    fn pc_of(reply: &[u8]) -> u64 {
        let mut hex: Vec<u8> = Vec::new();
        let mut i = 0;
        while i < reply.len() {
            if reply[i] == b'*' {
                let last = *hex.last().unwrap();
                hex.extend(core::iter::repeat_n(last, (reply[i + 1] - 29) as usize));
                i += 2;
            } else {
                hex.push(reply[i]);
                i += 1;
            }
        }
        let bytes: Vec<u8> = hex
            .chunks(2)
            .map(|p| u8::from_str_radix(core::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect();
        u64::from_le_bytes(core::convert::TryInto::try_into(bytes).unwrap())
    }

    /// `hexname:` with `cpu N` hex-encoded.
    fn hexname(n: u8) -> Vec<u8> {
        alloc::format!("hexname:63707520{:x};", 0x30 + n).into_bytes()
    }

    #[test]
    fn lldb_thread_stop_info_names_each_thread() {
        // patch 12: the stop reply and qThreadStopInfo carry the name; only
        // the thread the stop reply named is stopped by a signal
        let r = exchange(&[
            b"?",
            b"qThreadStopInfo1",
            b"qThreadStopInfo3",
            b"qThreadStopInfo9",
        ]);
        assert_eq!(r[0], [b"T05thread:03;".as_slice(), &hexname(3)].concat());
        assert_eq!(r[1], [b"T00thread:01;".as_slice(), &hexname(1)].concat());
        assert_eq!(r[2], [b"T05thread:03;".as_slice(), &hexname(3)].concat());
        assert_eq!(r[3], b"E01");
    }

    #[test]
    fn hg0_keeps_the_stop_thread() {
        // GDB 18: `?` names thread 3, then `Hg0`, then `g`
        let r = exchange(&[b"?", b"Hg0", b"g"]);
        assert!(r[0].starts_with(b"T05thread:"), "{:?}", r[0]);
        assert_eq!(r[1], b"OK");
        assert_eq!(pc_of(&r[2]), 3);
        // a thread chosen with `Hg` stays chosen through `Hg0`
        let r = exchange(&[b"?", b"Hg2", b"Hg0", b"g", b"Hg1", b"g"]);
        assert_eq!(pc_of(&r[3]), 2);
        assert_eq!(pc_of(&r[5]), 1);
    }
}
