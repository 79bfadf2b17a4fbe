//! The kernel's linear maps of physical memory: the direct map (PA → VA)
//! and vmemmap (PFN → `struct page`), and reading one `struct page` with the
//! offsets VMCOREINFO exports.

use crate::addr::{Arch, PhysAddr, VirtAddr};
use crate::kernel::{Kernel, objects};

/// `sizeof(struct page)` when VMCOREINFO does not say (64 on every 64-bit
/// kernel without debug options that grow it).
const DEFAULT_PAGE_STRUCT_SIZE: u64 = 64;

/// log2 of the page size.
pub fn page_shift(k: &Kernel) -> u32 {
    k.paging.page_size().trailing_zeros()
}

/// `SIZE(page)` (VMCOREINFO, else DWARF).
pub fn page_struct_size(k: &Kernel) -> u64 {
    k.type_size("page").unwrap_or(DEFAULT_PAGE_STRUCT_SIZE)
}

/// Reads an x86_64 base variable (`page_offset_base`, `vmemmap_base`): the
/// address of the variable comes from vmlinux, its value from the dump.
fn x86_base_variable(k: &Kernel, name: &str) -> Result<u64, String> {
    let sym = k.symbol(name).ok_or_else(|| {
        format!("the symbol {name} is unknown (give the matching vmlinux with --vmlinux)")
    })?;
    k.read_u64(&k.kernel_space(), sym)
        .map_err(|e| format!("{name} at {sym}: {e}"))
}

/// arm64 `PHYS_OFFSET` (memstart_addr).
fn arm64_phys_offset(k: &Kernel) -> Result<u64, String> {
    k.number("PHYS_OFFSET").ok_or_else(|| {
        "VMCOREINFO lacks NUMBER(PHYS_OFFSET) and memstart_addr is unknown".to_string()
    })
}

fn arm64_va_bits(k: &Kernel) -> Result<u32, String> {
    k.number("VA_BITS")
        .map(|v| v as u32)
        .filter(|v| (36..=52).contains(v))
        .ok_or_else(|| "no plausible VA_BITS (VMCOREINFO or detected)".to_string())
}

/// Where the direct map starts and the physical address it starts at:
/// VA = base + (PA − phys_start).
/// x86_64: `page_offset_base` (randomised by KASLR), from PA 0.
/// arm64: PAGE_OFFSET = −2^VA_BITS, from PHYS_OFFSET.
pub fn direct_map(k: &Kernel) -> Result<(u64, u64), String> {
    match k.arch {
        Arch::X86_64 => Ok((x86_base_variable(k, "page_offset_base")?, 0)),
        Arch::Aarch64 => {
            let bits = arm64_va_bits(k)?;
            Ok((u64::MAX << bits, arm64_phys_offset(k)?))
        }
        // lowmem only: highmem pages have no permanent kernel address
        Arch::I386 | Arch::Arm => Ok((
            k.number("PAGE_OFFSET").ok_or("PAGE_OFFSET is unknown")?,
            k.number("PHYS_OFFSET").ok_or("PHYS_OFFSET is unknown")?,
        )),
    }
}

/// The direct-map virtual address of `pa`.
pub fn ptov(k: &Kernel, pa: PhysAddr) -> Result<VirtAddr, String> {
    let (base, start) = direct_map(k)?;
    let offset = linear_offset(pa.0, start).ok_or_else(|| {
        format!("physical address {pa} is below the start of the direct map ({start:#x})")
    })?;
    VirtAddr(base).checked_add(offset).ok_or_else(|| {
        format!("physical address {pa} is past the end of the direct map at {base:#x}")
    })
}

/// `pa`'s offset into a linear map that starts at physical `phys_offset`
/// (signed, see [`signed_phys_offset`]); None below it.
fn linear_offset(pa: u64, phys_offset: u64) -> Option<u64> {
    u64::try_from(i128::from(pa) - i128::from(signed_phys_offset(phys_offset))).ok()
}

