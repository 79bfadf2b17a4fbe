//! 32-bit ARM (VMSAv7, Arm ARM ARMv7-A/R chapter B3) stage-1 translation,
//! both formats:
//!
//! - Short descriptors (B3.5): a first-level table of 32-bit entries
//!   indexed by VA bits 31:20 (fault, page table, 1 MiB section, or 16 MiB
//!   supersection whose descriptor bits 23:20 and 8:5 are PA bits 35:32 and
//!   39:36), then a 256-entry second-level table indexed by VA bits 19:12
//!   (fault, 64 KiB large page, 4 KiB small page). TTBCR.N splits the
//!   address space: with N > 0, addresses below 2^(32−N) go through TTBR0,
//!   whose table shrinks to 2^(12−N) entries and is aligned to 2^(14−N),
//!   and the rest through TTBR1's full table.
//! - Long descriptors, LPAE (B3.6): 64-bit entries, levels 1..3 (1 GiB and
//!   2 MiB blocks, 4 KiB pages), 40-bit output addresses (bits 39:12).
//!   T0SZ/T1SZ size the two regions (B3.6.4); a region of more than 1 GiB
//!   starts at level 1, a smaller one at level 2. With T1SZ > 0 and T0SZ > 0
//!   the addresses between the regions fault.
//!
//! When TTBCR gives one table all of the address space (N = 0, or T0SZ =
//! T1SZ = 0), which is how Linux runs without LPAE and how a dump known by
//! VMCOREINFO is described (swapper_pg_dir, the full 3-level table), the
//! kernel root serves addresses from `PAGE_OFFSET` up and a process's root
//! the rest, as the process tables copy the kernel entries.
//!
//! Attribute bits (XN, PXN, AP, domain, software bits) are masked off.

use super::{AddressSpace, EntryWidth, Trace, TranslateError, Translation, WalkStep, read_traced};
use crate::addr::{PageTableRoot, PhysAddr, VirtAddr};
use crate::dump::PhysicalMemory;

/// Which translation-table format TTBCR selects, with its size fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArmFormat {
    /// TTBCR.EAE = 0; N = TTBCR bits 2:0.
    Short { n: u8 },
    /// TTBCR.EAE = 1; T0SZ = bits 2:0, T1SZ = bits 18:16.
    Lpae { t0sz: u8, t1sz: u8 },
}

/// The 32-bit ARM paging configuration of the dumped machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArmPaging {
    pub format: ArmFormat,
    /// Where the kernel half starts when one table covers all: Linux's
    /// TASK_SIZE (PAGE_OFFSET − 16 MiB: the modules sit below PAGE_OFFSET,
    /// and process tables copy the kernel entries from there up).
    pub kernel_start: u64,
}

/// LPAE output-address field: bits 39:12.
const LPAE_ADDR_MASK: u64 = 0x0000_00ff_ffff_f000;

/// Which root translates an address and how its table is sized.
struct Region {
    user: bool,
    /// Short: TTBCR.N for a TTBR0 table, 0 for a full table.
    /// LPAE: the region's TxSZ.
    size_field: u32,
}

impl ArmPaging {
    pub fn short(n: u8, kernel_start: u64) -> Self {
        ArmPaging {
            format: ArmFormat::Short { n: n & 7 },
            kernel_start,
        }
    }

    pub fn lpae(t0sz: u8, t1sz: u8, kernel_start: u64) -> Self {
        ArmPaging {
            format: ArmFormat::Lpae {
                t0sz: t0sz & 7,
                t1sz: t1sz & 7,
            },
            kernel_start,
        }
    }

    /// The configuration a TTBCR value describes (EAE is bit 31).
    pub fn from_ttbcr(ttbcr: u32, kernel_start: u64) -> Self {
        if ttbcr >> 31 == 1 {
            Self::lpae((ttbcr & 7) as u8, ((ttbcr >> 16) & 7) as u8, kernel_start)
        } else {
            Self::short((ttbcr & 7) as u8, kernel_start)
        }
    }

    pub fn is_lpae(&self) -> bool {
        matches!(self.format, ArmFormat::Lpae { .. })
    }

