// corestub patch: LLDB's qThreadStopInfo (see PATCHES.md, 12).
use super::prelude::*;
use crate::protocol::common::thread_id::ThreadId;
use crate::protocol::ConcreteThreadId;

/// `qThreadStopInfo<tid>`: LLDB's question "why is this thread stopped",
/// answered with a stop reply packet for that thread. LLDB sends the
/// thread id as plain hex (`qThreadStopInfo1f`).
#[derive(Debug)]
pub struct qThreadStopInfo {
    pub id: ConcreteThreadId,
}

impl<'a> ParseCommand<'a> for qThreadStopInfo {
    #[inline(always)]
    fn from_packet(buf: PacketBuf<'a>) -> Option<Self> {
        let body = buf.into_body();
        if body.is_empty() {
            return None;
        }
        let id = ConcreteThreadId::try_from(ThreadId::try_from(body).ok()?).ok()?;
        Some(qThreadStopInfo { id })
    }
}
