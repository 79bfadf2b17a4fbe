//! The kernel log before 5.10: `log_buf`, a byte ring of variable-size
//! `struct printk_log` records (kernel/printk/printk.c, Linux 3.11–5.9;
//! `struct log` in 3.5–3.10), used when the kernel has no `prb`.
//!
//! The format, as `log_store()`/`log_from_idx()`/`log_next()` of 5.4
//! define it:
//! - a record is a header (`ts_nsec` u64, `len` u16, `text_len` u16,
//!   `dict_len` u16, `facility` u8, then a byte of `flags:5, level:3`; on
//!   CONFIG_PRINTK_CALLER kernels a u32 `caller_id` follows), then the text,
//!   then the dictionary, padded to 8 bytes: `len` is the whole record;
//! - `log_first_idx` is the oldest record, `log_next_idx` where the next
//!   one goes; they are equal only when the log is empty (the writer always
//!   keeps room for one more header);
//! - a record that does not fit before the end of the buffer goes to index
//!   0, and a header with `len == 0` marks the wrap: a reader at it goes on
//!   at index 0.
//!
//! The layout comes from VMCOREINFO (`SIZE(printk_log)`,
//! `OFFSET(printk_log.ts_nsec/len/text_len)`, which the kernel exports for
//! exactly this) or DWARF; the level byte is the fifth after `text_len`
//! (the two u16 and the u8 between them are fixed by the definition).

use super::LogRecord;
use crate::addr::VirtAddr;
use crate::kernel::Kernel;

/// A corrupt `log_buf_len` must not make us allocate gigabytes.
const MAX_LOG_BYTES: u64 = 64 << 20;

/// Where the header fields are, in bytes from the record's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Layout {
    pub header: u64,
    pub ts_nsec: u64,
    pub len: u64,
    pub text_len: u64,
    /// The byte holding `flags:5, level:3` (level in the top 3 bits).
    pub level: u64,
}

impl Layout {
    /// The layout of `struct printk_log` (or, before 3.11, `struct log`).
    fn of(k: &Kernel) -> Result<Layout, String> {
        let ty = ["printk_log", "log"]
            .into_iter()
            .find(|t| k.type_size(t).is_some())
            .ok_or("neither VMCOREINFO nor the vmlinux's DWARF gives SIZE(printk_log)")?;
        let off = |m: &str| {
            k.member_offset(&format!("{ty}.{m}")).ok_or_else(|| {
                format!("neither VMCOREINFO nor the vmlinux's DWARF gives OFFSET({ty}.{m})")
            })
        };
        let text_len = off("text_len")?;
        Ok(Layout {
            header: k.type_size(ty).unwrap_or(0),
            ts_nsec: off("ts_nsec")?,
            len: off("len")?,
            text_len,
            level: text_len + 5,
        })
    }

    /// Fields must lie inside the header, and the header must be one.
    fn check(&self) -> Result<(), String> {
        let fits = |o: u64, n: u64| o.checked_add(n).is_some_and(|e| e <= self.header);
        if self.header == 0
            || self.header > 256
            || !fits(self.ts_nsec, 8)
            || !fits(self.len, 2)
            || !fits(self.text_len, 2)
            || !fits(self.level, 1)
        {
            return Err(format!("implausible struct printk_log layout {self:?}"));
        }
        Ok(())
    }
}

fn le(b: &[u8], at: u64, n: usize) -> u64 {
    let mut v = [0u8; 8];
    if let Some(s) = usize::try_from(at)
        .ok()
        .and_then(|a| b.get(a..a.checked_add(n)?))
    {
        v[..n].copy_from_slice(s);
    }
    u64::from_le_bytes(v)
}

/// Reads every record still in `log_buf`, oldest first.
pub(super) fn read(k: &Kernel) -> Result<Vec<LogRecord>, String> {
    let space = k.kernel_space();
    let sym = |n: &str| {
        k.symbol(n)
            .ok_or_else(|| format!("neither VMCOREINFO nor the vmlinux names {n}"))
    };
    let u32_at = |n: &str| -> Result<u64, String> {
        let va = sym(n)?;
        Ok(k.read_u32(&space, va).map_err(|e| format!("{n}: {e}"))? as u64)
    };
    let layout = Layout::of(k)?;
    layout.check()?;
    let log_buf = k
        .read_ulong(&space, sym("log_buf")?)
        .map_err(|e| format!("log_buf: {e}"))?;
    let len = u32_at("log_buf_len")?;
    let first = u32_at("log_first_idx")?;
    let next = u32_at("log_next_idx")?;
    if len > MAX_LOG_BYTES {
        return Err(format!(
            "log_buf_len {len:#x} is implausible (corrupt dump?)"
        ));
    }
    let mut buf = vec![0u8; len as usize];
    k.read_virt(&space, VirtAddr(log_buf), &mut buf)
        .map_err(|e| format!("log_buf ({len:#x} bytes at {log_buf:#x}): {e}"))?;
    parse(&buf, log_buf, first, next, &layout)
}

