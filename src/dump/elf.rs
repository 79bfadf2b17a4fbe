//! ELF vmcores: a copy of /proc/vmcore, `makedumpfile -E`, QEMU
//! `dump-guest-memory`. Physical memory comes from PT_LOAD segments indexed
//! by physical address; PT_NOTE holds NT_PRSTATUS, VMCOREINFO, QEMU notes.
//!
//! makedumpfile -E writes irregular segments: `p_filesz < p_memsz` (the
//! rest reads as zeros, as crash does), zero-size segments, unaligned
//! offsets. A segment whose file data lies past the end of the file
//! (truncated copy) still serves the part that is there.
//!
//! Segments may overlap: makedumpfile -E writes the kernel-text PT_LOADs
//! and the direct-map PT_LOADs over the same physical range, with the same
//! file bytes but different `p_memsz`. At open the segments are merged into
//! disjoint [`Piece`]s so that a physical byte is readable if any segment
//! holds it: file bytes win over zero fill, and where two segments hold file
//! bytes for the same address the first PT_LOAD in program-header order
//! wins (crash's rule: it takes the first matching PT_LOAD).
//!
//! The file is a [`Source`]: the mapped file, or the file a flattened
//! stream (`makedumpfile -F -E`) reassembles to, read through its record
//! index without rebuilding it.

use std::collections::BTreeSet;
use std::path::Path;

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use object::{Endianness, FileKind};

use super::source::Source;
use super::{Dump, DumpError, FormatInfo, MemError, Notes, PhysRange, PhysicalMemory};
use crate::addr::{Arch, PhysAddr};

/// One PT_LOAD, by physical address.
#[derive(Clone, Copy, Debug)]
pub(super) struct Segment {
    pub start: u64,
    pub memsz: u64,
    pub filesz: u64,
    pub offset: u64,
}

/// A stretch of physical memory served one way: from the file at `offset`
/// (the byte for `start`), or as zero fill (`offset` None).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Piece {
    pub start: u64,
    pub len: u64,
    pub offset: Option<u64>,
}

impl Piece {
    pub fn end(&self) -> u64 {
        self.start + self.len
    }
}

pub struct ElfMemory {
    src: Source,
    /// Disjoint, sorted by `start`, non-empty.
    pieces: Vec<Piece>,
    ranges: Vec<PhysRange>,
}

impl ElfMemory {
    fn find(&self, pa: u64) -> Option<&Piece> {
        let i = self.pieces.partition_point(|s| s.start <= pa);
        let s = self.pieces.get(i.checked_sub(1)?)?;
        (pa - s.start < s.len).then_some(s)
    }
}

/// Merges (possibly overlapping) segments, in program-header order, into
/// disjoint pieces: at every address the first segment with file bytes
/// there wins, else zero fill if any segment's `p_memsz` covers it. One
/// sweep over the segment boundaries, O(n log n) in the number of segments
/// (a hostile header table of 65535 entries stays cheap).
pub(super) fn merge_segments(segments: &[Segment]) -> Vec<Piece> {
    // (address, starts?, segment index, file part?)
    let mut events = Vec::with_capacity(segments.len() * 4);
    for (i, s) in segments.iter().enumerate() {
        let file_end = s.start + s.filesz;
        let end = s.start + s.memsz;
        if s.filesz > 0 {
            events.push((s.start, true, i, true));
            events.push((file_end, false, i, true));
        }
        if end > file_end {
            events.push((file_end, true, i, false));
            events.push((end, false, i, false));
        }
    }
    events.sort_unstable_by_key(|e| e.0);
    let mut files: BTreeSet<usize> = BTreeSet::new();
    let mut zeros = 0usize;
    let mut out: Vec<Piece> = Vec::new();
    let mut k = 0;
    while k < events.len() {
        let at = events[k].0;
        while k < events.len() && events[k].0 == at {
            let (_, starts, i, file) = events[k];
            match (starts, file) {
                (true, true) => {
                    files.insert(i);
                }
                (false, true) => {
                    files.remove(&i);
                }
                (true, false) => zeros += 1,
                (false, false) => zeros -= 1,
            }
            k += 1;
        }
        let Some(&(next, ..)) = events.get(k) else {
            break;
        };
        let offset = match files.first() {
            Some(&i) => {
                let s = &segments[i];
                // p_offset is untrusted: near u64::MAX the sum saturates
                // and the read reports the file as truncated
                Some(s.offset.saturating_add(at - s.start))
            }
            None if zeros > 0 => None,
            None => continue,
        };
        let piece = Piece {
            start: at,
            len: next - at,
            offset,
        };
        match out.last_mut() {
            Some(p) if p.end() == at && continues(p, &piece) => p.len += piece.len,
            _ => out.push(piece),
        }
    }
    out
}

