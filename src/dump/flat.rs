//! makedumpfile's flattened format (`makedumpfile -F`, and what QEMU's
//! `dump-guest-memory format=kdump-*` writes): a stream meant for pipes.
//!
//! Layout: a 4096-byte header (`"makedumpfile"` NUL-padded to 16 bytes, then
//! big-endian i64 `type` = 1 and `version` = 1), then records, each a
//! big-endian `{ i64 offset; i64 size }` followed by `size` bytes that belong
//! at `offset` of the reassembled ("rearranged") file, and finally a record
//! with offset -1 (END). `makedumpfile -R` rebuilds the file by seeking to
//! each offset and writing, so: later records win where they overlap, and
//! bytes no record covers (below the highest written offset) read as zeros.
//!
//! We never rebuild: [`FlatFile`] indexes the records in one sequential pass
//! at open (logical offset → offset of the data in the mapped stream) and
//! serves the reassembled file's bytes from the mapping. makedumpfile writes
//! two interleaved streams (page descriptors, page data), so the records are
//! not in offset order; they are sorted once. Overlaps (never seen in
//! practice) are resolved "last record wins" in a slower second pass.
//!
//! The reassembled content is a kdump-compressed file (read by
//! [`super::kdump`] through [`Source::Flat`]) or, for `makedumpfile -F -E`,
//! an ELF vmcore (read by [`super::elf`] the same way).

use std::collections::BTreeMap;
use std::path::Path;

use super::elf;
use super::kdump;
use super::source::Source;
use super::{Dump, DumpError};

/// The flattened-format signature at offset 0.
pub const SIGNATURE: &[u8; 12] = b"makedumpfile";
/// Size of the flattened header; records start here.
const HEADER_SIZE: u64 = 4096;
const TYPE_FLAT_HEADER: i64 = 1;
const RECORD_HEADER: u64 = 16;

/// One piece of the reassembled file: `len` bytes at logical offset `start`
/// stored at `file_off` in the flattened stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Extent {
    start: u64,
    len: u64,
    file_off: u64,
}

impl Extent {
    fn end(&self) -> u64 {
        self.start + self.len
    }
}

/// Random access to the reassembled file of a flattened stream.
pub struct FlatFile {
    map: memmap2::Mmap,
    /// Sorted by `start`, non-overlapping, non-empty.
    extents: Vec<Extent>,
    /// Length of the reassembled file (end of the highest record).
    len: u64,
    /// Number of records in the stream (for `corestub info`).
    records: usize,
    /// Why the stream is incomplete (truncated record, no END marker).
    incomplete: Option<String>,
    /// Whether records had to be sorted / had overlaps.
    sorted: bool,
    overlaps: bool,
}

