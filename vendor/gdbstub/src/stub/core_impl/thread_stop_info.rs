// corestub patch (PATCHES.md, 12): LLDB's `qThreadStopInfo`, and thread
// names (`hexname:`) in stop replies.

use super::prelude::*;
use crate::common::Tid;
use crate::protocol::commands::ext::ThreadStopInfo;
use crate::protocol::SpecificIdKind;
use crate::protocol::SpecificThreadId;
use crate::target::ext::base::BaseOps;

impl<T: Target, C: Connection> GdbStubImpl<T, C> {
    /// Writes a stop reply's `thread:ID;` pair (with the pid when
    /// multiprocess was negotiated).
    pub(crate) fn write_stop_thread_id(
        &mut self,
        res: &mut ResponseWriter<'_, C>,
        target: &mut T,
        tid: Tid,
    ) -> Result<(), Error<T::Error, C::Error>> {
        res.write_str("thread:")?;
        res.write_specific_thread_id(SpecificThreadId {
            pid: self
                .features
                .multiprocess()
                .then_some(SpecificIdKind::WithId(self.get_current_pid(target)?)),
            tid: SpecificIdKind::WithId(tid),
        })?;
        res.write_str(";")?;
        Ok(())
    }

    /// Appends `hexname:NAME;` for `tid` when the target opted in and names
    /// its threads (its `thread_extra_info`).
    pub(crate) fn write_thread_name(
        &mut self,
        res: &mut ResponseWriter<'_, C>,
        target: &mut T,
        tid: Tid,
    ) -> Result<(), Error<T::Error, C::Error>> {
        let ops = match target.base_ops() {
            BaseOps::MultiThread(ops) if ops.use_thread_stop_info() => ops,
            _ => return Ok(()),
        };
        let Some(info) = ops.support_thread_extra_info() else {
            return Ok(());
        };
        let mut name = [0u8; 256];
        // A name is cosmetic: a target that cannot give one (a damaged
        // thread) must not end the session over a stop reply.
        let Ok(n) = info.thread_extra_info(tid, &mut name) else {
            return Ok(());
        };
        let name = name.get(..n).unwrap_or(&name);
        if !name.is_empty() {
            res.write_str("hexname:")?;
            res.write_hex_buf(name)?;
            res.write_str(";")?;
        }
        Ok(())
    }

    pub(crate) fn handle_thread_stop_info(
        &mut self,
        res: &mut ResponseWriter<'_, C>,
        target: &mut T,
        command: ThreadStopInfo,
    ) -> Result<HandlerStatus, Error<T::Error, C::Error>> {
        let ThreadStopInfo::qThreadStopInfo(cmd) = command;
        crate::__dead_code_marker!("thread_stop_info", "impl");
        let tid = cmd.id.tid;
        let alive = match target.base_ops() {
            BaseOps::SingleThread(_) => return Ok(HandlerStatus::Handled),
            BaseOps::MultiThread(ops) => ops.is_thread_alive(tid).map_err(Error::TargetError)?,
        };
        if !alive {
            res.write_str("E01")?;
            return Ok(HandlerStatus::Handled);
        }
        let signal = match self.stop_thread {
            Some((stopped, signal)) if stopped == tid => signal,
            _ => 0,
        };
        res.write_str("T")?;
        res.write_num(signal)?;
        self.write_stop_thread_id(res, target, tid)?;
        self.write_thread_name(res, target, tid)?;
        Ok(HandlerStatus::Handled)
    }
}