/// True if `next` (which starts where `p` ends) reads on from `p`: both
/// zero fill, or file bytes that follow on in the file.
fn continues(p: &Piece, next: &Piece) -> bool {
    match (p.offset, next.offset) {
        (None, None) => true,
        (Some(a), Some(b)) => a.checked_add(p.len) == Some(b),
        _ => false,
    }
}

impl PhysicalMemory for ElfMemory {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        let mut done = 0usize;
        while done < buf.len() {
            let cur = super::read_cursor(pa, done, buf.len())?.0;
            let piece = self.find(cur).ok_or(MemError::NotInDump(PhysAddr(cur)))?;
            let in_piece = cur - piece.start;
            let n = ((piece.len - in_piece) as usize).min(buf.len() - done);
            let out = &mut buf[done..done + n];
            match piece.offset {
                Some(base) => {
                    let off = base.saturating_add(in_piece);
                    self.src
                        .read_at(off, out)
                        .map_err(|missing| MemError::Truncated {
                            pa: PhysAddr(cur + (missing.saturating_sub(off)).min(n as u64)),
                            offset: missing,
                        })?;
                }
                None => out.fill(0),
            }
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
    // e_phoff, e_phentsize, e_phnum: where ELFCLASS32 and ELFCLASS64 keep them
    let (phoff, phentsize, phnum) = if e[4] == elf::ELFCLASS32 {
        let phoff = u32::from_le_bytes(e[0x1c..0x20].try_into().expect("4 bytes"));
        (phoff as u64, u16_at(0x2a), u16_at(0x2c))
    } else {
        let phoff = u64::from_le_bytes(e[0x20..0x28].try_into().expect("8 bytes"));
        (phoff, u16_at(0x36), u16_at(0x38))
    };
    let need = phoff
        .checked_add(phentsize * phnum)
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
    // /proc/vmcore and makedumpfile of a 32-bit kernel are ELFCLASS32; QEMU
    // writes ELFCLASS64 for every guest whose memory reaches past 4 GiB
    // (and newer versions for every x86 guest), whatever its e_machine
    match FileKind::parse(data) {
        Ok(FileKind::Elf64) => open_class::<elf::FileHeader64<Endianness>>(path, src, data),
        Ok(FileKind::Elf32) => open_class::<elf::FileHeader32<Endianness>>(path, src, data),
        Ok(k) => Err(corrupt(path, 0, format!("{k:?} is not an ELF vmcore"))),
        Err(e) => Err(corrupt(path, 0, e.to_string())),
    }
}

/// An ELF32 or ELF64 address/offset field as a u64.
fn word(w: impl Into<u64>) -> u64 {
    w.into()
}

/// The architecture of an ELF `e_machine`.
fn arch_of(machine: u16) -> Option<Arch> {
    match machine {
        elf::EM_X86_64 => Some(Arch::X86_64),
        elf::EM_AARCH64 => Some(Arch::Aarch64),
        elf::EM_386 => Some(Arch::I386),
        elf::EM_ARM => Some(Arch::Arm),
        _ => None,
    }
}

fn open_class<H: FileHeader<Endian = Endianness>>(
    path: &Path,
    src: Source,
    data: &[u8],
) -> Result<Dump, DumpError> {
    let file_len = src.len();
    let hdr = H::parse(data).map_err(|e| corrupt(path, 0, e.to_string()))?;
    let endian = hdr.endian().map_err(|e| corrupt(path, 0, e.to_string()))?;
    if endian != Endianness::Little {
        return Err(corrupt(path, 5, "big-endian vmcores are not supported"));
    }
    let machine = hdr.e_machine(endian);
    let arch = arch_of(machine)
        .ok_or_else(|| corrupt(path, 18, format!("unsupported e_machine {machine}")))?;
    let phdrs = hdr
        .program_headers(endian, data)
        .map_err(|e| corrupt(path, word(hdr.e_phoff(endian)), e.to_string()))?;

    let mut notes = Notes::default();
    let mut segments = Vec::new();
    let mut incomplete = None;
    let mut physical_only = true;
    for ph in phdrs {
        match ph.p_type(endian) {
            elf::PT_NOTE => {
                let off = word(ph.p_offset(endian));
                let size = word(ph.p_filesz(endian));
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
                physical_only &= word(ph.p_vaddr(endian)) == word(ph.p_paddr(endian));
                let start = word(ph.p_paddr(endian));
                // untrusted sizes: a segment may not run past the top of
                // the physical address space (its end must not overflow)
                let memsz = word(ph.p_memsz(endian)).min(u64::MAX - start);
                let s = Segment {
                    start,
                    memsz,
                    filesz: word(ph.p_filesz(endian)).min(memsz),
                    offset: word(ph.p_offset(endian)),
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
    let pieces = merge_segments(&segments);
    let ranges = merge_ranges(&pieces);
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
            pieces,
            ranges,
        }),
        notes,
    })
}

pub(super) fn merge_ranges(pieces: &[Piece]) -> Vec<PhysRange> {
    let mut out: Vec<PhysRange> = Vec::new();
    for p in pieces {
        match out.last_mut() {
            Some(r) if r.end() == p.start => r.len += p.len,
            _ => out.push(PhysRange {
                start: PhysAddr(p.start),
                len: p.len,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (p_paddr, p_filesz, p_memsz, fill byte of its file data)
    type Seg = (u64, u64, u64, u8);

    /// An x86_64 ELF vmcore with no notes and `segs` as PT_LOADs, in that
    /// program-header order, each with its own file data.
    fn elf(segs: &[Seg]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
        f.extend_from_slice(&4u16.to_le_bytes()); // ET_CORE
        f.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
        f.extend_from_slice(&1u32.to_le_bytes());
        f.extend_from_slice(&0u64.to_le_bytes()); // entry
        f.extend_from_slice(&64u64.to_le_bytes()); // phoff
        f.extend_from_slice(&0u64.to_le_bytes()); // shoff
        f.extend_from_slice(&0u32.to_le_bytes());
        for v in [64u16, 56, segs.len() as u16, 0, 0, 0] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        let mut data_off = 64 + 56 * segs.len() as u64;
        let mut data = Vec::new();
        for &(pa, filesz, memsz, _) in segs {
            f.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
            f.extend_from_slice(&7u32.to_le_bytes());
            for v in [data_off, 0xffff_8880_0000_0000 + pa, pa, filesz, memsz, 0] {
                f.extend_from_slice(&v.to_le_bytes());
            }
            data_off += filesz;
        }
        for &(_, filesz, _, fill) in segs {
            data.extend(std::iter::repeat_n(fill, filesz as usize));
        }
        f.extend_from_slice(&data);
        f
    }

    fn open(segs: &[Seg]) -> Dump {
        crate::dump::open_bytes(Path::new("overlap.vmcore"), &elf(segs)).unwrap()
    }

    fn byte_at(d: &Dump, pa: u64) -> Result<u8, MemError> {
        let mut b = [0u8; 1];
        d.memory.read_phys(PhysAddr(pa), &mut b).map(|_| b[0])
    }

    #[test]
    fn overlapping_segments_merge() {
        // like makedumpfile -E: a short "text" segment, then a longer one
        // over the same range with more memsz; the second's file bytes
        // differ to show which wins
        let d = open(&[
            (0x1000, 0x1000, 0x3000, b'A'), // file 0x1000..0x2000, zeros to 0x4000
            (0x1000, 0x2000, 0x6000, b'B'), // file 0x1000..0x3000, zeros to 0x7000
            (0x8000, 0, 0x1000, 0),         // zero fill only
            (0x8800, 0x400, 0x400, b'C'),   // file bytes inside that zero fill
        ]);
        // first PT_LOAD with file bytes wins
        assert_eq!(byte_at(&d, 0x1000), Ok(b'A'));
        assert_eq!(byte_at(&d, 0x1fff), Ok(b'A'));
        // file bytes win over the first segment's zero fill
        assert_eq!(byte_at(&d, 0x2000), Ok(b'B'));
        assert_eq!(byte_at(&d, 0x2fff), Ok(b'B'));
        // zero fill of both, then only of the longer one (was "not in the
        // dump" when the shorter segment hid the longer)
        assert_eq!(byte_at(&d, 0x3000), Ok(0));
        assert_eq!(byte_at(&d, 0x6fff), Ok(0));
        assert_eq!(
            byte_at(&d, 0x7000),
            Err(MemError::NotInDump(PhysAddr(0x7000)))
        );
        assert_eq!(byte_at(&d, 0x8000), Ok(0));
        assert_eq!(byte_at(&d, 0x8800), Ok(b'C'));
        assert_eq!(byte_at(&d, 0x8c00), Ok(0));
        // one read across every piece
        let mut buf = vec![0xeeu8; 0x6000];
        d.memory.read_phys(PhysAddr(0x1000), &mut buf).unwrap();
        assert!(buf[..0x1000].iter().all(|&b| b == b'A'));
        assert!(buf[0x1000..0x2000].iter().all(|&b| b == b'B'));
        assert!(buf[0x2000..].iter().all(|&b| b == 0));
        assert_eq!(
            d.memory.ranges(),
            &[
                PhysRange {
                    start: PhysAddr(0x1000),
                    len: 0x6000
                },
                PhysRange {
                    start: PhysAddr(0x8000),
                    len: 0x1000
                }
            ]
        );
    }

    #[test]
    fn program_header_order_decides_between_file_bytes() {
        // listed first but higher up: it still wins where both have bytes
        let d = open(&[
            (0x2000, 0x1000, 0x1000, b'X'),
            (0x1000, 0x2000, 0x2000, b'Y'),
        ]);
        assert_eq!(byte_at(&d, 0x1fff), Ok(b'Y'));
        assert_eq!(byte_at(&d, 0x2000), Ok(b'X'));
        assert_eq!(byte_at(&d, 0x2fff), Ok(b'X'));
        assert_eq!(
            byte_at(&d, 0x3000),
            Err(MemError::NotInDump(PhysAddr(0x3000)))
        );
    }

    #[test]
    fn merge_is_linear_enough_for_hostile_tables() {
        // 60,000 segments all over the same range: one piece
        let segs: Vec<Segment> = (0..60_000u64)
            .map(|i| Segment {
                start: 0x1000 + (i % 7) * 0x10,
                memsz: 0x10_0000,
                filesz: 0,
                offset: 0,
            })
            .collect();
        let p = merge_segments(&segs);
        assert_eq!(
            p,
            [Piece {
                start: 0x1000,
                len: 0x10_0060,
                offset: None
            }]
        );
    }
}
