//! arm64: QEMU's arm64 notes carry no TTBR1/TCR_EL1, so the page tables
//! are found from the kernel image itself, with the vmlinux's symbols:
//!
//! 1. **Find the image in RAM.** The kernel image is physically contiguous
//!    and loaded at a 64 KiB-aligned address (the boot protocol asks for
//!    2 MiB, the EFI stub's KASLR for 64 KiB). `linux_banner` sits at a
//!    known distance from `_text`, so each candidate load address is
//!    checked for "Linux version " there.
//! 2. **Read the kernel's own variables through that physical copy:**
//!    `kimage_voffset` (image VA − PA, hence the KASLR offset) and
//!    `memstart_addr` (PHYS_OFFSET). The Image header's flags give the page
//!    size when the header is still there ("ARM\x64" at `_text` + 0x38;
//!    6.1 overwrites it, then every granule is tried).
//!    `swapper_pg_dir`'s physical address follows from its link offset.
//! 3. **Which VA size?** Not recorded anywhere readable without TCR_EL1:
//!    each plausible (configured, runtime) pair is tried, and the one whose
//!    walk maps `_stext` back to its physical address, reads `linux_banner`,
//!    and whose linear map holds `swapper_pg_dir` wins.
//!
//! What VMCOREINFO would have said (VA_BITS, PHYS_OFFSET, kimage_voffset,
//! KERNELPACMASK, TCR_EL1_T1SZ) is returned as derived numbers.

use super::{BANNER, Detected, banner_ok, read};
use crate::addr::{PhysAddr, VirtAddr};
use crate::dump::PhysicalMemory;
use crate::kernel::symbols::Vmlinux;
use crate::mmu::Paging;
use crate::mmu::aarch64::Arm64Paging;

/// The arm64 Image header's magic, at offset 0x38.
const IMAGE_MAGIC: &[u8; 4] = b"ARM\x64";
const IMAGE_MAGIC_OFFSET: u64 = 0x38;
/// Header `flags` (bits 1-2: page size 1 = 4K, 2 = 16K, 3 = 64K).
const IMAGE_FLAGS_OFFSET: u64 = 0x18;
/// The finest alignment a loader may place the image at.
const LOAD_ALIGN: u64 = 64 << 10;

/// (configured VA_BITS, runtime VA bits) pairs, most likely first. A
/// kernel built for 52 bits runs with 48 (47 with 16K pages) on CPUs
/// without LPA/LPA2.
const VA_CANDIDATES: &[(u64, u64)] = &[
    (48, 48),
    (52, 52),
    (52, 48),
    (52, 47),
    (47, 47),
    (42, 42),
    (39, 39),
    (36, 36),
];

/// What was found, with what VMCOREINFO would have said.
#[derive(Clone, Debug)]
pub struct DetectedArm64 {
    pub detected: Detected,
    /// NUMBER() values VMCOREINFO would have carried, derived here.
    pub numbers: Vec<(&'static str, u64)>,
}

fn phys_u64(mem: &dyn PhysicalMemory, pa: u64) -> Option<u64> {
    let mut b = [0u8; 8];
    mem.read_phys(PhysAddr(pa), &mut b).ok()?;
    Some(u64::from_le_bytes(b))
}

/// Physical addresses where the kernel image (its `_text`) may be, lowest
/// first, found lazily: detection stops at the first that checks out.
fn image_candidates(mem: &dyn PhysicalMemory, banner_rel: u64) -> impl Iterator<Item = u64> + '_ {
    mem.ranges().iter().flat_map(move |r| {
        let first = r.start.0.checked_next_multiple_of(LOAD_ALIGN);
        let end = r.end();
        // the banner's address for a `_text` at `text`, if it fits the range
        let banner_at = move |text: u64| {
            let at = text.checked_add(banner_rel)?;
            (at.checked_add(BANNER.len() as u64)? <= end).then_some(at)
        };
        (0u64..)
            .map_while(move |i| first?.checked_add(i.checked_mul(LOAD_ALIGN)?))
            .map_while(move |text| Some((text, banner_at(text)?)))
            .filter(move |&(_, at)| {
                let mut buf = [0u8; BANNER.len()];
                mem.read_phys(PhysAddr(at), &mut buf).is_ok() && buf == BANNER
            })
            .map(|(text, _)| text)
    })
}

/// Page sizes to try: the Image header's, if the header survived boot.
fn page_sizes(mem: &dyn PhysicalMemory, text_pa: u64) -> &'static [u64] {
    let mut magic = [0u8; 4];
    let header = text_pa
        .checked_add(IMAGE_MAGIC_OFFSET)
        .is_some_and(|pa| mem.read_phys(PhysAddr(pa), &mut magic).is_ok())
        && &magic == IMAGE_MAGIC;
    let flags = || phys_u64(mem, text_pa.checked_add(IMAGE_FLAGS_OFFSET)?);
    match header.then(|| flags().map(|f| (f >> 1) & 3)) {
        Some(Some(1)) => &[4 << 10],
        Some(Some(2)) => &[16 << 10],
        Some(Some(3)) => &[64 << 10],
        _ => &[4 << 10, 64 << 10, 16 << 10],
    }
}

