//! The headers of a kdump-compressed file, parsed into types and checked:
//! `disk_dump_header` (block 0), `kdump_sub_header` (block 1..), and the
//! layout they imply (where the bitmaps and the page descriptors are).
//! Everything here is untrusted: sizes are checked against the file before
//! anything is allocated from them.

use std::path::Path;

use super::{DumpError, SIGNATURE_DISKDUMP, SIGNATURE_KDUMP, Source};

const H_VERSION: usize = 8;
const H_UTSNAME: usize = 12;
const UTS_LEN: usize = 65;
/// Where `status` is in `disk_dump_header`: after the utsname comes a
/// `struct timeval` (two longs), at 408 (16 bytes) with 64-bit longs, at
/// 404 (8 bytes) with 32-bit ones. The int fields that follow are
/// `status, block_size, sub_hdr_size, bitmap_blocks, max_mapnr,
/// total_ram_blocks, device_blocks, written_blocks, current_cpu, nr_cpus`.
const H_STATUS_64: usize = 424;
const H_STATUS_32: usize = 412;
const H_BLOCK_SIZE: usize = 4;
const H_SUB_HDR_SIZE: usize = 8;
const H_BITMAP_BLOCKS: usize = 12;
const H_MAX_MAPNR: usize = 16;
const H_NR_CPUS: usize = 36;
const HEADER_LEN: usize = 464;
/// `struct kdump_sub_header` (v6) is 104 bytes with 64-bit longs, at most
/// 96 with 32-bit ones.
const SUB_LEN: usize = 104;

/// Offsets in `kdump_sub_header` of phys_base, dump_level, split,
/// start_pfn, end_pfn, offset_vmcoreinfo, offset_note, start_pfn_64 (then
/// end_pfn_64 and max_mapnr_64), and the width of its `unsigned long`s.
/// Each blob's size (`unsigned long`) follows its offset (an `off_t`,
/// always 64-bit).
struct SubLayout {
    long: usize,
    dump_level: usize,
    split: usize,
    start_pfn: usize,
    end_pfn: usize,
    vmcoreinfo: usize,
    note: usize,
    pfn_64: usize,
}

/// LP64 (x86_64, arm64).
const SUB_64: SubLayout = SubLayout {
    long: 8,
    dump_level: 8,
    split: 12,
    start_pfn: 16,
    end_pfn: 24,
    vmcoreinfo: 32,
    note: 48,
    pfn_64: 80,
};
/// 32-bit longs with 64-bit members 4-byte aligned: i386's makedumpfile,
/// and QEMU for every 32-bit guest (its KdumpSubHeader32 is packed).
const SUB_32_PACKED: SubLayout = SubLayout {
    long: 4,
    dump_level: 4,
    split: 8,
    start_pfn: 12,
    end_pfn: 16,
    vmcoreinfo: 20,
    note: 32,
    pfn_64: 56,
};
/// 32-bit longs with 64-bit members 8-byte aligned: makedumpfile built for
/// 32-bit ARM (AAPCS).
const SUB_32_ARM: SubLayout = SubLayout {
    long: 4,
    dump_level: 4,
    split: 8,
    start_pfn: 12,
    end_pfn: 16,
    vmcoreinfo: 24,
    note: 40,
    pfn_64: 72,
};

fn valid_block_size(block_size: i32) -> bool {
    (512..=(1 << 20)).contains(&block_size) && (block_size as u32).count_ones() == 1
}

