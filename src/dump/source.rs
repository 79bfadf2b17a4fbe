//! Where a dump file's bytes come from: the mapped file, or the file a
//! flattened stream (`makedumpfile -F`) reassembles to. kdump.rs and elf.rs
//! read through it, so both formats work flattened too.

use super::flat::FlatFile;

/// Where the bytes of a dump file come from.
///
/// `Mapped` is the file itself; `Flat` is the reassembled file of a
/// flattened stream, served from its record index without copying. Readers
/// ask for byte ranges with [`Source::slice`], which borrows from the
/// mapping when the range is contiguous in it (always for `Mapped`, almost
/// always for `Flat`, where a range can straddle two records) and otherwise
/// assembles it in a caller-owned scratch buffer that is reused, so the hot
/// path does not allocate. An enum rather than a trait object: two variants,
/// no dynamic dispatch, and the `Mapped` case stays a plain slice index.
pub enum Source {
    Mapped(memmap2::Mmap),
    Flat(FlatFile),
}

impl Source {
    /// Length of the (reassembled) file.
    pub fn len(&self) -> u64 {
        match self {
            Source::Mapped(m) => m.len() as u64,
            Source::Flat(f) => f.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes actually stored (the mapping's length). A flattened stream's
    /// reassembled length comes from its record offsets and can be far
    /// larger; whatever is copied at open must fit in this.
    pub fn stored_len(&self) -> u64 {
        match self {
            Source::Mapped(m) => m.len() as u64,
            Source::Flat(f) => f.stored_len(),
        }
    }

    /// Bytes `[off, off+len)`; `Err` holds the first offset that is missing
    /// (at or past the end of the file).
    pub fn slice<'a>(
        &'a self,
        off: u64,
        len: usize,
        scratch: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], u64> {
        match self {
            Source::Mapped(m) => usize::try_from(off)
                .ok()
                .and_then(|o| m.get(o..o.checked_add(len)?))
                .ok_or_else(|| off.max(m.len() as u64)),
            Source::Flat(f) => f.slice(off, len, scratch),
        }
    }

    /// Copies `[off, off+out.len())` into `out`.
    pub fn read_at(&self, off: u64, out: &mut [u8]) -> Result<(), u64> {
        match self {
            Source::Mapped(_) => {
                let mut unused = Vec::new();
                let s = self.slice(off, out.len(), &mut unused)?;
                out.copy_from_slice(s);
                Ok(())
            }
            Source::Flat(f) => f.read_at(off, out),
        }
    }

    /// An owned copy of `[off, off+len)`, for header-sized data at open.
    /// The caller has checked `len` against [`Source::len`].
    pub fn to_vec(&self, off: u64, len: usize) -> Result<Vec<u8>, u64> {
        let end = off.checked_add(len as u64).ok_or(off)?;
        if end > self.len() {
            return Err(off.max(self.len()));
        }
        let mut v = vec![0u8; len];
        self.read_at(off, &mut v)?;
        Ok(v)
    }
}
