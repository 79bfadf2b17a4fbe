//! makedumpfile's kdump-compressed format (`makedumpfile -c/-l/-p/-z`, the
//! `KDUMP   ` signature; the older `DISKDUMP` one shares the page layout).
//!
//! File layout, in blocks of `block_size` bytes (a "page" of this format is
//! a block: pfn = pa / block_size, which QEMU sets to 64 KiB on arm64 even
//! with 4 KiB kernel pages):
//!
//! | block | content |
//! |---|---|
//! | 0 | `disk_dump_header`: signature, version, utsname, status, block_size, bitmap_blocks, max_mapnr, nr_cpus |
//! | 1.. | `kdump_sub_header` (`sub_hdr_size` blocks): phys_base, dump_level, split range, note and VMCOREINFO blobs (their offsets point anywhere in the file) |
//! | then | bitmap 1 (pfns that are RAM), bitmap 2 (pfns that are dumped), `bitmap_blocks / 2` blocks each, LSB-first |
//! | then | one `page_desc { i64 offset; u32 size; u32 flags; u64 page_flags }` per dumped pfn, in pfn order |
//! | then | page data, each page compressed (zlib 0x1, lzo 0x2, snappy 0x4, zstd 0x20) or raw (`size == block_size`) |
//!
//! The descriptor of a dumped pfn is at index rank(pfn) = number of dumped
//! pfns below it: [`RankedBitmap`] answers that in O(1) from a prefix count
//! per 512 bits built at open. Decompressed pages are kept in a small
//! sharded direct-mapped cache whose buffers (and decompressor state) are
//! reused, so a read allocates nothing once the cache is warm.
//!
//! Bytes come from a [`Source`]: the mapped file itself, or the reassembled
//! view of a flattened stream ([`super::flat`]). Everything in the file is
//! untrusted: sizes are checked against the file length before anything is
//! allocated from them, and a descriptor's page size may not exceed the
//! block size.
//!
//! Here: opening (the steps) and reads. `header.rs` parses the headers into
//! types and the layout they imply, `bitmap.rs` is the rank bitmap,
//! `cache.rs` the page cache and page decompression, `lzo.rs` our LZO1X
//! decoder.

use std::path::Path;
use std::sync::Mutex;

pub use super::source::Source;
use super::vmcoreinfo::VmcoreInfo;
use super::{Dump, DumpError, FormatInfo, MemError, Notes, PhysRange, PhysicalMemory};
use crate::addr::{Arch, PhysAddr};

mod bitmap;
mod cache;
mod header;
mod lzo;

use bitmap::RankedBitmap;
use cache::{SHARDS, Shard};
use header::{Blob, Header, Layout, SubHeader, corrupt, cstr};
pub use lzo::lzo1x_decompress;

pub const SIGNATURE_KDUMP: &[u8; 8] = b"KDUMP   ";
pub const SIGNATURE_DISKDUMP: &[u8; 8] = b"DISKDUMP";

pub const DUMP_DH_COMPRESSED_ZLIB: u32 = 0x1;
pub const DUMP_DH_COMPRESSED_LZO: u32 = 0x2;
pub const DUMP_DH_COMPRESSED_SNAPPY: u32 = 0x4;
pub const DUMP_DH_COMPRESSED_INCOMPLETE: u32 = 0x8;
pub const DUMP_DH_EXCLUDED_VMEMMAP: u32 = 0x10;
pub const DUMP_DH_COMPRESSED_ZSTD: u32 = 0x20;
const CODEC_MASK: u32 = DUMP_DH_COMPRESSED_ZLIB
    | DUMP_DH_COMPRESSED_LZO
    | DUMP_DH_COMPRESSED_SNAPPY
    | DUMP_DH_COMPRESSED_ZSTD;

/// Size of `struct page_desc`.
pub const PAGE_DESC_SIZE: u64 = 24;

