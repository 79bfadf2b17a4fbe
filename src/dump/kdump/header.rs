//! The headers of a kdump-compressed file, parsed into types and checked:
//! `disk_dump_header` (block 0), `kdump_sub_header` (block 1..), and the
//! layout they imply (where the bitmaps and the page descriptors are).
//! Everything here is untrusted: sizes are checked against the file before
//! anything is allocated from them.

use std::path::Path;

use super::{DumpError, SIGNATURE_DISKDUMP, SIGNATURE_KDUMP, Source};

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
        let block_size = le_u32(&hdr, H_BLOCK_SIZE) as i32;
        if !(512..=(1 << 20)).contains(&block_size) || (block_size as u32).count_ones() != 1 {
            return Err(corrupt(
                path,
                H_BLOCK_SIZE as u64,
                format!("block_size {block_size} is not a power of two in 512..=1MiB"),
            ));
        }
        let sub_hdr_size = le_u32(&hdr, H_SUB_HDR_SIZE) as i32;
        if sub_hdr_size < 0 {
            return Err(corrupt(
                path,
                H_SUB_HDR_SIZE as u64,
                format!("sub_hdr_size {sub_hdr_size}"),
            ));
        }
        let bitmap_blocks = u64::from(le_u32(&hdr, H_BITMAP_BLOCKS));
        if bitmap_blocks == 0 {
            return Err(corrupt(path, H_BITMAP_BLOCKS as u64, "bitmap_blocks is 0"));
        }
        Ok(Header {
            diskdump,
            version,
            uts: (0..6)
                .map(|i| cstr(&hdr[H_UTSNAME + UTS_LEN * i..H_UTSNAME + UTS_LEN * (i + 1)]))
                .collect(),
            status: le_u32(&hdr, H_STATUS),
            block_size: block_size as u64,
            sub_hdr_blocks: sub_hdr_size as u64,
            bitmap_blocks,
            max_mapnr_32: u64::from(le_u32(&hdr, H_MAX_MAPNR)),
            nr_cpus: le_u32(&hdr, H_NR_CPUS) as i32,
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
        let blob = |off: usize, min_version: u32| {
            if v >= min_version {
                Blob {
                    offset: le_u64(&sub, off),
                    size: le_u64(&sub, off + 8),
                }
            } else {
                Blob::default()
            }
        };
        let mut s = SubHeader {
            phys_base: le_u64(&sub, 0) as i64,
            dump_level: le_u32(&sub, 8),
            split: v >= 2 && le_u32(&sub, 12) != 0,
            start_pfn: le_u64(&sub, 16),
            end_pfn: le_u64(&sub, 24),
            vmcoreinfo: blob(32, 3),
            notes: blob(48, 4),
            max_mapnr_64: 0,
        };
        if v >= 6 {
            s.start_pfn = le_u64(&sub, 80);
            s.end_pfn = le_u64(&sub, 88);
            s.max_mapnr_64 = le_u64(&sub, 96);
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
        let past_end = |what: String| corrupt(path, H_BITMAP_BLOCKS as u64, what);
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