/// arm64's `memstart_addr` (PHYS_OFFSET) is an `s64`: with KASLR, 5.x
/// kernels randomise the linear map by making it negative (5.10 arm64
/// cloud: 0xfffff41c00000000), and the kernel's `__phys_to_virt` and
/// `vmemmap` do signed arithmetic with it. Physical addresses stay below
/// 2^52, so the sign bit never belongs to a real address.
fn signed_phys_offset(po: u64) -> i64 {
    po as i64
}

/// `vmemmap`: the (possibly notional) address of the `struct page` of PFN 0.
/// x86_64: the `vmemmap_base` variable. arm64: VMEMMAP_START −
/// (PHYS_OFFSET >> PAGE_SHIFT) · SIZE(page), VMEMMAP_START from VMCOREINFO,
/// else from whichever of the kernel's formulas (they changed in 5.11 and
/// 6.9) has the dump's RAM described by mapped `struct page`s.
pub fn vmemmap(k: &Kernel) -> Result<u64, String> {
    match k.arch {
        Arch::X86_64 => x86_base_variable(k, "vmemmap_base"),
        Arch::I386 | Arch::Arm => flat_mem_map(k),
        Arch::Aarch64 => {
            let shift = page_shift(k);
            let size = page_struct_size(k);
            // memstart_addr >> PAGE_SHIFT in the kernel: an arithmetic
            // shift of an s64 (see signed_phys_offset)
            let first_pfn = (signed_phys_offset(arm64_phys_offset(k)?) >> shift) as u64;
            let vmemmap = |start: u64| start.wrapping_sub(first_pfn.wrapping_mul(size));
            if let Some(s) = k.number("VMEMMAP_START") {
                return Ok(vmemmap(s));
            }
            let starts = arm64_vmemmap_starts(arm64_va_bits(k)?, shift, size);
            let space = k.kernel_space();
            let described = |base: u64| {
                k.dump.memory.ranges().iter().take(4).all(|r| {
                    [r.start.0, r.end() - 1].iter().all(|pa| {
                        let page = base.wrapping_add((pa >> shift).wrapping_mul(size));
                        k.paging
                            .translate(k.dump.memory.as_ref(), &space, VirtAddr(page), None)
                            .is_ok()
                    })
                })
            };
            let first = vmemmap(starts[0]);
            Ok(starts
                .into_iter()
                .map(vmemmap)
                .find(|&b| described(b))
                .unwrap_or(first))
        }
    }
}

/// 32-bit FLATMEM: `mem_map` points to the `struct page` of the first PFN
/// (ARCH_PFN_OFFSET = PHYS_OFFSET >> PAGE_SHIFT); PFN 0's is that many
/// entries before it. SPARSEMEM kernels have no `mem_map` (not handled).
fn flat_mem_map(k: &Kernel) -> Result<u64, String> {
    let sym = k
        .symbol("mem_map")
        .ok_or("no mem_map symbol (a SPARSEMEM 32-bit kernel: not supported)")?;
    let first = k
        .read_ulong(&k.kernel_space(), sym)
        .map_err(|e| format!("mem_map at {sym}: {e}"))?;
    let pfn_offset = k.number("PHYS_OFFSET").unwrap_or(0) >> page_shift(k);
    Ok(first.wrapping_sub(pfn_offset.wrapping_mul(page_struct_size(k))))
}

