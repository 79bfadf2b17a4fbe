//! Address vocabulary shared by every layer. Newtypes keep physical and virtual
//! addresses from being mixed up, which is the classic bug in dump readers.

use std::fmt;

/// A guest-physical address (what the dump file indexes by).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PhysAddr(pub u64);

/// A guest-virtual address (kernel or user), translated through page tables.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct VirtAddr(pub u64);

/// Physical address of a top-level page table (CR3 / TTBR with flag bits removed).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct PageTableRoot(pub PhysAddr);

macro_rules! hex_fmt {
    ($t:ty) => {
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }
        impl fmt::LowerHex for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }
    };
}
hex_fmt!(PhysAddr);
hex_fmt!(VirtAddr);

impl PhysAddr {
    /// `self + n`, or `None` past the top of the physical address space:
    /// physical addresses come from page-table entries and dump headers,
    /// so a sum that wraps is a corrupt value, never a valid address.
    pub fn checked_add(self, n: u64) -> Option<PhysAddr> {
        self.0.checked_add(n).map(PhysAddr)
    }
}

impl VirtAddr {
    /// `self + n`, or `None` past the top of the address space: for
    /// addresses and offsets read from a dump, which must never wrap.
    pub fn checked_add(self, n: u64) -> Option<VirtAddr> {
        self.0.checked_add(n).map(VirtAddr)
    }

    /// `self - n`, or `None` below 0 (`container_of` on a corrupt pointer).
    pub fn checked_sub(self, n: u64) -> Option<VirtAddr> {
        self.0.checked_sub(n).map(VirtAddr)
    }

    /// A per-CPU variable's address on one CPU: the kernel adds
    /// `__per_cpu_offset[cpu]` as an unsigned long, and on arm64 that
    /// offset is negative, so this sum wraps by design (not a checked add).
    pub fn per_cpu(self, offset: u64) -> VirtAddr {
        VirtAddr(self.0.wrapping_add(offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_near_the_top_are_refused_not_wrapped() {
        assert_eq!(
            PhysAddr(u64::MAX - 1).checked_add(1),
            Some(PhysAddr(u64::MAX))
        );
        assert_eq!(PhysAddr(u64::MAX - 1).checked_add(2), None);
        assert_eq!(VirtAddr(u64::MAX).checked_add(0), Some(VirtAddr(u64::MAX)));
        assert_eq!(VirtAddr(u64::MAX).checked_add(1), None);
        assert_eq!(VirtAddr(7).checked_sub(8), None);
        assert_eq!(VirtAddr(8).checked_sub(8), Some(VirtAddr(0)));
        // per-CPU offsets are negative on arm64: that sum wraps by design
        assert_eq!(VirtAddr(0x1000).per_cpu(u64::MAX), VirtAddr(0xfff));
    }
}

/// CPU architecture of the dumped machine.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Arch {
    X86_64,
    Aarch64,
    /// 32-bit x86 (i686), with or without PAE.
    I386,
    /// 32-bit ARM (ARMv7-A), short descriptors or LPAE.
    Arm,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::I386 => "i386",
            Arch::Arm => "arm",
        }
    }

    /// Bytes in a pointer and an `unsigned long` of the kernel.
    pub fn pointer_size(self) -> u64 {
        match self {
            Arch::X86_64 | Arch::Aarch64 => 8,
            Arch::I386 | Arch::Arm => 4,
        }
    }
}