    /// The name `corestub info` shows.
    pub fn mode_name(&self) -> &'static str {
        if self.is_lpae() {
            "arm LPAE"
        } else {
            "arm short-descriptor"
        }
    }

    /// The table a TTBR value points to: the ASID (LPAE bits 55:48) and the
    /// walk attributes (short-descriptor bits 6:0) are dropped by the walk,
    /// which aligns the base to the table's size; this keeps bits 39:0.
    pub fn ttbr_to_root(&self, ttbr: u64) -> PageTableRoot {
        PageTableRoot(PhysAddr(ttbr & 0x0000_00ff_ffff_ffff))
    }

    /// True if `va` is translated through TTBR0 (or, when one table covers
    /// everything, lies below PAGE_OFFSET).
    pub fn is_user(&self, va: VirtAddr) -> bool {
        self.region(va).is_none_or(|r| r.user)
    }

    /// The region of `va`, or `None` in the LPAE hole between the regions.
    fn region(&self, va: VirtAddr) -> Option<Region> {
        let below = |bits: u32| va.0 < (1u64 << (32 - bits));
        match self.format {
            ArmFormat::Short { n: 0 } | ArmFormat::Lpae { t0sz: 0, t1sz: 0 } => Some(Region {
                user: va.0 < self.kernel_start,
                size_field: 0,
            }),
            ArmFormat::Short { n } => Some(Region {
                user: below(n as u32),
                size_field: if below(n as u32) { n as u32 } else { 0 },
            }),
            ArmFormat::Lpae { t0sz, t1sz } => {
                let ttbr1_start = if t1sz == 0 {
                    1u64 << (32 - t0sz as u32)
                } else {
                    (1u64 << 32) - (1u64 << (32 - t1sz as u32))
                };
                if va.0 >= ttbr1_start {
                    Some(Region {
                        user: false,
                        size_field: t1sz as u32,
                    })
                } else if below(t0sz as u32) {
                    Some(Region {
                        user: true,
                        size_field: t0sz as u32,
                    })
                } else {
                    None
                }
            }
        }
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
        let region = self.region(va).ok_or(TranslateError::NonCanonical { va })?;
        let root = if region.user {
            space.user.ok_or(TranslateError::NoRoot { va })?
        } else {
            space.kernel
        };
        match self.format {
            ArmFormat::Short { .. } => walk_short(mem, root.0.0, region.size_field, va, &mut trace),
            ArmFormat::Lpae { .. } => walk_lpae(mem, root.0.0, region.size_field, va, &mut trace),
        }
    }
}

/// Short descriptors: PGD (first level), PTE (second level).
fn walk_short(
    mem: &dyn PhysicalMemory,
    ttbr: u64,
    n: u32,
    va: VirtAddr,
    trace: Trace,
) -> Result<Translation, TranslateError> {
    let base = ttbr & 0xffff_ffff & !((1u64 << (14 - n)) - 1);
    let index = (va.0 >> 20) & ((1u64 << (12 - n)) - 1);
    let l1_pa = PhysAddr(base + index * 4);
    let l1 = read_traced(mem, va, "PGD", l1_pa, EntryWidth::Bits32, trace)?;
    match l1 & 3 {
        0 => Err(TranslateError::not_mapped(va, "PGD", l1_pa, l1)),
        1 => {
            let l2_pa = PhysAddr((l1 & 0xffff_fc00) + ((va.0 >> 12) & 0xff) * 4);
            let l2 = read_traced(mem, va, "PTE", l2_pa, EntryWidth::Bits32, trace)?;
            match l2 & 3 {
                0 => Err(TranslateError::not_mapped(va, "PTE", l2_pa, l2)),
                1 => Ok(Translation::through_page(l2 & 0xffff_0000, 16, va)),
                _ => Ok(Translation::through_page(l2 & 0xffff_f000, 12, va)),
            }
        }
        // 0b10, or 0b11 (section with PXN where implemented)
        _ if l1 & (1 << 18) != 0 => {
            // supersection: PA 39:36 = bits 8:5, PA 35:32 = bits 23:20
            let base = (l1 & 0xff00_0000) | (((l1 >> 20) & 0xf) << 32) | (((l1 >> 5) & 0xf) << 36);
            Ok(Translation::through_page(base, 24, va))
        }
        _ => Ok(Translation::through_page(l1 & 0xfff0_0000, 20, va)),
    }
}

