//! The translation cache of one address-space owner (a [`Kernel`] and so a
//! session): recent translations (a small TLB), and copies of the
//! page-table pages walks read, kept apart from the dump's data-page cache
//! (drgn keeps its page-table pages apart the same way). Without it every
//! page of a read walks from the root, 4–5 entry reads through the dump's
//! page cache, where the table pages evict data pages.
//!
//! Lifetime and invalidation: a `Kernel` owns one, so it lives and dies
//! with the session. A dump never changes; a live guest gets a new
//! `Kernel`, and so an empty cache, at every stop (target/live.rs), so
//! nothing cached before the guest ran is served after.
//!
//! Only successful translations are cached; a walk that fails reads the
//! tables again next time (the error must name what it read). A table chunk
//! that cannot be read whole is read entry by entry, uncached, so errors are
//! exactly those of an uncached walk.
//!
//! [`Kernel`]: crate::kernel::Kernel

use std::sync::Mutex;

use super::{AddressSpace, Paging, TranslateError, Translation};
use crate::addr::{PhysAddr, VirtAddr};
use crate::dump::{MemError, PhysRange, PhysicalMemory};

/// TLB slots (direct-mapped by page number, page size and root): 32 KiB.
const TLB_SLOTS: usize = 1024;
/// Page-table chunks kept (direct-mapped by physical 4 KiB chunk): 256 KiB.
const TABLE_SLOTS: usize = 64;
const CHUNK: u64 = 4096;

#[derive(Clone, Copy)]
struct TlbEntry {
    /// Root the walk started from; u64::MAX for an empty slot.
    root: u64,
    /// First address of the page or block that maps.
    va_base: u64,
    pa_base: u64,
    page_size: u64,
}

const EMPTY: TlbEntry = TlbEntry {
    root: u64::MAX,
    va_base: 0,
    pa_base: 0,
    page_size: 0,
};

/// Recent translations. An entry sits in the slot of its own page (a 2 MiB
/// block in the slot of its 2 MiB page number), so every address inside a
/// large page finds it; a lookup probes one slot per page size seen so
/// far (one to three in practice), smallest first. Indexing large pages by
/// 4 KiB page number only, as before, missed on nearly every random read
/// of the direct map.
struct Tlb {
    entries: Box<[TlbEntry; TLB_SLOTS]>,
    /// Bit n set: a 2^n-byte page has been cached.
    shifts: u64,
}

impl Tlb {
    fn slot(root: u64, va: u64, shift: u32) -> usize {
        let page = va >> shift;
        let mix = (root >> 12).rotate_left(7) ^ u64::from(shift).wrapping_mul(0x9e37_79b9);
        ((page ^ mix) as usize) % TLB_SLOTS
    }

    fn lookup(&self, root: u64, va: u64) -> Option<Translation> {
        let mut shifts = self.shifts;
        while shifts != 0 {
            let shift = shifts.trailing_zeros();
            shifts &= shifts - 1;
            let e = &self.entries[Self::slot(root, va, shift)];
            let mask = e.page_size.wrapping_sub(1);
            // any entry whose page holds `va` answers, whichever slot
            if e.root == root && e.page_size != 0 && va & !mask == e.va_base {
                return Some(Translation {
                    pa: PhysAddr(e.pa_base | (va & mask)),
                    page_size: e.page_size,
                });
            }
        }
        None
    }

    /// Keeps `t` in the slot of its own page and, for a large page, also
    /// in the slot of `va`'s base page (`base_page`, the granule), which
    /// lookups probe first: reads that come back to one place (a stack, a
    /// structure) hit on the first probe whatever maps them.
    fn insert(&mut self, root: u64, va: u64, t: &Translation, base_page: u64) {
        // walkers give power-of-two page sizes; anything else is not kept
        if !t.page_size.is_power_of_two() || !base_page.is_power_of_two() {
            return;
        }
        let mask = t.page_size - 1;
        let e = TlbEntry {
            root,
            va_base: va & !mask,
            pa_base: t.pa.0 & !mask,
            page_size: t.page_size,
        };
        for size in [t.page_size, base_page.min(t.page_size)] {
            let shift = size.trailing_zeros();
            self.entries[Self::slot(root, va, shift)] = e;
            self.shifts |= 1 << shift;
        }
    }
}

struct Tables {
    tags: [u64; TABLE_SLOTS],
    /// Per slot, the chunk last read through it uncached: a chunk is copied
    /// in on its second miss, so tables touched once (a random read's PTE
    /// page) cost one entry read, not a 4 KiB copy that is never used again.
    seen: [u64; TABLE_SLOTS],
    /// TABLE_SLOTS × CHUNK bytes, allocated on first use.
    data: Vec<u8>,
}

/// See the module documentation.
pub struct WalkCache {
    enabled: bool,
    tlb: Mutex<Tlb>,
    tables: Mutex<Tables>,
}

