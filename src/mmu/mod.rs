//! Virtual-to-physical translation: one file per architecture's page-table
//! walker, all behind [`Paging`]. Walkers read page-table pages through
//! [`PhysicalMemory`] and never trust them: every walk is bounded by the
//! number of levels, and every entry that points outside the dump is an error.

pub mod aarch64;
pub mod arm;
pub mod cache;
pub mod i386;
pub mod x86_64;

use crate::addr::{PageTableRoot, PhysAddr, VirtAddr};
use crate::dump::{MemError, PhysicalMemory};

/// Which tables a read goes through. x86_64 keeps the kernel half inside
/// every process's table, so `user` is simply "the root to use"; arm64 has
/// separate TTBR0 (user) and TTBR1 (kernel) roots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddressSpace {
    /// Kernel root (x86_64 init_top_pgt / CR3; arm64 TTBR1 = swapper_pg_dir).
    pub kernel: PageTableRoot,
    /// User root (a task's mm->pgd / CR3 / TTBR0), if known.
    pub user: Option<PageTableRoot>,
}

/// A successful translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    pub pa: PhysAddr,
    /// Size of the page or block that maps the address (4 KiB, 2 MiB, ...).
    pub page_size: u64,
}

impl Translation {
    /// The translation of `va` through a page (or block) of 2^`shift` bytes
    /// at `base`; `base`'s bits below the page size are cleared here
    /// (attribute and reserved bits of large-page entries).
    pub(crate) fn through_page(base: u64, shift: u32, va: VirtAddr) -> Translation {
        let page_size = 1u64 << shift;
        Translation {
            pa: PhysAddr((base & !(page_size - 1)) | (va.0 & (page_size - 1))),
            page_size,
        }
    }

    /// Bytes from the address to the end of its page: how far one
    /// translation can be reused.
    pub fn bytes_left_in_page(&self) -> u64 {
        self.page_size - (self.pa.0 & (self.page_size - 1))
    }
}

/// One level of a walk, for crash-style `vtop` output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalkStep {
    /// Level name as crash prints it ("PGD", "P4D", "PUD", "PMD", "PTE").
    pub level: &'static str,
    /// Physical address of the entry that was read.
    pub entry_pa: PhysAddr,
    /// Raw entry value (upper attribute bits included).
    pub entry: u64,
}

/// Why a translation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    #[error("virtual address {va} is not canonical for this paging mode")]
    NonCanonical { va: VirtAddr },
    #[error(
        "virtual address {va} is not mapped ({level} entry {entry:#x} at {entry_pa} is not present)"
    )]
    NotMapped {
        va: VirtAddr,
        level: &'static str,
        entry_pa: PhysAddr,
        entry: u64,
    },
    #[error("virtual address {va}: no page table for this half of the address space")]
    NoRoot { va: VirtAddr },
    #[error("virtual address {va}: {level} entry {entry:#x} at {entry_pa} is malformed: {reason}")]
    BadEntry {
        va: VirtAddr,
        level: &'static str,
        entry_pa: PhysAddr,
        entry: u64,
        reason: &'static str,
    },
    #[error("virtual address {va}: page table unreadable: {source}")]
    TableUnreadable { va: VirtAddr, source: MemError },
}

impl TranslateError {
    /// `va`'s walk met an entry that maps nothing.
    pub(crate) fn not_mapped(
        va: VirtAddr,
        level: &'static str,
        entry_pa: PhysAddr,
        entry: u64,
    ) -> TranslateError {
        TranslateError::NotMapped {
            va,
            level,
            entry_pa,
            entry,
        }
    }

    pub fn va(&self) -> VirtAddr {
        match self {
            TranslateError::NonCanonical { va }
            | TranslateError::NotMapped { va, .. }
            | TranslateError::NoRoot { va }
            | TranslateError::BadEntry { va, .. }
            | TranslateError::TableUnreadable { va, .. } => *va,
        }
    }
}

/// Where a walk records each entry it reads (for `vtop`); `None` on the hot
/// path, which allocates nothing.
pub(crate) type Trace<'a, 'b> = &'a mut Option<&'b mut Vec<WalkStep>>;

/// How wide a page-table entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EntryWidth {
    /// i386 without PAE, arm short descriptors.
    Bits32,
    Bits64,
}

