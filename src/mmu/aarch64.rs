//! AArch64 (VMSAv8-64) stage-1 translation: 4 KiB, 16 KiB and 64 KiB
//! granules, 25..=52-bit virtual addresses, block descriptors at every level
//! the architecture permits, and both 52-bit physical-address formats
//! (FEAT_LPA with the 64 KiB granule, FEAT_LPA2 with 4/16 KiB).
//!
//! VA bit 55 selects the root: TTBR1 (kernel, [`AddressSpace::kernel`]) or
//! TTBR0 (user, [`AddressSpace::user`]). Addresses are checked strictly: the
//! bits above the configured VA size must all equal bit 55, and no top-byte
//! ignore is applied (a tagged or PAC-signed pointer must be stripped by the
//! caller). Descriptor attribute bits (PXN/UXN, DBM, contiguous, software
//! bits 55..58, PBHA 59..62, table attributes) are masked off; only the
//! output-address field is used.

use super::{AddressSpace, TranslateError, Translation, WalkStep, read_entry};
use crate::addr::{PageTableRoot, PhysAddr, VirtAddr};
use crate::dump::PhysicalMemory;

/// Translation granule (TCR_EL1.TG0/TG1, Linux PAGE_SIZE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Granule {
    K4,
    K16,
    K64,
}

impl Granule {
    /// From a page size in bytes (VMCOREINFO PAGESIZE).
    pub fn from_page_size(size: u64) -> Option<Granule> {
        match size {
            4096 => Some(Granule::K4),
            16384 => Some(Granule::K16),
            65536 => Some(Granule::K64),
            _ => None,
        }
    }

    /// log2 of the page size: 12, 14 or 16.
    pub fn shift(self) -> u32 {
        match self {
            Granule::K4 => 12,
            Granule::K16 => 14,
            Granule::K64 => 16,
        }
    }

    pub fn size(self) -> u64 {
        1 << self.shift()
    }

    /// VA bits resolved per level (a table holds 2^this 8-byte entries).
    fn bits_per_level(self) -> u32 {
        self.shift() - 3
    }
}

/// Whether (and how) descriptors and TTBRs carry 52-bit output addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pa52Mode {
    /// 48-bit output addresses: OA is descriptor bits 47..page shift.
    None,
    /// FEAT_LPA, 64 KiB granule only: OA[51:48] in descriptor bits 15:12.
    Lpa,
    /// FEAT_LPA2 (TCR_ELx.DS = 1), 4/16 KiB granules: OA[49:48] in
    /// descriptor bits 49:48, OA[51:50] in bits 9:8 (the SH field moves to TCR).
    Lpa2,
}

/// An impossible paging configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("unsupported arm64 page size {0} (expected 4096, 16384 or 65536)")]
    PageSize(u64),
    #[error("{what} VA size of {bits} bits is not possible with the {granule} KiB granule{extra}")]
    VaBits {
        what: &'static str,
        bits: u64,
        granule: u64,
        extra: &'static str,
    },
    #[error("52-bit PA mode {mode:?} is not defined for the {granule} KiB granule")]
    Pa52 { mode: Pa52Mode, granule: u64 },
    #[error("TCR_EL1 selects different granules for TTBR0 and TTBR1 ({0:#x})")]
    MixedGranules(u64),
    #[error("TCR_EL1 {0:#x}: reserved granule encoding")]
    TcrGranule(u64),
}

/// Level names for a walk of `n` levels, as Linux/crash name them: the first
/// level is always the PGD, the last the PTE, folded levels are left out.
fn level_names(n: usize) -> &'static [&'static str] {
    match n {
        5 => &["PGD", "P4D", "PUD", "PMD", "PTE"],
        4 => &["PGD", "PUD", "PMD", "PTE"],
        3 => &["PGD", "PMD", "PTE"],
        2 => &["PGD", "PTE"],
        _ => &["PTE"],
    }
}

/// The AArch64 paging configuration of the dumped machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arm64Paging {
    granule: Granule,
    /// 64 − TCR_EL1.T1SZ.
    kernel_va_bits: u32,
    /// 64 − TCR_EL1.T0SZ.
    user_va_bits: u32,
    pa52: Pa52Mode,
}