/// Walks the records from `first` to `next` in `buf` (the buffer, whose
/// first byte is at kernel address `base`: errors name the record's
/// address).
pub(super) fn parse(
    buf: &[u8],
    base: u64,
    first: u64,
    next: u64,
    l: &Layout,
) -> Result<Vec<LogRecord>, String> {
    let len = buf.len() as u64;
    let at = |idx: u64| base.wrapping_add(idx);
    if first >= len.max(1) || next >= len.max(1) {
        return Err(format!(
            "log_first_idx {first:#x} / log_next_idx {next:#x} outside log_buf ({len:#x} bytes at {base:#x})"
        ));
    }
    let mut out = Vec::new();
    let mut idx = first;
    let mut wrapped = false;
    // Each step consumes a record of at least a header, or wraps once: a
    // corrupt ring costs at most this many steps.
    for _ in 0..=len / l.header + 2 {
        if idx == next {
            return Ok(out);
        }
        if idx + l.header > len {
            return Err(format!(
                "log_buf record at {:#x} (index {idx:#x}): header runs past the buffer's end ({len:#x})",
                at(idx)
            ));
        }
        let reclen = le(buf, idx + l.len, 2);
        if reclen == 0 {
            // the wrap marker: the next record is at index 0
            if wrapped || idx == 0 {
                return Err(format!(
                    "log_buf at {:#x}: a second wrap marker (index {idx:#x}) before log_next_idx {next:#x}",
                    at(idx)
                ));
            }
            wrapped = true;
            idx = 0;
            continue;
        }
        let text_len = le(buf, idx + l.text_len, 2);
        if reclen < l.header + text_len || idx + reclen > len {
            return Err(format!(
                "log_buf record at {:#x} (index {idx:#x}): length {reclen:#x} cannot hold its header ({:#x}) and text ({text_len:#x}) within the buffer ({len:#x})",
                at(idx),
                l.header
            ));
        }
        let text = &buf[(idx + l.header) as usize..(idx + l.header + text_len) as usize];
        out.push(LogRecord {
            ts_nsec: le(buf, idx + l.ts_nsec, 8),
            level: (le(buf, idx + l.level, 1) >> 5) as u8,
            text: String::from_utf8_lossy(text).into_owned(),
            caller: None,
        });
        idx += reclen;
    }
    Err(format!(
        "log_buf at {base:#x}: no end after {} records (log_next_idx {next:#x} never reached)",
        out.len()
    ))
}

/// A writer that follows 5.4's `log_store()` and `log_make_free_space()`
/// (no dictionaries), to build rings for tests; it also says which records
/// the ring holds, oldest first.
#[cfg(test)]
pub(crate) mod writer {
    use std::collections::VecDeque;

    /// sizeof(struct printk_log) without CONFIG_PRINTK_CALLER.
    pub const HEADER: usize = 16;

    pub struct Ring {
        pub buf: Vec<u8>,
        pub first: usize,
        pub next: usize,
        /// (ts_nsec, level, text) of the records in the ring.
        pub held: VecDeque<(u64, u8, String)>,
    }

    impl Ring {
        pub fn new(len: usize) -> Ring {
            Ring {
                buf: vec![0; len],
                first: 0,
                next: 0,
                held: VecDeque::new(),
            }
        }

        fn len_at(&self, idx: usize) -> usize {
            u16::from_le_bytes([self.buf[idx + 8], self.buf[idx + 9]]) as usize
        }

        /// log_next(): the record after `idx` (after the one at 0 for a
        /// wrap marker).
        fn log_next(&self, idx: usize) -> usize {
            match self.len_at(idx) {
                0 => self.len_at(0),
                n => idx + n,
            }
        }

        /// logbuf_has_space(): room for the message and one more header.
        fn has_space(&self, size: usize, empty: bool) -> bool {
            let free = if self.next > self.first || empty {
                (self.buf.len() - self.next).max(self.first)
            } else {
                self.first - self.next
            };
            free >= size + HEADER
        }

