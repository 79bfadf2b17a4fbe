//! AArch64 (VMSAv8-64) stage-1 translation: 4 KiB, 16 KiB and 64 KiB
//! granules, 25..=52-bit virtual addresses, block descriptors at every level
//! the architecture permits, and both 52-bit physical-address formats
//! (FEAT_LPA with the 64 KiB granule, FEAT_LPA2 with 4/16 KiB).
//!
//! VA bit 55 selects the root: TTBR1 (kernel, [`AddressSpace::kernel`]) or
//! TTBR0 (user, [`AddressSpace::user`]). Addresses are checked as the
//! hardware checks a data access (Arm ARM D8.2, "input address size"
//! checks, and AddrTop): without top-byte ignore, bits 63..VA size must all
//! be 0 (TTBR0) or all 1 (TTBR1); with TBI for that half (TCR_EL1.TBI0 /
//! TBI1), bits 63..56 are ignored and bits 55..VA size must all equal bit
//! 55. Anything else is a translation fault ([`TranslateError::NonCanonical`]),
//! never a read of some other address. A PAC-signed pointer (PAC in bits
//! 54..VA size) therefore faults until the caller strips it.
//!
//! Which halves have TBI: from TCR_EL1 when it is known
//! ([`Arm64Paging::from_tcr_el1`]); for a Linux kernel known only by its
//! VMCOREINFO, TBI0 (Linux's `__cpu_setup` sets TCR_TBI0 unconditionally)
//! and not TBI1 (set only with CONFIG_ARM64_MTE or KASAN tags, which
//! VMCOREINFO does not say): conservative, a tagged kernel pointer faults.
//!
//! Descriptor attribute bits (PXN/UXN, DBM, contiguous, software bits
//! 55..58, PBHA 59..62, table attributes) are masked off; only the
//! output-address field is used.