impl Arm64Paging {
    /// A configuration from its architectural numbers. VA sizes above 48 bits
    /// need the 64 KiB granule (FEAT_LVA) or LPA2; the walk may take at most
    /// 4 levels (5 only with 4 KiB + LPA2, where level −1 exists).
    pub fn new(
        granule: Granule,
        kernel_va_bits: u32,
        user_va_bits: u32,
        pa52: Pa52Mode,
    ) -> Result<Self, ConfigError> {
        let gsize = granule.size() >> 10;
        match (granule, pa52) {
            (Granule::K64, Pa52Mode::Lpa2) | (Granule::K4 | Granule::K16, Pa52Mode::Lpa) => {
                return Err(ConfigError::Pa52 {
                    mode: pa52,
                    granule: gsize,
                });
            }
            _ => {}
        }
        for (what, bits) in [("kernel", kernel_va_bits), ("user", user_va_bits)] {
            let err = |extra| ConfigError::VaBits {
                what,
                bits: bits as u64,
                granule: gsize,
                extra,
            };
            if !(25..=52).contains(&bits) || bits <= granule.shift() {
                return Err(err(""));
            }
            if bits > 48 && granule != Granule::K64 && pa52 != Pa52Mode::Lpa2 {
                return Err(err(" without LPA2"));
            }
        }
        Ok(Arm64Paging {
            granule,
            kernel_va_bits,
            user_va_bits,
            pa52,
        })
    }

    /// The configuration of a Linux kernel from its VMCOREINFO numbers:
    /// `PAGESIZE`, `NUMBER(VA_BITS)` (the compile-time size), and, when
    /// present, `NUMBER(TCR_EL1_T1SZ)` (the runtime size is 64 − T1SZ, which
    /// is smaller than VA_BITS when a 52-bit kernel runs on 48-bit hardware)
    /// and `NUMBER(MAX_PHYSMEM_BITS)` (52 means CONFIG_ARM64_PA_BITS_52).
    ///
    /// Linux sets T0SZ = T1SZ at runtime, so user space gets the same size.
    /// With 64 KiB pages a 52-bit-PA kernel always uses the LPA descriptor
    /// format (harmless below 2^48). With 4/16 KiB, LPA2 is only enabled when
    /// the hardware has it, which for Linux coincides with 52-bit runtime VAs;
    /// that is the rule applied here (a heuristic: no VMCOREINFO number says
    /// it directly).
    pub fn from_vmcoreinfo(
        page_size: u64,
        va_bits: u64,
        tcr_el1_t1sz: Option<u64>,
        max_physmem_bits: Option<u64>,
    ) -> Result<Self, ConfigError> {
        let granule = Granule::from_page_size(page_size).ok_or(ConfigError::PageSize(page_size))?;
        let runtime = match tcr_el1_t1sz {
            Some(t1sz) if (12..=39).contains(&t1sz) => 64 - t1sz,
            Some(t1sz) => {
                return Err(ConfigError::VaBits {
                    what: "kernel (TCR_EL1_T1SZ)",
                    bits: 64u64.saturating_sub(t1sz),
                    granule: page_size >> 10,
                    extra: "",
                });
            }
            None => va_bits,
        };
        let pa52 = match (granule, max_physmem_bits) {
            (Granule::K64, Some(52)) => Pa52Mode::Lpa,
            (Granule::K4 | Granule::K16, Some(52)) if runtime == 52 => Pa52Mode::Lpa2,
            _ => Pa52Mode::None,
        };
        let bits = u32::try_from(runtime).unwrap_or(u32::MAX);
        Self::new(granule, bits, bits, pa52)
    }