        pub fn store(&mut self, ts_nsec: u64, level: u8, text: &str) {
            let size = (HEADER + text.len()).next_multiple_of(8);
            while !self.held.is_empty() && !self.has_space(size, false) {
                self.first = self.log_next(self.first);
                self.held.pop_front();
            }
            assert!(
                self.has_space(size, self.held.is_empty()),
                "message too big"
            );
            if self.next + size + HEADER > self.buf.len() {
                self.buf[self.next..self.next + HEADER].fill(0);
                self.next = 0;
            }
            let n = self.next;
            let rec = &mut self.buf[n..n + size];
            rec.fill(0);
            rec[0..8].copy_from_slice(&ts_nsec.to_le_bytes());
            rec[8..10].copy_from_slice(&(size as u16).to_le_bytes());
            rec[10..12].copy_from_slice(&(text.len() as u16).to_le_bytes());
            // dict_len 0, facility 0 (kernel), flags LOG_NEWLINE (2)
            rec[15] = (level << 5) | 2;
            rec[HEADER..HEADER + text.len()].copy_from_slice(text.as_bytes());
            self.next += size;
            self.held.push_back((ts_nsec, level, text.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::writer::{HEADER, Ring};
    use super::*;

    const L: Layout = Layout {
        header: HEADER as u64,
        ts_nsec: 0,
        len: 8,
        text_len: 10,
        level: 15,
    };

    fn read(r: &Ring) -> Result<Vec<LogRecord>, String> {
        parse(
            &r.buf,
            0xffff_ffff_8200_0000,
            r.first as u64,
            r.next as u64,
            &L,
        )
    }

    fn held(r: &Ring) -> Vec<LogRecord> {
        r.held
            .iter()
            .map(|(ts, level, text)| LogRecord {
                ts_nsec: *ts,
                level: *level,
                text: text.clone(),
                caller: None,
            })
            .collect()
    }

    #[test]
    fn empty_and_unwrapped() {
        let mut r = Ring::new(1024);
        assert_eq!(read(&r), Ok(vec![]));
        r.store(1_000, 6, "Linux version 5.4.0");
        r.store(2_000_000_123, 4, "second");
        let got = read(&r).unwrap();
        assert_eq!(got, held(&r));
        assert_eq!(got[1].format(true), "<4>[    2.000000] second\n");
    }

    #[test]
    fn wraps_at_the_marker_at_every_fill_level() {
        // texts of varied length make every wrap position occur
        let mut r = Ring::new(512);
        let mut wraps = 0;
        for i in 0..400u64 {
            let before = r.next;
            let text = "x".repeat((i * 7 % 61) as usize) + &format!("#{i}");
            r.store(i * 1_000_000, (i % 8) as u8, &text);
            wraps += usize::from(r.next < before);
            assert_eq!(read(&r).unwrap(), held(&r), "after record {i}");
        }
        assert!(wraps > 20, "only {wraps} wraps");
    }

    #[test]
    fn corrupt_rings_are_errors_naming_the_record() {
        let mut r = Ring::new(256);
        for i in 0..20 {
            r.store(i, 6, "hello, world");
        }
        // a record length that cannot hold its header and text
        let mut bad = r.buf.clone();
        bad[r.first + 8..r.first + 10].copy_from_slice(&8u16.to_le_bytes());
        let e = parse(&bad, 0x1000, r.first as u64, r.next as u64, &L).unwrap_err();
        assert!(e.contains(&format!("{:#x}", 0x1000 + r.first)), "{e}");
        // indices past the buffer
        assert!(parse(&r.buf, 0, 4096, 0, &L).is_err());
        // log_next_idx never reached: only wrap markers and zeros
        let zeros = vec![0u8; 256];
        assert!(
            parse(&zeros, 0, 64, 8, &L)
                .unwrap_err()
                .contains("wrap marker")
        );
        // a header that runs past the end
        assert!(parse(&r.buf, 0, 250, 0, &L).unwrap_err().contains("past"));
    }

    #[test]
    fn caller_id_kernels_have_a_longer_header() {
        // CONFIG_PRINTK_CALLER: u32 caller_id at 16, sizeof 24
        let l = Layout { header: 24, ..L };
        let mut buf = vec![0u8; 64];
        buf[0..8].copy_from_slice(&5_000_000_000u64.to_le_bytes());
        buf[8..10].copy_from_slice(&32u16.to_le_bytes());
        buf[10..12].copy_from_slice(&3u16.to_le_bytes());
        buf[15] = 3 << 5;
        buf[16..20].copy_from_slice(&0x8000_0001u32.to_le_bytes());
        buf[24..27].copy_from_slice(b"abc");
        let got = parse(&buf, 0, 0, 32, &l).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].level, got[0].text.as_str()), (3, "abc"));
        assert_eq!(got[0].ts_nsec, 5_000_000_000);
    }
}
