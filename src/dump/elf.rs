//! ELF vmcores: a copy of /proc/vmcore, `makedumpfile -E`, QEMU
//! `dump-guest-memory`. Physical memory comes from PT_LOAD segments indexed
//! by physical address; PT_NOTE holds NT_PRSTATUS, VMCOREINFO, QEMU notes.
//!
//! makedumpfile -E writes irregular segments: `p_filesz < p_memsz` (the
//! rest reads as zeros, as crash does), zero-size segments, unaligned
//! offsets. A segment whose file data lies past the end of the file
//! (truncated copy) still serves the part that is there.
//!
//! The file is a [`Source`]: the mapped file, or the file a flattened
//! stream (`makedumpfile -F -E`) reassembles to, read through its record
//! index without rebuilding it.

use std::path::Path;

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use object::{Endianness, FileKind};

use super::source::Source;
use super::{Dump, DumpError, FormatInfo, MemError, Notes, PhysRange, PhysicalMemory};
use crate::addr::{Arch, PhysAddr};

/// One PT_LOAD, by physical address.
#[derive(Clone, Copy, Debug)]
struct Segment {
    start: u64,
    memsz: u64,
    filesz: u64,
    offset: u64,
}

pub struct ElfMemory {
    src: Source,
    /// Sorted by `start`, non-empty segments only.
    segments: Vec<Segment>,
    ranges: Vec<PhysRange>,
}

impl ElfMemory {
    fn find(&self, pa: u64) -> Option<&Segment> {
        let i = self.segments.partition_point(|s| s.start <= pa);
        let s = self.segments.get(i.checked_sub(1)?)?;
        (pa - s.start < s.memsz).then_some(s)
    }
}

impl PhysicalMemory for ElfMemory {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        let mut done = 0usize;
        while done < buf.len() {
            let cur = pa.0.wrapping_add(done as u64);
            let seg = self.find(cur).ok_or(MemError::NotInDump(PhysAddr(cur)))?;
            let in_seg = cur - seg.start;
            let n = ((seg.memsz - in_seg) as usize).min(buf.len() - done);
            let out = &mut buf[done..done + n];
            // bytes [in_seg, in_seg+n) of the segment: file-backed part first
            let file_n = seg.filesz.saturating_sub(in_seg).min(n as u64) as usize;
            if file_n > 0 {
                // p_offset is untrusted: near u64::MAX the sum overflows
                let off = seg.offset.saturating_add(in_seg);
                self.src
                    .read_at(off, &mut out[..file_n])
                    .map_err(|missing| MemError::Truncated {
                        pa: PhysAddr(cur + (missing.saturating_sub(off)).min(file_n as u64)),
                        offset: missing,
                    })?;
            }
            out[file_n..].fill(0);
            done += n;
        }
        Ok(())
    }

    fn ranges(&self) -> &[PhysRange] {
        &self.ranges
    }
}

fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> DumpError {
    DumpError::Corrupt {
        path: path.to_path_buf(),
        format: "ELF",
        offset,
        reason: reason.into(),
    }
}

pub fn open(path: &Path, map: memmap2::Mmap) -> Result<Dump, DumpError> {
    open_source(path, Source::Mapped(map))
}

/// The ELF header and program headers, copied (a few KiB) so that they
/// parse the same from a mapping or a flattened stream.
fn headers(path: &Path, src: &Source) -> Result<Vec<u8>, DumpError> {
    const EHDR: u64 = 64;
    let short = |o| corrupt(path, o, "file ends inside the ELF header");
    let mut e = [0u8; EHDR as usize];
    src.read_at(0, &mut e).map_err(short)?;
    let u16_at = |o: usize| u16::from_le_bytes([e[o], e[o + 1]]) as u64;
    let phoff = u64::from_le_bytes(e[0x20..0x28].try_into().expect("8 bytes"));
    let need = phoff
        .checked_add(u16_at(0x36) * u16_at(0x38))
        .filter(|&n| n <= src.stored_len().max(EHDR))
        .unwrap_or(EHDR)
        .max(EHDR);
    // a lying e_phoff gets the program-header error from the parser below
    let need = need.min(src.len());
    src.to_vec(0, need as usize)
        .map_err(|o| corrupt(path, o, "file ends inside the program headers"))
}