impl std::fmt::Debug for WalkCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalkCache")
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl WalkCache {
    /// An empty cache; `enabled: false` makes every call walk from the root
    /// (for benchmarks: the before/after of bench/).
    pub fn new(enabled: bool) -> WalkCache {
        WalkCache {
            enabled,
            tlb: Mutex::new(Tlb {
                entries: Box::new([EMPTY; TLB_SLOTS]),
                shifts: 0,
            }),
            tables: Mutex::new(Tables {
                tags: [u64::MAX; TABLE_SLOTS],
                seen: [u64::MAX; TABLE_SLOTS],
                data: Vec::new(),
            }),
        }
    }

    /// [`Paging::translate`] through the cache.
    pub fn translate(
        &self,
        paging: &Paging,
        mem: &dyn PhysicalMemory,
        space: &AddressSpace,
        va: VirtAddr,
    ) -> Result<Translation, TranslateError> {
        if !self.enabled {
            return paging.translate(mem, space, va, None);
        }
        let root = if paging.is_user(va) {
            space.user.map(|r| r.0.0)
        } else {
            Some(space.kernel.0.0)
        };
        let Some(root) = root else {
            return paging.translate(mem, space, va, None);
        };
        let hit = self
            .tlb
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .lookup(root, va.0);
        if let Some(t) = hit {
            return Ok(t);
        }
        let t = paging.translate(&TableReader { mem, cache: self }, space, va, None)?;
        self.tlb.lock().unwrap_or_else(|p| p.into_inner()).insert(
            root,
            va.0,
            &t,
            paging.page_size(),
        );
        Ok(t)
    }

    /// Reads an entry from the cached copy of its table chunk. A chunk
    /// missed for the second time in a row of its slot is copied in; on a
    /// first miss, or if the chunk cannot be read whole, the entry is read
    /// directly.
    fn read_table(
        &self,
        mem: &dyn PhysicalMemory,
        pa: PhysAddr,
        buf: &mut [u8],
    ) -> Result<(), MemError> {
        let base = pa.0 & !(CHUNK - 1);
        let off = (pa.0 - base) as usize;
        if off + buf.len() > CHUNK as usize {
            return mem.read_phys(pa, buf);
        }
        let slot = ((base / CHUNK) as usize) % TABLE_SLOTS;
        let mut t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let at = slot * CHUNK as usize;
        if t.tags[slot] != base {
            if t.seen[slot] != base {
                t.seen[slot] = base;
                drop(t);
                return mem.read_phys(pa, buf);
            }
            if t.data.is_empty() {
                t.data = vec![0; TABLE_SLOTS * CHUNK as usize];
            }
            t.tags[slot] = u64::MAX;
            if mem
                .read_phys(PhysAddr(base), &mut t.data[at..at + CHUNK as usize])
                .is_err()
            {
                drop(t);
                return mem.read_phys(pa, buf);
            }
            t.tags[slot] = base;
        }
        buf.copy_from_slice(&t.data[at + off..at + off + buf.len()]);
        Ok(())
    }
}

/// The dump's memory as walkers see it: entry reads go through the table
/// cache.
struct TableReader<'a> {
    mem: &'a dyn PhysicalMemory,
    cache: &'a WalkCache,
}