/// LPAE: PGD (level 1), PMD (level 2), PTE (level 3). A region of at most
/// 1 GiB (TxSZ ≥ 2) starts at level 2.
fn walk_lpae(
    mem: &dyn PhysicalMemory,
    ttbr: u64,
    txsz: u32,
    va: VirtAddr,
    trace: Trace,
) -> Result<Translation, TranslateError> {
    let (first, align) = if txsz <= 1 {
        (1, 5 - txsz)
    } else {
        (2, 14 - txsz)
    };
    let mut table = ttbr & 0x0000_00ff_ffff_ffff & !((1u64 << align) - 1);
    // bits of VA the region resolves, then 9 per level below level 1
    let mut index_bits = 32 - txsz - if first == 1 { 30 } else { 21 };
    for level in first..=3u32 {
        let shift = 12 + 9 * (3 - level);
        let name = ["PGD", "PMD", "PTE"][level as usize - 1];
        let entry_pa = PhysAddr(table + ((va.0 >> shift) & ((1u64 << index_bits) - 1)) * 8);
        let entry = read_traced(mem, va, name, entry_pa, EntryWidth::Bits64, trace)?;
        match (entry & 3, level) {
            (0 | 2, _) => return Err(TranslateError::not_mapped(va, name, entry_pa, entry)),
            (1, 3) => {
                return Err(TranslateError::BadEntry {
                    va,
                    level: name,
                    entry_pa,
                    entry,
                    reason: "reserved descriptor type 0b01 at level 3",
                });
            }
            (3, 3) | (1, _) => {
                return Ok(Translation::through_page(entry & LPAE_ADDR_MASK, shift, va));
            }
            _ => table = entry & LPAE_ADDR_MASK,
        }
        index_bits = 9;
    }
    unreachable!("level 3 always ends the walk")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmu::test_pages::{Pages, space};

    fn walk(p: &ArmPaging, m: &Pages, root: u64, va: u64) -> Result<Translation, TranslateError> {
        p.translate(m, &space(root, root), VirtAddr(va), None)
    }

    // Expected values are computed by hand from B3.5 / B3.6's index fields.
    #[test]
    fn short_section_supersection_and_pages() {
        let p = ArmPaging::short(0, 0xc000_0000);
        let mut m = Pages::default();
        // va 0xc123_4567: L1 index 0xc12, L2 index 0x34, offset 0x567
        let va = 0xc123_4567;
        let l1 = 0x4000 + 0xc12 * 4;
        // section (0b10): PA = desc[31:20] | va[19:0]
        m.set32(l1, 0x8050_0000 | 0xc0e);
        let t = walk(&p, &m, 0x4000, va).unwrap();
        assert_eq!(t.pa, PhysAddr(0x8053_4567));
        assert_eq!(t.page_size, 1 << 20);
        // section with PXN (0b11) is a section too
        m.set32(l1, 0x8050_0000 | 0xc0f);
        assert_eq!(walk(&p, &m, 0x4000, va).unwrap().pa, PhysAddr(0x8053_4567));
        // supersection: bit 18; PA 35:32 = bits 23:20 (0x7), 39:36 = bits 8:5 (0xa)
        m.set32(l1, 0x8f00_0000 | (0x7 << 20) | (1 << 18) | (0xa << 5) | 2);
        let t = walk(&p, &m, 0x4000, va).unwrap();
        assert_eq!(t.pa, PhysAddr(0xa7_8f23_4567));
        assert_eq!(t.page_size, 16 << 20);
        // page table at 0x9c00 (1 KiB aligned), small page (0b1x)
        m.set32(l1, 0x9c00 | 1);
        m.set32(0x9c00 + 0x34 * 4, 0x7654_3000 | 0x32);
        let mut trace = Vec::new();
        let t = p
            .translate(&m, &space(0x4000, 0x4000), VirtAddr(va), Some(&mut trace))
            .unwrap();
        assert_eq!(t.pa, PhysAddr(0x7654_3567));
        assert_eq!(t.page_size, 4096);
        assert_eq!(
            trace,
            vec![
                WalkStep {
                    level: "PGD",
                    entry_pa: PhysAddr(0x7048),
                    entry: 0x9c01
                },
                WalkStep {
                    level: "PTE",
                    entry_pa: PhysAddr(0x9cd0),
                    entry: 0x7654_3032
                },
            ]
        );
        // small page with XN (0b11)
        m.set32(0x9c00 + 0x34 * 4, 0x7654_3000 | 0x33);
        assert_eq!(walk(&p, &m, 0x4000, va).unwrap().pa, PhysAddr(0x7654_3567));
        // large page (0b01): PA = desc[31:16] | va[15:0]
        m.set32(0x9c00 + 0x34 * 4, 0x7650_0000 | 1);
        let t = walk(&p, &m, 0x4000, va).unwrap();
        assert_eq!(t.pa, PhysAddr(0x7650_4567));
        assert_eq!(t.page_size, 64 << 10);
        // faults name their level
        m.set32(0x9c00 + 0x34 * 4, 0);
        let e = walk(&p, &m, 0x4000, va).unwrap_err().to_string();
        assert!(e.contains("PTE entry 0x0 at 0x9cd0"), "{e}");
        m.set32(l1, 0);
        let e = walk(&p, &m, 0x4000, va).unwrap_err().to_string();
        assert!(e.contains("PGD entry 0x0 at 0x7048"), "{e}");
    }

    #[test]
    fn short_ttbcr_n_splits_ttbr0_and_ttbr1() {
        // N = 2: TTBR0 covers 0..1 GiB with a 1024-entry table aligned to
        // 4 KiB; TTBR1 the rest with the full table.
        let p = ArmPaging::from_ttbcr(2, 0xc000_0000);
        assert_eq!(p.format, ArmFormat::Short { n: 2 });
        let mut m = Pages::default();
        // user va 0x3ff0_1234: index 0x3ff (VA 29:20); TTBR0 0x6000 with
        // attribute bits 0x4a below the 4 KiB alignment
        m.set32(0x6000 + 0x3ff * 4, 0x1230_0000 | 2);
        let s = space(0x8000, 0x6000 | 0x4a);
        let t = p.translate(&m, &s, VirtAddr(0x3ff0_1234), None).unwrap();
        assert_eq!(t.pa, PhysAddr(0x1230_1234));
        assert!(p.is_user(VirtAddr(0x3fff_ffff)));
        // 0x4000_0000 is TTBR1's already (index 0x400 of the full table),
        // even though it is below PAGE_OFFSET
        assert!(!p.is_user(VirtAddr(0x4000_0000)));
        m.set32(0x8000 + 0x400 * 4, 0x4560_0000 | 2);
        let t = p.translate(&m, &s, VirtAddr(0x4000_0042), None).unwrap();
        assert_eq!(t.pa, PhysAddr(0x4560_0042));
        // N = 0: one table; PAGE_OFFSET picks the root
        let p = ArmPaging::short(0, 0xc000_0000);
        assert!(p.is_user(VirtAddr(0xbfff_ffff)));
        assert!(!p.is_user(VirtAddr(0xc000_0000)));
    }

    #[test]
    fn lpae_blocks_pages_and_40_bit_addresses() {
        let p = ArmPaging::lpae(0, 0, 0xc000_0000);
        let mut m = Pages::default();
        // va 0xc123_4567: L1 index 3, L2 index 9, L3 index 0x34
        let va = 0xc123_4567;
        // the 4-entry level-1 table is 32-byte aligned
        let root = 0x2fe0;
        m.set(root + 3 * 8, 0x00ff_0000_0000 | 3 | (0x7 << 59));
        m.set(0x00ff_0000_0000 + 9 * 8, 0x5000 | 3);
        m.set(0x5000 + 0x34 * 8, 0x00ff_ffff_f000 | 0x7c3 | (1 << 54));
        let mut trace = Vec::new();
        let t = p
            .translate(&m, &space(root, root), VirtAddr(va), Some(&mut trace))
            .unwrap();
        assert_eq!(t.pa, PhysAddr(0x00ff_ffff_f567));
        let levels: Vec<_> = trace.iter().map(|s| s.level).collect();
        assert_eq!(levels, ["PGD", "PMD", "PTE"]);
        assert_eq!(trace[0].entry_pa, PhysAddr(0x2ff8));
        // 2 MiB block: PA = desc[39:21] | va[20:0]
        m.set(
            0x00ff_0000_0000 + 9 * 8,
            0x0080_0020_0000 | 0x711 | (1 << 54),
        );
        let t = walk(&p, &m, root, va).unwrap();
        assert_eq!(t.pa, PhysAddr(0x0080_0023_4567));
        assert_eq!(t.page_size, 2 << 20);
        // 1 GiB block at level 1
        m.set(root + 3 * 8, 0x0040_4000_0000 | 0x711);
        let t = walk(&p, &m, root, va).unwrap();
        assert_eq!(t.pa, PhysAddr(0x0040_4123_4567));
        assert_eq!(t.page_size, 1 << 30);
        // bits above 39 and the ASID are not address bits
        m.set(root + 3 * 8, 0x5000 | 3 | (0xf << 40));
        m.set(0x5000 + 9 * 8, 0x6000 | 3);
        m.set(0x6000 + 0x34 * 8, 0x9000 | 1);
        let e = walk(&p, &m, root, va).unwrap_err().to_string();
        assert!(
            e.contains("reserved descriptor type 0b01 at level 3"),
            "{e}"
        );
        m.set(0x6000 + 0x34 * 8, 0x9000 | 3);
        let ttbr = (0x42u64 << 48) | root;
        assert_eq!(
            walk(&p, &m, p.ttbr_to_root(ttbr).0.0, va).unwrap().pa,
            PhysAddr(0x9567)
        );
        // invalid (0b10 at level 2)
        m.set(0x5000 + 9 * 8, 0x6000 | 2);
        let e = walk(&p, &m, root, va).unwrap_err().to_string();
        assert!(e.contains("PMD entry 0x6002 at 0x5048"), "{e}");
    }

    #[test]
    fn lpae_t1sz_starts_the_kernel_walk_at_level_2() {
        // Linux VMSPLIT_3G: T0SZ = 0, T1SZ = 2. TTBR1 covers 0xc000_0000..
        // with a 512-entry level-2 table (VA 29:21); TTBR0 the rest.
        let p = ArmPaging::from_ttbcr(0x8002_0000, 0xc000_0000);
        assert_eq!(p.format, ArmFormat::Lpae { t0sz: 0, t1sz: 2 });
        let mut m = Pages::default();
        m.set(0x7000 + 9 * 8, 0x6000 | 3);
        m.set(0x6000 + 0x34 * 8, 0x1234_5000 | 0x7c3);
        let s = space(0x7000, 0x3000);
        let mut trace = Vec::new();
        let t = p
            .translate(&m, &s, VirtAddr(0xc123_4567), Some(&mut trace))
            .unwrap();
        assert_eq!(t.pa, PhysAddr(0x1234_5567));
        assert_eq!(trace[0].level, "PMD");
        assert!(p.is_user(VirtAddr(0xbfff_ffff)));
        // T0SZ = 1, T1SZ = 2: 0x8000_0000..0xc000_0000 is in neither region
        let p = ArmPaging::lpae(1, 2, 0xc000_0000);
        assert!(matches!(
            p.translate(&m, &s, VirtAddr(0x8000_0000), None),
            Err(TranslateError::NonCanonical { .. })
        ));
        // T0SZ = 1: TTBR0's level-1 table has 2 entries (VA bit 30)
        m.set(0x3000 + 8, 0x4000_0000 | 1);
        let t = p.translate(&m, &s, VirtAddr(0x4000_0123), None).unwrap();
        assert_eq!(t.pa, PhysAddr(0x4000_0123));
        // T0SZ = 2, T1SZ = 0: TTBR1 from 1 GiB up, a full 4-entry table
        let p = ArmPaging::lpae(2, 0, 0xc000_0000);
        assert!(!p.is_user(VirtAddr(0x4000_0000)));
        m.set(0x7000 + 3 * 8, 0x8000_0000 | 1);
        let t = p.translate(&m, &s, VirtAddr(0xc000_0010), None).unwrap();
        assert_eq!(t.pa, PhysAddr(0x8000_0010));
    }

    #[test]
    fn hostile_tables_error_out() {
        for p in [
            ArmPaging::short(0, 0xc000_0000),
            ArmPaging::lpae(0, 0, 0xc000_0000),
        ] {
            let mut m = Pages::default();
            // tables pointing to themselves: bounded by the level count
            m.set(0x4000, 0x4000 | 3);
            let r = walk(&p, &m, 0x4000, 0x10);
            assert!(r.is_ok(), "{p:?} {r:?}");
            // a table outside the dump
            m.set(0x4000, 0x7fff_0000 | 1 | (p.is_lpae() as u64 * 2));
            assert!(matches!(
                walk(&p, &m, 0x4000, 0x10),
                Err(TranslateError::TableUnreadable { .. })
            ));
            assert!(matches!(
                walk(&p, &m, 0x4000, 1 << 32),
                Err(TranslateError::NonCanonical { .. })
            ));
        }
    }
}
