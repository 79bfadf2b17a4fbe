//! The kallsyms tables found by their shape, for kernels whose VMCOREINFO
//! does not give their addresses (before 6.0).
//!
//! scripts/kallsyms.c (as in 5.10 and 6.1; later kernels reordered the tables and
//! give their addresses in VMCOREINFO) emits,
//! each label 8-byte aligned on 64-bit kernels: `kallsyms_offsets` (or
//! `kallsyms_addresses`), `kallsyms_relative_base`, `kallsyms_num_syms`,
//! `kallsyms_names`, `kallsyms_markers`, `kallsyms_token_table`,
//! `kallsyms_token_index`. The search starts from the most regular one:
//! - `kallsyms_token_index`: 256 `u16` offsets, the first 0, each the
//!   previous plus the previous token's length and its NUL;
//! - `kallsyms_token_table`: the 256 NUL-terminated tokens those offsets
//!   describe, ending (with padding) right before the index;
//! - `kallsyms_markers`: 32-bit offsets into `kallsyms_names` of every
//!   256th entry, strictly increasing from 0, ending (with padding) right
//!   before the token table, or (6.2+, and Debian's 6.1) before
//!   `kallsyms_seqs_of_names`, 3 bytes a symbol, that precedes it;
//! - `kallsyms_num_syms`: a count `n` that fits the markers' count, 8 bytes
//!   before `kallsyms_names`, whose `n` length-prefixed entries hit every
//!   marker and end right before the markers;
//! - the addresses just before `kallsyms_num_syms`: `relative_base` and `n`
//!   32-bit offsets, or `n` absolute addresses; [`super::kallsyms`] decodes
//!   them and checks their order, and the caller checks a symbol against
//!   an address known without the table.

use super::kallsyms::{KallsymsError, KernelMemory, TableAddrs};

/// Bytes read at a time while scanning.
const CHUNK: usize = 1 << 20;
/// The tables' alignment (`ALGN` on 64-bit kernels).
const ALIGN: u64 = 8;
/// Longest token accepted (tokens are merged pairs; real ones are short).
const MAX_TOKEN: usize = 256;
/// Longest `kallsyms_names` entry (two length bytes, KSYM_NAME_LEN tokens).
const MAX_ENTRY: u64 = 2 + 512;

