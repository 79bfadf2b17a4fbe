//! x86_64 4- and 5-level paging (Intel SDM vol. 3, ch. 4.5), with 2 MiB and
//! 1 GiB pages. Entry bits above the physical-address field (NX, protection
//! keys, software bits) are masked off.

use super::{AddressSpace, TranslateError, Translation, WalkStep, read_entry};
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
}

impl X86Paging {
    pub fn new(five_level: bool) -> Self {
        X86Paging {
            levels: if five_level { 5 } else { 4 },
        }
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
        let mut table = root.0.0 & ADDR_MASK;
        // One iteration per level: the walk is bounded by construction, so a
        // looping or hostile table costs at most `levels` reads.
        for (i, &level) in names.iter().enumerate() {
            let shift = 12 + 9 * (names.len() - 1 - i) as u32;
            let index = (va.0 >> shift) & 0x1ff;
            let entry_pa = PhysAddr(table + index * 8);
            let entry = read_entry(mem, va, entry_pa)?;
            if let Some(t) = trace.as_deref_mut() {
                t.push(WalkStep {
                    level,
                    entry_pa,
                    entry,
                });
            }
            if entry & PRESENT == 0 {
                return Err(TranslateError::NotMapped {
                    va,
                    level,
                    entry_pa,
                    entry,
                });
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
                let page_size = 1u64 << shift;
                let base = entry & ADDR_MASK & !(page_size - 1);
                return Ok(Translation {
                    pa: PhysAddr(base | (va.0 & (page_size - 1))),
                    page_size,
                });
            }
            table = entry & ADDR_MASK;
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
}
