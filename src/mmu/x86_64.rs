//! x86_64 4- and 5-level paging (Intel SDM vol. 3, ch. 4.5; AMD APM vol. 2,
//! 5.3), with 2 MiB and 1 GiB pages. Entry bits above the physical-address
//! field (NX, protection keys, software bits) are masked off.
//!
//! Physical addresses: both manuals define the address field of every entry
//! (and of CR3) as bits 51:12 (M−1:12 with MAXPHYADDR M ≤ 52), for 4- and
//! 5-level paging alike. A 2 MiB page's base is bits 51:21 and a 1 GiB
//! page's bits 51:30; bit 12 of those entries is PAT, not address, and the
//! bits between it and the base are reserved (ignored here, as Linux's own
//! `pmd_pfn`/`pud_pfn` ignore them).
//!
//! AMD SME/SEV: with memory encryption active, Linux sets the C-bit
//! (`sme_me_mask`, exported as VMCOREINFO `NUMBER(sme_mask)`, bit 47 on
//! EPYC) in page-table entries and in CR3, inside the address field. It is
//! not an address bit (the kernel's `__sme_clr`, crash's `sme_mask`): it is
//! cleared from CR3 and from every entry at every level.

use super::{AddressSpace, EntryWidth, TranslateError, Translation, WalkStep, read_traced};
use crate::addr::{PhysAddr, VirtAddr};
use crate::dump::PhysicalMemory;

const PRESENT: u64 = 1;
const PAGE_SIZE_BIT: u64 = 1 << 7;
/// Physical-address bits 12..51 of an entry.
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct X86Paging {
    /// 4 or 5 (VMCOREINFO NUMBER(pgtable_l5_enabled)).
    pub levels: u8,
    /// The memory-encryption bit(s) to clear from CR3 and every entry
    /// (VMCOREINFO NUMBER(sme_mask)); 0 without SME/SEV or VMCOREINFO.
    pub sme_mask: u64,
}

impl X86Paging {
    pub fn new(five_level: bool) -> Self {
        X86Paging {
            levels: if five_level { 5 } else { 4 },
            sme_mask: 0,
        }
    }

    /// The same paging with AMD's memory-encryption mask stripped from every
    /// physical address the walk reads (CR3 and all entries).
    pub fn with_sme_mask(self, sme_mask: u64) -> Self {
        X86Paging { sme_mask, ..self }
    }

    /// The physical-address field of CR3 or an entry: bits 51:12 without
    /// the encryption bit. Leaves also clear the bits below their size.
    fn address(&self, entry: u64) -> u64 {
        entry & ADDR_MASK & !self.sme_mask
    }

    fn va_bits(&self) -> u32 {
        if self.levels == 5 { 57 } else { 48 }
    }

    pub fn is_user(&self, va: VirtAddr) -> bool {
        va.0 >> 63 == 0
    }

    fn is_canonical(&self, va: VirtAddr) -> bool {
        let shift = self.va_bits() - 1;
        let top = (va.0 as i64) >> shift;
        top == 0 || top == -1
    }

