//! `makedumpfile --split`: one dump written as N kdump-compressed files in
//! parallel. Each part has the same headers, notes and VMCOREINFO, and its
//! sub-header names the pfn range it holds (`split_start_pfn..end_pfn`);
//! the ranges tile the machine's memory. Given together (in any order, as
//! crash takes them), reads go to the part that holds the page. Each part
//! keeps its own page cache; nothing is copied.

use std::ops::Range;

use super::{Dump, DumpError, FormatInfo, MemError, PhysRange, PhysicalMemory};
use crate::addr::PhysAddr;

/// The parts, sorted by the physical range each holds.
struct SplitMemory {
    parts: Vec<(Range<u64>, Box<dyn PhysicalMemory>)>,
    ranges: Vec<PhysRange>,
}

impl PhysicalMemory for SplitMemory {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        let mut done = 0usize;
        while done < buf.len() {
            let cur = super::read_cursor(pa, done, buf.len())?.0;
            // the last part starting at or below `cur`
            let i = self.parts.partition_point(|(r, _)| r.start <= cur);
            let Some((r, mem)) = i.checked_sub(1).map(|i| &self.parts[i]) else {
                return Err(MemError::NotInDump(PhysAddr(cur)));
            };
            if cur >= r.end {
                return Err(MemError::NotInDump(PhysAddr(cur)));
            }
            let n = ((r.end - cur) as usize).min(buf.len() - done);
            mem.read_phys(PhysAddr(cur), &mut buf[done..done + n])?;
            done += n;
        }
        Ok(())
    }

    fn ranges(&self) -> &[PhysRange] {
        &self.ranges
    }
}

/// Physical bytes of pfns `lo..hi` in blocks of `bs`: a pfn whose address
/// does not fit in 64 bits is a corrupt sub-header, not a range to clamp.
fn pfn_range_bytes(lo: u64, hi: u64, bs: u64) -> Result<Range<u64>, String> {
    let bytes = |pfn: u64| {
        pfn.checked_mul(bs).ok_or_else(|| {
            format!("split pfn {pfn:#x} × block size {bs:#x} is past the top of the physical address space")
        })
    };
    Ok(bytes(lo)?..bytes(hi)?)
}

fn mismatch(d: &Dump, reason: String) -> DumpError {
    DumpError::Corrupt {
        path: d.path.clone(),
        format: "split kdump-compressed",
        offset: 0,
        reason,
    }
}

