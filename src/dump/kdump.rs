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

use std::path::Path;
use std::sync::Mutex;

pub use super::source::Source;
use super::{Dump, DumpError, FormatInfo, MemError, Notes, PhysRange, PhysicalMemory};
use crate::addr::{Arch, PhysAddr};

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
/// Offsets in `disk_dump_header` (x86_64/aarch64 LP64 layout).
const H_VERSION: usize = 8;
const H_UTSNAME: usize = 12;
const UTS_LEN: usize = 65;
const H_STATUS: usize = 424;
const H_BLOCK_SIZE: usize = 428;
const H_SUB_HDR_SIZE: usize = 432;
const H_BITMAP_BLOCKS: usize = 436;
const H_MAX_MAPNR: usize = 440;
const H_NR_CPUS: usize = 460;
const HEADER_LEN: usize = 464;
/// `struct kdump_sub_header` (v6) is 104 bytes.
const SUB_LEN: usize = 104;

/// A bitmap over pfns with O(1) rank (number of set bits below a pfn).
struct RankedBitmap {
    words: Vec<u64>,
    nbits: u64,
    /// Set bits before each group of [`RANK_GROUP`] words.
    group_rank: Vec<u64>,
}

const RANK_GROUP: usize = 8;

impl RankedBitmap {
    /// `bytes` is the on-disk bitmap (LSB-first); bits at or past `nbits`
    /// are ignored.
    fn new(bytes: &[u8], nbits: u64) -> RankedBitmap {
        let nwords = nbits.div_ceil(64) as usize;
        let mut words: Vec<u64> = (0..nwords)
            .map(|i| {
                let mut w = [0u8; 8];
                let chunk = bytes.get(i * 8..).unwrap_or(&[]);
                let n = chunk.len().min(8);
                w[..n].copy_from_slice(&chunk[..n]);
                u64::from_le_bytes(w)
            })
            .collect();
        if let Some(last) = words.last_mut().filter(|_| !nbits.is_multiple_of(64)) {
            *last &= (1u64 << (nbits % 64)) - 1;
        }
        let mut group_rank = Vec::with_capacity(nwords / RANK_GROUP + 1);
        let mut acc = 0u64;
        for g in words.chunks(RANK_GROUP) {
            group_rank.push(acc);
            acc += g.iter().map(|w| u64::from(w.count_ones())).sum::<u64>();
        }
        group_rank.push(acc);
        RankedBitmap {
            words,
            nbits,
            group_rank,
        }
    }

    fn get(&self, bit: u64) -> bool {
        bit < self.nbits && (self.words[(bit / 64) as usize] >> (bit % 64)) & 1 == 1
    }

    /// Set bits in `[0, bit)`; `bit` may be `nbits`.
    fn rank(&self, bit: u64) -> u64 {
        let bit = bit.min(self.nbits);
        let w = (bit / 64) as usize;
        let g = w / RANK_GROUP;
        let mut r = self.group_rank[g];
        for x in &self.words[g * RANK_GROUP..w] {
            r += u64::from(x.count_ones());
        }
        if !bit.is_multiple_of(64) {
            r += u64::from((self.words[w] & ((1u64 << (bit % 64)) - 1)).count_ones());
        }
        r
    }

    /// Runs of set bits as `(first, end)` pfn pairs.
    fn runs(&self) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        let mut start: Option<u64> = None;
        for (i, &w) in self.words.iter().enumerate() {
            let base = i as u64 * 64;
            match (w, start) {
                (0, None) | (u64::MAX, Some(_)) => continue,
                _ => {}
            }
            for b in 0..64 {
                let set = (w >> b) & 1 == 1;
                match (set, start) {
                    (true, None) => start = Some(base + b),
                    (false, Some(s)) => {
                        out.push((s, base + b));
                        start = None;
                    }
                    _ => {}
                }
            }
        }
        if let Some(s) = start {
            out.push((s, self.nbits));
        }
        out
    }
}

