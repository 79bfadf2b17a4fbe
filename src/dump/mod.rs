//! Physical memory sources: one file per dump format, one trait.
//!
//! Everything above this layer sees a dump as [`Dump`]: a [`PhysicalMemory`]
//! plus the CPU notes and VMCOREINFO the file carried. Formats are sniffed by
//! magic in [`open`]; adding a format is one file here and one match arm there.

pub mod elf;
pub mod flat;
pub mod info_registers;
pub mod kcore;
pub mod kdump;
pub mod live;
pub mod notes;
pub mod raw;
pub mod source;
pub mod split;
pub mod vmcoreinfo;

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::addr::{Arch, PhysAddr};
pub use notes::{CpuNote, Notes, QemuCpuState};

/// Why a physical read failed. Every variant names the address; file-level
/// problems also name the file offset, so a user can look at the dump itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemError {
    #[error("physical address {0} is not in the dump (outside every memory range it holds)")]
    NotInDump(PhysAddr),
    #[error("physical address {0} was excluded from the dump (filtered out by its dump level)")]
    Excluded(PhysAddr),
    #[error(
        "physical address {pa}: the dump file is truncated (page data at file offset {offset:#x} is missing)"
    )]
    Truncated { pa: PhysAddr, offset: u64 },
    #[error("physical address {pa}: corrupt page data at file offset {offset:#x}: {reason}")]
    Corrupt {
        pa: PhysAddr,
        offset: u64,
        reason: String,
    },
    /// Reading the file failed (the running kernel's kcore: EIO, EFAULT).
    #[error("physical address {pa}: reading file offset {offset:#x} failed: {reason}")]
    Unreadable {
        pa: PhysAddr,
        offset: u64,
        reason: String,
    },
    /// A read whose end lies past the top of the physical address space
    /// (a corrupt address from a page-table entry or a header).
    #[error(
        "physical address {pa}: a read of {len:#x} bytes runs past the top of the physical address space"
    )]
    PastTop { pa: PhysAddr, len: u64 },
}

impl MemError {
    /// The physical address the error is about.
    pub fn addr(&self) -> PhysAddr {
        match self {
            MemError::NotInDump(pa) | MemError::Excluded(pa) => *pa,
            MemError::Truncated { pa, .. }
            | MemError::Corrupt { pa, .. }
            | MemError::Unreadable { pa, .. } => *pa,
            MemError::PastTop { pa, .. } => *pa,
        }
    }
}

/// A problem with the dump file as a whole (found while opening it).
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a dump this tool reads ({reason})")]
    UnknownFormat { path: PathBuf, reason: String },
    #[error("{path}: corrupt {format} dump at file offset {offset:#x}: {reason}")]
    Corrupt {
        path: PathBuf,
        format: &'static str,
        offset: u64,
        reason: String,
    },
}

/// One contiguous range of guest-physical memory described by the dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysRange {
    pub start: PhysAddr,
    pub len: u64,
}

impl PhysRange {
    pub fn end(&self) -> u64 {
        self.start.0.saturating_add(self.len)
    }
}

/// Guest-physical memory as stored in a dump. Implementations are shared
/// between connections, so they must be `Sync`; caches use interior mutability.
pub trait PhysicalMemory: Send + Sync {
    /// Copies `buf.len()` bytes starting at `pa` into `buf`. Fails, naming the
    /// first unreadable address, if any byte is not in the dump: excluded
    /// pages and holes are errors, never silent zeros.
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), MemError>;

    /// The physical ranges the dump describes (present or filtered out).
    fn ranges(&self) -> &[PhysRange];
}

/// The address of byte `done` of a `len`-byte read at `pa`, for
/// [`PhysicalMemory::read_phys`] loops: a read that would run past the top
/// of the physical address space is an error naming where it started,
/// never a wrap to address 0.
pub fn read_cursor(pa: PhysAddr, done: usize, len: usize) -> Result<PhysAddr, MemError> {
    pa.checked_add(done as u64).ok_or(MemError::PastTop {
        pa,
        len: len as u64,
    })
}