use super::{AddressSpace, EntryWidth, TranslateError, Translation, WalkStep, read_traced};
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
    /// TCR_EL1.TBI0: top byte ignored for TTBR0 (user) data addresses.
    tbi0: bool,
    /// TCR_EL1.TBI1: top byte ignored for TTBR1 (kernel) data addresses.
    tbi1: bool,
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
            tbi0: false,
            tbi1: false,
        })
    }

    /// The same configuration with top-byte ignore set for the user
    /// (TTBR0) and kernel (TTBR1) halves as given. [`Arm64Paging::new`]
    /// has neither.
    pub fn with_tbi(self, tbi0: bool, tbi1: bool) -> Self {
        Arm64Paging { tbi0, tbi1, ..self }
    }

    /// (TBI0, TBI1).
    pub fn tbi(&self) -> (bool, bool) {
        (self.tbi0, self.tbi1)
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
        // TBI0 always (Linux sets TCR_TBI0 unconditionally), TBI1 unknown:
        // left off (see the module documentation)
        Ok(Self::new(granule, bits, bits, pa52)?.with_tbi(true, false))
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
        let (tbi0, tbi1) = ((tcr >> 37) & 1 == 1, (tcr >> 38) & 1 == 1);
        Ok(Self::new(tg1, 64 - t1sz.min(64), 64 - t0sz.min(64), pa52)?.with_tbi(tbi0, tbi1))
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

    /// The input-address check of a data access: bits AddrTop..va_bits are
    /// all 0 (TTBR0) or all 1 (TTBR1), where AddrTop is 55 with top-byte
    /// ignore for that half and 63 without. Bit 55 (which chose the half)
    /// is always in the checked field, as va_bits ≤ 52.
    fn in_range(&self, va: VirtAddr, user: bool, va_bits: u32) -> bool {
        let tbi = if user { self.tbi0 } else { self.tbi1 };
        let top = if tbi { 56 } else { 64 };
        // va_bits is 25..=52 (checked at construction): width 4..=39
        let width = top - va_bits;
        let field = (va.0 >> va_bits) & ((1u64 << width) - 1);
        field == if user { 0 } else { (1u64 << width) - 1 }
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
        if !self.in_range(va, user, va_bits) {
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
            let entry = read_traced(mem, va, name, entry_pa, EntryWidth::Bits64, &mut trace)?;
            let bad = |reason| TranslateError::BadEntry {
                va,
                level: name,
                entry_pa,
                entry,
                reason,
            };
            match entry & 0b11 {
                0b00 | 0b10 => return Err(TranslateError::not_mapped(va, name, entry_pa, entry)),
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
                    return Ok(Translation::through_page(
                        self.output_address(entry),
                        shift,
                        va,
                    ));
                }
            }
        }
        unreachable!("level 3 descriptors are always a page, invalid or reserved")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmu::Paging;

    use crate::mmu::test_pages::Pages;

    const TABLE: u64 = 0b11;
    const PAGE: u64 = 0b11;
    const BLOCK: u64 = 0b01;
    // Table-descriptor attributes: PXNTable, UXNTable, APTable, NSTable.
    const TABLE_ATTRS: u64 = (1 << 59) | (1 << 60) | (3 << 61) | (1 << 63);
    // Leaf attributes the walker must ignore: AttrIdx 4, AF, nG, GP (50),
    // DBM (51), Contiguous (52), PXN (53), UXN (54), software bit 55, PBHA
    // bit 59.
    const LEAF_ATTRS: u64 = (4 << 2)
        | (1 << 10)
        | (1 << 11)
        | (1 << 50)
        | (1 << 51)
        | (1 << 52)
        | (1 << 53)
        | (1 << 54)
        | (1 << 55)
        | (1 << 59);
    // Inner-shareable SH bits 9:8 (only when they are not address bits).
    const SH: u64 = 3 << 8;

    fn kspace(root: PageTableRoot) -> AddressSpace {
        AddressSpace {
            kernel: root,
            user: None,
        }
    }

    fn root(pa: u64) -> PageTableRoot {
        PageTableRoot(PhysAddr(pa))
    }

    fn walk(
        p: &Arm64Paging,
        m: &Pages,
        s: &AddressSpace,
        va: u64,
    ) -> Result<Translation, TranslateError> {
        p.translate(m, s, VirtAddr(va), None)
    }

    fn ok(pa: u64, page_size: u64) -> Result<Translation, TranslateError> {
        Ok(Translation {
            pa: PhysAddr(pa),
            page_size,
        })
    }

    fn is_bad_entry(r: Result<Translation, TranslateError>, lvl: &str) -> bool {
        matches!(r, Err(TranslateError::BadEntry { level, .. }) if level == lvl)
    }

    // 4K granule, 48-bit VAs, 4 levels (L0..L3).
    // va 0xffff_a610_4d61_0abc: bits 47:39 = 0x14c, 38:30 = 0x041,
    // 29:21 = 0x06b, 20:12 = 0x010, offset 0xabc.
    #[test]
    fn k4_va48_pages_and_blocks_through_ttbr1() {
        let p = Arm64Paging::new(Granule::K4, 48, 48, Pa52Mode::None).unwrap();
        // TTBR1 with ASID 0x104 and CnP: base 0x4158_f000
        let r = p.ttbr_to_root(0x0104_0000_4158_f001);
        assert_eq!(r, root(0x4158_f000));
        let mut m = Pages::default();
        let va = 0xffff_a610_4d61_0abc;
        m.set(0x4158_f000 + 0x14c * 8, 0x5000_0000 | TABLE | TABLE_ATTRS); // 0x4158_fa60
        m.set(0x5000_0000 + 0x041 * 8, 0x5000_1000 | TABLE); // 0x5000_0208
        m.set(0x5000_1000 + 0x06b * 8, 0x5000_2000 | TABLE); // 0x5000_1358
        m.set(
            0x5000_2000 + 0x010 * 8,
            0x4021_0000 | PAGE | LEAF_ATTRS | SH,
        ); // 0x5000_2080
        let mut trace = Vec::new();
        let t = p.translate(&m, &kspace(r), VirtAddr(va), Some(&mut trace));
        // page 0x4021_0000 + offset 0xabc
        assert_eq!(t, ok(0x4021_0abc, 4096));
        let lv: Vec<_> = trace.iter().map(|s| (s.level, s.entry_pa.0)).collect();
        assert_eq!(
            lv,
            [
                ("PGD", 0x4158_fa60),
                ("PUD", 0x5000_0208),
                ("PMD", 0x5000_1358),
                ("PTE", 0x5000_2080)
            ]
        );
        assert_eq!(trace[3].entry, 0x4021_0000 | PAGE | LEAF_ATTRS | SH);

        // 2 MiB block at L2: base 0x8000_0000 | va[20:0] = 0x01_0abc
        m.set(0x5000_1358, 0x8000_0000 | BLOCK | LEAF_ATTRS | SH);
        assert_eq!(walk(&p, &m, &kspace(r), va), ok(0x8001_0abc, 2 << 20));
        // 1 GiB block at L1: base 0x1_c000_0000 | va[29:0] = 0x0d61_0abc
        m.set(0x5000_0208, 0x1_c000_0000 | BLOCK | LEAF_ATTRS | SH);
        assert_eq!(walk(&p, &m, &kspace(r), va), ok(0x1_cd61_0abc, 1 << 30));
        // a block at L0 needs LPA2
        m.set(0x4158_fa60, 0x80_0000_0000 | BLOCK);
        assert!(is_bad_entry(walk(&p, &m, &kspace(r), va), "PGD"));
        // not canonical for 48 bits: bit 48 clear in a kernel address
        assert!(matches!(
            walk(&p, &m, &kspace(r), 0xfffe_a610_4d61_0abc),
            Err(TranslateError::NonCanonical { .. })
        ));
    }

    // User half through TTBR0. va 0x0000_ffff_c85c_7123: bits 47:39 = 0x1ff,
    // 38:30 = 0x1ff, 29:21 = 0x042, 20:12 = 0x1c7, offset 0x123.
    #[test]
    fn k4_va48_user_half() {
        let p = Arm64Paging::new(Granule::K4, 48, 48, Pa52Mode::None).unwrap();
        let mut m = Pages::default();
        let user = p.ttbr_to_root(0x48e2_d001); // CnP set
        assert_eq!(user, root(0x48e2_d000));
        m.set(0x48e2_d000 + 0x1ff * 8, 0x6000_0000 | TABLE);
        m.set(0x6000_0000 + 0x1ff * 8, 0x6000_1000 | TABLE);
        m.set(0x6000_1000 + 0x042 * 8, 0x6000_2000 | TABLE);
        m.set(
            0x6000_2000 + 0x1c7 * 8,
            0x419d_d000 | PAGE | LEAF_ATTRS | SH,
        );
        let s = AddressSpace {
            kernel: root(0x4158_f000),
            user: Some(user),
        };
        let va = 0x0000_ffff_c85c_7123;
        assert!(p.is_user(VirtAddr(va)));
        // page 0x419d_d000 + 0x123
        assert_eq!(walk(&p, &m, &s, va), ok(0x419d_d123, 4096));
        assert!(matches!(
            walk(&p, &m, &kspace(root(0x4158_f000)), va),
            Err(TranslateError::NoRoot { .. })
        ));
        // strict: bit 48 set, a tag in the top byte (no TBI), bit 55 set with
        // zero top bits: all non-canonical
        for bad in [
            0x0001_ffff_c85c_7123u64,
            0x5a00_ffff_c85c_7123,
            0x00ff_ffff_c85c_7123,
        ] {
            assert!(matches!(
                walk(&p, &m, &s, bad),
                Err(TranslateError::NonCanonical { .. })
            ));
        }
    }

    // 4K granule, 39-bit VAs: 3 levels L1..L3, named PGD/PMD/PTE.
    // va 0xffff_ff80_1234_5678: bits 38:30 = 0x000, 29:21 = 0x091,
    // 20:12 = 0x145, offset 0x678.
    #[test]
    fn k4_va39_three_levels() {
        let p = Arm64Paging::new(Granule::K4, 39, 39, Pa52Mode::None).unwrap();
        let mut m = Pages::default();
        let va = 0xffff_ff80_1234_5678;
        m.set(0x10_0000, 0x11_0000 | TABLE);
        m.set(0x11_0000 + 0x091 * 8, 0x12_0000 | TABLE);
        m.set(0x12_0000 + 0x145 * 8, 0x7654_3000 | PAGE | LEAF_ATTRS);
        let mut trace = Vec::new();
        let t = p.translate(&m, &kspace(root(0x10_0000)), VirtAddr(va), Some(&mut trace));
        assert_eq!(t, ok(0x7654_3678, 4096));
        let names: Vec<_> = trace.iter().map(|s| s.level).collect();
        assert_eq!(names, ["PGD", "PMD", "PTE"]);
        // 1 GiB block at L1 (the PGD here): 0xc000_0000 | va[29:0] = 0x1234_5678
        m.set(0x10_0000, 0xc000_0000 | BLOCK);
        assert_eq!(
            walk(&p, &m, &kspace(root(0x10_0000)), va),
            ok(0xd234_5678, 1 << 30)
        );
        // a 48-bit kernel address is not canonical with 39 bits
        assert!(matches!(
            walk(&p, &m, &kspace(root(0x10_0000)), 0xffff_a610_4d61_0abc),
            Err(TranslateError::NonCanonical { .. })
        ));
    }

    // 16K granule, 47-bit VAs: 3 levels L1..L3 (a full 2048-entry L1; a
    // level-0 table only exists from 48 bits on).
    // va 0xffff_ab12_3456_789a: bits 46:36 = 0x2b1, 35:25 = 0x11a,
    // 24:14 = 0x159, offset 0x389a.
    fn k16_chain(m: &mut Pages) {
        m.set(0x8_0000 + 0x2b1 * 8, 0x9_0000 | TABLE); // 0x8_1588
        m.set(0x9_0000 + 0x11a * 8, 0xa_0000 | TABLE); // 0x9_08d0
        m.set(0xa_0000 + 0x159 * 8, 0x4567_c000 | PAGE | LEAF_ATTRS | SH); // 0xa_0ac8
    }

    #[test]
    fn k16_va47_three_levels_and_32m_block() {
        let p = Arm64Paging::new(Granule::K16, 47, 47, Pa52Mode::None).unwrap();
        let mut m = Pages::default();
        k16_chain(&mut m);
        let va = 0xffff_ab12_3456_789a;
        let mut trace = Vec::new();
        let t = p.translate(&m, &kspace(root(0x8_0000)), VirtAddr(va), Some(&mut trace));
        // 16K page 0x4567_c000 + 0x389a
        assert_eq!(t, ok(0x4567_f89a, 16384));
        assert_eq!(
            trace.iter().map(|s| s.level).collect::<Vec<_>>(),
            ["PGD", "PMD", "PTE"]
        );
        assert_eq!(trace[0].entry_pa, PhysAddr(0x8_1588));
        // 32 MiB block at L2: 0x1_2000_0000 | va[24:0] = 0x0056_789a
        m.set(0x9_08d0, 0x1_2000_0000 | BLOCK);
        assert_eq!(
            walk(&p, &m, &kspace(root(0x8_0000)), va),
            ok(0x1_2056_789a, 32 << 20)
        );
        // a 64 GiB block at L1 needs LPA2
        m.set(0x8_1588, 0x10_0000_0000 | BLOCK);
        assert!(is_bad_entry(
            walk(&p, &m, &kspace(root(0x8_0000)), va),
            "PGD"
        ));
    }

    // 16K granule, 48-bit VAs: 4 levels with a 2-entry level-0 table.
    // Same va: bit 47 = 1 is the L0 index, then as above.
    #[test]
    fn k16_va48_two_entry_level0() {
        let p = Arm64Paging::new(Granule::K16, 48, 48, Pa52Mode::None).unwrap();
        let mut m = Pages::default();
        k16_chain(&mut m);
        m.set(0x20_0000 + 8, 0x8_0000 | TABLE);
        let mut trace = Vec::new();
        let t = p.translate(
            &m,
            &kspace(root(0x20_0000)),
            VirtAddr(0xffff_ab12_3456_789a),
            Some(&mut trace),
        );
        assert_eq!(t, ok(0x4567_f89a, 16384));
        assert_eq!(
            trace.iter().map(|s| s.level).collect::<Vec<_>>(),
            ["PGD", "PUD", "PMD", "PTE"]
        );
        assert_eq!(trace[0].entry_pa, PhysAddr(0x20_0008));
    }

    // 16K granule, 36-bit VAs: 2 levels L2, L3 (PGD, PTE).
    // va 0xffff_fff1_2345_6789: bits 35:25 = 0x091, 24:14 = 0x515,
    // offset 0x2789.
    #[test]
    fn k16_va36_two_levels() {
        let p = Arm64Paging::new(Granule::K16, 36, 36, Pa52Mode::None).unwrap();
        let mut m = Pages::default();
        let va = 0xffff_fff1_2345_6789;
        m.set(0x30_0000 + 0x091 * 8, 0x31_0000 | TABLE);
        m.set(0x31_0000 + 0x515 * 8, 0x5000_4000 | PAGE);
        let mut trace = Vec::new();
        let t = p.translate(&m, &kspace(root(0x30_0000)), VirtAddr(va), Some(&mut trace));
        assert_eq!(t, ok(0x5000_6789, 16384));
        assert_eq!(
            trace.iter().map(|s| s.level).collect::<Vec<_>>(),
            ["PGD", "PTE"]
        );
        // 32 MiB block at L2: 0x6000_0000 | va[24:0] = 0x0145_6789
        m.set(0x30_0000 + 0x091 * 8, 0x6000_0000 | BLOCK);
        assert_eq!(
            walk(&p, &m, &kspace(root(0x30_0000)), va),
            ok(0x6145_6789, 32 << 20)
        );
    }

    // 64K granule, 42-bit VAs: 2 levels L2 (8192 entries), L3.
    // va 0xffff_fc12_3456_789a: bits 41:29 = 0x091, 28:16 = 0x1456,
    // offset 0x789a.
    #[test]
    fn k64_va42_two_levels_and_512m_block() {
        let p = Arm64Paging::new(Granule::K64, 42, 42, Pa52Mode::None).unwrap();
        let mut m = Pages::default();
        let va = 0xffff_fc12_3456_789a;
        m.set(0x4_0000 + 0x091 * 8, 0x5_0000 | TABLE); // 0x4_0488
        m.set(0x5_0000 + 0x1456 * 8, 0x4321_0000 | PAGE | LEAF_ATTRS | SH); // 0x5_a2b0
        let mut trace = Vec::new();
        let t = p.translate(&m, &kspace(root(0x4_0000)), VirtAddr(va), Some(&mut trace));
        assert_eq!(t, ok(0x4321_789a, 65536));
        assert_eq!(
            trace.iter().map(|s| s.level).collect::<Vec<_>>(),
            ["PGD", "PTE"]
        );
        assert_eq!(trace[1].entry_pa, PhysAddr(0x5_a2b0));
        // 512 MiB block at L2: 0x6000_0000 | va[28:0] = 0x1456_789a
        m.set(0x4_0488, 0x6000_0000 | BLOCK | LEAF_ATTRS);
        assert_eq!(
            walk(&p, &m, &kspace(root(0x4_0000)), va),
            ok(0x7456_789a, 512 << 20)
        );
    }

    // 64K granule, 48-bit VAs: 3 levels, L1 has 64 entries.
    // va 0xffff_8123_4567_89ab: bits 47:42 = 0x20, 41:29 = 0x91a,
    // 28:16 = 0x567, offset 0x89ab.
    #[test]
    fn k64_va48_three_levels() {
        let p = Arm64Paging::new(Granule::K64, 48, 48, Pa52Mode::None).unwrap();
        let mut m = Pages::default();
        let va = 0xffff_8123_4567_89ab;
        m.set(0x7_0000 + 0x20 * 8, 0x8_0000 | TABLE); // 0x7_0100
        m.set(0x8_0000 + 0x91a * 8, 0x9_0000 | TABLE); // 0x8_48d0
        m.set(0x9_0000 + 0x567 * 8, 0xabcd_0000 | PAGE | LEAF_ATTRS | SH); // 0x9_2b38
        let mut trace = Vec::new();
        let t = p.translate(&m, &kspace(root(0x7_0000)), VirtAddr(va), Some(&mut trace));
        assert_eq!(t, ok(0xabcd_89ab, 65536));
        assert_eq!(
            trace.iter().map(|s| s.level).collect::<Vec<_>>(),
            ["PGD", "PMD", "PTE"]
        );
        // a 4 TiB block at L1 needs 52-bit PAs (LPA)
        m.set(0x7_0100, BLOCK);
        assert!(is_bad_entry(
            walk(&p, &m, &kspace(root(0x7_0000)), va),
            "PGD"
        ));
    }

    // 64K granule, 52-bit VAs and PAs (FEAT_LVA + FEAT_LPA): 3 levels, a
    // 1024-entry L1. PA[51:48] in descriptor bits 15:12 and TTBR bits 5:2.
    // va 0xfff8_1234_5678_9abc: bits 51:42 = 0x204, 41:29 = 0x11a2,
    // 28:16 = 0x1678, offset 0x9abc.
    #[test]
    fn k64_va52_lpa() {
        let p = Arm64Paging::new(Granule::K64, 52, 52, Pa52Mode::Lpa).unwrap();
        // TTBR: ASID 0xab, base bits 47:6 = 0x1_0000, bits 5:2 = 0xa, CnP
        let r = p.ttbr_to_root(0x00ab_0000_0001_0029);
        assert_eq!(r, root(0x000a_0000_0001_0000));
        let mut m = Pages::default();
        let va = 0xfff8_1234_5678_9abc;
        // L1 entry at root + 0x204*8 = +0x1020; next table 0x0003_0000_0002_0000
        m.set(
            0x000a_0000_0001_1020,
            0x2_0000 | (0x3 << 12) | TABLE | TABLE_ATTRS,
        );
        // L2 entry at +0x11a2*8 = +0x8d10; next table 0x4_0000
        m.set(0x0003_0000_0002_8d10, 0x4_0000 | TABLE);
        // L3 entry at 0x4_0000 + 0x1678*8 = 0x4_b3c0; page 0x000f_0123_4567_0000
        m.set(
            0x4_b3c0,
            0x0123_4567_0000 | (0xf << 12) | PAGE | LEAF_ATTRS | SH,
        );
        let mut trace = Vec::new();
        let t = p.translate(&m, &kspace(r), VirtAddr(va), Some(&mut trace));
        assert_eq!(t, ok(0x000f_0123_4567_9abc, 65536));
        assert_eq!(
            trace.iter().map(|s| s.level).collect::<Vec<_>>(),
            ["PGD", "PMD", "PTE"]
        );
        // 512 MiB block at L2, base 0x0002_0000_2000_0000 | va[28:0] = 0x1678_9abc
        m.set(0x0003_0000_0002_8d10, 0x2000_0000 | (0x2 << 12) | BLOCK);
        assert_eq!(
            walk(&p, &m, &kspace(r), va),
            ok(0x0002_0000_3678_9abc, 512 << 20)
        );
        // 4 TiB block at L1, base 0x0005_0400_0000_0000 | va[41:0] = 0x234_5678_9abc
        m.set(
            0x000a_0000_0001_1020,
            0x0400_0000_0000 | (0x5 << 12) | BLOCK | LEAF_ATTRS,
        );
        assert_eq!(
            walk(&p, &m, &kspace(r), va),
            ok(0x0005_0634_5678_9abc, 4 << 40)
        );
    }

    // 4K granule, 52-bit VAs and PAs (FEAT_LPA2, DS = 1): 5 levels from
    // level -1 (16 entries). PA[51:50] in descriptor bits 9:8.
    // va 0xfff8_1234_5678_9abc: bits 51:48 = 0x8, 47:39 = 0x024,
    // 38:30 = 0x0d1, 29:21 = 0x0b3, 20:12 = 0x189, offset 0xabc.
    #[test]
    fn k4_va52_lpa2_five_levels() {
        let p = Arm64Paging::new(Granule::K4, 52, 52, Pa52Mode::Lpa2).unwrap();
        // TTBR: ASID 7, base 0x1000, bits 5:2 = 0xc (PA 51:48), CnP
        let r = p.ttbr_to_root(0x0007_0000_0000_1031);
        assert_eq!(r, root(0x000c_0000_0000_1000));
        let mut m = Pages::default();
        let va = 0xfff8_1234_5678_9abc;
        // L-1 entry at root + 0x8*8; next table 0x000c_0000_0040_0000 (51:50 = 0b11)
        m.set(
            0x000c_0000_0000_1040,
            0x40_0000 | (0b11 << 8) | TABLE | TABLE_ATTRS,
        );
        // L0 entry at +0x24*8 = +0x120; next table 0x0001_0000_0000_2000 (49:48 in place)
        m.set(0x000c_0000_0040_0120, 0x0001_0000_0000_2000 | TABLE);
        // L1 entry at +0xd1*8 = +0x688; next table 0x3000
        m.set(0x0001_0000_0000_2688, 0x3000 | TABLE);
        // L2 entry at 0x3000 + 0xb3*8 = 0x3598; next table 0x4000
        m.set(0x3598, 0x4000 | TABLE);
        // L3 entry at 0x4000 + 0x189*8 = 0x4c48; page 0x0009_2345_6789_a000:
        // bits 49:12 = 0x1_2345_6789_a, bits 51:50 = 0b10 → descriptor bits 9:8
        m.set(
            0x4c48,
            0x0001_2345_6789_a000 | (0b10 << 8) | PAGE | LEAF_ATTRS,
        );
        let mut trace = Vec::new();
        let t = p.translate(&m, &kspace(r), VirtAddr(va), Some(&mut trace));
        assert_eq!(t, ok(0x0009_2345_6789_aabc, 4096));
        assert_eq!(
            trace.iter().map(|s| s.level).collect::<Vec<_>>(),
            ["PGD", "P4D", "PUD", "PMD", "PTE"]
        );
        // 512 GiB block at L0 (LPA2 only): base 0x000c_0080_0000_0000 |
        // va[38:0] = 0x34_5678_9abc
        m.set(0x000c_0000_0040_0120, 0x80_0000_0000 | (0b11 << 8) | BLOCK);
        assert_eq!(
            walk(&p, &m, &kspace(r), va),
            ok(0x000c_00b4_5678_9abc, 512 << 30)
        );
        // never a block at level -1
        m.set(0x000c_0000_0000_1040, BLOCK);
        assert!(is_bad_entry(walk(&p, &m, &kspace(r), va), "PGD"));
    }

    // 16K granule with LPA2, 52-bit VAs: 4 levels, 32-entry L0; a 64 GiB
    // block at L1. va 0xfff8_1234_5678_9abc: bits 51:47 = 0x10,
    // 46:36 = 0x123.
    #[test]
    fn k16_va52_lpa2_64g_block() {
        let p = Arm64Paging::new(Granule::K16, 52, 52, Pa52Mode::Lpa2).unwrap();
        let mut m = Pages::default();
        m.set(0x10_0000 + 0x10 * 8, 0x20_0000 | TABLE);
        // base 0x0004_0010_0000_0000: bits 51:50 = 0b01 → descriptor bits 9:8
        m.set(0x20_0000 + 0x123 * 8, 0x10_0000_0000 | (0b01 << 8) | BLOCK);
        // base | va[35:0] = 0x4_5678_9abc
        assert_eq!(
            walk(&p, &m, &kspace(root(0x10_0000)), 0xfff8_1234_5678_9abc),
            ok(0x0004_0014_5678_9abc, 64 << 30)
        );
    }

    #[test]
    fn hostile_tables_error_out() {
        let p = Arm64Paging::new(Granule::K4, 48, 48, Pa52Mode::None).unwrap();
        let s = kspace(root(0x1000));
        let va = 0xffff_0000_0000_0010; // every index 0
        let mut m = Pages::default();
        // a table that points to itself: 4 reads, then its L3 "page" is itself
        m.set(0x1000, 0x1000 | TABLE);
        let mut trace = Vec::new();
        let t = p.translate(&m, &s, VirtAddr(va), Some(&mut trace));
        assert_eq!(t, ok(0x1010, 4096));
        assert_eq!(trace.len(), 4);
        // entry pointing past RAM
        m.set(0x1000, 0xdead_0000_0000 | TABLE);
        assert!(matches!(
            walk(&p, &m, &s, va),
            Err(TranslateError::TableUnreadable { .. })
        ));
        // invalid descriptors (bit 0 clear), with and without bit 1
        for d in [0, 0b10, 0x4000_0000 | 0b10] {
            m.set(0x1000, d);
            let e = walk(&p, &m, &s, va).unwrap_err();
            assert!(
                matches!(e, TranslateError::NotMapped { level: "PGD", .. }),
                "{e}"
            );
            assert!(e.to_string().contains("not mapped"));
        }
        // reserved descriptor type 0b01 at L3
        m.set(0x1000, 0x2000 | TABLE);
        m.set(0x2000, 0x3000 | TABLE);
        m.set(0x3000, 0x4000 | TABLE);
        m.set(0x4000, 0x5000 | BLOCK);
        assert!(is_bad_entry(walk(&p, &m, &s, va), "PTE"));
        m.set(0x4000, 0x5000 | PAGE);
        assert_eq!(walk(&p, &m, &s, va), ok(0x5010, 4096));
    }

    #[test]
    fn configurations() {
        use Granule::*;
        assert!(Arm64Paging::new(K4, 52, 52, Pa52Mode::None).is_err());
        assert!(Arm64Paging::new(K16, 49, 48, Pa52Mode::None).is_err());
        assert!(Arm64Paging::new(K4, 48, 48, Pa52Mode::Lpa).is_err());
        assert!(Arm64Paging::new(K64, 48, 48, Pa52Mode::Lpa2).is_err());
        assert!(Arm64Paging::new(K4, 24, 48, Pa52Mode::None).is_err());
        assert!(Arm64Paging::new(K64, 52, 48, Pa52Mode::None).is_ok());

        // the fixture kernel: PAGESIZE 4096, VA_BITS 48, T1SZ 0x10, 48-bit PAs
        // (a Linux kernel: TBI0 on, TBI1 unknown and so off)
        let linux = |p: Result<Arm64Paging, ConfigError>| p.unwrap().with_tbi(true, false);
        let p = Arm64Paging::from_vmcoreinfo(4096, 48, Some(0x10), Some(48)).unwrap();
        assert_eq!(p, linux(Arm64Paging::new(K4, 48, 48, Pa52Mode::None)));
        assert_eq!(
            p.kernel_root_from_swapper_pg_dir(PhysAddr(0x4158_f000), 48),
            root(0x4158_f000)
        );
        // a 52-bit 64K kernel on 48-bit hardware: TTBR1 is offset into the
        // 1024-entry PGD by (1024 - 64) * 8 = 0x1e00
        let p = Arm64Paging::from_vmcoreinfo(65536, 52, Some(16), Some(52)).unwrap();
        assert_eq!(p, linux(Arm64Paging::new(K64, 48, 48, Pa52Mode::Lpa)));
        assert_eq!(
            p.kernel_root_from_swapper_pg_dir(PhysAddr(0x4100_0000), 52),
            root(0x4100_1e00)
        );
        let p = Arm64Paging::from_vmcoreinfo(4096, 52, Some(12), Some(52)).unwrap();
        assert_eq!(p.pa52(), Pa52Mode::Lpa2);
        let p = Arm64Paging::from_vmcoreinfo(16384, 47, None, None).unwrap();
        assert_eq!(p, linux(Arm64Paging::new(K16, 47, 47, Pa52Mode::None)));
        assert!(Arm64Paging::from_vmcoreinfo(8192, 48, None, None).is_err());

        // TCR_EL1 of the QEMU fixture: TG0 4K, TG1 4K, T0SZ = T1SZ = 16,
        // IPS 48 bits, DS 0, TBI0 and TBI1 (bits 37, 38: Debian's kernel has
        // CONFIG_ARM64_MTE, which sets TBI1)
        let p = Arm64Paging::from_tcr_el1(0x0150_01f5_b550_3510).unwrap();
        assert_eq!(
            p,
            Arm64Paging::new(K4, 48, 48, Pa52Mode::None)
                .unwrap()
                .with_tbi(true, true)
        );
        let p = Arm64Paging::from_tcr_el1(0x0150_01f5_b550_3510 & !(3 << 37)).unwrap();
        assert_eq!(p.tbi(), (false, false));

        let paging = Paging::Aarch64(Arm64Paging::new(K16, 47, 47, Pa52Mode::None).unwrap());
        assert_eq!(paging.page_size(), 16384);
        assert!(paging.is_user(VirtAddr(0x0000_7fff_ffff_f000)));
        assert!(!paging.is_user(VirtAddr(0xffff_8000_0000_0000)));
    }

    // The input-address check with and without top-byte ignore (Arm ARM
    // D8.2; AddrTop is 55 with TBI, 63 without), 4K granule, 48-bit VAs.
    // Every index of va 0xffff_0000_0000_0010 and of its user twin is 0,
    // and the table below maps index 0 at every level.
    #[test]
    fn top_byte_ignore_follows_tcr() {
        let mut m = Pages::default();
        m.set(0x1000, 0x2000 | TABLE);
        m.set(0x2000, 0x3000 | TABLE);
        m.set(0x3000, 0x4000 | TABLE);
        m.set(0x4000, 0x5000 | PAGE);
        let s = AddressSpace {
            kernel: root(0x1000),
            user: Some(root(0x1000)),
        };
        let base = Arm64Paging::new(Granule::K4, 48, 48, Pa52Mode::None).unwrap();
        let non_canonical = |p: &Arm64Paging, va| {
            matches!(
                walk(p, &m, &s, va),
                Err(TranslateError::NonCanonical { .. })
            )
        };
        let user_tagged = 0x5a00_0000_0000_0010u64; // tag 0x5a, bit 55 clear
        let kernel_tagged = 0x5aff_0000_0000_0010u64; // tag 0x5a, bits 55..48 set
        for (tbi0, tbi1) in [(false, false), (true, false), (false, true), (true, true)] {
            let p = base.clone().with_tbi(tbi0, tbi1);
            // canonical addresses always translate
            assert_eq!(walk(&p, &m, &s, 0x10), ok(0x5010, 4096));
            assert_eq!(walk(&p, &m, &s, 0xffff_0000_0000_0010), ok(0x5010, 4096));
            // a tag in the top byte: only where that half has TBI
            assert_eq!(non_canonical(&p, user_tagged), !tbi0, "{tbi0} {tbi1}");
            assert_eq!(non_canonical(&p, kernel_tagged), !tbi1, "{tbi0} {tbi1}");
            if tbi0 {
                assert_eq!(walk(&p, &m, &s, user_tagged), ok(0x5010, 4096));
            }
            // never ignored: bits 55..48 that disagree (a PAC in 54..48, or
            // bit 55 without the bits below it), whatever the top byte
            for va in [
                0x0001_0000_0000_0010u64,
                0x0080_0000_0000_0010,
                0xff7f_0000_0000_0010,
                0xfffe_0000_0000_0010,
                0x5a80_0000_0000_0010,
                0x00ff_0000_0000_0010u64.wrapping_sub(0x1_0000_0000_0000),
            ] {
                assert!(non_canonical(&p, va), "{va:#x} with TBI {tbi0} {tbi1}");
            }
            // without TBI1 the kernel half wants all of 63..48 set
            assert_eq!(non_canonical(&p, 0x00ff_0000_0000_0010), !tbi1);
        }
        // a Linux kernel described by VMCOREINFO: TBI0 on, TBI1 off
        let p = Arm64Paging::from_vmcoreinfo(4096, 48, Some(16), Some(48)).unwrap();
        assert_eq!(walk(&p, &m, &s, user_tagged), ok(0x5010, 4096));
        assert!(non_canonical(&p, kernel_tagged));
    }
}