pub(super) fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> DumpError {
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

pub(super) fn cstr(b: &[u8]) -> String {
    let b = b.split(|&c| c == 0).next().unwrap_or(b);
    String::from_utf8_lossy(b).into_owned()
}

/// `disk_dump_header`, checked.
#[derive(Clone, Debug)]
pub(super) struct Header {
    /// The older `DISKDUMP` signature (no sub-header).
    pub diskdump: bool,
    pub version: i32,
    /// utsname: sysname, nodename, release, version, machine, domainname.
    pub uts: Vec<String>,
    pub status: u32,
    /// A power of two in 512..=1 MiB.
    pub block_size: u64,
    pub sub_hdr_blocks: u64,
    /// Non-zero.
    pub bitmap_blocks: u64,
    pub max_mapnr_32: u64,
    pub nr_cpus: i32,
    /// Written by a 32-bit kernel's tools (or QEMU for a 32-bit guest):
    /// 32-bit `long`s in both headers.
    pub long32: bool,
}

impl Header {
    /// Reads and checks block 0; `quirks` gets what is odd but readable.
    pub fn read(path: &Path, src: &Source, quirks: &mut Vec<String>) -> Result<Header, DumpError> {
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
        // The LP64 layout unless only the 32-bit one has a block size
        // (the header does not name its word size)
        let at = |status: usize| le_u32(&hdr, status + H_BLOCK_SIZE) as i32;
        let long32 = !valid_block_size(at(H_STATUS_64)) && valid_block_size(at(H_STATUS_32));
        let st = if long32 { H_STATUS_32 } else { H_STATUS_64 };
        let block_size = at(st);
        if !valid_block_size(block_size) {
            return Err(corrupt(
                path,
                (st + H_BLOCK_SIZE) as u64,
                format!("block_size {block_size} is not a power of two in 512..=1MiB"),
            ));
        }
        let sub_hdr_size = le_u32(&hdr, st + H_SUB_HDR_SIZE) as i32;
        if sub_hdr_size < 0 {
            return Err(corrupt(
                path,
                (st + H_SUB_HDR_SIZE) as u64,
                format!("sub_hdr_size {sub_hdr_size}"),
            ));
        }
        let bitmap_blocks = u64::from(le_u32(&hdr, st + H_BITMAP_BLOCKS));
        if bitmap_blocks == 0 {
            return Err(corrupt(
                path,
                (st + H_BITMAP_BLOCKS) as u64,
                "bitmap_blocks is 0",
            ));
        }
        Ok(Header {
            diskdump,
            version,
            uts: (0..6)
                .map(|i| cstr(&hdr[H_UTSNAME + UTS_LEN * i..H_UTSNAME + UTS_LEN * (i + 1)]))
                .collect(),
            status: le_u32(&hdr, st),
            block_size: block_size as u64,
            sub_hdr_blocks: sub_hdr_size as u64,
            bitmap_blocks,
            max_mapnr_32: u64::from(le_u32(&hdr, st + H_MAX_MAPNR)),
            nr_cpus: le_u32(&hdr, st + H_NR_CPUS) as i32,
            long32,
        })
    }

    /// utsname machine (empty when QEMU wrote the file).
    pub fn machine(&self) -> &str {
        &self.uts[4]
    }

    /// QEMU dump-guest-memory leaves utsname empty (or "Unknown").
    pub fn written_by_qemu(&self) -> bool {
        self.uts.iter().all(|s| s.is_empty() || s == "Unknown")
    }
}

/// Where a blob (notes, VMCOREINFO) lies in the file.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Blob {
    pub offset: u64,
    pub size: u64,
}

/// `kdump_sub_header`, as far as the header's version defines it.
#[derive(Clone, Debug, Default)]
pub(super) struct SubHeader {
    pub phys_base: i64,
    pub dump_level: u32,
    /// One part of a `makedumpfile --split` dump.
    pub split: bool,
    pub start_pfn: u64,
    pub end_pfn: u64,
    pub vmcoreinfo: Blob,
    pub notes: Blob,
    /// The 64-bit max_mapnr of version 6 (0: use the header's).
    pub max_mapnr_64: u64,
}

