//! The kernel's linear maps of physical memory: the direct map (PA → VA)
//! and vmemmap (PFN → `struct page`), and reading one `struct page` with the
//! offsets VMCOREINFO exports.

use crate::addr::{Arch, PhysAddr, VirtAddr};
use crate::kernel::Kernel;

/// `sizeof(struct page)` when VMCOREINFO does not say (64 on every 64-bit
/// kernel without debug options that grow it).
const DEFAULT_PAGE_STRUCT_SIZE: u64 = 64;

fn num(k: &Kernel, name: &str) -> Option<u64> {
    k.vmcoreinfo.number(name).map(|v| v as u64)
}

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
        .map_err(|e| format!("{name}: {e}"))
}

/// arm64 `PHYS_OFFSET` (memstart_addr).
fn arm64_phys_offset(k: &Kernel) -> Result<u64, String> {
    num(k, "PHYS_OFFSET").ok_or_else(|| "VMCOREINFO lacks NUMBER(PHYS_OFFSET)".to_string())
}

fn arm64_va_bits(k: &Kernel) -> Result<u32, String> {
    num(k, "VA_BITS")
        .map(|v| v as u32)
        .filter(|v| (36..=52).contains(v))
        .ok_or_else(|| "VMCOREINFO lacks a plausible NUMBER(VA_BITS)".to_string())
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
    }
}

/// The direct-map virtual address of `pa`.
pub fn ptov(k: &Kernel, pa: PhysAddr) -> Result<VirtAddr, String> {
    let (base, start) = direct_map(k)?;
    if pa.0 < start {
        return Err(format!(
            "physical address {pa} is below the start of the direct map ({start:#x})"
        ));
    }
    Ok(VirtAddr(base.wrapping_add(pa.0 - start)))
}

/// `vmemmap`: the (possibly notional) address of the `struct page` of PFN 0.
/// x86_64: the `vmemmap_base` variable. arm64: VMEMMAP_START −
/// (PHYS_OFFSET >> PAGE_SHIFT) · SIZE(page), VMEMMAP_START from VMCOREINFO
/// or −2^(VA_BITS − (PAGE_SHIFT − 6)) as Linux 6.x computes it.
pub fn vmemmap(k: &Kernel) -> Result<u64, String> {
    match k.arch {
        Arch::X86_64 => x86_base_variable(k, "vmemmap_base"),
        Arch::Aarch64 => {
            let shift = page_shift(k);
            let start = match num(k, "VMEMMAP_START") {
                Some(s) => s,
                None => {
                    let bits = arm64_va_bits(k)?;
                    u64::MAX << (bits - (shift - 6))
                }
            };
            let first_pfn = arm64_phys_offset(k)? >> shift;
            Ok(start.wrapping_sub(first_pfn.wrapping_mul(page_struct_size(k))))
        }
    }
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
    let off = |name: &str| k.member_offset(name);
    let need = |name: &str, n: usize| -> Result<u64, String> {
        let o = off(name)
            .ok_or_else(|| format!("neither VMCOREINFO nor DWARF gives OFFSET({name})"))?;
        at(o, n).ok_or_else(|| format!("OFFSET({name}) = {o} is past SIZE(page) = {size}"))
    };
    let mapping_off = off("page.mapping").unwrap_or(24);
    let index_off = k
        .debug_info()
        .and_then(|d| d.offset_of("struct page", "index").ok())
        .unwrap_or(mapping_off + 8);
    Ok(PageInfo {
        page,
        pa: PhysAddr(pa.0 & !(k.paging.page_size() - 1)),
        flags: need("page.flags", 8)?,
        refcount: need("page._refcount", 4)? as u32 as i32,
        mapcount: off("page._mapcount")
            .and_then(|o| at(o, 4))
            .map(|v| v as u32 as i32),
        mapping: need("page.mapping", 8)?,
        index: at(index_off, 8).unwrap_or(0),
        private: off("page.private").and_then(|o| at(o, 8)),
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
    .filter_map(|n| Some((n.to_string(), num(k, &format!("PG_{n}"))?)))
    .chain(
        num(k, "PG_head_mask")
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