pub(super) fn open_source(path: &Path, src: Source) -> Result<Dump, DumpError> {
    let head = headers(path, &src)?;
    let data: &[u8] = &head;
    let file_len = src.len();
    match FileKind::parse(data) {
        Ok(FileKind::Elf64) => {}
        Ok(k) => {
            return Err(corrupt(
                path,
                0,
                format!("{k:?} is not a 64-bit ELF vmcore"),
            ));
        }
        Err(e) => return Err(corrupt(path, 0, e.to_string())),
    }
    let hdr = elf::FileHeader64::<Endianness>::parse(data)
        .map_err(|e| corrupt(path, 0, e.to_string()))?;
    let endian = hdr.endian().map_err(|e| corrupt(path, 0, e.to_string()))?;
    if endian != Endianness::Little {
        return Err(corrupt(path, 5, "big-endian vmcores are not supported"));
    }
    let arch = match hdr.e_machine(endian) {
        elf::EM_X86_64 => Arch::X86_64,
        elf::EM_AARCH64 => Arch::Aarch64,
        m => return Err(corrupt(path, 18, format!("unsupported e_machine {m}"))),
    };
    let phdrs = hdr
        .program_headers(endian, data)
        .map_err(|e| corrupt(path, hdr.e_phoff(endian), e.to_string()))?;

    let mut notes = Notes::default();
    let mut segments = Vec::new();
    let mut incomplete = None;
    let mut physical_only = true;
    for ph in phdrs {
        match ph.p_type(endian) {
            elf::PT_NOTE => {
                let off = ph.p_offset(endian);
                let size = ph.p_filesz(endian);
                // notes are small; a size past what the file stores is a lie
                let blob = usize::try_from(size)
                    .ok()
                    .filter(|&n| (n as u64) <= src.stored_len())
                    .and_then(|n| src.to_vec(off, n).ok());
                match blob {
                    Some(b) => notes.parse_into(&b, arch, off),
                    None => notes.warnings.push(format!(
                        "PT_NOTE at file offset {off:#x} (size {size:#x}) lies past the end of the file"
                    )),
                }
            }
            elf::PT_LOAD => {
                physical_only &= ph.p_vaddr(endian) == ph.p_paddr(endian);
                let start = ph.p_paddr(endian);
                // untrusted sizes: a segment may not run past the top of
                // the physical address space (its end must not overflow)
                let memsz = ph.p_memsz(endian).min(u64::MAX - start);
                let s = Segment {
                    start,
                    memsz,
                    filesz: ph.p_filesz(endian).min(memsz),
                    offset: ph.p_offset(endian),
                };
                if s.memsz == 0 {
                    continue;
                }
                if s.offset.saturating_add(s.filesz) > file_len && incomplete.is_none() {
                    incomplete = Some(format!(
                        "file is truncated: PT_LOAD for {:#x}..{:#x} needs file bytes up to {:#x}, the file has {:#x}",
                        s.start,
                        s.start.saturating_add(s.memsz),
                        s.offset.saturating_add(s.filesz),
                        file_len
                    ));
                }
                segments.push(s);
            }
            _ => {}
        }
    }
    segments.sort_by_key(|s| s.start);
    // Overlapping PT_LOADs would make lookups ambiguous: keep the first.
    segments.dedup_by(|b, a| b.start < a.start.saturating_add(a.memsz));
    let ranges = merge_ranges(&segments);
    // QEMU dump-guest-memory: x86_64 has its "QEMU" notes; other
    // architectures are recognised by physical-only PT_LOADs (paging=false:
    // p_vaddr == p_paddr; the kernel's /proc/vmcore and makedumpfile give
    // kernel virtual addresses) and NT_PRSTATUS numbered 1, 2, 3... by vCPU.
    let is_qemu = !notes.qemu_cpus.is_empty()
        || (physical_only
            && !notes.cpus.is_empty()
            && notes
                .cpus
                .iter()
                .enumerate()
                .all(|(i, c)| c.pid as usize == i + 1));
    notes.vcpu_numbered = is_qemu;
    if is_qemu {
        notes.warnings.push(
            "NT_PRSTATUS pr_pid is the vCPU number + 1 (QEMU), not a PID: threads are numbered by CPU".into(),
        );
    }
    let format = FormatInfo {
        name: if is_qemu {
            "ELF vmcore (QEMU dump-guest-memory)".into()
        } else {
            "ELF vmcore".into()
        },
        incomplete,
        quirks: std::mem::take(&mut notes.warnings),
        ..Default::default()
    };
    Ok(Dump {
        path: path.to_path_buf(),
        arch,
        format,
        memory: Box::new(ElfMemory {
            src,
            segments,
            ranges,
        }),
        notes,
    })
}

fn merge_ranges(segments: &[Segment]) -> Vec<PhysRange> {
    let mut out: Vec<PhysRange> = Vec::new();
    for s in segments {
        match out.last_mut() {
            Some(r) if r.end() == s.start => r.len += s.memsz,
            _ => out.push(PhysRange {
                start: PhysAddr(s.start),
                len: s.memsz,
            }),
        }
    }
    out
}