    /// The configuration a CPU's TCR_EL1 describes: TG0/TG1 (granule),
    /// T0SZ/T1SZ, DS (LPA2) and IPS = 52 bits with 64 KiB (LPA).
    pub fn from_tcr_el1(tcr: u64) -> Result<Self, ConfigError> {
        let tg0 = match (tcr >> 14) & 3 {
            0 => Granule::K4,
            1 => Granule::K64,
            2 => Granule::K16,
            _ => return Err(ConfigError::TcrGranule(tcr)),
        };
        let tg1 = match (tcr >> 30) & 3 {
            1 => Granule::K16,
            2 => Granule::K4,
            3 => Granule::K64,
            _ => return Err(ConfigError::TcrGranule(tcr)),
        };
        if tg0 != tg1 {
            return Err(ConfigError::MixedGranules(tcr));
        }
        let t0sz = (tcr & 0x3f) as u32;
        let t1sz = ((tcr >> 16) & 0x3f) as u32;
        let ds = (tcr >> 59) & 1 == 1;
        let ips = (tcr >> 32) & 7;
        let pa52 = match tg1 {
            Granule::K64 if ips == 0b110 => Pa52Mode::Lpa,
            Granule::K4 | Granule::K16 if ds => Pa52Mode::Lpa2,
            _ => Pa52Mode::None,
        };
        Self::new(tg1, 64 - t1sz.min(64), 64 - t0sz.min(64), pa52)
    }

    pub fn granule(&self) -> Granule {
        self.granule
    }

    pub fn kernel_va_bits(&self) -> u32 {
        self.kernel_va_bits
    }

    pub fn user_va_bits(&self) -> u32 {
        self.user_va_bits
    }

    pub fn pa52(&self) -> Pa52Mode {
        self.pa52
    }

    pub fn page_size(&self) -> u64 {
        self.granule.size()
    }

    /// The root table a TTBR0_EL1/TTBR1_EL1 value points to: the ASID
    /// (bits 63:48) and CnP (bit 0) are dropped; with 52-bit PAs, TTBR bits
    /// 5:2 hold PA bits 51:48.
    pub fn ttbr_to_root(&self, ttbr: u64) -> PageTableRoot {
        let pa = match self.pa52 {
            Pa52Mode::None => ttbr & 0x0000_ffff_ffff_fffe,
            Pa52Mode::Lpa | Pa52Mode::Lpa2 => {
                (ttbr & 0x0000_ffff_ffff_ffc0) | (((ttbr >> 2) & 0xf) << 48)
            }
        };
        PageTableRoot(PhysAddr(pa))
    }

    /// The kernel root for a walk from `swapper_pg_dir`'s physical address
    /// (kdump has no TTBR1). A kernel built for 52-bit VAs with the 64 KiB
    /// granule that runs with 48-bit VAs points TTBR1 into the *end* of its
    /// 1024-entry PGD (Linux TTBR1_BADDR_4852_OFFSET); this applies the same
    /// offset so that 48-bit indexing lands on the same entries. Otherwise
    /// the root is `swapper_pg_dir` itself. (Linux ≥ 6.9 with LPA2 folds the
    /// top level at runtime instead; that case is not handled here.)
    pub fn kernel_root_from_swapper_pg_dir(
        &self,
        swapper_pa: PhysAddr,
        vmcoreinfo_va_bits: u64,
    ) -> PageTableRoot {
        let mut pa = swapper_pa.0;
        if self.granule == Granule::K64
            && self.pa52 != Pa52Mode::Lpa2
            && vmcoreinfo_va_bits == 52
            && self.kernel_va_bits == 48
        {
            // PGDIR_SHIFT = 42 with 64K pages: 1024 entries at 52 bits, 64 at 48.
            pa += ((1u64 << (52 - 42)) - (1u64 << (48 - 42))) * 8;
        }
        PageTableRoot(PhysAddr(pa))
    }

    /// True if `va` is translated through TTBR0 (bit 55 clear).
    pub fn is_user(&self, va: VirtAddr) -> bool {
        (va.0 >> 55) & 1 == 0
    }

    /// Output-address field of a table/block/page descriptor, all attribute
    /// bits removed. The caller aligns it to the page or block size.
    fn output_address(&self, desc: u64) -> u64 {
        match self.pa52 {
            Pa52Mode::None => desc & 0x0000_ffff_ffff_f000,
            // bits 47:16, and 15:12 → 51:48
            Pa52Mode::Lpa => (desc & 0x0000_ffff_ffff_0000) | (((desc >> 12) & 0xf) << 48),
            // bits 49:12, and 9:8 → 51:50
            Pa52Mode::Lpa2 => (desc & 0x0003_ffff_ffff_f000) | (((desc >> 8) & 0x3) << 50),
        }
    }

