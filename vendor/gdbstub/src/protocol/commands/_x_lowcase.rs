// corestub patch: the `x` packet (binary memory read; see PATCHES.md, 9).
// Same shape as gdbstub's upstream master (PR #186).
use super::prelude::*;

#[derive(Debug)]
pub struct x<'a> {
    pub addr: &'a [u8],
    pub len: usize,

    /// The rest of the packet buffer, reused to read the memory into.
    pub buf: &'a mut [u8],
}

impl<'a> ParseCommand<'a> for x<'a> {
    #[inline(always)]
    fn from_packet(buf: PacketBuf<'a>) -> Option<Self> {
        // As for `m`: the address is decoded in place, and the rest of the
        // packet buffer (past the decoded address) holds the data read.
        //
        // +------+------------------+------------------------------------------------+
        // | "$x" | addr (raw bytes) | usable buffer ...                              |
        // +------+------------------+------------------------------------------------+

        let (buf, body_range) = buf.into_raw_buf();
        let body = buf.get_mut(body_range.start..body_range.end)?;

        let mut body = body.split_mut(|b| *b == b',');

        let addr = decode_hex_buf(body.next()?).ok()?;
        let addr_len = addr.len();
        let len = decode_hex(body.next()?).ok()?;

        // ensures that `split_at_mut` doesn't panic
        if buf.len() < body_range.start + addr_len {
            return None;
        }

        let (addr, buf) = buf.split_at_mut(body_range.start + addr_len);
        let addr = addr.get(b"$x".len()..)?;

        Some(x { addr, len, buf })
    }
}