/// A minimal LZO1X decompressor into a fixed buffer: no allocation, every
/// access bounds-checked. Written from the kernel's prose description of the
/// stream (Documentation/staging/lzo.rst). Returns the bytes written.
pub fn lzo1x_decompress(src: &[u8], dst: &mut [u8]) -> Result<usize, &'static str> {
    struct In<'a> {
        s: &'a [u8],
        p: usize,
    }
    impl In<'_> {
        fn byte(&mut self) -> Result<usize, &'static str> {
            let b = *self.s.get(self.p).ok_or("input overrun")?;
            self.p += 1;
            Ok(b as usize)
        }
        /// The variable-length extension of a zero length field.
        fn ext(&mut self, base: usize) -> Result<usize, &'static str> {
            let mut n = base;
            loop {
                match self.byte()? {
                    0 => n = n.checked_add(255).ok_or("length overflow")?,
                    b => return n.checked_add(b).ok_or("length overflow"),
                }
            }
        }
        fn le16(&mut self) -> Result<usize, &'static str> {
            Ok(self.byte()? | (self.byte()? << 8))
        }
    }
    let mut i = In { s: src, p: 0 };
    let mut op = 0usize;
    let copy_lit =
        |i: &mut In, op: &mut usize, dst: &mut [u8], n: usize| -> Result<(), &'static str> {
            let from =
                i.s.get(i.p..i.p.checked_add(n).ok_or("input overrun")?)
                    .ok_or("input overrun")?;
            let to = dst
                .get_mut(*op..op.checked_add(n).ok_or("output overrun")?)
                .ok_or("output overrun")?;
            to.copy_from_slice(from);
            i.p += n;
            *op += n;
            Ok(())
        };
    let copy_match =
        |op: &mut usize, dst: &mut [u8], dist: usize, n: usize| -> Result<(), &'static str> {
            if dist > *op {
                return Err("lookbehind overrun");
            }
            let end = op
                .checked_add(n)
                .filter(|&e| e <= dst.len())
                .ok_or("output overrun")?;
            let from = *op - dist;
            if dist >= n {
                dst.copy_within(from..from + n, *op);
            } else {
                for k in 0..n {
                    dst[*op + k] = dst[from + k];
                }
            }
            *op = end;
            Ok(())
        };
    let mut state;
    let first = *src.first().ok_or("empty input")? as usize;
    if first > 17 {
        i.p = 1;
        let n = first - 17;
        copy_lit(&mut i, &mut op, dst, n)?;
        state = n.min(4);
    } else {
        state = 0;
    }
    loop {
        let t = i.byte()?;
        let (dist, len);
        if t < 16 {
            match state {
                0 => {
                    let n = if t == 0 { i.ext(15)? } else { t };
                    copy_lit(&mut i, &mut op, dst, n + 3)?;
                    state = 4;
                    continue;
                }
                1..=3 => {
                    dist = (i.byte()? << 2) + (t >> 2) + 1;
                    len = 2;
                }
                _ => {
                    dist = (i.byte()? << 2) + (t >> 2) + 2049;
                    len = 3;
                }
            }
            state = t & 3;
        } else if t < 32 {
            let n = if t & 7 == 0 { i.ext(7)? } else { t & 7 };
            let d = i.le16()?;
            let distance = 16384 + ((t & 8) << 11) + (d >> 2);
            if distance == 16384 {
                if i.p != src.len() {
                    return Err("trailing bytes after the end marker");
                }
                return Ok(op);
            }
            dist = distance;
            len = n + 2;
            state = d & 3;
        } else if t < 64 {
            let n = if t & 31 == 0 { i.ext(31)? } else { t & 31 };
            let d = i.le16()?;
            dist = (d >> 2) + 1;
            len = n + 2;
            state = d & 3;
        } else if t < 128 {
            dist = (i.byte()? << 3) + ((t >> 2) & 7) + 1;
            len = 3 + ((t >> 5) & 1);
            state = t & 3;
        } else {
            dist = (i.byte()? << 3) + ((t >> 2) & 7) + 1;
            len = 5 + ((t >> 5) & 3);
            state = t & 3;
        }
        copy_match(&mut op, dst, dist, len)?;
        copy_lit(&mut i, &mut op, dst, state)?;
    }
}