/// Joins the parts of a split dump into one [`Dump`]. Every part must be a
/// split kdump-compressed file of the same dump (same VMCOREINFO, block
/// size and architecture), and their pfn ranges must not overlap. A gap
/// (a missing part) is allowed and reported: its pages read as "not in the
/// dump", and `corestub info` says which pfns are missing.
pub fn join(mut parts: Vec<Dump>) -> Result<Dump, DumpError> {
    parts.sort_by_key(|p| p.format.split_pfns.map(|(lo, _)| lo));
    let Some(first) = parts.first() else {
        return Err(DumpError::UnknownFormat {
            path: "".into(),
            reason: "no dump file given".into(),
        });
    };
    let bs = first.format.block_size.unwrap_or(4096);
    for p in &parts {
        if p.format.split_pfns.is_none() {
            return Err(mismatch(
                p,
                "several dump files were given, but this one is not a part of a makedumpfile --split dump".into(),
            ));
        }
        if p.arch != first.arch
            || p.format.block_size != first.format.block_size
            || p.notes.vmcoreinfo != first.notes.vmcoreinfo
        {
            return Err(mismatch(
                p,
                format!(
                    "not a part of the same dump as {} (architecture, block size or VMCOREINFO differ)",
                    first.path.display()
                ),
            ));
        }
    }
    let mut quirks = Vec::new();
    let mut expect = 0u64;
    let max_pfn = first
        .memory
        .ranges()
        .iter()
        .map(|r| r.end() / bs)
        .max()
        .unwrap_or(0);
    for (i, p) in parts.iter().enumerate() {
        let (lo, hi) = p.format.split_pfns.unwrap_or_default();
        if lo < expect {
            return Err(mismatch(
                p,
                format!(
                    "its pfns {lo:#x}..{hi:#x} overlap {}'s (the same part given twice?)",
                    parts[i - 1].path.display()
                ),
            ));
        }
        if lo > expect {
            quirks.push(format!(
                "split dump: pfns {expect:#x}..{lo:#x} are in no part given"
            ));
        }
        expect = hi;
    }
    if expect < max_pfn {
        quirks.push(format!(
            "split dump: pfns {expect:#x}..{max_pfn:#x} are in no part given"
        ));
    }
    let n = parts.len();
    let sum = |f: fn(&FormatInfo) -> Option<u64>| parts.iter().map(|p| f(&p.format)).sum();
    let format = FormatInfo {
        name: format!("{} split in {n} files", first.format.name),
        stored_pages: sum(|f| f.stored_pages),
        excluded_pages: sum(|f| f.excluded_pages),
        quirks: quirks
            .into_iter()
            .chain(
                first
                    .format
                    .quirks
                    .iter()
                    .filter(|q| !q.starts_with("split dump: this file holds"))
                    .cloned(),
            )
            .collect(),
        incomplete: parts.iter().find_map(|p| p.format.incomplete.clone()),
        split_pfns: None,
        ..first.format.clone()
    };
    let ranges = first.memory.ranges().to_vec();
    let (path, arch) = (first.path.clone(), first.arch);
    let mut notes = None;
    let mut pieces = Vec::with_capacity(n);
    for p in parts {
        let (lo, hi) = p.format.split_pfns.unwrap_or_default();
        let range = pfn_range_bytes(lo, hi, bs).map_err(|reason| mismatch(&p, reason))?;
        pieces.push((range, p.memory));
        // every part carries the same notes: keep the first's
        notes.get_or_insert(p.notes);
    }
    let memory = SplitMemory {
        parts: pieces,
        ranges,
    };
    Ok(Dump {
        path,
        arch,
        format,
        memory: Box::new(memory),
        notes: notes.expect("checked non-empty"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One part holding `len` bytes of 0xab at `start`.
    struct Part(u64, u64);

    impl PhysicalMemory for Part {
        fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
            let end = pa.0.checked_add(buf.len() as u64 - 1);
            if pa.0 < self.0 || end.is_none_or(|e| e - self.0 >= self.1) {
                return Err(MemError::NotInDump(pa));
            }
            buf.fill(0xab);
            Ok(())
        }
        fn ranges(&self) -> &[PhysRange] {
            &[]
        }
    }

    #[test]
    fn reads_at_the_top_of_the_address_space_stop_there() {
        let top = u64::MAX - 0xfff;
        let m = SplitMemory {
            parts: vec![
                (
                    0..0x1000,
                    Box::new(Part(0, 0x1000)) as Box<dyn PhysicalMemory>,
                ),
                (top..u64::MAX, Box::new(Part(top, 0x1000))),
            ],
            ranges: Vec::new(),
        };
        let mut b = [0u8; 16];
        // the last bytes below the top read; one more would wrap to 0
        m.read_phys(PhysAddr(u64::MAX - 16), &mut b[..15]).unwrap();
        let e = m.read_phys(PhysAddr(u64::MAX - 7), &mut b).unwrap_err();
        assert!(
            matches!(e, MemError::NotInDump(_) | MemError::PastTop { .. }),
            "{e:?}"
        );
        assert_ne!(
            e.addr(),
            PhysAddr(0),
            "the error names where the read was, not 0"
        );
    }

    #[test]
    fn pfns_past_64_bits_are_refused() {
        assert_eq!(pfn_range_bytes(1, 2, 4096), Ok(4096..8192));
        let e = pfn_range_bytes(0, u64::MAX / 4096 + 1, 4096).unwrap_err();
        assert!(e.contains("past the top"), "{e}");
    }
}
