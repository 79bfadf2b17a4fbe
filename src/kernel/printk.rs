//! The kernel log, read server-side from the layout VMCOREINFO exports
//! (no debug info needed): the 5.10+ lockless ring buffer, or the older
//! `log_buf` of `struct printk_log` records.

mod legacy;

use crate::kernel::objects;
use crate::kernel::{Kernel, KernelError};

/// One printk record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    pub ts_nsec: u64,
    pub level: u8,
    pub text: String,
    /// Who logged it (`printk_info.caller_id`, 5.10+ ring buffer): a PID,
    /// or `0x80000000 | CPU` outside task context; `None` for the older
    /// `log_buf`.
    pub caller: Option<u32>,
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

/// Reads every record still in the log, oldest first. One function per
/// format: the 5.10+ lockless ring ([`objects::printk_ring`]) or the older
/// `log_buf` of `struct printk_log` records ([`read_legacy`]).
pub fn read_log(k: &Kernel) -> Result<Vec<LogRecord>, KernelError> {
    // Kernel::symbol: VMCOREINFO's SYMBOL() or, without VMCOREINFO, the
    // vmlinux's symbol relocated by the detected KASLR offset.
    if k.symbol("prb").is_some() {
        objects::printk_ring::read(k)
    } else if k.symbol("log_buf").is_some() {
        read_legacy(k).map_err(|reason| KernelError::Layout {
            what: "log_buf".into(),
            reason,
        })
    } else {
        Err(KernelError::NoSymbol("prb (or log_buf)"))
    }
}

fn read_legacy(k: &Kernel) -> Result<Vec<LogRecord>, String> {
    legacy::read(k)
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