fn be_i64(b: &[u8], off: usize) -> Option<i64> {
    Some(i64::from_be_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> DumpError {
    DumpError::Corrupt {
        path: path.to_path_buf(),
        format: "flattened (makedumpfile -F)",
        offset,
        reason: reason.into(),
    }
}

impl FlatFile {
    /// Indexes the stream in `map`. Errors only when the header is wrong or
    /// a record header is nonsense; a stream cut short is indexed as far as
    /// it goes and reported in [`FlatFile::incomplete`].
    pub fn index(path: &Path, map: memmap2::Mmap) -> Result<FlatFile, DumpError> {
        let data: &[u8] = &map;
        if data.len() < HEADER_SIZE as usize || !data.starts_with(SIGNATURE) {
            return Err(corrupt(path, 0, "no makedumpfile flattened header"));
        }
        let ty = be_i64(data, 16).unwrap_or(0);
        if ty != TYPE_FLAT_HEADER {
            return Err(corrupt(
                path,
                16,
                format!("flattened header type {ty}, expected 1"),
            ));
        }
        let file_len = data.len() as u64;
        let mut extents: Vec<Extent> = Vec::new();
        let mut pos = HEADER_SIZE;
        let mut in_order = true;
        let mut records = 0usize;
        let mut incomplete = None;
        let mut len = 0u64;
        loop {
            if pos == file_len {
                incomplete = Some(format!(
                    "flattened stream ends at {pos:#x} without an END record (truncated copy?)"
                ));
                break;
            }
            let hdr = usize::try_from(pos)
                .ok()
                .and_then(|p| data.get(p..p.checked_add(16)?));
            let Some(hdr) = hdr else {
                incomplete = Some(format!(
                    "flattened stream is truncated inside the record header at {pos:#x}"
                ));
                break;
            };
            let off = be_i64(hdr, 0).unwrap_or(-1);
            let size = be_i64(hdr, 8).unwrap_or(-1);
            if off == -1 {
                break; // END_FLAG_FLAT_HEADER
            }
            if off < 0 || size < 0 {
                return Err(corrupt(
                    path,
                    pos,
                    format!("record header with offset {off} and size {size}"),
                ));
            }
            let (off, size) = (off as u64, size as u64);
            let data_off = pos + RECORD_HEADER;
            let avail = (file_len - data_off).min(size);
            if off.checked_add(size).is_none() {
                return Err(corrupt(
                    path,
                    pos,
                    format!("record at offset {off:#x} of size {size:#x} overflows"),
                ));
            }
            records += 1;
            if avail < size {
                incomplete = Some(format!(
                    "flattened stream is truncated: the record at {pos:#x} (for offset {off:#x}, {size:#x} bytes) has only {avail:#x} bytes"
                ));
            }
            if avail > 0 {
                if extents.last().is_some_and(|last| off < last.end()) {
                    in_order = false;
                }
                extents.push(Extent {
                    start: off,
                    len: avail,
                    file_off: data_off,
                });
                len = len.max(off + avail);
            }
            if avail < size {
                break;
            }
            pos = data_off + size;
        }
        let mut sorted = false;
        let mut overlaps = false;
        if !in_order {
            sorted = true;
            // Stable: equal starts keep stream order, needed for overlaps.
            let mut by_start: Vec<(Extent, usize)> = extents
                .iter()
                .copied()
                .enumerate()
                .map(|(i, e)| (e, i))
                .collect();
            by_start.sort_by_key(|(e, _)| e.start);
            overlaps = by_start.windows(2).any(|w| w[1].0.start < w[0].0.end());
            extents = if overlaps {
                resolve_overlaps(&extents)
            } else {
                by_start.into_iter().map(|(e, _)| e).collect()
            };
        }
        Ok(FlatFile {
            map,
            extents,
            len,
            records,
            incomplete,
            sorted,
            overlaps,
        })
    }

    /// Length of the reassembled file.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Size of the flattened stream itself.
    pub fn stored_len(&self) -> u64 {
        self.map.len() as u64
    }

    /// Why the stream is incomplete, if it is.
    pub fn incomplete(&self) -> Option<&str> {
        self.incomplete.as_deref()
    }

    /// Index of the last extent starting at or before `off`, if any.
    fn extent_at_or_before(&self, off: u64) -> Option<usize> {
        self.extents
            .partition_point(|e| e.start <= off)
            .checked_sub(1)
    }

    /// Fills `out` with the reassembled bytes at `off`. Gaps between records
    /// read as zeros (a rebuilt file has holes there). Fails with the first
    /// offset at or past the end of the reassembled file.
    pub fn read_at(&self, off: u64, out: &mut [u8]) -> Result<(), u64> {
        self.fill(off, out, false)
    }

    /// [`FlatFile::read_at`]; with `strict`, a gap is an error too (at its
    /// first offset).
    fn fill(&self, off: u64, out: &mut [u8], strict: bool) -> Result<(), u64> {
        let end = off.checked_add(out.len() as u64).ok_or(off)?;
        if end > self.len {
            return Err(off.max(self.len));
        }
        // first extent that ends after `off`: covers it or follows the gap
        let mut k = self.extents.partition_point(|e| e.start <= off);
        if k > 0 && self.extents[k - 1].end() > off {
            k -= 1;
        }
        let mut cur = off;
        let mut done = 0usize;
        while done < out.len() {
            let n = match self.extents.get(k) {
                Some(e) if e.start <= cur => {
                    let n = ((e.end() - cur) as usize).min(out.len() - done);
                    let src = (e.file_off + (cur - e.start)) as usize;
                    out[done..done + n].copy_from_slice(&self.map[src..src + n]);
                    k += 1;
                    n
                }
                next => {
                    if strict {
                        return Err(cur);
                    }
                    let gap_end = next.map_or(end, |e| e.start.min(end));
                    let n = (gap_end - cur) as usize;
                    out[done..done + n].fill(0);
                    n
                }
            };
            done += n;
            cur += n as u64;
        }
        Ok(())
    }

    /// The reassembled bytes `[off, off+len)`: borrowed from the mapping
    /// when one record holds them all (the usual case), else assembled in
    /// `scratch` (reused by the caller, so no allocation once it has grown).
    /// In a stream that was cut short, a gap is reported as missing rather
    /// than read as zeros: page data is never in a hole of a complete
    /// stream, but in a truncated one it may simply not have been written.
    pub fn slice<'a>(
        &'a self,
        off: u64,
        len: usize,
        scratch: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], u64> {
        if let Some(k) = self.extent_at_or_before(off) {
            let e = self.extents[k];
            if off
                .checked_add(len as u64)
                .is_some_and(|end| end <= e.end())
            {
                let src = (e.file_off + (off - e.start)) as usize;
                return Ok(&self.map[src..src + len]);
            }
        }
        scratch.clear();
        scratch.resize(len, 0);
        self.fill(off, scratch, self.incomplete.is_some())?;
        Ok(scratch)
    }
}

/// "Last record wins" for overlapping records: walk them newest first and
/// keep only the parts no newer record already covers.
fn resolve_overlaps(stream_order: &[Extent]) -> Vec<Extent> {
    // start -> extent, non-overlapping
    let mut covered: BTreeMap<u64, Extent> = BTreeMap::new();
    for e in stream_order.iter().rev() {
        let mut cur = e.start;
        let end = e.end();
        while cur < end {
            // the covered piece containing or following `cur`
            let containing = covered
                .range(..=cur)
                .next_back()
                .map(|(_, x)| *x)
                .filter(|x| x.end() > cur);
            if let Some(x) = containing {
                cur = x.end();
                continue;
            }
            let next = covered
                .range(cur..)
                .next()
                .map(|(s, _)| *s)
                .unwrap_or(end)
                .min(end);
            covered.insert(
                cur,
                Extent {
                    start: cur,
                    len: next - cur,
                    file_off: e.file_off + (cur - e.start),
                },
            );
            cur = next;
        }
    }
    covered.into_values().collect()
}

/// Opens a flattened dump: indexes it, then reads the reassembled content.
pub fn open(path: &Path, map: memmap2::Mmap) -> Result<Dump, DumpError> {
    let flat = FlatFile::index(path, map)?;
    let mut magic = [0u8; 8];
    let n = (flat.len().min(8)) as usize;
    let _ = flat.read_at(0, &mut magic[..n]);
    let elf = magic.starts_with(b"\x7fELF");
    if !elf && &magic != kdump::SIGNATURE_KDUMP && &magic != kdump::SIGNATURE_DISKDUMP {
        return Err(corrupt(
            path,
            HEADER_SIZE,
            format!(
                "reassembled content starts with {:02x?}: neither kdump-compressed nor ELF",
                &magic[..n]
            ),
        ));
    }
    let mut note = format!("{} records", flat.records);
    if flat.sorted {
        note.push_str(", out of offset order (sorted once at open)");
    }
    if flat.overlaps {
        note.push_str(", overlapping (later records win)");
    }
    let incomplete = flat.incomplete().map(str::to_owned);
    let mut dump = if elf {
        elf::open_source(path, Source::Flat(flat))?
    } else {
        kdump::open_source(path, Source::Flat(flat))?
    };
    dump.format.name = format!("flattened {}", dump.format.name);
    dump.format.quirks.push(format!("flattened stream: {note}"));
    if let Some(why) = incomplete {
        dump.format.incomplete = Some(match dump.format.incomplete.take() {
            Some(other) => format!("{why}; {other}"),
            None => why,
        });
    }
    Ok(dump)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::PhysAddr;

    fn anon(bytes: &[u8]) -> memmap2::Mmap {
        let mut m = memmap2::MmapMut::map_anon(bytes.len().max(1)).unwrap();
        m[..bytes.len()].copy_from_slice(bytes);
        m.make_read_only().unwrap()
    }

    /// A flattened stream of `records` (offset, data), with or without END.
    pub(crate) fn flatten(records: &[(u64, &[u8])], end: bool) -> Vec<u8> {
        let mut v = vec![0u8; HEADER_SIZE as usize];
        v[..12].copy_from_slice(SIGNATURE);
        v[16..24].copy_from_slice(&1i64.to_be_bytes());
        v[24..32].copy_from_slice(&1i64.to_be_bytes());
        for (off, d) in records {
            v.extend_from_slice(&(*off as i64).to_be_bytes());
            v.extend_from_slice(&(d.len() as i64).to_be_bytes());
            v.extend_from_slice(d);
        }
        if end {
            v.extend_from_slice(&(-1i64).to_be_bytes());
            v.extend_from_slice(&(-1i64).to_be_bytes());
        }
        v
    }

    fn index(bytes: &[u8]) -> Result<FlatFile, DumpError> {
        FlatFile::index(Path::new("t.flat"), anon(bytes))
    }

    fn read_all(f: &FlatFile) -> Vec<u8> {
        let mut out = vec![0u8; f.len() as usize];
        f.read_at(0, &mut out).unwrap();
        out
    }

    #[test]
    fn in_order_records_with_gaps() {
        let f = index(&flatten(&[(0, b"abcd"), (8, b"efgh"), (12, b"ij")], true)).unwrap();
        assert!(!f.sorted && f.incomplete().is_none());
        assert_eq!(read_all(&f), b"abcd\0\0\0\0efghij");
        let mut s = Vec::new();
        assert_eq!(f.slice(8, 4, &mut s).unwrap(), b"efgh");
        assert!(s.is_empty(), "one-record slice must not copy");
        assert_eq!(f.slice(2, 8, &mut s).unwrap(), b"cd\0\0\0\0ef");
        let mut b = [0u8; 4];
        assert_eq!(f.read_at(12, &mut b), Err(14));
        assert_eq!(f.read_at(u64::MAX - 1, &mut b), Err(u64::MAX - 1));
    }

    #[test]
    fn out_of_order_records_are_sorted() {
        let f = index(&flatten(
            &[(8, b"efgh"), (0, b"abcd"), (4, b"XY"), (12, b"ij")],
            true,
        ))
        .unwrap();
        assert!(f.sorted && !f.overlaps);
        assert_eq!(read_all(&f), b"abcdXY\0\0efghij");
    }

    #[test]
    fn later_records_win_overlaps() {
        let f = index(&flatten(
            &[(0, b"aaaaaaaa"), (2, b"bb"), (1, b"c"), (6, b"dddd")],
            true,
        ))
        .unwrap();
        assert!(f.overlaps);
        assert_eq!(read_all(&f), b"acbbaadddd");
    }

    #[test]
    fn truncated_streams_index_what_is_there() {
        let full = flatten(&[(0, b"abcd"), (4, b"efgh")], true);
        for cut in HEADER_SIZE as usize..full.len() {
            let f = index(&full[..cut]).unwrap();
            assert!(f.incomplete().is_some(), "cut at {cut}");
            let got = read_all(&f);
            assert!(b"abcdefgh".starts_with(&got), "cut at {cut}: {got:?}");
        }
        assert!(index(&full[..100]).is_err());
        let mut bad = full.clone();
        bad[16..24].copy_from_slice(&7i64.to_be_bytes());
        assert!(index(&bad).is_err());
        let mut neg = full.clone();
        neg[4096..4104].copy_from_slice(&(-5i64).to_be_bytes());
        assert!(index(&neg).is_err());
        let mut huge = full;
        huge[4104..4112].copy_from_slice(&i64::MAX.to_be_bytes());
        let f = index(&huge).unwrap();
        assert!(f.incomplete().is_some());
    }

    /// `makedumpfile -F -E`: an ELF vmcore in records (out of order, as
    /// makedumpfile's two streams interleave) reads exactly as the file.
    #[test]
    fn flattened_elf_reads_as_the_elf() {
        let file = crate::fuzz_harness::synthetic_elf();
        let plain = super::super::open_bytes(Path::new("t.elf"), &file).unwrap();
        let mut records: Vec<(u64, &[u8])> = file
            .chunks(1000)
            .enumerate()
            .map(|(i, c)| ((i * 1000) as u64, c))
            .collect();
        records.reverse();
        let stream = flatten(&records, true);
        let d = open(Path::new("t.flat"), anon(&stream)).unwrap();
        assert_eq!(d.format.name, "flattened ELF vmcore");
        assert_eq!(d.notes.vmcoreinfo, plain.notes.vmcoreinfo);
        assert_eq!(d.notes.cpus.len(), plain.notes.cpus.len());
        assert_eq!(d.memory.ranges(), plain.memory.ranges());
        for r in plain.memory.ranges() {
            let mut pa = r.start.0;
            while pa < r.end() {
                let n = (r.end() - pa).min(4096) as usize;
                let (mut a, mut b) = (vec![0u8; n], vec![0u8; n]);
                assert_eq!(
                    plain.memory.read_phys(PhysAddr(pa), &mut a).is_ok(),
                    d.memory.read_phys(PhysAddr(pa), &mut b).is_ok()
                );
                assert_eq!(a, b, "pa {pa:#x}");
                pa += n as u64;
            }
        }
        let stream = flatten(&[(0, b"garbage!")], true);
        assert!(open(Path::new("t.flat"), anon(&stream)).is_err());
    }
}