/// Physical memory of a kdump-compressed file.
pub struct KdumpMemory {
    src: Source,
    block_size: u64,
    block_shift: u32,
    /// Pfns at or past this are not in the dump.
    max_mapnr: u64,
    ram: RankedBitmap,
    dumped: RankedBitmap,
    /// For split dumps, the pfn range this file holds; else `0..max_mapnr`.
    pfn_lo: u64,
    pfn_hi: u64,
    /// rank of `pfn_lo` in `dumped`: descriptor 0 is the first dumped pfn
    /// at or after `pfn_lo`.
    rank_base: u64,
    /// The block of the file's pfn 0: pfn = pa / block_size - this
    /// ([`pfn_origin`]: makedumpfile on arm counts from PHYS_OFFSET).
    pfn_origin: u64,
    desc_base: u64,
    ranges: Vec<PhysRange>,
    cache: Vec<Mutex<Shard>>,
}

/// A parsed `page_desc`.
#[derive(Clone, Copy, Debug)]
struct PageDesc {
    offset: i64,
    size: u32,
    flags: u32,
}

impl KdumpMemory {
    fn desc_offset(&self, index: u64) -> Option<u64> {
        index
            .checked_mul(PAGE_DESC_SIZE)?
            .checked_add(self.desc_base)
    }

    fn read_desc(&self, index: u64, pa: PhysAddr) -> Result<(u64, PageDesc), MemError> {
        let off = self.desc_offset(index).ok_or(MemError::Corrupt {
            pa,
            offset: self.desc_base,
            reason: "descriptor index overflows".into(),
        })?;
        let mut b = [0u8; PAGE_DESC_SIZE as usize];
        self.src
            .read_at(off, &mut b)
            .map_err(|missing| MemError::Truncated {
                pa,
                offset: missing,
            })?;
        let desc = PageDesc {
            offset: i64::from_le_bytes(b[0..8].try_into().unwrap_or_default()),
            size: u32::from_le_bytes(b[8..12].try_into().unwrap_or_default()),
            flags: u32::from_le_bytes(b[12..16].try_into().unwrap_or_default()),
        };
        Ok((off, desc))
    }

    /// Classifies `pfn` and returns its descriptor index.
    fn locate(&self, pfn: u64, pa: PhysAddr) -> Result<u64, MemError> {
        if pfn >= self.max_mapnr {
            return Err(MemError::NotInDump(pa));
        }
        if !self.dumped.get(pfn) || pfn < self.pfn_lo || pfn >= self.pfn_hi {
            return Err(
                if self.ram.get(pfn) && pfn >= self.pfn_lo && pfn < self.pfn_hi {
                    MemError::Excluded(pa)
                } else {
                    MemError::NotInDump(pa)
                },
            );
        }
        Ok(self.dumped.rank(pfn) - self.rank_base)
    }
}

impl PhysicalMemory for KdumpMemory {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        let mut done = 0usize;
        while done < buf.len() {
            let cur = super::read_cursor(pa, done, buf.len())?.0;
            let pfn = (cur >> self.block_shift)
                .checked_sub(self.pfn_origin)
                .ok_or(MemError::NotInDump(PhysAddr(cur)))?;
            let in_block = (cur & (self.block_size - 1)) as usize;
            let n = (self.block_size as usize - in_block).min(buf.len() - done);
            let out = &mut buf[done..done + n];
            self.with_block(pfn, PhysAddr(cur), |b| {
                out.copy_from_slice(&b[in_block..in_block + n])
            })?;
            done += n;
        }
        Ok(())
    }

    fn ranges(&self) -> &[PhysRange] {
        &self.ranges
    }
}

/// Upper bound for note and VMCOREINFO blobs copied at open.
const MAX_BLOB: u64 = 64 << 20;

/// Opens a kdump-compressed file mapped at `map`.
pub fn open(path: &Path, map: memmap2::Mmap) -> Result<Dump, DumpError> {
    open_source(path, Source::Mapped(map))
}