/// Facts about the container format, for `corestub info`.
#[derive(Clone, Debug, Default)]
pub struct FormatInfo {
    /// e.g. "ELF vmcore", "kdump-compressed v6", "flattened kdump-compressed".
    pub name: String,
    /// Page codec(s) seen or declared ("zlib", "lzo", ...), if compressed.
    pub codec: Option<String>,
    pub dump_level: Option<u32>,
    pub block_size: Option<u64>,
    /// Pages the file records as excluded (filtered), where the format knows.
    pub excluded_pages: Option<u64>,
    /// Pages the file stores.
    pub stored_pages: Option<u64>,
    /// Format quirks that were detected and corrected.
    pub quirks: Vec<String>,
    /// Set when the file is truncated or damaged but still partly readable.
    pub incomplete: Option<String>,
    /// Machine name from the format header (utsname), if any.
    pub machine: Option<String>,
    /// `makedumpfile --split`: the pfn range `start..end` this file holds.
    pub split_pfns: Option<(u64, u64)>,
}

/// An opened dump: physical memory plus the notes that came with it.
pub struct Dump {
    pub path: PathBuf,
    pub arch: Arch,
    pub format: FormatInfo,
    pub memory: Box<dyn PhysicalMemory>,
    pub notes: Notes,
}

impl fmt::Debug for Dump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dump")
            .field("path", &self.path)
            .field("arch", &self.arch)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// Maps `path` read-only. The dump is evidence: it is never opened for writing.
pub fn map_readonly(path: &Path) -> Result<memmap2::Mmap, DumpError> {
    let io = |source| DumpError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    // SAFETY: the mapping is read-only (PROT_READ). Another process truncating
    // the file underneath us could fault; dumps are not modified while read.
    unsafe { memmap2::MmapOptions::new().map(&file) }.map_err(io)
}

/// Opens a dump file of any supported format, chosen by its magic bytes.
pub fn open(path: &Path) -> Result<Dump, DumpError> {
    // the running kernel (/proc/kcore) cannot be mapped: read with pread
    if kcore::is_proc_kcore(path) {
        return kcore::open(path);
    }
    open_map(path, map_readonly(path)?)
}

/// Opens one dump, or the parts of a `makedumpfile --split` dump given
/// together (in any order), as one.
pub fn open_parts(paths: &[PathBuf]) -> Result<Dump, DumpError> {
    match paths {
        [one] => open(one),
        _ => split::join(paths.iter().map(|p| open(p)).collect::<Result<_, _>>()?),
    }
}

/// Opens a dump held in memory (a read-only anonymous copy of `bytes`),
/// exactly as [`open`] would the same bytes in a file called `name`. For
/// fuzzing and tests of hostile input.
pub fn open_bytes(name: &Path, bytes: &[u8]) -> Result<Dump, DumpError> {
    let io = |source| DumpError::Io {
        path: name.to_path_buf(),
        source,
    };
    if bytes.is_empty() {
        return Err(DumpError::UnknownFormat {
            path: name.to_path_buf(),
            reason: "the file is empty".into(),
        });
    }
    let mut m = memmap2::MmapMut::map_anon(bytes.len()).map_err(io)?;
    m.copy_from_slice(bytes);
    let m = m.make_read_only().map_err(io)?;
    open_map(name, m)
}

fn open_map(path: &Path, map: memmap2::Mmap) -> Result<Dump, DumpError> {
    let magic = map.get(..16).unwrap_or(&map[..]);
    if magic.starts_with(b"\x7fELF") {
        elf::open(path, map)
    } else if magic.starts_with(kdump::SIGNATURE_KDUMP)
        || magic.starts_with(kdump::SIGNATURE_DISKDUMP)
    {
        kdump::open(path, map)
    } else if magic.starts_with(flat::SIGNATURE) {
        flat::open(path, map)
    } else {
        Err(DumpError::UnknownFormat {
            path: path.to_path_buf(),
            reason: format!(
                "first bytes {:02x?} match no ELF, kdump-compressed or flattened header",
                &magic[..magic.len().min(8)]
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_cursor_refuses_to_wrap() {
        let pa = PhysAddr(u64::MAX - 3);
        assert_eq!(read_cursor(pa, 3, 8), Ok(PhysAddr(u64::MAX)));
        let e = read_cursor(pa, 4, 8).unwrap_err();
        assert_eq!(e, MemError::PastTop { pa, len: 8 });
        assert_eq!(e.addr(), pa);
    }
}
