//! KASLR and the kernel page-table root without VMCOREINFO: QEMU dumps
//! taken without `-device vmcoreinfo` (or of a kernel whose fw_cfg driver
//! never registered it), raw guest RAM. One file per architecture; each
//! confirms its answer by reading `linux_banner` through the page tables
//! it found.

pub mod aarch64;
pub mod arm;
pub mod i386;
pub mod x86_64;

use crate::addr::{PageTableRoot, VirtAddr};
use crate::dump::PhysicalMemory;
use crate::kernel::symbols::Vmlinux;
use crate::mmu::{AddressSpace, Paging};

/// What every `linux_banner` starts with.
const BANNER: &[u8] = b"Linux version ";

/// What detection found.
#[derive(Clone, Debug)]
pub struct Detected {
    /// The kernel's own root (`init_top_pgt` / `swapper_pg_dir`).
    pub root: PageTableRoot,
    pub paging: Paging,
    pub kaslr_offset: u64,
    /// x86_64 `phys_base`; 0 on arm64.
    pub phys_base: i64,
    /// How, for `corestub info`.
    pub method: String,
}

fn space(root: PageTableRoot) -> AddressSpace {
    AddressSpace {
        kernel: root,
        user: None,
    }
}

/// `terms` summed exactly: addresses plus signed load deltas and phys_base
/// (which may be negative), as a 64-bit address, or `None` if the sum is not
/// one (values from a damaged dump must not wrap into a plausible address).
pub(crate) fn address_sum(terms: &[i128]) -> Option<u64> {
    u64::try_from(terms.iter().sum::<i128>()).ok()
}

/// Reads `buf.len()` bytes at `va` through `root`; false if any byte is
/// unmapped or absent from the dump.
fn read(
    mem: &dyn PhysicalMemory,
    paging: &Paging,
    root: PageTableRoot,
    va: u64,
    buf: &mut [u8],
) -> bool {
    let mut done = 0;
    while done < buf.len() {
        let Some(cur) = va.checked_add(done as u64) else {
            return false;
        };
        let Ok(t) = paging.translate(mem, &space(root), VirtAddr(cur), None) else {
            return false;
        };
        let n = (t.bytes_left_in_page() as usize).min(buf.len() - done);
        if mem.read_phys(t.pa, &mut buf[done..done + n]).is_err() {
            return false;
        }
        done += n;
    }
    true
}

/// PAGE_OFFSET of 32-bit kernels by VMSPLIT (3G, 3G_OPT, 2G, 1G).
pub(crate) const VMSPLITS: [u64; 4] = [0xc000_0000, 0xb000_0000, 0x8000_0000, 0x4000_0000];

/// The first of `candidates` (PAGE_OFFSETs) for which `root_of` gives a
/// table that maps `va` (a kernel table's own address) to the physical
/// address that table was read from: a 32-bit kernel's direct map must
/// map its own page tables. `None` if none does.
pub(crate) fn self_mapping_page_offset(
    mem: &dyn PhysicalMemory,
    candidates: &[u64],
    va: u64,
    root_of: impl Fn(u64) -> Option<(Paging, PageTableRoot)>,
) -> Option<u64> {
    candidates.iter().copied().find(|&po| {
        root_of(po).is_some_and(|(paging, root)| {
            paging
                .translate(mem, &space(root), VirtAddr(va), None)
                .is_ok_and(|t| t.pa == root.0)
        })
    })
}

/// True if `linux_banner`, relocated by `offset`, reads "Linux version "
/// through `root`.
fn banner_ok(
    mem: &dyn PhysicalMemory,
    paging: &Paging,
    root: PageTableRoot,
    vmlinux: &Vmlinux,
    offset: u64,
) -> bool {
    let Some(b) = vmlinux.addr("linux_banner") else {
        return false;
    };
    let mut buf = [0u8; BANNER.len()];
    b.checked_add(offset)
        .is_some_and(|va| read(mem, paging, root, va, &mut buf) && buf == BANNER)
}