/// Opens a kdump-compressed file whose bytes come from `src`.
pub fn open_source(path: &Path, src: Source) -> Result<Dump, DumpError> {
    let mut quirks = Vec::new();
    let h = Header::read(path, &src, &mut quirks)?;
    let sub = SubHeader::read(path, &src, &h)?;
    let layout = Layout::new(path, &src, &h, &sub, &mut quirks)?;
    let (ram, dumped) = read_bitmaps(path, &src, &layout)?;
    let max_mapnr = layout.max_mapnr;
    let (pfn_lo, pfn_hi) = if sub.split {
        let lo = sub.start_pfn.min(max_mapnr);
        let hi = sub.end_pfn.clamp(lo, max_mapnr);
        quirks.push(format!(
            "split dump: this file holds pfns {lo:#x}..{hi:#x} only (give every part, in any order, to read the rest)"
        ));
        (lo, hi)
    } else {
        (0, max_mapnr)
    };
    let rank_base = dumped.rank(pfn_lo);
    let stored = dumped.rank(pfn_hi) - rank_base;
    let ram_pages = ram.rank(pfn_hi) - ram.rank(pfn_lo);

    let (arch, notes) = read_notes(path, &src, &h, &sub, &mut quirks)?;
    let mut incomplete = (h.status & DUMP_DH_COMPRESSED_INCOMPLETE != 0).then(|| {
        "header marks the dump incomplete (makedumpfile could not write every page)".to_string()
    });
    let file_len = src.len();
    let desc_end = stored
        .checked_mul(PAGE_DESC_SIZE)
        .and_then(|l| l.checked_add(layout.desc_base))
        .unwrap_or(u64::MAX);
    if desc_end > file_len {
        incomplete.get_or_insert_with(|| {
            format!(
                "file is truncated: descriptors for {stored} pages end at {desc_end:#x}, the file has {file_len:#x} bytes"
            )
        });
    }

    let bs = h.block_size;
    let pfn_origin = pfn_origin(arch, &sub, &ram, bs.trailing_zeros(), &mut quirks);
    let ranges = ram
        .runs()
        .into_iter()
        .filter_map(|(a, b)| {
            Some(PhysRange {
                start: PhysAddr(a.checked_add(pfn_origin)?.checked_mul(bs)?),
                len: (b - a).checked_mul(bs)?,
            })
        })
        .collect();
    let mem = KdumpMemory {
        src,
        block_size: bs,
        block_shift: bs.trailing_zeros(),
        max_mapnr,
        ram,
        dumped,
        pfn_lo,
        pfn_hi,
        rank_base,
        pfn_origin,
        desc_base: layout.desc_base,
        ranges,
        cache: (0..SHARDS).map(|_| Mutex::new(Shard::new())).collect(),
    };
    let codecs = mem.sample_codecs(stored);
    if codecs.data_end > file_len {
        incomplete.get_or_insert_with(|| {
            format!(
                "file is truncated: page data runs to {:#x}, the file has {file_len:#x} bytes (pages stored past the end cannot be read)",
                codecs.data_end
            )
        });
    }
    let declared = h.status & CODEC_MASK;
    let codec_bits = if codecs.seen != 0 {
        codecs.seen
    } else {
        declared
    };
    if declared & !codecs.seen != 0 && codecs.raw_seen {
        quirks.push(format!(
            "header declares {} but the sampled pages are stored uncompressed",
            codec_names(declared & !codecs.seen).join("+")
        ));
    }
    if h.status & DUMP_DH_EXCLUDED_VMEMMAP != 0 {
        quirks.push("unused vmemmap pages were excluded (status 0x10)".into());
    }
    let sig = if h.diskdump {
        "diskdump"
    } else {
        "kdump-compressed"
    };
    let machine = h.machine().to_string();
    let format = FormatInfo {
        name: format!("{sig} v{}", h.version),
        codec: (codec_bits != 0).then(|| codec_names(codec_bits).join("+")),
        dump_level: Some(sub.dump_level),
        block_size: Some(bs),
        excluded_pages: Some(ram_pages.saturating_sub(stored)),
        stored_pages: Some(stored),
        quirks,
        incomplete,
        machine: (!machine.is_empty()).then_some(machine),
        split_pfns: sub.split.then_some((pfn_lo, pfn_hi)),
    };
    Ok(Dump {
        path: path.to_path_buf(),
        arch,
        format,
        memory: Box::new(mem),
        notes,
    })
}

