//! 32-bit x86 paging (Intel SDM vol. 3A, ch. 4.3 and 4.4): classic 32-bit
//! paging (two levels of 32-bit entries, 4 KiB pages and 4 MiB PSE pages)
//! and PAE paging (a 4-entry page-directory-pointer table, then two levels
//! of 64-bit entries, 4 KiB and 2 MiB pages).
//!
//! 32-bit paging: CR3 bits 31:12 locate the page directory (VA bits 31:22
//! index it). A PDE with PS (bit 7) maps a 4 MiB page whose physical
//! address is PDE bits 31:22, extended by PDE bits 20:13 as PA bits 39:32
//! (PSE-36, SDM table 4-4). Linux turns CR4.PSE on whenever the CPU has it,
//! which every CPU a 32-bit kernel of today runs on does; a dump does not
//! carry CR4 (kdump), so PS is honoured as crash honours it. Otherwise
//! the PDE's bits 31:12 locate a page table (VA bits 21:12).
//!
//! PAE: CR3 bits 31:5 locate the PDPT (VA bits 31:30 index it). Each
//! entry's address field is bits M−1:12 with MAXPHYADDR M ≤ 52 (SDM 4.4.2),
//! so bits 51:12 are taken at every level; a 2 MiB page's base is bits
//! 51:21 (bit 12 there is PAT). NX (bit 63) and the other attribute bits
//! are masked off. The reserved bits of a PDPTE are not checked: the CPU
//! checks them when CR3 is loaded, so a running kernel's PDPTEs passed.
//!
//! Addresses above 4 GiB do not exist here ([`TranslateError::NonCanonical`]).
//! The kernel half is part of every process's tables, as on x86_64: the
//! user root is used below `PAGE_OFFSET`, the kernel root above it.

use super::{AddressSpace, EntryWidth, Trace, TranslateError, Translation, WalkStep, read_traced};
use crate::addr::{PhysAddr, VirtAddr};
use crate::dump::PhysicalMemory;

const PRESENT: u64 = 1;
const PAGE_SIZE_BIT: u64 = 1 << 7;
/// PAE entries: physical-address bits 12..51.
const PAE_ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// The i386 paging configuration of the dumped machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct I386Paging {
    /// CR4.PAE (Linux CONFIG_X86_PAE, VMCOREINFO `NUMBER(X86_PAE)`).
    pub pae: bool,
    /// Linux PAGE_OFFSET: where the kernel half starts (0xc0000000 with
    /// the usual 3G/1G split).
    pub page_offset: u64,
}

/// One level of a walk: its crash-style name, the entry it read, and what
/// that entry turned out to be.
enum Step {
    Table(u64),
    Leaf(Translation),
}

impl I386Paging {
    pub fn new(pae: bool, page_offset: u64) -> Self {
        I386Paging { pae, page_offset }
    }

    /// The name `corestub info` shows.
    pub fn mode_name(&self) -> &'static str {
        if self.pae { "i386 PAE" } else { "i386 non-PAE" }
    }

    pub fn is_user(&self, va: VirtAddr) -> bool {
        va.0 < self.page_offset
    }

    pub fn translate(
        &self,
        mem: &dyn PhysicalMemory,
        space: &AddressSpace,
        va: VirtAddr,
        mut trace: Option<&mut Vec<WalkStep>>,
    ) -> Result<Translation, TranslateError> {
        if va.0 > u32::MAX as u64 {
            return Err(TranslateError::NonCanonical { va });
        }
        let root = if self.is_user(va) {
            space.user.ok_or(TranslateError::NoRoot { va })?
        } else {
            space.kernel
        };
        if self.pae {
            self.walk_pae(mem, root.0.0, va, &mut trace)
        } else {
            self.walk_32bit(mem, root.0.0, va, &mut trace)
        }
    }

    /// 32-bit paging: PGD (page directory) then PTE, 4-byte entries.
    fn walk_32bit(
        &self,
        mem: &dyn PhysicalMemory,
        cr3: u64,
        va: VirtAddr,
        trace: Trace,
    ) -> Result<Translation, TranslateError> {
        let pd = cr3 & 0xffff_f000;
        let pde_pa = PhysAddr(pd + ((va.0 >> 22) & 0x3ff) * 4);
        let pde = present(mem, va, "PGD", pde_pa, EntryWidth::Bits32, trace)?;
        if pde & PAGE_SIZE_BIT != 0 {
            // PSE-36: PDE bits 20:13 are PA bits 39:32
            let base = (pde & 0xffc0_0000) | (((pde >> 13) & 0xff) << 32);
            return Ok(Translation::through_page(base, 22, va));
        }
        let pt = pde & 0xffff_f000;
        let pte_pa = PhysAddr(pt + ((va.0 >> 12) & 0x3ff) * 4);
        let pte = present(mem, va, "PTE", pte_pa, EntryWidth::Bits32, trace)?;
        Ok(Translation::through_page(pte & 0xffff_f000, 12, va))
    }

    /// PAE paging: PGD (PDPT), PMD (page directory), PTE, 8-byte entries.
    fn walk_pae(
        &self,
        mem: &dyn PhysicalMemory,
        cr3: u64,
        va: VirtAddr,
        trace: Trace,
    ) -> Result<Translation, TranslateError> {
        let pdpt = cr3 & 0xffff_ffe0;
        let pdpte_pa = PhysAddr(pdpt + ((va.0 >> 30) & 3) * 8);
        let pdpte = present(mem, va, "PGD", pdpte_pa, EntryWidth::Bits64, trace)?;
        let mut table = pdpte & PAE_ADDR_MASK;
        for (level, shift) in [("PMD", 21u32), ("PTE", 12)] {
            let entry_pa = PhysAddr(table + ((va.0 >> shift) & 0x1ff) * 8);
            let entry = present(mem, va, level, entry_pa, EntryWidth::Bits64, trace)?;
            match pae_step(entry, shift, va) {
                Step::Leaf(t) => return Ok(t),
                Step::Table(next) => table = next,
            }
        }
        unreachable!("the PTE level always ends the walk")
    }
}