/// The kernel release named by the first "Linux version RELEASE " found in
/// physical memory (the image's `linux_banner`, or its copy in the log):
/// how `corestub gdb DUMP` finds the vmlinux of a dump without VMCOREINFO.
/// Reads page by page, lowest address first, and stops at the first hit.
pub fn banner_release(mem: &dyn PhysicalMemory) -> Option<String> {
    const PAGE: usize = 4096;
    // room for a banner cut by a page edge: "Linux version " + a release
    const CARRY: usize = 96;
    let finder = memchr::memmem::Finder::new(BANNER);
    let mut buf = vec![0u8; CARRY + PAGE];
    for r in mem.ranges() {
        let mut carried = 0;
        let mut pa = r.start.0;
        while pa < r.end() {
            let n = ((r.end() - pa) as usize).min(PAGE);
            if mem
                .read_phys(crate::addr::PhysAddr(pa), &mut buf[carried..carried + n])
                .is_err()
            {
                carried = 0; // a hole or an excluded page breaks the text
                pa += n as u64;
                continue;
            }
            let have = carried + n;
            let mut from = 0;
            while let Some(i) = finder.find(&buf[from..have]) {
                let at = from + i + BANNER.len();
                let rest = &buf[at..have];
                match rest.iter().position(|&c| c == b' ') {
                    Some(end)
                        if (1..65).contains(&end)
                            && rest[0].is_ascii_digit()
                            && rest[..end].iter().all(|c| c.is_ascii_graphic()) =>
                    {
                        return Some(String::from_utf8_lossy(&rest[..end]).into_owned());
                    }
                    // cut by the end of what was read: the carry brings it back
                    None if BANNER.len() + rest.len() <= CARRY => break,
                    _ => from = at,
                }
            }
            let keep = have.min(CARRY);
            buf.copy_within(have - keep..have, 0);
            carried = keep;
            pa += n as u64;
        }
    }
    None
}

#[cfg(test)]
mod split_tests {
    use super::{VMSPLITS, self_mapping_page_offset};
    use crate::addr::{PageTableRoot, PhysAddr};
    use crate::mmu::Paging;
    use crate::mmu::i386::I386Paging;
    use crate::mmu::test_pages::Pages;

    // A 2-level i386 swapper_pg_dir at PA 0x1e98000 whose PDE 0x307 maps
    // 0xc1c00000.. (4 MiB) to PA 0x1c00000: the table maps its own address
    // 0xc1e98000 only if PAGE_OFFSET is 0xc0000000.
    #[test]
    fn page_offset_is_the_split_whose_table_maps_itself() {
        let mut m = Pages::default();
        m.set32(0x1e98000 + 0x307 * 4, 0x01c0_0000 | 0x83);
        let swapper = 0xc1e9_8000u64;
        let root_of = |po: u64| {
            let pa = swapper.checked_sub(po)?;
            Some((
                Paging::I386(I386Paging::new(false, po)),
                PageTableRoot(PhysAddr(pa)),
            ))
        };
        let mut candidates = vec![0x8000_0000];
        candidates.extend(VMSPLITS);
        assert_eq!(
            self_mapping_page_offset(&m, &candidates, swapper, root_of),
            Some(0xc000_0000)
        );
        // a table that maps itself elsewhere: no split qualifies
        m.set32(0x1e98000 + 0x307 * 4, 0x0200_0000 | 0x83);
        assert_eq!(
            self_mapping_page_offset(&m, &candidates, swapper, root_of),
            None
        );
    }
}

#[cfg(test)]
mod tests {
    use super::banner_release;
    use crate::addr::PhysAddr;
    use crate::dump::{MemError, PhysRange, PhysicalMemory};

    /// RAM from 0 with one unreadable page (an excluded page of a filtered
    /// dump).
    struct Ram {
        bytes: Vec<u8>,
        hole: u64,
        ranges: Vec<PhysRange>,
    }

    impl PhysicalMemory for Ram {
        fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
            let (a, b) = (pa.0, pa.0 + buf.len() as u64);
            if a < self.hole + 4096 && b > self.hole {
                return Err(MemError::Excluded(PhysAddr(self.hole)));
            }
            let s = self
                .bytes
                .get(a as usize..b as usize)
                .ok_or(MemError::NotInDump(pa))?;
            buf.copy_from_slice(s);
            Ok(())
        }
        fn ranges(&self) -> &[PhysRange] {
            &self.ranges
        }
    }

    fn ram(put: &[(usize, &[u8])], hole: u64) -> Ram {
        let mut bytes = vec![0u8; 6 * 4096];
        for (at, b) in put {
            bytes[*at..*at + b.len()].copy_from_slice(b);
        }
        let len = bytes.len() as u64;
        Ram {
            bytes,
            hole,
            ranges: vec![PhysRange {
                start: PhysAddr(0),
                len,
            }],
        }
    }

    #[test]
    fn release_from_the_first_banner() {
        let banner: &[u8] = b"Linux version 6.12.95+deb12-cloud-amd64 (debian-kernel@lists) #1";
        // across a page edge, after a non-release mention; a later one is
        // not looked at
        let m = ram(
            &[
                (100, b"Linux version unknown "),
                (2 * 4096 - 20, banner),
                (5 * 4096, b"Linux version 9.9.9 (other)"),
            ],
            3 * 4096,
        );
        assert_eq!(
            banner_release(&m).as_deref(),
            Some("6.12.95+deb12-cloud-amd64")
        );
        // the only banner right after an excluded page
        let m = ram(&[(4 * 4096, banner)], 3 * 4096);
        assert_eq!(
            banner_release(&m).as_deref(),
            Some("6.12.95+deb12-cloud-amd64")
        );
        // none
        assert_eq!(banner_release(&ram(&[(10, b"Linux versio")], 4096)), None);
    }
}