impl PhysicalMemory for TableReader<'_> {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        self.cache.read_table(self.mem, pa, buf)
    }

    fn ranges(&self) -> &[PhysRange] {
        self.mem.ranges()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::PageTableRoot;
    use crate::mmu::test_pages::Pages;
    use crate::mmu::x86_64::X86Paging;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts the reads that reach the dump.
    struct Counting(Pages, AtomicUsize);

    impl PhysicalMemory for Counting {
        fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
            self.1.fetch_add(1, Ordering::Relaxed);
            self.0.read_phys(pa, buf)
        }
        fn ranges(&self) -> &[PhysRange] {
            &[]
        }
    }

    fn space(root: u64) -> AddressSpace {
        AddressSpace {
            kernel: PageTableRoot(PhysAddr(root)),
            user: Some(PageTableRoot(PhysAddr(root))),
        }
    }

    /// 4-level tables at 0x1000..0x4fff; va 0xffff_8880_0000_0000 + n·4K
    /// maps to 0x10_0000 + n·4K for n < 512; one 2 MiB page at
    /// 0xffff_8880_0020_0000 → 0x4000_0000.
    fn tables() -> Pages {
        let mut m = Pages::default();
        m.set(0x1000 + 0x111 * 8, 0x2000 | 0x63);
        m.set(0x2000, 0x3000 | 0x63);
        m.set(0x3000, 0x4000 | 0x63);
        m.set(0x3000 + 8, 0x4000_0000 | 0xe3);
        for n in 0..512 {
            m.set(0x4000 + n * 8, (0x10_0000 + n * 4096) | 0x63);
        }
        m
    }

    const VA: u64 = 0xffff_8880_0000_0000;

    #[test]
    fn answers_as_the_walker_does_with_fewer_reads() {
        let mem = Counting(tables(), AtomicUsize::new(0));
        let paging = Paging::X86_64(X86Paging::new(false));
        let s = space(0x1000);
        let cache = WalkCache::new(true);
        let vas: Vec<u64> = (0..512u64)
            .map(|n| VA + n * 4096 + n)
            .chain((0..64).map(|n| VA + 0x20_0000 + n * 0x8123))
            .collect();
        for &va in &vas {
            let want = paging.translate(&mem.0, &s, VirtAddr(va), None);
            assert_eq!(cache.translate(&paging, &mem, &s, VirtAddr(va)), want);
        }
        // first pass: each of the four table chunks is read twice (one
        // entry on its first miss, the whole chunk on its second), not 4
        // reads per page
        assert_eq!(mem.1.load(Ordering::Relaxed), 8);
        for &va in &vas {
            let want = paging.translate(&mem.0, &s, VirtAddr(va), None);
            assert_eq!(cache.translate(&paging, &mem, &s, VirtAddr(va)), want);
        }
        assert_eq!(mem.1.load(Ordering::Relaxed), 8);
        // disabled: every entry of every walk reaches the dump
        let off = WalkCache::new(false);
        mem.1.store(0, Ordering::Relaxed);
        off.translate(&paging, &mem, &s, VirtAddr(VA)).unwrap();
        assert_eq!(mem.1.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn a_large_page_answers_for_every_address_inside() {
        let mem = Counting(tables(), AtomicUsize::new(0));
        let paging = Paging::X86_64(X86Paging::new(false));
        let s = space(0x1000);
        let cache = WalkCache::new(true);
        let big = VA + 0x20_0000;
        cache.translate(&paging, &mem, &s, VirtAddr(big)).unwrap();
        let walked = mem.1.load(Ordering::Relaxed);
        // a 4 KiB page cached beside it must not hide it, nor it the page
        cache.translate(&paging, &mem, &s, VirtAddr(VA)).unwrap();
        let walked = mem.1.load(Ordering::Relaxed) - walked;
        let before = mem.1.load(Ordering::Relaxed);
        for n in 0..512u64 {
            let va = big + n * 4096 + (n & 0xff);
            let t = cache.translate(&paging, &mem, &s, VirtAddr(va)).unwrap();
            assert_eq!(t.pa, PhysAddr(0x4000_0000 + n * 4096 + (n & 0xff)));
            assert_eq!(t.page_size, 0x20_0000);
        }
        let t = cache
            .translate(&paging, &mem, &s, VirtAddr(VA + 0x123))
            .unwrap();
        assert_eq!((t.pa, t.page_size), (PhysAddr(0x10_0123), 4096));
        assert_eq!(
            mem.1.load(Ordering::Relaxed),
            before,
            "every address in the 2 MiB page (and the cached 4 KiB page) hit (the 4 KiB walk read {walked} times)"
        );
    }

    #[test]
    fn tables_touched_once_are_not_copied() {
        // one entry read per level, as without the cache: no 4 KiB copy
        let mem = Counting(tables(), AtomicUsize::new(0));
        let paging = Paging::X86_64(X86Paging::new(false));
        let cache = WalkCache::new(true);
        cache
            .translate(&paging, &mem, &space(0x1000), VirtAddr(VA))
            .unwrap();
        assert_eq!(mem.1.load(Ordering::Relaxed), 4);
        let t = cache.tables.lock().unwrap();
        assert!(t.data.is_empty() && t.tags.iter().all(|&g| g == u64::MAX));
    }

    #[test]
    fn roots_and_failures_are_not_mixed_up() {
        let mut m = tables();
        // a second root with a different mapping of the same va
        m.set(0x9000 + 0x111 * 8, 0xa000 | 0x63);
        m.set(0xa000, 0xb000 | 0x63);
        m.set(0xb000, 0xc000 | 0x63);
        m.set(0xc000, 0x77_7000 | 0x63);
        let paging = Paging::X86_64(X86Paging::new(false));
        let cache = WalkCache::new(true);
        let t1 = cache.translate(&paging, &m, &space(0x1000), VirtAddr(VA + 5));
        let t2 = cache.translate(&paging, &m, &space(0x9000), VirtAddr(VA + 5));
        assert_eq!(t1.unwrap().pa, PhysAddr(0x10_0005));
        assert_eq!(t2.unwrap().pa, PhysAddr(0x77_7005));
        // an unmapped address stays an error naming its level, every time
        for _ in 0..2 {
            let e = cache.translate(&paging, &m, &space(0x1000), VirtAddr(VA + (1 << 30)));
            assert!(
                matches!(e, Err(TranslateError::NotMapped { level: "PUD", .. })),
                "{e:?}"
            );
        }
        // a table outside the dump: the same error as without the cache
        let bad = space(0xdead_0000);
        assert_eq!(
            cache.translate(&paging, &m, &bad, VirtAddr(VA)),
            paging.translate(&m, &bad, VirtAddr(VA), None)
        );
        // no user root: NoRoot, as the walker says
        let kernel_only = AddressSpace {
            kernel: PageTableRoot(PhysAddr(0x1000)),
            user: None,
        };
        assert!(matches!(
            cache.translate(&paging, &m, &kernel_only, VirtAddr(0x1000)),
            Err(TranslateError::NoRoot { .. })
        ));
    }
}