impl SubHeader {
    pub fn read(path: &Path, src: &Source, h: &Header) -> Result<SubHeader, DumpError> {
        if h.diskdump || h.sub_hdr_blocks == 0 {
            return Ok(SubHeader::default());
        }
        let bs = h.block_size;
        let sub = src
            .to_vec(bs, SUB_LEN)
            .map_err(|_| corrupt(path, bs, "file ends inside the sub-header"))?;
        let v = h.version.max(0) as u32;
        let l = match (h.long32, h.machine().starts_with("arm")) {
            (false, _) => &SUB_64,
            (true, true) => &SUB_32_ARM,
            (true, false) => &SUB_32_PACKED,
        };
        let long = |off: usize| match l.long {
            4 => u64::from(le_u32(&sub, off)),
            _ => le_u64(&sub, off),
        };
        let blob = |off: usize, min_version: u32| {
            if v >= min_version {
                Blob {
                    offset: le_u64(&sub, off),
                    size: long(off + 8),
                }
            } else {
                Blob::default()
            }
        };
        let phys_base = match l.long {
            4 => le_u32(&sub, 0) as i32 as i64,
            _ => le_u64(&sub, 0) as i64,
        };
        let mut s = SubHeader {
            phys_base,
            dump_level: le_u32(&sub, l.dump_level),
            split: v >= 2 && le_u32(&sub, l.split) != 0,
            start_pfn: long(l.start_pfn),
            end_pfn: long(l.end_pfn),
            vmcoreinfo: blob(l.vmcoreinfo, 3),
            notes: blob(l.note, 4),
            max_mapnr_64: 0,
        };
        if v >= 6 {
            s.start_pfn = le_u64(&sub, l.pfn_64);
            s.end_pfn = le_u64(&sub, l.pfn_64 + 8);
            s.max_mapnr_64 = le_u64(&sub, l.pfn_64 + 16);
        }
        Ok(s)
    }
}

/// Where the bitmaps and descriptors are, and how many pfns they cover.
#[derive(Clone, Debug)]
pub(super) struct Layout {
    pub bitmap_offset: u64,
    pub bitmap_len: u64,
    /// Two bitmaps (RAM, dumped), else one serving as both.
    pub two_bitmaps: bool,
    /// Bytes of one bitmap.
    pub one_len: u64,
    /// Pfns covered, clamped to what the bitmap can describe.
    pub max_mapnr: u64,
    /// File offset of descriptor 0.
    pub desc_base: u64,
}

impl Layout {
    pub fn new(
        path: &Path,
        src: &Source,
        h: &Header,
        sub: &SubHeader,
        quirks: &mut Vec<String>,
    ) -> Result<Layout, DumpError> {
        let file_len = src.len();
        let bs = h.block_size;
        let st = if h.long32 { H_STATUS_32 } else { H_STATUS_64 };
        let past_end = |what: String| corrupt(path, (st + H_BITMAP_BLOCKS) as u64, what);
        let bitmap_offset = h
            .sub_hdr_blocks
            .checked_add(1)
            .and_then(|b| b.checked_mul(bs))
            .ok_or_else(|| past_end(format!("sub_hdr_size {}", h.sub_hdr_blocks)))?;
        let blocks = h.bitmap_blocks;
        // The bitmaps' size bounds everything allocated from here on.
        let bitmap_len = blocks
            .checked_mul(bs)
            .filter(|&l| {
                bitmap_offset.checked_add(l).is_some_and(|e| e <= file_len)
                    && l <= src.stored_len()
            })
            .ok_or_else(|| {
                past_end(format!(
                    "{blocks} bitmap blocks at {bitmap_offset:#x} run past the end of the file ({file_len:#x})"
                ))
            })?;
        let mut max_mapnr = match sub.max_mapnr_64 {
            0 => h.max_mapnr_32,
            m => m,
        };
        // Two bitmaps (RAM, dumped) unless it is too small for two, as crash does.
        let two_bitmaps = blocks >= max_mapnr.div_ceil(8).div_ceil(bs).saturating_mul(2);
        let one_len = if two_bitmaps {
            bitmap_len / 2
        } else {
            bitmap_len
        };
        let bits = one_len.saturating_mul(8);
        if max_mapnr > bits {
            quirks.push(format!(
                "max_mapnr {max_mapnr} exceeds the bitmap's {bits} bits; clamped"
            ));
            max_mapnr = bits;
        }
        Ok(Layout {
            bitmap_offset,
            bitmap_len,
            two_bitmaps,
            one_len,
            max_mapnr,
            // bitmap_offset + bitmap_len <= file_len was checked above
            desc_base: bitmap_offset + bitmap_len,
        })
    }
}