fn read(mem: &dyn KernelMemory, va: u64, len: usize) -> Option<Vec<u8>> {
    let mut b = vec![0u8; len];
    mem.read(va, &mut b).ok()?;
    Some(b)
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// The tables' addresses, searched for in `lo..hi` (kernel virtual
/// addresses of the image: its text and read-only data): the two layouts
/// the addresses before `kallsyms_num_syms` may have, relative (offsets
/// and base) first, then absolute.
pub fn search(mem: &dyn KernelMemory, lo: u64, hi: u64) -> Result<[TableAddrs; 2], KallsymsError> {
    let at = find(mem, lo, hi)?;
    let bad = |reason: String| KallsymsError::Malformed {
        what: "kallsyms_num_syms",
        va: at.num_syms,
        reason,
    };
    let mut n = [0u8; 4];
    mem.read(at.num_syms, &mut n).map_err(bad)?;
    let n = u64::from(u32::from_le_bytes(n));
    let before = |bytes: u64| {
        at.num_syms
            .checked_sub(bytes)
            .ok_or_else(|| bad("the addresses would start below 0".into()))
    };
    let relative = TableAddrs {
        offsets: Some(before(ALIGN + (4 * n).next_multiple_of(ALIGN))?),
        relative_base: Some(before(ALIGN)?),
        ..at
    };
    let absolute = TableAddrs {
        addresses: Some(before(8 * n)?),
        ..at
    };
    Ok([relative, absolute])
}

/// The tables but for the addresses (see [`search`]).
fn find(mem: &dyn KernelMemory, lo: u64, hi: u64) -> Result<TableAddrs, KallsymsError> {
    let mut at = lo.next_multiple_of(ALIGN);
    while at < hi {
        let len = CHUNK.min((hi - at) as usize);
        if let Some(chunk) = read(mem, at, len) {
            for off in (0..len.saturating_sub(512)).step_by(ALIGN as usize) {
                let idx = &chunk[off..off + 512];
                if u16_at(idx, 0) != 0 || !(2..=MAX_TOKEN as u16).contains(&u16_at(idx, 2)) {
                    continue;
                }
                let index_at = at + off as u64;
                if let Some(found) = tables_from_index(mem, index_at, idx) {
                    return Ok(found);
                }
            }
        }
        // overlap by one index's length, so none is cut in two
        at = at.saturating_add((len as u64).saturating_sub(512).max(ALIGN));
    }
    Err(KallsymsError::Malformed {
        what: "kallsyms tables",
        va: lo,
        reason: format!("not found by their shape in {lo:#x}..{hi:#x}"),
    })
}

/// The tables around a `kallsyms_token_index` candidate at `index_at`.
fn tables_from_index(mem: &dyn KernelMemory, index_at: u64, idx: &[u8]) -> Option<TableAddrs> {
    let offs: Vec<u64> = (0..256).map(|i| u64::from(u16_at(idx, 2 * i))).collect();
    if offs
        .windows(2)
        .any(|w| w[1] <= w[0] + 1 || w[1] - w[0] > MAX_TOKEN as u64 + 1)
    {
        return None;
    }
    let token_table = token_table_before(mem, index_at, &offs)?;
    let (markers, marks, seqs) = markers_before(mem, token_table)?;
    let num_syms = num_syms_before(mem, markers, &marks, seqs)?;
    Some(TableAddrs {
        num_syms,
        names: num_syms + ALIGN,
        token_table,
        token_index: index_at,
        // tried in this order by the caller: relative, then absolute
        offsets: None,
        relative_base: None,
        addresses: None,
        anchor: None,
    })
}

/// Where the token table the offsets describe starts: its tokens are
/// non-empty, NUL-terminated, back to back, and its end padded to the index.
fn token_table_before(mem: &dyn KernelMemory, index_at: u64, offs: &[u64]) -> Option<u64> {
    let last = *offs.last()?;
    let window = last + MAX_TOKEN as u64 + 2 + ALIGN;
    let start = index_at.checked_sub(window)?;
    let b = read(mem, start, window as usize)?;
    // the last token's length is unknown: try each table length
    (last + 2..=last + MAX_TOKEN as u64 + 1)
        .filter(|len| len.next_multiple_of(ALIGN) <= window)
        .find_map(|len| {
            let table = index_at - len.next_multiple_of(ALIGN);
            let t = &b[(table - start) as usize..];
            let ends: Vec<u64> = offs[1..].iter().map(|&o| o - 1).chain([len - 1]).collect();
            let tokens_ok = offs.iter().zip(&ends).all(|(&s, &e)| {
                t[e as usize] == 0 && t[s as usize..e as usize].iter().all(|&c| c != 0)
            });
            let padding_ok = t[len as usize..(index_at - table) as usize]
                .iter()
                .all(|&c| c == 0);
            (tokens_ok && padding_ok).then_some(table)
        })
}

/// Most markers accepted: 16,384 markers are 4 million symbols.
const MAX_MARKERS: u64 = 16_384;
/// Largest `kallsyms_seqs_of_names` accepted (3 bytes a symbol).
const MAX_SEQS: u64 = 3 << 20;

/// `kallsyms_markers` before the token table: its address, values, and
/// the size of the `kallsyms_seqs_of_names` between them (0 before 6.2
/// and its stable backports), which the symbol count must then fit.
fn markers_before(mem: &dyn KernelMemory, token_table: u64) -> Option<(u64, Vec<u32>, u64)> {
    let span = 4 * MAX_MARKERS + MAX_SEQS;
    let start = token_table.checked_sub(span)?;
    let b = read(mem, start, span as usize)?;
    (0..=MAX_SEQS).step_by(ALIGN as usize).find_map(|seqs| {
        let end = (span - seqs) as usize;
        let (first, marks) = markers_ending_at(&b[..end])?;
        let k = marks.len() as u64;
        // seqs_of_names holds 3 bytes for each of the n symbols
        let fits = seqs == 0
            || (3 * (k - 1) * 256 < seqs && seqs <= (3 * k * 256).next_multiple_of(ALIGN));
        fits.then_some((start + first as u64, marks, seqs))
    })
}

/// 32-bit markers ending at the end of `b` (zero padding after them when
/// their count is odd): strictly increasing from 0; their byte offset in
/// `b` (8-aligned, as `b` starts) and values.
fn markers_ending_at(b: &[u8]) -> Option<(usize, Vec<u32>)> {
    let words = b.len() / 4;
    let word = |i: usize| u32_at(b, 4 * i);
    let mut end = words;
    if end >= 2 && word(end - 1) == 0 && word(end - 2) != 0 {
        end -= 1;
    }
    let mut first = end.checked_sub(1)?;
    let lowest = words.saturating_sub(MAX_MARKERS as usize);
    while first > lowest && word(first) != 0 {
        if word(first - 1) >= word(first) {
            return None;
        }
        first -= 1;
    }
    let marks: Vec<u32> = (first..end).map(word).collect();
    (marks.len() >= 2 && marks[0] == 0 && (4 * first).is_multiple_of(ALIGN as usize))
        .then_some((4 * first, marks))
}

/// `kallsyms_num_syms` before the names that end at `markers`: a count
/// that fits the markers (and the `seqs` bytes of `kallsyms_seqs_of_names`
/// after them), whose entries (length-prefixed, one or two
/// length bytes) hit every marker and end within the padding before them.
fn num_syms_before(mem: &dyn KernelMemory, markers: u64, marks: &[u32], seqs: u64) -> Option<u64> {
    let k = marks.len() as u64;
    let last = u64::from(*marks.last()?);
    // the names hold at least `last` bytes and at most 256 entries more
    let shortest = last + 2;
    let longest = last + 256 * MAX_ENTRY + ALIGN;
    let start = markers.checked_sub(longest + ALIGN)?;
    let b = read(mem, start, (longest + ALIGN) as usize)?;
    let mut names_len = shortest.next_multiple_of(ALIGN);
    while names_len <= longest {
        let names = markers - names_len;
        let num_syms = names - ALIGN;
        let n = u64::from(u32_at(&b, (num_syms - start) as usize));
        let seqs_fit = seqs == 0 || (3 * n).next_multiple_of(ALIGN) == seqs;
        if n > (k - 1) * 256 && n <= k * 256 && seqs_fit {
            let names_bytes = &b[(names - start) as usize..];
            if entries_hit_markers(names_bytes, n, marks) {
                return Some(num_syms);
            }
        }
        names_len += ALIGN;
    }
    None
}

/// Do `n` entries of `names` start at each marker and end within its
/// last `ALIGN` bytes, zero padding after them?
fn entries_hit_markers(names: &[u8], n: u64, marks: &[u32]) -> bool {
    let mut pos = 0usize;
    for i in 0..n as usize {
        if i % 256 == 0 && marks.get(i / 256).map(|&m| m as usize) != Some(pos) {
            return false;
        }
        let Some(&b0) = names.get(pos) else {
            return false;
        };
        let (len, hdr) = if b0 & 0x80 != 0 {
            match names.get(pos + 1) {
                Some(&b1) => (usize::from(b0 & 0x7f) | usize::from(b1) << 7, 2),
                None => return false,
            }
        } else {
            (usize::from(b0), 1)
        };
        if len == 0 {
            return false;
        }
        pos += hdr + len;
    }
    pos <= names.len() && names.len() - pos < ALIGN as usize && names[pos..].iter().all(|&c| c == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_must_hit_each_marker() {
        // 3 entries of 2, 3 and 1 bytes: "\x01a", "\x02bc", ...
        let names = [1u8, b'a', 2, b'b', b'c', 1, b'd', 0];
        assert!(entries_hit_markers(&names, 3, &[0]));
        assert!(!entries_hit_markers(&names, 2, &[0]));
        assert!(!entries_hit_markers(&names, 3, &[1]));
        assert!(!entries_hit_markers(&[0u8; 8], 1, &[0]));
    }
}