/// The block that is pfn 0 of the file. makedumpfile numbers arm's pages
/// from PHYS_OFFSET (its ARCH_PFN_OFFSET, the sub-header's `phys_base`),
/// QEMU from address 0. arm has no RAM below PHYS_OFFSET, so a RAM bitmap
/// with pages below `phys_base / block_size` counts from PHYS_OFFSET;
/// otherwise (QEMU, every other architecture) from 0.
fn pfn_origin(
    arch: Arch,
    sub: &SubHeader,
    ram: &RankedBitmap,
    block_shift: u32,
    quirks: &mut Vec<String>,
) -> u64 {
    // arm's `unsigned long` is 32 bits: PHYS_OFFSET 0x80000000 reads as
    // a negative i32
    let phys_offset = u64::from(sub.phys_base as u32);
    let origin = phys_offset >> block_shift;
    if arch != Arch::Arm || origin == 0 || ram.rank(origin) == 0 {
        return 0;
    }
    quirks.push(format!(
        "pages are numbered from PHYS_OFFSET {phys_offset:#x} (makedumpfile on arm), not from address 0"
    ));
    origin
}

/// The RAM and dumped bitmaps (one bitmap serves as both when the file
/// has room for only one).
fn read_bitmaps(
    path: &Path,
    src: &Source,
    l: &Layout,
) -> Result<(RankedBitmap, RankedBitmap), DumpError> {
    let bitmap = src
        .to_vec(l.bitmap_offset, l.bitmap_len as usize)
        .map_err(|o| corrupt(path, o, "file ends inside the bitmaps"))?;
    let one = l.one_len as usize;
    let ram = RankedBitmap::new(&bitmap[..one], l.max_mapnr);
    let dumped = if l.two_bitmaps {
        RankedBitmap::new(&bitmap[one..], l.max_mapnr)
    } else {
        RankedBitmap::new(&bitmap[..one], l.max_mapnr)
    };
    Ok((ram, dumped))
}

