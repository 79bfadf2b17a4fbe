//! The kernel log, read server-side from the layout VMCOREINFO exports
//! (no debug info needed): the 5.10+ lockless ring buffer, or the older
//! `log_buf` of `struct printk_log` records.

use crate::addr::VirtAddr;
use crate::kernel::Kernel;
use crate::kernel::objects::{self, ObjectError};

/// One printk record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    pub ts_nsec: u64,
    pub level: u8,
    pub text: String,
}

impl LogRecord {
    /// `[   12.345678] text` as dmesg prints it (continuation lines
    /// indented), or `<6>[   12.345678] text` with `show_level` (dmesg -l).
    pub fn format(&self, show_level: bool) -> String {
        let level = if show_level {
            format!("<{}>", self.level)
        } else {
            String::new()
        };
        let prefix = format!(
            "{level}[{:5}.{:06}] ",
            self.ts_nsec / 1_000_000_000,
            (self.ts_nsec % 1_000_000_000) / 1000
        );
        let pad = " ".repeat(prefix.len());
        let mut out = String::new();
        for (i, line) in self.text.split('\n').enumerate() {
            out.push_str(if i == 0 { &prefix } else { &pad });
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

/// Upper bound on what we read for one log (a corrupt size must not make us
/// allocate gigabytes).
pub(crate) const MAX_RING_BYTES: u64 = 64 << 20;

fn field(k: &Kernel, name: &str) -> Result<u64, String> {
    k.member_offset(name)
        .ok_or_else(|| format!("neither VMCOREINFO nor the vmlinux's DWARF gives OFFSET({name})"))
}

fn size(k: &Kernel, name: &str) -> Result<u64, String> {
    k.type_size(name)
        .ok_or_else(|| format!("neither VMCOREINFO nor the vmlinux's DWARF gives SIZE({name})"))
}

fn le(b: &[u8], off: u64, n: usize) -> u64 {
    let off = off as usize;
    let mut v = [0u8; 8];
    if let Some(s) = b.get(off..off + n) {
        v[..n].copy_from_slice(s);
    }
    u64::from_le_bytes(v)
}

fn read_vec(k: &Kernel, va: u64, len: u64, what: &str) -> Result<Vec<u8>, String> {
    if len > MAX_RING_BYTES {
        return Err(format!("{what}: implausible size {len:#x} (corrupt ring?)"));
    }
    let mut buf = vec![0u8; len as usize];
    k.read_virt(&k.kernel_space(), VirtAddr(va), &mut buf)
        .map_err(|e| format!("{what}: {e}"))?;
    Ok(buf)
}

/// Reads every record still in the log, oldest first. One function per
/// format: the 5.10+ lockless ring ([`objects::printk_ring`]) or the older
/// `log_buf` of `struct printk_log` records ([`read_legacy`]).
pub fn read_log(k: &Kernel) -> Result<Vec<LogRecord>, ObjectError> {
    // Kernel::symbol: VMCOREINFO's SYMBOL() or, without VMCOREINFO, the
    // vmlinux's symbol relocated by the detected KASLR offset.
    if k.symbol("prb").is_some() {
        objects::printk_ring::read(k)
    } else if k.symbol("log_buf").is_some() {
        read_legacy(k).map_err(|reason| ObjectError::Layout {
            what: "log_buf".into(),
            reason,
        })
    } else {
        Err(ObjectError::NoSymbol("prb (or log_buf)"))
    }
}

fn read_legacy(k: &Kernel) -> Result<Vec<LogRecord>, String> {
    let space = k.kernel_space();
    let sym = |n: &str| {
        k.symbol(n)
            .map(|v| v.0)
            .ok_or_else(|| format!("neither VMCOREINFO nor the vmlinux names {n}"))
    };
    let rd32 = |n: &str| -> Result<u64, String> {
        Ok(k.read_u32(&space, VirtAddr(sym(n)?))
            .map_err(|e| format!("{n}: {e}"))? as u64)
    };
    let buf_ptr = k
        .read_u64(&space, VirtAddr(sym("log_buf")?))
        .map_err(|e| format!("log_buf: {e}"))?;
    let len = rd32("log_buf_len")?;
    let first = rd32("log_first_idx")?;
    let next = rd32("log_next_idx")?;
    let buf = read_vec(k, buf_ptr, len, "log_buf")?;
    let hdr = size(k, "printk_log")?;
    let ts_off = field(k, "printk_log.ts_nsec")?;
    let len_off = field(k, "printk_log.len")?;
    let tl_off = field(k, "printk_log.text_len")?;
    let mut out = Vec::new();
    let mut pos = first;
    for _ in 0..buf.len() {
        if pos == next || pos + hdr > len {
            break;
        }
        let reclen = le(&buf, pos + len_off, 2);
        if reclen == 0 {
            pos = 0; // wrap marker
            continue;
        }
        let text_len = le(&buf, pos + tl_off, 2);
        let s = (pos + hdr) as usize;
        let e = (s + text_len as usize).min(buf.len());
        out.push(LogRecord {
            ts_nsec: le(&buf, pos + ts_off, 8),
            // u16 dict_len follows text_len; then u8 facility, u8 flags:5 level:3
            level: (le(&buf, pos + tl_off + 5, 1) >> 5) as u8,
            text: String::from_utf8_lossy(buf.get(s..e).unwrap_or(&[])).into_owned(),
        });
        pos += reclen;
    }
    Ok(out)
}

/// The panic message, as crash shows it: the last "Kernel panic" / "BUG:" /
/// "Oops" style line of the log.
pub fn panic_message(log: &[LogRecord]) -> Option<String> {
    const MARKS: &[&str] = &[
        "Kernel panic - not syncing:",
        "BUG: unable to handle",
        "kernel BUG at",
        "Unable to handle kernel",
        "Oops:",
        "general protection fault",
    ];
    // "---[ end Kernel panic - ... ]---" repeats the message: prefer the
    // line that starts with it, and strip the decoration otherwise.
    let hit = |line: &str| {
        MARKS
            .iter()
            .find_map(|m| line.find(m).map(|at| line[at..].to_string()))
    };
    let starts = log.iter().rev().find_map(|r| {
        let line = r.text.lines().next()?.trim();
        MARKS
            .iter()
            .any(|m| line.starts_with(m))
            .then(|| line.to_string())
    });
    starts.or_else(|| {
        log.iter().rev().find_map(|r| {
            hit(r.text.lines().next()?).map(|l| l.trim_end_matches(" ]---").to_string())
        })
    })
}