const SHARDS: usize = 16;
// 16 x 32 slots: 2 MiB of 4 KiB pages (32 MiB with QEMU's 64 KiB arm64 blocks).
const WAYS: usize = 32;

/// One shard of the page cache: `WAYS` direct-mapped slots plus the
/// decompressor state and scratch buffer reused by every miss.
struct Shard {
    tags: [u64; WAYS],
    /// `WAYS * block_size` bytes, allocated on the shard's first miss.
    pages: Vec<u8>,
    scratch: Vec<u8>,
    zlib: Option<flate2::Decompress>,
    zstd: Option<zstd::bulk::Decompressor<'static>>,
}

impl Shard {
    fn new() -> Shard {
        Shard {
            tags: [u64::MAX; WAYS],
            pages: Vec::new(),
            scratch: Vec::new(),
            zlib: None,
            zstd: None,
        }
    }
}

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

    /// Decompresses the page with descriptor `index` into `out`
    /// (`block_size` bytes).
    fn load(
        &self,
        index: u64,
        pa: PhysAddr,
        shard: &mut Shard,
        slot: usize,
    ) -> Result<(), MemError> {
        let bs = self.block_size as usize;
        let (desc_off, d) = self.read_desc(index, pa)?;
        let bad = |offset: u64, reason: String| MemError::Corrupt { pa, offset, reason };
        if d.offset == 0 && d.size == 0 {
            return Err(MemError::Truncated {
                pa,
                offset: desc_off,
            });
        }
        if d.offset < 0 {
            return Err(bad(
                desc_off,
                format!("page descriptor has negative data offset {}", d.offset),
            ));
        }
        if d.size == 0 || d.size as u64 > self.block_size {
            return Err(bad(
                desc_off,
                format!(
                    "page descriptor size {} is not in 1..={}",
                    d.size, self.block_size
                ),
            ));
        }
        let data_off = d.offset as u64;
        let Shard {
            pages,
            scratch,
            zlib,
            zstd,
            ..
        } = shard;
        if pages.is_empty() {
            pages.resize(WAYS * bs, 0);
        }
        let out = &mut pages[slot * bs..(slot + 1) * bs];
        let input = self
            .src
            .slice(data_off, d.size as usize, scratch)
            .map_err(|missing| MemError::Truncated {
                pa,
                offset: missing,
            })?;
        let codec = d.flags & CODEC_MASK;
        let produced = match codec {
            0 => {
                if input.len() != bs {
                    return Err(bad(
                        desc_off,
                        format!(
                            "uncompressed page of {} bytes, block size is {bs}",
                            input.len()
                        ),
                    ));
                }
                out.copy_from_slice(input);
                bs
            }
            DUMP_DH_COMPRESSED_ZLIB => {
                let z = zlib.get_or_insert_with(|| flate2::Decompress::new(true));
                z.reset(true);
                match z.decompress(input, out, flate2::FlushDecompress::Finish) {
                    Ok(flate2::Status::StreamEnd) => z.total_out() as usize,
                    Ok(_) => {
                        return Err(bad(
                            data_off,
                            format!("zlib data does not end within {bs} bytes"),
                        ));
                    }
                    Err(e) => return Err(bad(data_off, format!("zlib: {e}"))),
                }
            }
            DUMP_DH_COMPRESSED_LZO => {
                lzo1x_decompress(input, out).map_err(|e| bad(data_off, format!("lzo: {e}")))?
            }
            DUMP_DH_COMPRESSED_SNAPPY => {
                let n = snap::raw::decompress_len(input)
                    .map_err(|e| bad(data_off, format!("snappy: {e}")))?;
                if n != bs {
                    return Err(bad(
                        data_off,
                        format!("snappy page claims {n} bytes, block size is {bs}"),
                    ));
                }
                snap::raw::Decoder::new()
                    .decompress(input, out)
                    .map_err(|e| bad(data_off, format!("snappy: {e}")))?
            }
            DUMP_DH_COMPRESSED_ZSTD => {
                if zstd.is_none() {
                    *zstd = Some(
                        zstd::bulk::Decompressor::new()
                            .map_err(|e| bad(data_off, format!("zstd context: {e}")))?,
                    );
                }
                let z = zstd
                    .as_mut()
                    .ok_or_else(|| bad(data_off, "zstd context".into()))?;
                z.decompress_to_buffer(input, out)
                    .map_err(|e| bad(data_off, format!("zstd: {e}")))?
            }
            f => {
                return Err(bad(
                    desc_off,
                    format!("page descriptor flags {f:#x} name several codecs"),
                ));
            }
        };
        if produced != bs {
            return Err(bad(
                data_off,
                format!("page decompresses to {produced} bytes, block size is {bs}"),
            ));
        }
        Ok(())
    }

    /// Runs `f` on the cached contents of block `pfn`.
    fn with_block(&self, pfn: u64, pa: PhysAddr, f: impl FnOnce(&[u8])) -> Result<(), MemError> {
        let index = self.locate(pfn, pa)?;
        let bs = self.block_size as usize;
        let shard_i = (pfn % SHARDS as u64) as usize;
        let slot = ((pfn / SHARDS as u64) % WAYS as u64) as usize;
        let mut shard = self.cache[shard_i]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if shard.tags[slot] != pfn {
            shard.tags[slot] = u64::MAX;
            self.load(index, pa, &mut shard, slot)?;
            shard.tags[slot] = pfn;
        }
        f(&shard.pages[slot * bs..(slot + 1) * bs]);
        Ok(())
    }
}

