//! A live QEMU/KVM guest's RAM: the guest's `memory-backend-file` (a file
//! under /dev/shm or anywhere, `share=on`) mapped read-only, laid out from
//! QEMU's own memory map, plus per-stop register snapshots turned into the
//! same [`Dump`] a saved raw-RAM file gives (see [`super::raw`]).
//!
//! The mapping is shared with QEMU, so reads see the guest's memory as it is
//! now: there is no page cache here to invalidate. While the guest runs
//! (`--no-pause`) a read can see a page mid-update.
//!
//! Layout: HMP `info mtree -f`, the flat view of address space "memory".
//! Its RAM lines read `0000000000100000-000000000fffffff (prio 0, ram): mem
//! @0000000000100000`: `mem` is the memory backend's id, `@X` the offset in
//! it (0 when omitted), so file offset = GPA − start + X.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::raw::{RamChunk, RawMemory};
use super::{Dump, FormatInfo, MemError, Notes, PhysRange, PhysicalMemory};
use crate::addr::{Arch, PhysAddr};

/// The RAM chunks of memory backend `backend` in `info mtree -f` text
/// (flat view of the address space "memory"; the first flat view when no
/// view names it).
pub fn parse_mtree(text: &str, backend: &str) -> Vec<RamChunk> {
    // Split into flat views; pick the one listing AS "memory".
    let mut views: Vec<(bool, Vec<&str>)> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("FlatView #") || t.starts_with("address-space") {
            views.push((false, Vec::new()));
            continue;
        }
        let Some(v) = views.last_mut() else { continue };
        if t.starts_with("AS \"memory\"") || t == "address-space: memory" {
            v.0 = true;
        }
        v.1.push(t);
    }
    let lines = match views.iter().find(|v| v.0).or(views.first()) {
        Some(v) => &v.1,
        None => return Vec::new(),
    };
    let mut out = Vec::new();
    for t in lines {
        // START-END (prio P, KIND): NAME [@OFFSET] [KVM]
        let Some((range, rest)) = t.split_once(' ') else {
            continue;
        };
        let Some((s, e)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(s, 16), u64::from_str_radix(e, 16)) else {
            continue;
        };
        let Some((kind, name)) = rest.split_once("): ") else {
            continue;
        };
        if !(kind.ends_with("ram") || kind.ends_with("rom") || kind.ends_with("romd")) {
            continue;
        }
        let mut words = name.split_whitespace();
        if words.next() != Some(backend) {
            continue;
        }
        let offset = words
            .find_map(|w| w.strip_prefix('@'))
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .unwrap_or(0);
        if end < start {
            continue;
        }
        out.push(RamChunk {
            gpa: start,
            offset,
            len: end - start + 1,
        });
    }
    out
}

/// Guest RAM shared between every per-stop [`Dump`] of a live guest.
#[derive(Clone)]
pub struct SharedRam(pub Arc<RawMemory>);

impl PhysicalMemory for SharedRam {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        self.0.read_phys(pa, buf)
    }

    fn ranges(&self) -> &[PhysRange] {
        self.0.ranges()
    }
}

/// The RAM file of a live guest, mapped read-only, with its layout.
pub struct LiveRam {
    pub path: PathBuf,
    pub arch: Arch,
    pub memory: Arc<RawMemory>,
    /// How the layout was found, for `corestub info` and logs.
    pub layout: String,
}

impl LiveRam {
    /// Maps `path` (read-only) with `chunks` as its layout.
    pub fn open(
        path: &Path,
        arch: Arch,
        chunks: Vec<RamChunk>,
        how: &str,
    ) -> Result<LiveRam, String> {
        let map = super::map_readonly(path).map_err(|e| e.to_string())?;
        let memory = RawMemory::new(map, chunks).map_err(|e| format!("{}: {e}", path.display()))?;
        let layout = memory
            .chunks()
            .map(|(gpa, b)| format!("{gpa:#x}+{:#x}", b.len()))
            .collect::<Vec<_>>()
            .join(" ");
        Ok(LiveRam {
            path: path.to_path_buf(),
            arch,
            memory: Arc::new(memory),
            layout: format!("{how}: {layout}"),
        })
    }

    /// A [`Dump`] of the guest as of now: the shared RAM, the CPUs from
    /// `registers` (`info registers -a` text; `None`: `cpus` CPUs without
    /// registers) and `vmcoreinfo` (found once by the caller with
    /// [`super::raw::find_vmcoreinfo`]).
    pub fn snapshot(
        &self,
        registers: Option<&str>,
        cpus: usize,
        vmcoreinfo: Option<String>,
        generation: u64,
    ) -> Result<Dump, String> {
        let mut notes = Notes {
            vcpu_numbered: true,
            ..Default::default()
        };
        let mut quirks = Vec::new();
        match registers {
            Some(text) => {
                let p = super::info_registers::parse(text, self.arch)
                    .map_err(|e| format!("QEMU `info registers -a`: {e}"))?;
                notes.cpus = p.cpus;
                notes.qemu_cpus = p.qemu_cpus;
            }
            None => {
                notes.cpus = (0..cpus.max(1))
                    .map(|i| super::CpuNote {
                        pid: i as u32 + 1,
                        regs: Vec::new(),
                    })
                    .collect();
                quirks.push("no registers: CPU threads without registers".into());
            }
        }
        match &vmcoreinfo {
            Some(_) => quirks.push("VMCOREINFO found in guest RAM".into()),
            None => quirks.push("no VMCOREINFO in guest RAM".into()),
        }
        notes.vmcoreinfo = vmcoreinfo;
        Ok(Dump {
            path: self.path.clone(),
            arch: self.arch,
            format: FormatInfo {
                name: format!(
                    "live QEMU guest RAM, snapshot {generation} ({})",
                    self.layout
                ),
                quirks,
                ..Default::default()
            },
            memory: Box::new(SharedRam(self.memory.clone())),
            notes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MTREE: &str = "FlatView #0
 AS \"cpu-smm-1\", root: memory
 Root memory region: memory
  0000000000000000-00000000000c2fff (prio 0, ram): mem
  00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios

FlatView #3
 AS \"memory\", root: system
 AS \"cpu-memory-0\", root: system
 Root memory region: system
  0000000000000000-00000000000c2fff (prio 0, ram): mem
  00000000000c3000-00000000000e7fff (prio 0, rom): mem @00000000000c3000
  0000000000100000-00000000bfffffff (prio 0, ram): mem @0000000000100000 KVM
  00000000fec00000-00000000fec00fff (prio 0, i/o): ioapic
  00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios
  0000000100000000-000000013fffffff (prio 0, ram): mem @00000000c0000000
";

    #[test]
    fn mtree_memory_view() {
        let c = parse_mtree(MTREE, "mem");
        let one = |gpa, offset, len| RamChunk { gpa, offset, len };
        assert_eq!(
            c,
            vec![
                one(0, 0, 0xc3000),
                one(0xc3000, 0xc3000, 0x25000),
                one(0x100000, 0x100000, 0xbff0_0000),
                one(0x1_0000_0000, 0xc000_0000, 0x4000_0000),
            ]
        );
        assert!(parse_mtree(MTREE, "other").is_empty());
        assert!(parse_mtree("garbage", "mem").is_empty());
    }
}