    pub fn translate(
        &self,
        mem: &dyn PhysicalMemory,
        space: &AddressSpace,
        va: VirtAddr,
        mut trace: Option<&mut Vec<WalkStep>>,
    ) -> Result<Translation, TranslateError> {
        if !self.is_canonical(va) {
            return Err(TranslateError::NonCanonical { va });
        }
        let root = if self.is_user(va) {
            space.user.ok_or(TranslateError::NoRoot { va })?
        } else {
            space.kernel
        };
        let names: &[&'static str] = if self.levels == 5 {
            &["PGD", "P4D", "PUD", "PMD", "PTE"]
        } else {
            &["PGD", "PUD", "PMD", "PTE"]
        };
        let mut table = self.address(root.0.0);
        // One iteration per level: the walk is bounded by construction, so a
        // looping or hostile table costs at most `levels` reads.
        for (i, &level) in names.iter().enumerate() {
            let shift = 12 + 9 * (names.len() - 1 - i) as u32;
            let index = (va.0 >> shift) & 0x1ff;
            let entry_pa = PhysAddr(table + index * 8);
            let entry = read_traced(mem, va, level, entry_pa, EntryWidth::Bits64, &mut trace)?;
            if entry & PRESENT == 0 {
                return Err(TranslateError::not_mapped(va, level, entry_pa, entry));
            }
            let is_leaf =
                shift == 12 || (entry & PAGE_SIZE_BIT != 0 && (shift == 21 || shift == 30));
            if entry & PAGE_SIZE_BIT != 0 && shift > 30 {
                return Err(TranslateError::BadEntry {
                    va,
                    level,
                    entry_pa,
                    entry,
                    reason: "page-size bit set above the PUD level",
                });
            }
            if is_leaf {
                return Ok(Translation::through_page(self.address(entry), shift, va));
            }
            table = self.address(entry);
        }
        unreachable!("the last level is always a leaf")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::PageTableRoot;

    use crate::mmu::test_pages::Pages;

    fn space(root: u64) -> AddressSpace {
        AddressSpace {
            kernel: PageTableRoot(PhysAddr(root)),
            user: Some(PageTableRoot(PhysAddr(root))),
        }
    }

    // Expected values below are computed by hand from the index arithmetic
    // (va bits 47..39, 38..30, 29..21, 20..12), not from the walker.
    #[test]
    fn four_level_4k_2m_1g() {
        let mut m = Pages::default();
        let va: u64 = 0xffff_8880_0123_4567;
        // indices: pgd = 0x111, pud = 0x000, pmd = 0x009, pte = 0x034
        m.set(0x1000 + 0x111 * 8, 0x2000 | 0x63 | (1 << 63));
        m.set(0x2000, 0x3000 | 0x63);
        m.set(0x3000 + 0x009 * 8, 0x4000 | 0x63);
        m.set(
            0x4000 + 0x034 * 8,
            0x1234_5000 | 0x63 | (1 << 63) | (0xf << 59),
        );
        let t = X86Paging::new(false)
            .translate(&m, &space(0x1000), VirtAddr(va), None)
            .unwrap();
        assert_eq!(
            t,
            Translation {
                pa: PhysAddr(0x1234_5567),
                page_size: 4096
            }
        );

        // 2 MiB page at PMD: PA = base | va[20:0]
        m.set(0x3000 + 0x009 * 8, 0x4000_0000 | 0xe3);
        let t = X86Paging::new(false)
            .translate(&m, &space(0x1000), VirtAddr(va), None)
            .unwrap();
        assert_eq!(t.pa, PhysAddr(0x4000_0000 | 0x3_4567));
        assert_eq!(t.page_size, 2 << 20);

        // 1 GiB page at PUD: PA = base | va[29:0]
        m.set(0x2000, 0x8000_0000 | 0xe3);
        let t = X86Paging::new(false)
            .translate(&m, &space(0x1000), VirtAddr(va), None)
            .unwrap();
        assert_eq!(t.pa, PhysAddr(0x8000_0000 | 0x0123_4567));
        assert_eq!(t.page_size, 1 << 30);
    }

    #[test]
    fn five_level() {
        let mut m = Pages::default();
        // va with pml5 index 0x1ff, p4d 0x1, pud 0x2, pmd 0x3, pte 0x4, offset 0x5
        let va: u64 = 0xff00_0000_0000_0000
            | (0x1ff << 48)
            | (1 << 39)
            | (2 << 30)
            | (3 << 21)
            | (4 << 12)
            | 5;
        m.set(0x10000 + 0x1ff * 8, 0x11000 | 1);
        m.set(0x11000 + 8, 0x12000 | 1);
        m.set(0x12000 + 16, 0x13000 | 1);
        m.set(0x13000 + 24, 0x14000 | 1);
        m.set(0x14000 + 32, 0xabc000 | 1);
        let mut trace = Vec::new();
        let t = X86Paging::new(true)
            .translate(&m, &space(0x10000), VirtAddr(va), Some(&mut trace))
            .unwrap();
        assert_eq!(t.pa, PhysAddr(0xabc005));
        assert_eq!(trace.len(), 5);
        assert_eq!(trace[1].level, "P4D");
        // the same address is not canonical for 4-level paging
        assert!(matches!(
            X86Paging::new(false).translate(&m, &space(0x10000), VirtAddr(va), None),
            Err(TranslateError::NonCanonical { .. })
        ));
    }

    #[test]
    fn hostile_tables_error_out() {
        let mut m = Pages::default();
        // a table that points to itself at every level: bounded, ends at PTE
        m.set(0x1000, 0x1000 | 1);
        let t = X86Paging::new(false).translate(&m, &space(0x1000), VirtAddr(0), None);
        assert_eq!(t.unwrap().pa, PhysAddr(0x1000));
        // entry pointing past RAM
        m.set(0x1000, 0xdead_0000_0000 | 1);
        let e = X86Paging::new(false).translate(&m, &space(0x1000), VirtAddr(0), None);
        assert!(matches!(e, Err(TranslateError::TableUnreadable { .. })));
        // not present
        m.set(0x1000, 0);
        let e = X86Paging::new(false).translate(&m, &space(0x1000), VirtAddr(0x10), None);
        assert!(e.unwrap_err().to_string().contains("not mapped"));
    }

    // AMD SME/SEV: the C-bit in CR3 and in every entry, at bit 47 (EPYC)
    // and bit 51 (the top of the field). Same walk as four_level_4k_2m_1g.
    #[test]
    fn sme_bit_is_cleared_at_every_level() {
        for c in [1u64 << 47, 1 << 51] {
            let mut m = Pages::default();
            let va: u64 = 0xffff_8880_0123_4567;
            m.set(0x1000 + 0x111 * 8, 0x2000 | c | 0x63 | (1 << 63));
            m.set(0x2000, 0x3000 | c | 0x63);
            m.set(0x3000 + 0x009 * 8, 0x4000 | c | 0x63);
            m.set(0x4000 + 0x034 * 8, 0x1234_5000 | c | 0x63 | (1 << 63));
            let root = 0x1000 | c;
            let p = X86Paging::new(false).with_sme_mask(c);
            let mut trace = Vec::new();
            let t = p.translate(&m, &space(root), VirtAddr(va), Some(&mut trace));
            assert_eq!(t.unwrap().pa, PhysAddr(0x1234_5567));
            // the trace shows entries as stored, read from stripped addresses
            assert_eq!(trace[0].entry_pa, PhysAddr(0x1000 + 0x111 * 8));
            assert_eq!(trace[3].entry & c, c);
            // without the mask CR3 points 2^47 (or 2^51) too high: no table
            let e = X86Paging::new(false).translate(&m, &space(root), VirtAddr(va), None);
            assert!(
                matches!(e, Err(TranslateError::TableUnreadable { .. })),
                "{e:?}"
            );
            // 2 MiB and 1 GiB leaves carry it too
            m.set(0x3000 + 0x009 * 8, 0x4000_0000 | c | 0xe3);
            let t = p.translate(&m, &space(root), VirtAddr(va), None).unwrap();
            assert_eq!(t.pa, PhysAddr(0x4000_0000 | 0x3_4567));
            m.set(0x2000, 0x8000_0000 | c | 0xe3);
            let t = p.translate(&m, &space(root), VirtAddr(va), None).unwrap();
            assert_eq!(t.pa, PhysAddr(0x8000_0000 | 0x0123_4567));
        }
        // 5-level: the PML5 entry and the P4D carry it as well
        let c = 1u64 << 47;
        let mut m = Pages::default();
        let va: u64 = 0xff00_0000_0000_0000 | (0x1ff << 48) | (1 << 39) | 5;
        m.set(0x10000 + 0x1ff * 8, 0x11000 | c | 1);
        m.set(0x11000 + 8, 0x12000 | c | 1);
        m.set(0x12000, 0x13000 | c | 1);
        m.set(0x13000, 0x14000 | c | 1);
        m.set(0x14000, 0xabc000 | c | 1);
        let p = X86Paging::new(true).with_sme_mask(c);
        let t = p.translate(&m, &space(0x10000 | c), VirtAddr(va), None);
        assert_eq!(t.unwrap().pa, PhysAddr(0xabc005));
    }

    // Physical addresses above 2^46 (up to bit 51) at every page size, with
    // the tables themselves up there. va as in four_level_4k_2m_1g:
    // pgd 0x111, pud 0, pmd 9, pte 0x34, offset 0x567.
    #[test]
    fn physical_addresses_up_to_bit_51() {
        const PAT_LARGE: u64 = 1 << 12; // PAT bit of a 2M/1G entry
        let va: u64 = 0xffff_8880_0123_4567;
        let root = 0x000f_0000_0000_1000;
        let mut m = Pages::default();
        m.set(root + 0x111 * 8, 0x0008_0000_0000_2000 | 0x63 | (1 << 63));
        m.set(0x0008_0000_0000_2000, 0x0004_0000_0000_3000 | 0x63);
        m.set(0x0004_0000_0000_3000 + 9 * 8, 0x000c_0000_0000_4000 | 0x63);
        // 4K leaf: the highest page bits 51:12 can name
        m.set(
            0x000c_0000_0000_4000 + 0x34 * 8,
            0x000f_ffff_ffff_f000 | 0x63,
        );
        let p = X86Paging::new(false);
        let t = p.translate(&m, &space(root), VirtAddr(va), None).unwrap();
        assert_eq!(t.pa, PhysAddr(0x000f_ffff_ffff_f567));
        // 2M leaf at 0x000a_bcde_f020_0000 (bits 51:21), PAT set
        m.set(
            0x0004_0000_0000_3000 + 9 * 8,
            0x000a_bcde_f020_0000 | PAT_LARGE | 0xe3,
        );
        let t = p.translate(&m, &space(root), VirtAddr(va), None).unwrap();
        assert_eq!(t.pa, PhysAddr(0x000a_bcde_f020_0000 | 0x3_4567));
        assert_eq!(t.page_size, 2 << 20);
        // 1G leaf at 0x0008_7654_4000_0000 (bits 51:30), PAT set
        m.set(
            0x0008_0000_0000_2000,
            0x0008_7654_4000_0000 | PAT_LARGE | 0xe3,
        );
        let t = p.translate(&m, &space(root), VirtAddr(va), None).unwrap();
        assert_eq!(t.pa, PhysAddr(0x0008_7654_4000_0000 | 0x0123_4567));
        assert_eq!(t.page_size, 1 << 30);
        // 5-level paging: same field, a 4K page at 2^51 + 0x5000
        let va5: u64 = 0xff00_0000_0000_0000 | (0x1ff << 48) | 0x123;
        m.set(0x000f_0000_0001_0000 + 0x1ff * 8, 0x0002_0000_0001_1000 | 1);
        m.set(0x0002_0000_0001_1000, 0x0002_0000_0001_2000 | 1);
        m.set(0x0002_0000_0001_2000, 0x0002_0000_0001_3000 | 1);
        m.set(0x0002_0000_0001_3000, 0x0002_0000_0001_4000 | 1);
        m.set(0x0002_0000_0001_4000, 0x0008_0000_0000_5000 | 1);
        let t = X86Paging::new(true)
            .translate(&m, &space(0x000f_0000_0001_0000), VirtAddr(va5), None)
            .unwrap();
        assert_eq!(t.pa, PhysAddr(0x0008_0000_0000_5123));
    }

    // Non-canonical addresses fault on 4- and 5-level paging (SDM 3.3.7.1):
    // bits 63..48 (63..57) must copy bit 47 (56).
    #[test]
    fn non_canonical_addresses_fault() {
        let mut m = Pages::default();
        m.set(0x1000, 0x1000 | 1); // everything would map if walked
        m.set(0x1000 + 0xff * 8, 0x1000 | 1);
        m.set(0x1000 + 0x100 * 8, 0x1000 | 1);
        m.set(0x1000 + 0x1ff * 8, 0x1000 | 1);
        let four = X86Paging::new(false);
        let five = X86Paging::new(true);
        for va in [
            0x0000_8000_0000_0000u64, // first address past the user half
            0x7fff_8000_0000_0000,
            0xfffe_8000_0000_0000,
            0x8000_0000_0000_0000,
            0xffff_7fff_ffff_ffff, // last address before the kernel half
        ] {
            assert!(
                matches!(
                    four.translate(&m, &space(0x1000), VirtAddr(va), None),
                    Err(TranslateError::NonCanonical { .. })
                ),
                "{va:#x}"
            );
        }
        for va in [0x0100_0000_0000_0000u64, 0xfeff_ffff_ffff_ffff] {
            assert!(matches!(
                five.translate(&m, &space(0x1000), VirtAddr(va), None),
                Err(TranslateError::NonCanonical { .. })
            ));
        }
        // the edges that are canonical do translate
        for va in [0x0000_7fff_ffff_f000u64, 0xffff_8000_0000_0000] {
            assert!(
                four.translate(&m, &space(0x1000), VirtAddr(va), None)
                    .is_ok()
            );
        }
    }
}
