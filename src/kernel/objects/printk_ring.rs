//! The 5.10+ lockless printk ring buffer (`prb`): descriptors, infos and
//! text, each read in one piece, with the layout VMCOREINFO exports (the
//! vmlinux's DWARF when there is none).

use super::{KernelError, Member, Result, member, optional_member, size_of, symbol};
use crate::addr::VirtAddr;
use crate::kernel::Kernel;
use crate::kernel::printk::{LogRecord, MAX_RING_BYTES};

/// Descriptor states (kernel/printk/printk_ringbuffer.h `enum desc_state`).
const DESC_COMMITTED: u64 = 1;
const DESC_FINALIZED: u64 = 2;
/// The state lives in the top two bits of `state_var`, the id below.
/// The state bits sit at the top of an `unsigned long` state_var
/// (DESC_FLAGS_SHIFT = BITS_PER_LONG − 2): 62 or 30.
fn desc_flags_shift(long_bytes: usize) -> u32 {
    8 * long_bytes as u32 - 2
}

/// The members the reader needs, resolved once per read.
struct RingLayout {
    rb_size: u64,
    desc_ring: Member,
    text_ring: Member,
    count_bits: Member,
    descs: Member,
    infos: Member,
    head_id: Member,
    tail_id: Member,
    size_bits: Member,
    data: Member,
    desc_size: u64,
    info_size: u64,
    state_var: Member,
    text_lpos: Member,
    lpos_begin: Member,
    lpos_next: Member,
    ts_nsec: Member,
    text_len: Member,
    caller_id: Option<Member>,
}

impl RingLayout {
    fn resolve(k: &Kernel) -> Result<RingLayout> {
        Ok(RingLayout {
            rb_size: size_of(k, "printk_ringbuffer")?,
            desc_ring: member(k, "printk_ringbuffer", "desc_ring")?,
            text_ring: member(k, "printk_ringbuffer", "text_data_ring")?,
            count_bits: member(k, "prb_desc_ring", "count_bits")?,
            descs: member(k, "prb_desc_ring", "descs")?,
            infos: member(k, "prb_desc_ring", "infos")?,
            head_id: member(k, "prb_desc_ring", "head_id")?,
            tail_id: member(k, "prb_desc_ring", "tail_id")?,
            size_bits: member(k, "prb_data_ring", "size_bits")?,
            data: member(k, "prb_data_ring", "data")?,
            desc_size: size_of(k, "prb_desc")?,
            info_size: size_of(k, "printk_info")?,
            state_var: member(k, "prb_desc", "state_var")?,
            text_lpos: member(k, "prb_desc", "text_blk_lpos")?,
            lpos_begin: member(k, "prb_data_blk_lpos", "begin")?,
            lpos_next: member(k, "prb_data_blk_lpos", "next")?,
            ts_nsec: member(k, "printk_info", "ts_nsec")?,
            text_len: member(k, "printk_info", "text_len")?,
            caller_id: optional_member(k, "printk_info", "caller_id")?,
        })
    }
}

/// A copy of kernel memory, read by member with bounds checks.
struct Block {
    what: &'static str,
    addr: VirtAddr,
    bytes: Vec<u8>,
}

impl Block {
    fn read(k: &Kernel, what: &'static str, addr: VirtAddr, len: u64) -> Result<Block> {
        if len > MAX_RING_BYTES {
            return Err(KernelError::Corrupt {
                what: what.into(),
                addr,
                reason: format!("implausible size {len:#x} (corrupt ring?)"),
            });
        }
        let mut bytes = vec![0u8; len as usize];
        k.read_virt(&k.kernel_space(), addr, &mut bytes)
            .map_err(|source| KernelError::Read {
                member: what.into(),
                addr,
                source,
            })?;
        Ok(Block { what, addr, bytes })
    }

    /// `n` little-endian bytes at `off`; past the block is an error naming
    /// the member (a layout bigger than the size it came with).
    fn le(&self, off: u64, n: usize, m: &Member) -> Result<u64> {
        let s = usize::try_from(off)
            .ok()
            .and_then(|o| self.bytes.get(o..o.checked_add(n)?))
            .ok_or_else(|| KernelError::Corrupt {
                what: format!("{} ({m})", self.what),
                addr: self.addr,
                reason: format!(
                    "offset {off:#x} is past the {:#x} bytes read",
                    self.bytes.len()
                ),
            })?;
        let mut v = [0u8; 8];
        v[..n].copy_from_slice(s);
        Ok(u64::from_le_bytes(v))
    }
}