/// Finds the kernel page-table root, KASLR offset and the VMCOREINFO
/// numbers of an arm64 dump that has no VMCOREINFO.
pub fn detect(
    mem: &dyn PhysicalMemory,
    vmlinux: Option<&Vmlinux>,
) -> Result<DetectedArm64, String> {
    let v = vmlinux.ok_or(
        "no VMCOREINFO (QEMU dump without -device vmcoreinfo?): give --vmlinux, whose symbols locate the kernel image in RAM",
    )?;
    let sym = |n: &str| {
        v.addr(n)
            .ok_or_else(|| format!("no VMCOREINFO and the vmlinux lacks the symbol {n}"))
    };
    let text = sym("_text")?;
    // Offsets from _text of the symbols read in the image (all above it).
    let rel = |n: &str| {
        sym(n)?
            .checked_sub(text)
            .ok_or_else(|| format!("the vmlinux's {n} lies below _text"))
    };
    let banner_rel = rel("linux_banner")?;
    let voffset_rel = rel("kimage_voffset")?;
    let swapper_rel = rel("swapper_pg_dir")?;
    let memstart_rel = v.addr("memstart_addr").and_then(|a| a.checked_sub(text));
    // The kernel maps (and reserves) its image from _stext: the 64 KiB
    // header before it is neither mapped nor kept.
    let stext_rel = v
        .addr("_stext")
        .and_then(|a| a.checked_sub(text))
        .unwrap_or(0);
    let mut candidates = Vec::new();
    let mut fallback = None;
    for text_pa in image_candidates(mem, banner_rel) {
        candidates.push(text_pa);
        let at = |rel: u64| text_pa.checked_add(rel);
        let Some(voff) = at(voffset_rel).and_then(|pa| phys_u64(mem, pa)) else {
            continue;
        };
        // VA = PA + kimage_voffset, a kernel VA, at or above _text's link
        // address; anything else is not this copy (or not a kernel image).
        let Some((text_va, offset)) = text_pa
            .checked_add(voff)
            .filter(|va| va >> 63 == 1)
            .and_then(|va| Some((va, va.checked_sub(text)?)))
        else {
            continue;
        };
        let phys_offset = memstart_rel.and_then(at).and_then(|pa| phys_u64(mem, pa));
        let (Some(swapper_pa), Some(stext_pa), Some(stext_va)) = (
            at(swapper_rel).map(PhysAddr),
            at(stext_rel),
            text_va.checked_add(stext_rel),
        ) else {
            continue;
        };
        let configs = page_sizes(mem, text_pa)
            .iter()
            .flat_map(|&ps| VA_CANDIDATES.iter().map(move |&(c, r)| (ps, c, r)));
        for (page_size, config, runtime) in configs {
            let Ok(p) = Arm64Paging::from_vmcoreinfo(
                page_size,
                config,
                Some(64 - runtime),
                (config == 52).then_some(52),
            ) else {
                continue;
            };
            let root = p.kernel_root_from_swapper_pg_dir(swapper_pa, config);
            let paging = Paging::Aarch64(p);
            let space = super::space(root);
            let maps_text = paging
                .translate(mem, &space, VirtAddr(stext_va), None)
                .is_ok_and(|t| t.pa.0 == stext_pa);
            if !maps_text || !banner_ok(mem, &paging, root, v, offset) {
                continue;
            }
            // The linear map: PAGE_OFFSET = -2^VA_BITS (configured), from
            // PHYS_OFFSET. Holding swapper_pg_dir there settles VA_BITS.
            let linear_ok = phys_offset.is_some_and(|po| {
                // memstart_addr is an s64: 5.x KASLR makes it negative
                let offset = i128::from(swapper_pa.0) - i128::from(po as i64);
                let Some(va) = u64::try_from(offset)
                    .ok()
                    .and_then(|d| (u64::MAX << config).checked_add(d))
                else {
                    return false;
                };
                let mut b = [0u8; 8];
                let mut want = [0u8; 8];
                read(mem, &paging, root, va, &mut b)
                    && mem.read_phys(swapper_pa, &mut want).is_ok()
                    && b == want
                    && paging
                        .translate(mem, &space, VirtAddr(va), None)
                        .is_ok_and(|t| t.pa == swapper_pa)
            });
            let mut numbers = vec![
                ("VA_BITS", config),
                ("TCR_EL1_T1SZ", 64 - runtime),
                ("kimage_voffset", voff),
                // ptrauth_kernel_pac_mask() = GENMASK_ULL(63, vabits_actual)
                ("KERNELPACMASK", u64::MAX << runtime),
            ];
            if let Some(po) = phys_offset {
                numbers.push(("PHYS_OFFSET", po));
            }
            let found = DetectedArm64 {
                detected: Detected {
                    root,
                    paging,
                    kaslr_offset: offset,
                    phys_base: 0,
                    method: format!(
                        "no VMCOREINFO: kernel image found at physical {text_pa:#x} (linux_banner), kimage_voffset read there; {config}-bit VAs ({runtime} at run time), {}K pages; linux_banner confirmed{}",
                        page_size >> 10,
                        if linear_ok {
                            ", linear map checked"
                        } else {
                            "; the linear map did not check out (PHYS_OFFSET unknown?)"
                        }
                    ),
                },
                numbers,
            };
            if linear_ok {
                return Ok(found);
            }
            fallback.get_or_insert(found);
        }
    }
    if candidates.is_empty() {
        return Err(
            "no VMCOREINFO, and linux_banner was not found in RAM at any 64 KiB-aligned load address of the kernel image (wrong vmlinux?)"
                .into(),
        );
    }
    fallback.ok_or_else(|| {
        format!(
            "no VMCOREINFO: the kernel image is in RAM at {} but no arm64 page-table configuration maps it through swapper_pg_dir (wrong vmlinux?)",
            candidates
                .iter()
                .map(|c| format!("{c:#x}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}
