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
            let cur = pa.0.wrapping_add(done as u64);
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
        pieces.push((lo.saturating_mul(bs)..hi.saturating_mul(bs), p.memory));
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