/// Every record still in the ring, oldest first.
pub fn read(k: &Kernel) -> Result<Vec<LogRecord>> {
    let l = RingLayout::resolve(k)?;
    let prb_ptr = symbol(k, "prb")?;
    // `prb` is a pointer to the ring buffer structure.
    let prb = Member {
        ty: "prb",
        path: "*",
        offset: 0,
    }
    .ptr(k, prb_ptr)?;
    let rb = Block::read(k, "printk_ringbuffer", prb, l.rb_size)?;
    let d = l.desc_ring.offset;
    let t = l.text_ring.offset;
    let at = |base: u64, m: &Member| base.saturating_add(m.offset);
    let count_bits = rb.le(at(d, &l.count_bits), 4, &l.count_bits)?;
    // pointers, atomic_long_t ids and lpos are `unsigned long`s
    let w = k.arch.pointer_size() as usize;
    let flags_shift = desc_flags_shift(w);
    let id_mask: u64 = (1 << flags_shift) - 1;
    let descs = VirtAddr(rb.le(at(d, &l.descs), w, &l.descs)?);
    let infos = VirtAddr(rb.le(at(d, &l.infos), w, &l.infos)?);
    let head_id = rb.le(at(d, &l.head_id), w, &l.head_id)? & id_mask;
    let tail_id = rb.le(at(d, &l.tail_id), w, &l.tail_id)? & id_mask;
    let size_bits = rb.le(at(t, &l.size_bits), 4, &l.size_bits)?;
    let data = VirtAddr(rb.le(at(t, &l.data), w, &l.data)?);
    if count_bits > 24 || size_bits > 30 {
        return Err(KernelError::Corrupt {
            what: "printk ring".into(),
            addr: prb,
            reason: format!("count_bits {count_bits}, size_bits {size_bits}"),
        });
    }
    let count = 1u64 << count_bits;
    let data_size = 1u64 << size_bits;
    let ring_bytes = |n: u64, size: u64| n.saturating_mul(size);
    let descs = Block::read(
        k,
        "printk descriptors",
        descs,
        ring_bytes(count, l.desc_size),
    )?;
    let infos = Block::read(k, "printk infos", infos, ring_bytes(count, l.info_size))?;
    let text = Block::read(k, "printk text", data, data_size)?;
    let begin_off = l.text_lpos.offset + l.lpos_begin.offset;
    let next_off = l.text_lpos.offset + l.lpos_next.offset;
    // u16 text_len; u8 facility; u8 flags:5, level:3
    let level_off = l.text_len.offset + 3;

    let mut out = Vec::new();
    let mut id = tail_id;
    for _ in 0..=count {
        let ind = id % count;
        let (db, ib) = (ind * l.desc_size, ind * l.info_size);
        let sv = descs.le(db + l.state_var.offset, w, &l.state_var)?;
        let state = sv >> flags_shift;
        // committed or finalized, and the slot still holds this id
        if (state == DESC_COMMITTED || state == DESC_FINALIZED) && sv & id_mask == id {
            let begin = descs.le(db + begin_off, w, &l.lpos_begin)?;
            let next = descs.le(db + next_off, w, &l.lpos_next)?;
            let text_len = infos.le(ib + l.text_len.offset, 2, &l.text_len)?;
            let mut s = String::new();
            // bit 0 set: a data-less record (lost or empty)
            if begin & 1 == 0 && begin != next {
                // a block that wraps is stored whole at the ring's start
                let b = if begin / data_size != next / data_size {
                    0
                } else {
                    begin % data_size
                };
                let start = (b + w as u64) as usize; // skip the block's id
                let end = (start + text_len as usize).min(text.bytes.len());
                if start <= end {
                    s = String::from_utf8_lossy(&text.bytes[start..end]).into_owned();
                }
            }
            out.push(LogRecord {
                ts_nsec: infos.le(ib + l.ts_nsec.offset, 8, &l.ts_nsec)?,
                level: (infos.le(ib + level_off, 1, &l.text_len)? >> 5) as u8,
                text: s,
                caller: match &l.caller_id {
                    Some(m) => Some(infos.le(ib + m.offset, 4, m)? as u32),
                    None => None,
                },
            });
        }
        if id == head_id {
            break;
        }
        id = (id + 1) & id_mask;
    }
    Ok(out)
}