/// arm64 VMEMMAP_START as the kernel computes it, newest formula first:
/// 6.9+ `-SZ_1G - ((_PAGE_END(VA_BITS_MIN) - PAGE_OFFSET) >> PAGE_SHIFT) *
/// sizeof(struct page)`; 5.11–6.8 `-(1 << (VA_BITS - (PAGE_SHIFT - 6)))`;
/// 5.4–5.10 `-(1 << (VA_BITS - PAGE_SHIFT - 1 + 6)) - SZ_2M`.
fn arm64_vmemmap_starts(va_bits: u32, page_shift: u32, page_struct: u64) -> [u64; 3] {
    // VA_BITS_MIN: 52-bit kernels fall back to 48 (47 with 16K pages).
    let va_min = if va_bits == 52 {
        if page_shift == 14 { 47 } else { 48 }
    } else {
        va_bits
    };
    let page_offset = u64::MAX << va_bits;
    let page_end = u64::MAX << (va_min - 1);
    let v6_9 = (u64::MAX << 30)
        .wrapping_sub((page_end.wrapping_sub(page_offset) >> page_shift).wrapping_mul(page_struct));
    let v5_11 = u64::MAX << (va_bits - (page_shift - 6));
    let v5_4 = (0u64)
        .wrapping_sub(1u64 << (va_bits - page_shift - 1 + 6))
        .wrapping_sub(2 << 20);
    [v6_9, v5_11, v5_4]
}

/// The address of the `struct page` describing `pa`'s page frame.
pub fn page_struct(k: &Kernel, pa: PhysAddr) -> Result<VirtAddr, String> {
    let pfn = pa.0 >> page_shift(k);
    Ok(VirtAddr(
        vmemmap(k)?.wrapping_add(pfn.wrapping_mul(page_struct_size(k))),
    ))
}

/// The fields of one `struct page` that crash's `kmem -p` shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageInfo {
    /// Address of the `struct page`.
    pub page: VirtAddr,
    /// Physical address of the page frame.
    pub pa: PhysAddr,
    pub flags: u64,
    pub refcount: i32,
    pub mapcount: Option<i32>,
    pub mapping: u64,
    /// `index` (not in VMCOREINFO: from DWARF, else right after `mapping`).
    pub index: u64,
    pub private: Option<u64>,
}

/// Reads the `struct page` of `pa`'s frame.
pub fn read_page(k: &Kernel, pa: PhysAddr) -> Result<PageInfo, String> {
    let page = page_struct(k, pa)?;
    let size = page_struct_size(k).min(4096) as usize;
    let mut b = vec![0u8; size];
    k.read_virt(&k.kernel_space(), page, &mut b)
        .map_err(|e| format!("struct page at {page}: {e}"))?;
    let at = |off: u64, n: usize| -> Option<u64> {
        let s = b.get(off as usize..off as usize + n)?;
        let mut v = [0u8; 8];
        v[..n].copy_from_slice(s);
        Some(u64::from_le_bytes(v))
    };
    let field = |m: objects::Member, n: usize| -> Result<u64, String> {
        at(m.offset, n)
            .ok_or_else(|| format!("{m} (offset {}) is past SIZE(page) = {size}", m.offset))
    };
    let need = |path: &'static str, n: usize| -> Result<u64, String> {
        field(
            objects::member(k, "page", path).map_err(|e| e.to_string())?,
            n,
        )
    };
    // members some configurations lack (or VMCOREINFO alone cannot give)
    let maybe = |path: &'static str, n: usize| -> Option<u64> {
        objects::optional_member(k, "page", path)
            .ok()
            .flatten()
            .and_then(|m| field(m, n).ok())
    };
    let mapping = objects::member(k, "page", "mapping").map_err(|e| e.to_string())?;
    // `index` is not in VMCOREINFO: DWARF, else right after `mapping`
    let index = maybe("index", 8).or_else(|| at(mapping.offset + 8, 8));
    Ok(PageInfo {
        page,
        pa: PhysAddr(pa.0 & !(k.paging.page_size() - 1)),
        flags: need("flags", 8)?,
        refcount: need("_refcount", 4)? as u32 as i32,
        mapcount: maybe("_mapcount", 4).map(|v| v as u32 as i32),
        mapping: field(mapping, 8)?,
        index: index.unwrap_or(0),
        private: maybe("private", 8),
    })
}