/// The note blob (CPU registers) and VMCOREINFO, and the architecture:
/// utsname's machine, or for QEMU's files (empty utsname) the size of
/// NT_PRSTATUS.
fn read_notes(
    path: &Path,
    src: &Source,
    h: &Header,
    sub: &SubHeader,
    quirks: &mut Vec<String>,
) -> Result<(Arch, Notes), DumpError> {
    let mut warnings = Vec::new();
    let blob = |b: Blob, what: &str| -> Result<Option<Vec<u8>>, String> {
        if b.offset == 0 || b.size == 0 {
            return Ok(None);
        }
        if b.size > MAX_BLOB {
            return Err(format!(
                "{what} of {} bytes at {:#x} is implausibly large; ignored",
                b.size, b.offset
            ));
        }
        src.to_vec(b.offset, b.size as usize)
            .map(Some)
            .map_err(|_| {
                format!(
                    "{what} at {:#x} ({} bytes) lies past the end of the file",
                    b.offset, b.size
                )
            })
    };
    let note_blob = blob(sub.notes, "note blob").unwrap_or_else(|w| {
        warnings.push(w);
        None
    });
    let arch = match h.machine() {
        "x86_64" => Arch::X86_64,
        "aarch64" => Arch::Aarch64,
        "i386" | "i486" | "i586" | "i686" => Arch::I386,
        m if m.starts_with("armv") => Arch::Arm,
        m @ ("" | "Unknown") => match note_blob.as_deref().and_then(Notes::arch_from_prstatus) {
            Some(a) => {
                quirks.push(format!(
                    "utsname machine is {m:?} (QEMU leaves utsname empty): architecture {} taken from the NT_PRSTATUS size",
                    a.name()
                ));
                a
            }
            None => {
                return Err(DumpError::UnknownFormat {
                    path: path.to_path_buf(),
                    reason: "kdump-compressed file with no utsname machine and no NT_PRSTATUS note to tell its architecture".into(),
                });
            }
        },
        m => {
            return Err(DumpError::UnknownFormat {
                path: path.to_path_buf(),
                reason: format!("kdump-compressed dump of an unsupported machine {m:?}"),
            });
        }
    };
    let mut notes = Notes::default();
    if let Some(b) = &note_blob {
        notes.parse_into(b, arch, sub.notes.offset);
    }
    if notes.vmcoreinfo.is_none() {
        match blob(sub.vmcoreinfo, "VMCOREINFO") {
            Ok(Some(b)) => notes.vmcoreinfo = Some(cstr(&b)),
            Ok(None) => {}
            Err(w) => warnings.push(w),
        }
    }
    quirks.append(&mut warnings);
    quirks.append(&mut notes.warnings);
    if h.nr_cpus > 0 && notes.cpus.len() != h.nr_cpus as usize && note_blob.is_some() {
        quirks.push(format!(
            "header says {} CPUs, the notes hold {} NT_PRSTATUS",
            h.nr_cpus,
            notes.cpus.len()
        ));
    }
    if h.written_by_qemu() {
        quirks.push("written by QEMU dump-guest-memory (empty utsname, no timestamp)".into());
        // QEMU writes the same NT_PRSTATUS notes as in its ELF dumps.
        notes.vcpu_numbered = true;
    }
    if let Some(vi) = notes.vmcoreinfo.as_deref().map(VmcoreInfo::parse) {
        if let Some(pb) = vi.number("phys_base").filter(|&pb| pb != sub.phys_base) {
            quirks.push(format!(
                "sub-header phys_base {:#x} disagrees with VMCOREINFO NUMBER(phys_base) {pb:#x}; VMCOREINFO is used",
                sub.phys_base
            ));
        }
        let bs = h.block_size;
        if let Some(ps) = vi.page_size().filter(|&ps| ps != bs) {
            quirks.push(format!(
                "block size {bs} differs from the kernel page size {ps}: pfns here are block numbers (pa / {bs})"
            ));
        }
    }
    Ok((arch, notes))
}

/// What a sample of page descriptors says about the file.
struct CodecSample {
    /// Codec bits seen.
    seen: u32,
    /// An uncompressed page was seen.
    raw_seen: bool,
    /// The furthest end of page data (truncation: makedumpfile writes pages
    /// in pfn order, so the last descriptors point furthest into the file).
    data_end: u64,
}

impl KdumpMemory {
    /// Samples descriptors (first, spread, last): the codec a header
    /// declares is checked against them (Debian's makedumpfile declares
    /// snappy/zstd but writes raw pages when built without them).
    fn sample_codecs(&self, stored: u64) -> CodecSample {
        let sample: Vec<u64> = if stored == 0 {
            Vec::new()
        } else {
            (0..stored.min(64))
                .chain((0..64).map(|k| k * stored / 64))
                .chain(stored.saturating_sub(64)..stored)
                .collect()
        };
        let mut out = CodecSample {
            seen: 0,
            raw_seen: false,
            data_end: 0,
        };
        for idx in sample {
            if let Ok((_, d)) = self.read_desc(idx, PhysAddr(0)) {
                if d.flags & CODEC_MASK == 0 {
                    out.raw_seen = true;
                }
                out.seen |= d.flags & CODEC_MASK;
                if let Ok(off) = u64::try_from(d.offset) {
                    out.data_end = out.data_end.max(off.saturating_add(u64::from(d.size)));
                }
            }
        }
        out
    }
}

fn codec_names(bits: u32) -> Vec<&'static str> {
    [
        (DUMP_DH_COMPRESSED_ZLIB, "zlib"),
        (DUMP_DH_COMPRESSED_LZO, "lzo"),
        (DUMP_DH_COMPRESSED_SNAPPY, "snappy"),
        (DUMP_DH_COMPRESSED_ZSTD, "zstd"),
    ]
    .iter()
    .filter(|(b, _)| bits & b != 0)
    .map(|(_, n)| *n)
    .collect()
}

#[cfg(test)]
mod tests;
