//! The page cache of a kdump-compressed file: a few sharded, direct-mapped
//! slots of decompressed blocks whose buffers and decompressor state are
//! reused, so a read allocates nothing once the cache is warm.

use super::lzo::lzo1x_decompress;
use super::{
    CODEC_MASK, DUMP_DH_COMPRESSED_LZO, DUMP_DH_COMPRESSED_SNAPPY, DUMP_DH_COMPRESSED_ZLIB,
    DUMP_DH_COMPRESSED_ZSTD, KdumpMemory, MemError, PhysAddr,
};

pub(super) const SHARDS: usize = 16;
// 16 x 32 slots: 2 MiB of 4 KiB pages (32 MiB with QEMU's 64 KiB arm64 blocks).
const WAYS: usize = 32;

/// One shard of the page cache: `WAYS` direct-mapped slots plus the
/// decompressor state and scratch buffer reused by every miss.
pub(super) struct Shard {
    tags: [u64; WAYS],
    /// `WAYS * block_size` bytes, allocated on the shard's first miss.
    pages: Vec<u8>,
    scratch: Vec<u8>,
    zlib: Option<flate2::Decompress>,
    zstd: Option<zstd::bulk::Decompressor<'static>>,
}

impl Shard {
    pub(super) fn new() -> Shard {
        Shard {
            tags: [u64::MAX; WAYS],
            pages: Vec::new(),
            scratch: Vec::new(),
            zlib: None,
            zstd: None,
        }
    }
}

impl KdumpMemory {
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
    pub(super) fn with_block(
        &self,
        pfn: u64,
        pa: PhysAddr,
        f: impl FnOnce(&[u8]),
    ) -> Result<(), MemError> {
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