    /// Whether a block descriptor is permitted at `level` (Arm ARM
    /// AArch64.BlockDescSupported, for 64-bit descriptors).
    fn block_allowed(&self, level: i32) -> bool {
        match self.granule {
            Granule::K4 => level == 1 || level == 2 || (level == 0 && self.pa52 == Pa52Mode::Lpa2),
            Granule::K16 => level == 2 || (level == 1 && self.pa52 == Pa52Mode::Lpa2),
            Granule::K64 => level == 2 || (level == 1 && self.pa52 == Pa52Mode::Lpa),
        }
    }

    /// First lookup level (−1..=3) for a `va_bits`-bit input address.
    fn start_level(&self, va_bits: u32) -> i32 {
        let (ps, bpl) = (self.granule.shift(), self.granule.bits_per_level());
        let levels = (va_bits - ps).div_ceil(bpl) as i32;
        4 - levels
    }

    /// VA bit where the index of `level` starts.
    fn level_shift(&self, level: i32) -> u32 {
        self.granule.shift() + self.granule.bits_per_level() * (3 - level) as u32
    }

    pub fn translate(
        &self,
        mem: &dyn PhysicalMemory,
        space: &AddressSpace,
        va: VirtAddr,
        mut trace: Option<&mut Vec<WalkStep>>,
    ) -> Result<Translation, TranslateError> {
        let user = self.is_user(va);
        let va_bits = if user {
            self.user_va_bits
        } else {
            self.kernel_va_bits
        };
        // Bits 63..va_bits must be all 0 (TTBR0) or all 1 (TTBR1); this also
        // checks them against bit 55. No top-byte ignore.
        let top = va.0 >> va_bits;
        let expected = if user { 0 } else { u64::MAX >> va_bits };
        if top != expected {
            return Err(TranslateError::NonCanonical { va });
        }
        let root = if user {
            space.user.ok_or(TranslateError::NoRoot { va })?
        } else {
            space.kernel
        };

        let start = self.start_level(va_bits);
        let names = level_names((4 - start) as usize);
        let start_shift = self.level_shift(start);
        // The top-level table holds 2^(va_bits - start_shift) entries; the
        // hardware ignores TTBR base bits below its size.
        let top_table_bytes = 8u64 << (va_bits - start_shift);
        let pa_mask = match self.pa52 {
            Pa52Mode::None => 0x0000_ffff_ffff_ffff,
            _ => 0x000f_ffff_ffff_ffff,
        };
        let mut table = root.0.0 & pa_mask & !(top_table_bytes - 1);
        let page_mask = self.granule.size() - 1;

        // One iteration per level (at most 5): a looping or hostile table
        // costs a bounded number of reads.
        for (i, &name) in names.iter().enumerate() {
            let level = start + i as i32;
            let shift = self.level_shift(level);
            let index_bits = if level == start {
                va_bits - shift
            } else {
                self.granule.bits_per_level()
            };
            let index = (va.0 >> shift) & ((1u64 << index_bits) - 1);
            let entry_pa = PhysAddr(table + index * 8);
            let entry = read_entry(mem, va, entry_pa)?;
            if let Some(t) = trace.as_deref_mut() {
                t.push(WalkStep {
                    level: name,
                    entry_pa,
                    entry,
                });
            }
            let bad = |reason| TranslateError::BadEntry {
                va,
                level: name,
                entry_pa,
                entry,
                reason,
            };
            match entry & 0b11 {
                0b00 | 0b10 => {
                    return Err(TranslateError::NotMapped {
                        va,
                        level: name,
                        entry_pa,
                        entry,
                    });
                }
                0b01 if level == 3 => {
                    return Err(bad("reserved descriptor type 0b01 at the last level"));
                }
                0b01 if !self.block_allowed(level) => {
                    return Err(bad(
                        "block descriptor at a level that does not permit blocks",
                    ));
                }
                0b11 if level < 3 => {
                    table = self.output_address(entry) & !page_mask;
                }
                _ => {
                    // A page (0b11 at level 3) or a permitted block (0b01).
                    let page_size = 1u64 << shift;
                    let base = self.output_address(entry) & !(page_size - 1);
                    return Ok(Translation {
                        pa: PhysAddr(base | (va.0 & (page_size - 1))),
                        page_size,
                    });
                }
            }
        }
        unreachable!("level 3 descriptors are always a page, invalid or reserved")
    }
}