/// `enum pageflags` bits 0..=20 as Linux 5.x/6.x numbers them on 64-bit
/// (the configuration-dependent flags come after PG_unevictable).
const PAGEFLAGS: [&str; 21] = [
    "locked",
    "referenced",
    "uptodate",
    "dirty",
    "lru",
    "active",
    "workingset",
    "waiters",
    "error",
    "slab",
    "owner_priv_1",
    "arch_1",
    "reserved",
    "private",
    "private_2",
    "writeback",
    "head",
    "mappedtodisk",
    "reclaim",
    "swapbacked",
    "unevictable",
];

/// Names of the set page flags, as crash lists them ("lru reserved"). The
/// built-in numbering is used only when the PG_* numbers VMCOREINFO exports
/// agree with it; otherwise only those exported flags are named.
pub fn page_flag_names(k: &Kernel, flags: u64) -> Vec<String> {
    let exported: Vec<(String, u64)> = [
        "lru",
        "private",
        "swapcache",
        "swapbacked",
        "slab",
        "hwpoison",
    ]
    .iter()
    .filter_map(|n| Some((n.to_string(), k.number(&format!("PG_{n}"))?)))
    .chain(
        k.number("PG_head_mask")
            .filter(|m| m.is_power_of_two())
            .map(|m| ("head".to_string(), m.trailing_zeros() as u64)),
    )
    .collect();
    let table_ok = !exported.is_empty()
        && exported.iter().all(|(n, bit)| {
            // swapcache aliases owner_priv_1, hwpoison is past the table
            PAGEFLAGS.get(*bit as usize) == Some(&n.as_str())
                || (n == "swapcache" && *bit == 10)
                || *bit as usize >= PAGEFLAGS.len()
        });
    let mut names = Vec::new();
    if table_ok {
        for (bit, n) in PAGEFLAGS.iter().enumerate() {
            if flags & (1 << bit) != 0 {
                names.push(n.to_string());
            }
        }
        for (n, bit) in &exported {
            if *bit as usize >= PAGEFLAGS.len() && *bit < 64 && flags & (1 << bit) != 0 {
                names.push(n.clone());
            }
        }
    } else {
        for (n, bit) in &exported {
            if *bit < 64 && flags & (1 << bit) != 0 {
                names.push(n.clone());
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::arm64_vmemmap_starts;

    #[test]
    fn linear_map_from_a_negative_phys_offset() {
        use super::linear_offset;
        // 5.10 arm64 with KASLR: memstart_addr = -0xbe4_0000_0000
        let po = 0xffff_f41c_0000_0000;
        assert_eq!(linear_offset(0x4812_7000, po), Some(0xbe4_4812_7000));
        assert_eq!(linear_offset(0x4000_0000, 0x4000_0000), Some(0));
        assert_eq!(linear_offset(0x3fff_f000, 0x4000_0000), None);
        assert_eq!(linear_offset(0x1000, 0), Some(0x1000));
    }

    #[test]
    fn arm64_vmemmap_start_formulas() {
        // 6.1, 4K pages, 48-bit: VMCOREINFO of the arm64 fixture says
        // NUMBER(VMEMMAP_START)=0xfffffc0000000000 (the 5.11-6.8 formula).
        assert_eq!(arm64_vmemmap_starts(48, 12, 64)[1], 0xffff_fc00_0000_0000);
        // 6.12, 4K pages, 52-bit LPA2 (Debian's arm64 cloud kernel under
        // QEMU): the struct pages of its RAM are mapped from here.
        assert_eq!(arm64_vmemmap_starts(52, 12, 64)[0], 0xffff_c1ff_c000_0000);
        // 5.4-5.10, 4K, 48-bit: -(1 << 41) - 2M.
        assert_eq!(arm64_vmemmap_starts(48, 12, 64)[2], 0xffff_fdff_ffe0_0000);
    }
}