impl PhysicalMemory for KdumpMemory {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        let mut done = 0usize;
        while done < buf.len() {
            let cur =
                pa.0.checked_add(done as u64)
                    .ok_or(MemError::NotInDump(PhysAddr(
                        pa.0.wrapping_add(done as u64),
                    )))?;
            let pfn = cur >> self.block_shift;
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

fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> DumpError {
    DumpError::Corrupt {
        path: path.to_path_buf(),
        format: "kdump-compressed",
        offset,
        reason: reason.into(),
    }
}

fn le_u32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

fn le_u64(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

fn cstr(b: &[u8]) -> String {
    let b = b.split(|&c| c == 0).next().unwrap_or(b);
    String::from_utf8_lossy(b).into_owned()
}

/// The architecture implied by a note blob's NT_PRSTATUS size (QEMU leaves
/// utsname empty): x86_64 `elf_prstatus` is 336 bytes, aarch64 392.
fn arch_from_notes(blob: &[u8]) -> Option<Arch> {
    let mut off = 0usize;
    while off.checked_add(12)? <= blob.len() {
        let namesz = le_u32(blob, off) as usize;
        let descsz = le_u32(blob, off + 4) as usize;
        let ntype = le_u32(blob, off + 8);
        let name_end = off + 12 + namesz;
        let name = blob.get(off + 12..name_end)?;
        if ntype == super::notes::NT_PRSTATUS && name.starts_with(b"CORE") {
            match descsz {
                336 => return Some(Arch::X86_64),
                392 => return Some(Arch::Aarch64),
                _ => {}
            }
        }
        let desc_start = (off + 12).checked_add(namesz.checked_add(3)? & !3)?;
        off = desc_start.checked_add(descsz.checked_add(3)? & !3)?;
    }
    None
}

fn vmcoreinfo_value<'a>(vmcoreinfo: &'a str, key: &str) -> Option<&'a str> {
    vmcoreinfo
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

/// Upper bound for note and VMCOREINFO blobs copied at open.
const MAX_BLOB: u64 = 64 << 20;

/// Opens a kdump-compressed file mapped at `map`.
pub fn open(path: &Path, map: memmap2::Mmap) -> Result<Dump, DumpError> {
    open_source(path, Source::Mapped(map))
}

/// Opens a kdump-compressed file whose bytes come from `src`.
pub fn open_source(path: &Path, src: Source) -> Result<Dump, DumpError> {
    let file_len = src.len();
    let hdr = src.to_vec(0, HEADER_LEN).map_err(|_| {
        corrupt(
            path,
            0,
            format!("file of {file_len} bytes is too short for the header"),
        )
    })?;
    let diskdump = match &hdr[..8] {
        s if s == SIGNATURE_KDUMP => false,
        s if s == SIGNATURE_DISKDUMP => true,
        s => {
            return Err(corrupt(
                path,
                0,
                format!("signature {s:02x?} is neither KDUMP nor DISKDUMP"),
            ));
        }
    };
    let version = le_u32(&hdr, H_VERSION) as i32;
    let uts: Vec<String> = (0..6)
        .map(|i| cstr(&hdr[H_UTSNAME + UTS_LEN * i..H_UTSNAME + UTS_LEN * (i + 1)]))
        .collect();
    let machine = uts[4].clone();
    let status = le_u32(&hdr, H_STATUS);
    let block_size = le_u32(&hdr, H_BLOCK_SIZE) as i32;
    let sub_hdr_size = le_u32(&hdr, H_SUB_HDR_SIZE) as i32;
    let bitmap_blocks = u64::from(le_u32(&hdr, H_BITMAP_BLOCKS));
    let max_mapnr_32 = u64::from(le_u32(&hdr, H_MAX_MAPNR));
    let nr_cpus = le_u32(&hdr, H_NR_CPUS) as i32;
    let mut quirks = Vec::new();

    if !diskdump && !(1..=6).contains(&version) {
        if version > 6 {
            quirks.push(format!(
                "header_version {version} is newer than 6; read as version 6"
            ));
        } else {
            return Err(corrupt(
                path,
                H_VERSION as u64,
                format!("header_version {version}"),
            ));
        }
    }
    if !(512..=(1 << 20)).contains(&block_size) || (block_size as u32).count_ones() != 1 {
        return Err(corrupt(
            path,
            H_BLOCK_SIZE as u64,
            format!("block_size {block_size} is not a power of two in 512..=1MiB"),
        ));
    }
    let bs = block_size as u64;
    if sub_hdr_size < 0 {
        return Err(corrupt(
            path,
            H_SUB_HDR_SIZE as u64,
            format!("sub_hdr_size {sub_hdr_size}"),
        ));
    }
    if bitmap_blocks == 0 {
        return Err(corrupt(path, H_BITMAP_BLOCKS as u64, "bitmap_blocks is 0"));
    }

    // Sub-header (kdump only).
    let sub = if diskdump || sub_hdr_size == 0 {
        vec![0u8; SUB_LEN]
    } else {
        src.to_vec(bs, SUB_LEN)
            .map_err(|_| corrupt(path, bs, "file ends inside the sub-header"))?
    };
    let v = version.max(0) as u32;
    let phys_base = le_u64(&sub, 0) as i64;
    let dump_level = le_u32(&sub, 8);
    let split = v >= 2 && le_u32(&sub, 12) != 0;
    let (mut start_pfn, mut end_pfn) = (le_u64(&sub, 16), le_u64(&sub, 24));
    let (off_vmcoreinfo, size_vmcoreinfo) = if v >= 3 {
        (le_u64(&sub, 32), le_u64(&sub, 40))
    } else {
        (0, 0)
    };
    let (off_note, size_note) = if v >= 4 {
        (le_u64(&sub, 48), le_u64(&sub, 56))
    } else {
        (0, 0)
    };
    let mut max_mapnr = max_mapnr_32;
    if v >= 6 && !diskdump {
        start_pfn = le_u64(&sub, 80);
        end_pfn = le_u64(&sub, 88);
        let m64 = le_u64(&sub, 96);
        if m64 != 0 {
            max_mapnr = m64;
        }
    }

    // Bitmaps: their size bounds everything allocated from here on.
    let bitmap_off = (1 + sub_hdr_size as u64) * bs;
    let bitmap_len = bitmap_blocks
        .checked_mul(bs)
        .filter(|&l| bitmap_off.checked_add(l).is_some_and(|e| e <= file_len) && l <= src.stored_len())
        .ok_or_else(|| {
            corrupt(
                path,
                H_BITMAP_BLOCKS as u64,
                format!("{bitmap_blocks} bitmap blocks at {bitmap_off:#x} run past the end of the file ({file_len:#x})"),
            )
        })?;
    // Two bitmaps (RAM, dumped) unless it is too small for two, as crash does.
    let two = bitmap_blocks >= max_mapnr.div_ceil(8).div_ceil(bs).saturating_mul(2);
    let one_len = if two { bitmap_len / 2 } else { bitmap_len };
    if max_mapnr > one_len * 8 {
        quirks.push(format!(
            "max_mapnr {max_mapnr} exceeds the bitmap's {} bits; clamped",
            one_len * 8
        ));
        max_mapnr = one_len * 8;
    }
    let bitmap = src
        .to_vec(bitmap_off, bitmap_len as usize)
        .map_err(|o| corrupt(path, o, "file ends inside the bitmaps"))?;
    let ram = RankedBitmap::new(&bitmap[..one_len as usize], max_mapnr);
    let dumped = if two {
        RankedBitmap::new(&bitmap[one_len as usize..], max_mapnr)
    } else {
        RankedBitmap::new(&bitmap[..one_len as usize], max_mapnr)
    };
    drop(bitmap);
    let desc_base = bitmap_off + bitmap_len;

    let (pfn_lo, pfn_hi) = if split {
        let lo = start_pfn.min(max_mapnr);
        let hi = end_pfn.clamp(lo, max_mapnr);
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

    // Notes and VMCOREINFO.
    let blob = |off: u64, size: u64, what: &str| -> Result<Option<Vec<u8>>, String> {
        if off == 0 || size == 0 {
            return Ok(None);
        }
        if size > MAX_BLOB {
            return Err(format!(
                "{what} of {size} bytes at {off:#x} is implausibly large; ignored"
            ));
        }
        src.to_vec(off, size as usize)
            .map(Some)
            .map_err(|_| format!("{what} at {off:#x} ({size} bytes) lies past the end of the file"))
    };
    let mut warnings = Vec::new();
    let note_blob = blob(off_note, size_note, "note blob").unwrap_or_else(|w| {
        warnings.push(w);
        None
    });
    let arch = match machine.as_str() {
        "x86_64" => Arch::X86_64,
        "aarch64" => Arch::Aarch64,
        m @ ("" | "Unknown") => match note_blob.as_deref().and_then(arch_from_notes) {
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
        notes.parse_into(b, arch, off_note);
    }
    if notes.vmcoreinfo.is_none() {
        match blob(off_vmcoreinfo, size_vmcoreinfo, "VMCOREINFO") {
            Ok(Some(b)) => notes.vmcoreinfo = Some(cstr(&b)),
            Ok(None) => {}
            Err(w) => warnings.push(w),
        }
    }
    quirks.append(&mut warnings);
    quirks.append(&mut notes.warnings);
    if nr_cpus > 0 && notes.cpus.len() != nr_cpus as usize && note_blob.is_some() {
        quirks.push(format!(
            "header says {nr_cpus} CPUs, the notes hold {} NT_PRSTATUS",
            notes.cpus.len()
        ));
    }

    // QEMU oddities.
    let qemu = uts.iter().all(|s| s.is_empty() || s == "Unknown");
    if qemu {
        quirks.push("written by QEMU dump-guest-memory (empty utsname, no timestamp)".into());
    }
    if let Some(vi) = &notes.vmcoreinfo {
        let pb =
            vmcoreinfo_value(vi, "NUMBER(phys_base)").and_then(|s| s.trim().parse::<i64>().ok());
        if let Some(pb) = pb.filter(|&pb| pb != phys_base) {
            quirks.push(format!(
                "sub-header phys_base {phys_base:#x} disagrees with VMCOREINFO NUMBER(phys_base) {pb:#x}; VMCOREINFO is used"
            ));
        }
        let ps = vmcoreinfo_value(vi, "PAGESIZE").and_then(|s| s.trim().parse::<u64>().ok());
        if let Some(ps) = ps.filter(|&ps| ps != bs) {
            quirks.push(format!(
                "block size {bs} differs from the kernel page size {ps}: pfns here are block numbers (pa / {bs})"
            ));
        }
    }

    let mut incomplete = None;
    if status & DUMP_DH_COMPRESSED_INCOMPLETE != 0 {
        incomplete = Some(
            "header marks the dump incomplete (makedumpfile could not write every page)"
                .to_string(),
        );
    }
    let desc_end = stored
        .checked_mul(PAGE_DESC_SIZE)
        .and_then(|l| l.checked_add(desc_base))
        .unwrap_or(u64::MAX);
    if desc_end > file_len {
        incomplete.get_or_insert_with(|| {
            format!(
                "file is truncated: descriptors for {stored} pages end at {desc_end:#x}, the file has {file_len:#x} bytes"
            )
        });
    }

    let cache = (0..SHARDS).map(|_| Mutex::new(Shard::new())).collect();
    let ranges = ram
        .runs()
        .into_iter()
        .filter_map(|(a, b)| {
            Some(PhysRange {
                start: PhysAddr(a.checked_mul(bs)?),
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
        desc_base,
        ranges,
        cache,
    };

    // Codec: what the header declares, checked against a sample of
    // descriptors (Debian's makedumpfile declares snappy/zstd but writes
    // raw pages when built without them).
    let sample: Vec<u64> = if stored == 0 {
        Vec::new()
    } else {
        (0..stored.min(64))
            .chain((0..64).map(|k| k * stored / 64))
            .chain(stored.saturating_sub(64)..stored)
            .collect()
    };
    let mut seen = 0u32;
    let mut raw_seen = false;
    // Page data cut off by truncation: makedumpfile writes pages in pfn
    // order, so the last descriptors point furthest into the file.
    let mut data_end = 0u64;
    for idx in sample {
        if let Ok((_, d)) = mem.read_desc(idx, PhysAddr(0)) {
            if d.flags & CODEC_MASK == 0 {
                raw_seen = true;
            }
            seen |= d.flags & CODEC_MASK;
            if let Ok(off) = u64::try_from(d.offset) {
                data_end = data_end.max(off.saturating_add(u64::from(d.size)));
            }
        }
    }
    if data_end > file_len {
        incomplete.get_or_insert_with(|| {
            format!(
                "file is truncated: page data runs to {data_end:#x}, the file has {file_len:#x} bytes (pages stored past the end cannot be read)"
            )
        });
    }
    let names = [
        (DUMP_DH_COMPRESSED_ZLIB, "zlib"),
        (DUMP_DH_COMPRESSED_LZO, "lzo"),
        (DUMP_DH_COMPRESSED_SNAPPY, "snappy"),
        (DUMP_DH_COMPRESSED_ZSTD, "zstd"),
    ];
    let list = |bits: u32| -> Vec<&str> {
        names
            .iter()
            .filter(|(b, _)| bits & b != 0)
            .map(|(_, n)| *n)
            .collect()
    };
    let declared = status & CODEC_MASK;
    let codec_bits = if seen != 0 { seen } else { declared };
    let codec = (codec_bits != 0).then(|| list(codec_bits).join("+"));
    if declared & !seen != 0 && raw_seen {
        quirks.push(format!(
            "header declares {} but the sampled pages are stored uncompressed",
            list(declared & !seen).join("+")
        ));
    }
    if status & DUMP_DH_EXCLUDED_VMEMMAP != 0 {
        quirks.push("unused vmemmap pages were excluded (status 0x10)".into());
    }

    let sig = if diskdump {
        "diskdump"
    } else {
        "kdump-compressed"
    };
    let format = FormatInfo {
        name: format!("{sig} v{version}"),
        codec,
        dump_level: Some(dump_level),
        block_size: Some(bs),
        excluded_pages: Some(ram_pages.saturating_sub(stored)),
        stored_pages: Some(stored),
        quirks,
        incomplete,
        machine: (!machine.is_empty()).then_some(machine),
        split_pfns: split.then_some((pfn_lo, pfn_hi)),
    };
    Ok(Dump {
        path: path.to_path_buf(),
        arch,
        format,
        memory: Box::new(mem),
        notes,
    })
}

#[cfg(test)]
mod tests;
