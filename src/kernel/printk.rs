//! The kernel log, read server-side from the layout VMCOREINFO exports
//! (no debug info needed): the 5.10+ lockless ring buffer, or the older
//! `log_buf` of `struct printk_log` records.

mod legacy;

use crate::addr::VirtAddr;
use crate::kernel::Kernel;

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
const MAX_RING_BYTES: u64 = 64 << 20;

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

/// Reads every record still in the log, oldest first.
pub fn read_log(k: &Kernel) -> Result<Vec<LogRecord>, String> {
    // Kernel::symbol: VMCOREINFO's SYMBOL() or, without VMCOREINFO, the
    // vmlinux's symbol relocated by the detected KASLR offset.
    if let Some(prb) = k.symbol("prb") {
        read_prb(k, prb.0)
    } else if k.symbol("log_buf").is_some() {
        read_legacy(k)
    } else {
        Err("neither VMCOREINFO nor a vmlinux names prb or log_buf (give --vmlinux)".into())
    }
}

fn read_prb(k: &Kernel, prb_sym: u64) -> Result<Vec<LogRecord>, String> {
    let space = k.kernel_space();
    // `prb` is a pointer to the ring buffer structure.
    let prb = k
        .read_u64(&space, VirtAddr(prb_sym))
        .map_err(|e| format!("prb: {e}"))?;
    let rb = read_vec(k, prb, size(k, "printk_ringbuffer")?, "printk_ringbuffer")?;
    let d = field(k, "printk_ringbuffer.desc_ring")?;
    let t = field(k, "printk_ringbuffer.text_data_ring")?;
    let count_bits = le(&rb, d + field(k, "prb_desc_ring.count_bits")?, 4);
    let descs = le(&rb, d + field(k, "prb_desc_ring.descs")?, 8);
    let infos = le(&rb, d + field(k, "prb_desc_ring.infos")?, 8);
    let head_id = le(&rb, d + field(k, "prb_desc_ring.head_id")?, 8);
    let tail_id = le(&rb, d + field(k, "prb_desc_ring.tail_id")?, 8);
    // prb_data_ring: size_bits at 0, data at 8 (not exported; stable since 5.10)
    let size_bits = le(&rb, t, 4);
    let data = le(&rb, t + 8, 8);
    if count_bits > 24 || size_bits > 30 {
        return Err(format!(
            "printk ring at {prb:#x} looks corrupt (count_bits {count_bits}, size_bits {size_bits})"
        ));
    }
    let count = 1u64 << count_bits;
    let data_size = 1u64 << size_bits;
    let dsz = size(k, "prb_desc")?;
    let isz = size(k, "printk_info")?;
    let desc_buf = read_vec(k, descs, count * dsz, "printk descriptors")?;
    let info_buf = read_vec(k, infos, count * isz, "printk infos")?;
    let text_buf = read_vec(k, data, data_size, "printk text")?;
    let sv_off = field(k, "prb_desc.state_var")?;
    let lpos = field(k, "prb_desc.text_blk_lpos")?;
    let begin_off = lpos + field(k, "prb_data_blk_lpos.begin")?;
    let next_off = lpos + field(k, "prb_data_blk_lpos.next")?;
    let ts_off = field(k, "printk_info.ts_nsec")?;
    let len_off = field(k, "printk_info.text_len")?;
    // u16 text_len; u8 facility; u8 flags:5, level:3
    let level_off = len_off + 3;

    let id_mask = (1u64 << 62) - 1;
    let mut out = Vec::new();
    let mut id = tail_id & id_mask;
    let head = head_id & id_mask;
    for _ in 0..=count {
        let ind = id % count;
        let (db, ib) = (ind * dsz, ind * isz);
        let sv = le(&desc_buf, db + sv_off, 8);
        let state = sv >> 62;
        // committed (1) or finalized (2), and the slot still holds this id
        if (state == 1 || state == 2) && sv & id_mask == id {
            let begin = le(&desc_buf, db + begin_off, 8);
            let next = le(&desc_buf, db + next_off, 8);
            let text_len = le(&info_buf, ib + len_off, 2);
            let mut text = String::new();
            if begin & 1 == 0 && begin != next {
                // a block that wraps is stored whole at the ring's start
                let b = if begin / data_size != next / data_size {
                    0
                } else {
                    begin % data_size
                };
                let s = (b + 8) as usize; // skip the block's id
                let e = (s + text_len as usize).min(text_buf.len());
                if s <= e {
                    text = String::from_utf8_lossy(&text_buf[s..e]).into_owned();
                }
            }
            out.push(LogRecord {
                ts_nsec: le(&info_buf, ib + ts_off, 8),
                level: (le(&info_buf, ib + level_off, 1) >> 5) as u8,
                text,
            });
        }
        if id == head {
            break;
        }
        id = (id + 1) & id_mask;
    }
    Ok(out)
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