/// Reads the little-endian entry of `level` at `entry_pa` (on `va`'s walk)
/// and records it in `trace`: the one entry read of every walker.
pub(crate) fn read_traced(
    mem: &dyn PhysicalMemory,
    va: VirtAddr,
    level: &'static str,
    entry_pa: PhysAddr,
    width: EntryWidth,
    trace: Trace,
) -> Result<u64, TranslateError> {
    let mut b = [0u8; 8];
    let bytes = match width {
        EntryWidth::Bits32 => &mut b[..4],
        EntryWidth::Bits64 => &mut b[..],
    };
    mem.read_phys(entry_pa, bytes)
        .map_err(|source| TranslateError::TableUnreadable { va, source })?;
    let entry = u64::from_le_bytes(b);
    if let Some(t) = trace.as_deref_mut() {
        t.push(WalkStep {
            level,
            entry_pa,
            entry,
        });
    }
    Ok(entry)
}

/// The paging configuration of the dumped machine.
#[derive(Clone, Debug)]
pub enum Paging {
    X86_64(x86_64::X86Paging),
    Aarch64(aarch64::Arm64Paging),
    I386(i386::I386Paging),
    Arm(arm::ArmPaging),
}

impl Paging {
    /// Translates `va`. When `trace` is given, each level's entry is appended
    /// (for `vtop`); the hot path passes `None` and allocates nothing.
    pub fn translate(
        &self,
        mem: &dyn PhysicalMemory,
        space: &AddressSpace,
        va: VirtAddr,
        trace: Option<&mut Vec<WalkStep>>,
    ) -> Result<Translation, TranslateError> {
        match self {
            Paging::X86_64(p) => p.translate(mem, space, va, trace),
            Paging::Aarch64(p) => p.translate(mem, space, va, trace),
            Paging::I386(p) => p.translate(mem, space, va, trace),
            Paging::Arm(p) => p.translate(mem, space, va, trace),
        }
    }

    /// True if `va` belongs to the user half (translated with `space.user`).
    pub fn is_user(&self, va: VirtAddr) -> bool {
        match self {
            Paging::X86_64(p) => p.is_user(va),
            Paging::Aarch64(p) => p.is_user(va),
            Paging::I386(p) => p.is_user(va),
            Paging::Arm(p) => p.is_user(va),
        }
    }

    pub fn page_size(&self) -> u64 {
        match self {
            Paging::X86_64(_) | Paging::I386(_) | Paging::Arm(_) => 4096,
            Paging::Aarch64(p) => p.page_size(),
        }
    }
}

/// Sparse physical memory made of 4 KiB pages, for hand-built page tables
/// in the walkers' tests (any granule: only the entries that are set exist).
#[cfg(test)]
pub(crate) mod test_pages {
    use std::collections::HashMap;

    use super::AddressSpace;
    use crate::addr::{PageTableRoot, PhysAddr};
    use crate::dump::{MemError, PhysRange, PhysicalMemory};

    #[derive(Default)]
    pub struct Pages(pub HashMap<u64, Vec<u8>>);

    impl Pages {
        pub fn set(&mut self, pa: u64, val: u64) {
            let page = self.0.entry(pa & !0xfff).or_insert_with(|| vec![0; 4096]);
            let o = (pa & 0xfff) as usize;
            page[o..o + 8].copy_from_slice(&val.to_le_bytes());
        }

        /// A 32-bit entry (i386 without PAE, arm short descriptors).
        pub fn set32(&mut self, pa: u64, val: u32) {
            let page = self.0.entry(pa & !0xfff).or_insert_with(|| vec![0; 4096]);
            let o = (pa & 0xfff) as usize;
            page[o..o + 4].copy_from_slice(&val.to_le_bytes());
        }
    }

    /// Kernel and user roots, for the 32-bit walkers' tests.
    pub fn space(kernel: u64, user: u64) -> AddressSpace {
        AddressSpace {
            kernel: PageTableRoot(PhysAddr(kernel)),
            user: Some(PageTableRoot(PhysAddr(user))),
        }
    }

    impl PhysicalMemory for Pages {
        fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
            let page = self
                .0
                .get(&(pa.0 & !0xfff))
                .ok_or(MemError::NotInDump(pa))?;
            let o = (pa.0 & 0xfff) as usize;
            buf.copy_from_slice(&page[o..o + buf.len()]);
            Ok(())
        }
        fn ranges(&self) -> &[PhysRange] {
            &[]
        }
    }
}