/// A PAE PMD or PTE: a 2 MiB page (PS at the PMD level), a 4 KiB page, or
/// the next table.
fn pae_step(entry: u64, shift: u32, va: VirtAddr) -> Step {
    if shift == 12 || entry & PAGE_SIZE_BIT != 0 {
        Step::Leaf(Translation::through_page(entry & PAE_ADDR_MASK, shift, va))
    } else {
        Step::Table(entry & PAE_ADDR_MASK)
    }
}

/// Reads an entry, records it, and requires its present bit.
fn present(
    mem: &dyn PhysicalMemory,
    va: VirtAddr,
    level: &'static str,
    entry_pa: PhysAddr,
    width: EntryWidth,
    trace: Trace,
) -> Result<u64, TranslateError> {
    let entry = read_traced(mem, va, level, entry_pa, width, trace)?;
    if entry & PRESENT == 0 {
        return Err(TranslateError::not_mapped(va, level, entry_pa, entry));
    }
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmu::test_pages::{Pages, space};

    fn walk(p: &I386Paging, m: &Pages, root: u64, va: u64) -> Result<Translation, TranslateError> {
        p.translate(m, &space(root, root), VirtAddr(va), None)
    }

    // Expected values are computed by hand from the SDM's index fields
    // (32-bit: VA 31:22 / 21:12; PAE: 31:30 / 29:21 / 20:12).
    #[test]
    fn two_level_4k_and_4m_pages() {
        let p = I386Paging::new(false, 0xc000_0000);
        let mut m = Pages::default();
        // va 0xc123_4567: pde index 0x304, pte index 0x234, offset 0x567
        let va = 0xc123_4567;
        m.set32(0x1000 + 0x304 * 4, 0x0000_2000 | 0x67);
        m.set32(0x2000 + 0x234 * 4, 0x0abc_d000 | 0x163);
        let mut trace = Vec::new();
        let t = p
            .translate(&m, &space(0x1000, 0x1000), VirtAddr(va), Some(&mut trace))
            .unwrap();
        assert_eq!(t.pa, PhysAddr(0x0abc_d567));
        assert_eq!(t.page_size, 4096);
        assert_eq!(
            trace,
            vec![
                WalkStep {
                    level: "PGD",
                    entry_pa: PhysAddr(0x1c10),
                    entry: 0x2067
                },
                WalkStep {
                    level: "PTE",
                    entry_pa: PhysAddr(0x28d0),
                    entry: 0x0abc_d163
                },
            ]
        );
        // the neighbouring 32-bit entry (whatever it holds) is not read as
        // the upper half of this one
        m.set32(0x2000 + 0x235 * 4, 0xffff_ffff);
        assert_eq!(walk(&p, &m, 0x1000, va).unwrap().pa, PhysAddr(0x0abc_d567));

        // 4 MiB page: PA = PDE[31:22] | va[21:0]
        m.set32(0x1000 + 0x304 * 4, 0x0c00_0000 | 0xe3);
        let t = walk(&p, &m, 0x1000, va).unwrap();
        assert_eq!(t.pa, PhysAddr(0x0c23_4567));
        assert_eq!(t.page_size, 4 << 20);
        // PSE-36: PDE bits 20:13 = 0x5a give PA bits 39:32
        m.set32(0x1000 + 0x304 * 4, 0x0c00_0000 | (0x5a << 13) | 0xe3);
        assert_eq!(
            walk(&p, &m, 0x1000, va).unwrap().pa,
            PhysAddr(0x5a_0c23_4567)
        );
        // CR3's low flag bits (PWT, PCD) are not address bits
        assert_eq!(
            walk(&p, &m, 0x1018, va).unwrap().pa,
            PhysAddr(0x5a_0c23_4567)
        );
    }

    #[test]
    fn pae_4k_2m_and_high_physical_addresses() {
        let p = I386Paging::new(true, 0xc000_0000);
        let mut m = Pages::default();
        // va 0xc123_4567: pdpt index 3, pmd index 0x009, pte index 0x034
        let va = 0xc123_4567;
        // the PDPT is 32-byte aligned, here inside a page at 0x1fe0
        let pdpt = 0x1fe0;
        m.set(pdpt + 3 * 8, 0x0000_0012_3456_0000 | 1);
        m.set(0x0000_0012_3456_0000 + 9 * 8, 0x3000 | 0x67);
        m.set(0x3000 + 0x34 * 8, 0x000f_ffff_ffff_f000 | 0x163 | (1 << 63));
        let mut trace = Vec::new();
        let t = p
            .translate(&m, &space(pdpt, pdpt), VirtAddr(va), Some(&mut trace))
            .unwrap();
        assert_eq!(t.pa, PhysAddr(0x000f_ffff_ffff_f567));
        let levels: Vec<_> = trace.iter().map(|s| s.level).collect();
        assert_eq!(levels, ["PGD", "PMD", "PTE"]);
        assert_eq!(trace[0].entry_pa, PhysAddr(0x1ff8));
        assert_eq!(trace[2].entry >> 63, 1, "NX is shown as stored");
        // 2 MiB page with PAT (bit 12) and NX: PA = entry[51:21] | va[20:0]
        m.set(
            0x0000_0012_3456_0000 + 9 * 8,
            0x0000_0040_0020_0000 | (1 << 12) | 0xe3 | (1 << 63),
        );
        let t = walk(&p, &m, pdpt, va).unwrap();
        assert_eq!(t.pa, PhysAddr(0x0000_0040_0020_0000 | 0x03_4567));
        assert_eq!(t.page_size, 2 << 20);
    }

    #[test]
    fn user_half_uses_the_user_root() {
        let p = I386Paging::new(true, 0xc000_0000);
        let mut m = Pages::default();
        // user va 0x0804_8123: pdpt 0, pmd 0x040, pte 0x048
        m.set(0x5000, 0x6000 | 1);
        m.set(0x6000 + 0x40 * 8, 0x7000 | 0x67);
        m.set(0x7000 + 0x48 * 8, 0x9000 | 0x67);
        let s = space(0x1000, 0x5000);
        let t = p.translate(&m, &s, VirtAddr(0x0804_8123), None).unwrap();
        assert_eq!(t.pa, PhysAddr(0x9123));
        let kernel_only = AddressSpace { user: None, ..s };
        assert!(matches!(
            p.translate(&m, &kernel_only, VirtAddr(0x0804_8123), None),
            Err(TranslateError::NoRoot { .. })
        ));
        assert!(p.is_user(VirtAddr(0xbfff_ffff)));
        assert!(!p.is_user(VirtAddr(0xc000_0000)));
    }

    #[test]
    fn hostile_tables_error_out() {
        for pae in [false, true] {
            let p = I386Paging::new(pae, 0xc000_0000);
            let mut m = Pages::default();
            // a table pointing to itself: the walk stops at the PTE level
            m.set(0x1000, 0x1000 | 1);
            let t = walk(&p, &m, 0x1000, 0x10);
            assert_eq!(t.unwrap().pa, PhysAddr(0x1010));
            // not present: names the level, entry and address
            m.set(0x1000, 0);
            let e = walk(&p, &m, 0x1000, 0x10).unwrap_err().to_string();
            assert!(
                e.contains("0x10 is not mapped (PGD entry 0x0 at 0x1000"),
                "{e}"
            );
            // a table outside the dump
            m.set(0x1000, 0x7fff_0000 | 1);
            assert!(matches!(
                walk(&p, &m, 0x1000, 0x10),
                Err(TranslateError::TableUnreadable { .. })
            ));
            // no 64-bit addresses
            assert!(matches!(
                walk(&p, &m, 0x1000, 1 << 32),
                Err(TranslateError::NonCanonical { .. })
            ));
        }
    }
}
