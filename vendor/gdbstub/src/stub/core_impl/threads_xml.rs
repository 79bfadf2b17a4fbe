// corestub patch (PATCHES.md, 8): `qXfer:threads:read`.
//
// The document is built when GDB asks for offset 0 (the start of every
// thread-list update) and kept for the requests that follow: GDB 13 reads
// it 4 KiB at a time, and rebuilding it per request would call
// `thread_extra_info` for every thread each time.

use super::prelude::*;
use crate::protocol::commands::ext::ThreadsXml;
use crate::target::ext::base::BaseOps;
use alloc::vec::Vec;

fn push_hex(out: &mut Vec<u8>, v: usize) {
    let mut b = [0u8; 16];
    let mut i = b.len();
    let mut v = v;
    loop {
        i -= 1;
        b[i] = b"0123456789abcdef"[v & 0xf];
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&b[i..]);
}

/// Appends `text` as XML character data.
fn push_escaped(out: &mut Vec<u8>, text: &[u8]) {
    for &c in text {
        match c {
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'"' => out.extend_from_slice(b"&quot;"),
            // control characters are not allowed in XML 1.0
            0..=0x1f => out.push(b'?'),
            _ => out.push(c),
        }
    }
}

impl<T: Target, C: Connection> GdbStubImpl<T, C> {
    pub(crate) fn handle_threads_xml(
        &mut self,
        res: &mut ResponseWriter<'_, C>,
        target: &mut T,
        command: ThreadsXml<'_>,
    ) -> Result<HandlerStatus, Error<T::Error, C::Error>> {
        let ThreadsXml::qXferThreadsRead(cmd) = command;
        crate::__dead_code_marker!("threads_xml", "impl");

        if cmd.offset == 0 || self.threads_xml.is_empty() {
            let pid = self.get_current_pid(target)?;
            let multiprocess = self.features.multiprocess();
            let ops = match target.base_ops() {
                BaseOps::SingleThread(_) => return Ok(HandlerStatus::Handled),
                BaseOps::MultiThread(ops) => ops,
            };
            // thread_extra_info cannot be called inside list_active_threads
            let mut tids = Vec::new();
            ops.list_active_threads(&mut |tid| tids.push(tid))
                .map_err(Error::TargetError)?;
            let doc = &mut self.threads_xml;
            doc.clear();
            doc.extend_from_slice(b"<?xml version=\"1.0\"?>\n<threads>\n");
            let mut extra = [0u8; 256];
            for tid in tids {
                doc.extend_from_slice(b"<thread id=\"");
                if multiprocess {
                    doc.push(b'p');
                    push_hex(doc, pid.get());
                    doc.push(b'.');
                }
                push_hex(doc, tid.get());
                doc.extend_from_slice(b"\">");
                if let Some(info) = ops.support_thread_extra_info() {
                    let n = info
                        .thread_extra_info(tid, &mut extra)
                        .map_err(Error::TargetError)?;
                    push_escaped(doc, extra.get(..n).unwrap_or(&extra));
                }
                doc.extend_from_slice(b"</thread>\n");
            }
            doc.extend_from_slice(b"</threads>\n");
        }

        let doc = &self.threads_xml;
        let start = (cmd.offset.min(doc.len() as u64)) as usize;
        let len = cmd.length.min(cmd.buf.len()).min(doc.len() - start);
        // `l`: the end of the document; `m`: more follows
        res.write_str(if start + len >= doc.len() { "l" } else { "m" })?;
        res.write_binary(&doc[start..start + len])?;
        Ok(HandlerStatus::Handled)
    }
}
