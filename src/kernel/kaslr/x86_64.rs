//! x86_64: done the way crash's kaslr_helper does it, with the page tables
//! the CPUs were using:
//!
//! 1. **CR3 + image scan.** Any CPU's CR3 maps the kernel half. The kernel
//!    image mapping at `__START_KERNEL_map` (0xffffffff80000000, 1 GiB of
//!    2 MiB PMDs) starts at `_text`: `cleanup_highmap()` clears the PMDs
//!    below it. The first mapped 2 MiB page there is the runtime `_text`;
//!    minus the vmlinux's link-time `_text` it is the KASLR offset, and its
//!    physical address gives `phys_base`.
//! 2. **CR3 + IDTR.** IDT entry 0 points to the divide-error handler
//!    (`asm_exc_divide_error`, older kernels `divide_error`): runtime minus
//!    link-time address is the KASLR offset. Used to cross-check (1).
//! 3. **No CR3** (raw RAM without registers): the kernel is loaded at a
//!    2 MiB-aligned physical address, so `linux_banner` ("Linux version …")
//!    sits at a known offset modulo 2 MiB. Each hit gives the physical load
//!    delta, hence `init_top_pgt`'s physical address; walking that table's
//!    image mapping (1) gives the virtual offset.
//!
//! Every result is confirmed by reading `linux_banner` at its relocated
//! address through the page tables when the vmlinux is known.

use super::{BANNER, Detected, address_sum, banner_ok, read, space};
use crate::addr::{PageTableRoot, PhysAddr, VirtAddr};
use crate::dump::{Dump, PhysicalMemory, QemuCpuState};
use crate::kernel::symbols::Vmlinux;
use crate::mmu::Paging;
use crate::mmu::x86_64::X86Paging;

/// x86_64 `__START_KERNEL_map`.
pub const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
/// `KERNEL_IMAGE_SIZE` with KASLR: the image mapping spans 1 GiB.
const KERNEL_IMAGE_SIZE: u64 = 1 << 30;
/// Default link address of `_text` (CONFIG_PHYSICAL_START 16 MiB), used
/// when no vmlinux is given.
pub const DEFAULT_TEXT: u64 = 0xffff_ffff_8100_0000;
const PMD_SIZE: u64 = 2 << 20;
const CR3_MASK: u64 = 0x000f_ffff_ffff_f000;
const CR4_LA57: u64 = 1 << 12;

/// The first mapped 2 MiB step of the kernel image mapping and its PA.
fn image_start(
    mem: &dyn PhysicalMemory,
    paging: &Paging,
    root: PageTableRoot,
) -> Option<(u64, PhysAddr)> {
    (0..KERNEL_IMAGE_SIZE / PMD_SIZE)
        .map(|i| START_KERNEL_MAP + i * PMD_SIZE)
        .find_map(|va| {
            paging
                .translate(mem, &space(root), VirtAddr(va), None)
                .ok()
                .map(|t| (va, t.pa))
        })
}

/// Runtime address of the divide-error handler from IDT entry 0.
fn idt_divide_error(
    mem: &dyn PhysicalMemory,
    paging: &Paging,
    root: PageTableRoot,
    q: &QemuCpuState,
) -> Option<u64> {
    if q.idt_base == 0 || q.idt_limit < 15 {
        return None;
    }
    let mut e = [0u8; 16];
    if !read(mem, paging, root, q.idt_base, &mut e) {
        return None;
    }
    let lo = u16::from_le_bytes([e[0], e[1]]) as u64;
    let mid = u16::from_le_bytes([e[6], e[7]]) as u64;
    let hi = u32::from_le_bytes([e[8], e[9], e[10], e[11]]) as u64;
    Some(lo | mid << 16 | hi << 32)
}

/// Finds the kernel page-table root, KASLR offset and phys_base of an
/// x86_64 dump that has no VMCOREINFO.
pub fn detect(dump: &Dump, vmlinux: Option<&Vmlinux>) -> Result<Detected, String> {
    let mem = dump.memory.as_ref();
    let cpu = dump
        .notes
        .qemu_cpus
        .iter()
        .enumerate()
        .find(|(_, q)| q.cr[3] & CR3_MASK != 0);
    match cpu {
        Some((i, q)) => from_cr3(mem, i, q, vmlinux),
        None => match vmlinux {
            Some(v) => from_banner_scan(mem, v),
            None => Err(
                "no VMCOREINFO, no CPU CR3 and no vmlinux: give --vmlinux (KASLR is then found by scanning RAM for linux_banner) or a registers file"
                    .into(),
            ),
        },
    }
}

/// phys_base = PA - (VA - __START_KERNEL_map), signed; `None` if the
/// mapping found is not a kernel image mapping's.
fn phys_base_of(text_va: u64, text_pa: PhysAddr) -> Option<i64> {
    let image = text_va.checked_sub(START_KERNEL_MAP)?;
    i64::try_from(i128::from(text_pa.0) - i128::from(image)).ok()
}

fn from_cr3(
    mem: &dyn PhysicalMemory,
    cpu: usize,
    q: &QemuCpuState,
    vmlinux: Option<&Vmlinux>,
) -> Result<Detected, String> {
    let five_level = q.cr[4] & CR4_LA57 != 0;
    let paging = Paging::X86_64(X86Paging::new(five_level));
    let cr3 = PageTableRoot(PhysAddr(q.cr[3] & CR3_MASK));
    let (text_va, text_pa) = image_start(mem, &paging, cr3).ok_or_else(|| {
        format!(
            "CPU {cpu}'s CR3 {:#x} maps nothing at __START_KERNEL_map: no kernel image mapping",
            cr3.0
        )
    })?;
    let not_image = || {
        format!(
            "CPU {cpu}'s CR3 maps {text_va:#x} -> {}: not a kernel image mapping",
            text_pa
        )
    };
    let Some(v) = vmlinux else {
        let offset = text_va.checked_sub(DEFAULT_TEXT).ok_or_else(not_image)?;
        return Ok(Detected {
            root: cr3,
            paging,
            kaslr_offset: offset,
            phys_base: phys_base_of(text_va, text_pa).ok_or_else(not_image)?,
            method: format!(
                "CR3 of CPU {cpu} + kernel image mapping (_text at {text_va:#x}); offset assumes _text linked at {DEFAULT_TEXT:#x}: unverified without a vmlinux"
            ),
        });
    };
    let link_text = v.addr("_text").ok_or("the vmlinux has no _text symbol")?;
    let by_image = text_va.checked_sub(link_text).ok_or_else(not_image)?;
    let by_idt = idt_divide_error(mem, &paging, cr3, q).and_then(|h| {
        let link = v
            .addr("asm_exc_divide_error")
            .or_else(|| v.addr("divide_error"))?;
        h.checked_sub(link)
    });
    let (offset, how) = match by_idt {
        Some(o) if o == by_image => (o, "kernel image mapping and IDT entry 0 agree"),
        Some(o) if banner_ok(mem, &paging, cr3, v, o) => {
            (o, "IDT entry 0 (the image mapping disagreed)")
        }
        _ => (by_image, "kernel image mapping"),
    };
    if !banner_ok(mem, &paging, cr3, v, offset) {
        return Err(format!(
            "KASLR offset {offset:#x} from CPU {cpu}'s CR3 is not confirmed: linux_banner does not read \"Linux version\" there (wrong vmlinux?)"
        ));
    }
    let text_va = link_text.checked_add(offset).ok_or_else(not_image)?;
    let text_pa = if by_image == offset {
        text_pa
    } else {
        paging
            .translate(mem, &space(cr3), VirtAddr(text_va), None)
            .map_err(|e| e.to_string())?
            .pa
    };
    let phys_base = phys_base_of(text_va, text_pa).ok_or_else(not_image)?;
    // The kernel's own root, as VMCOREINFO would give it.
    let root = v
        .addr("init_top_pgt")
        .and_then(|a| {
            address_sum(&[
                a.into(),
                offset.into(),
                -i128::from(START_KERNEL_MAP),
                phys_base.into(),
            ])
        })
        .map_or(cr3, |pa| PageTableRoot(PhysAddr(pa)));
    Ok(Detected {
        root,
        paging,
        kaslr_offset: offset,
        phys_base,
        method: format!("no VMCOREINFO: CR3 of CPU {cpu} + {how}; linux_banner confirmed"),
    })
}

fn from_banner_scan(mem: &dyn PhysicalMemory, v: &Vmlinux) -> Result<Detected, String> {
    let (Some(banner), Some(top), Some(text)) = (
        v.addr("linux_banner"),
        v.addr("init_top_pgt"),
        v.addr("_text"),
    ) else {
        return Err("the vmlinux lacks linux_banner, init_top_pgt or _text".into());
    };
    let (Some(banner_rel), Some(top_rel), Some(text_rel)) = (
        banner.checked_sub(START_KERNEL_MAP),
        top.checked_sub(START_KERNEL_MAP),
        text.checked_sub(START_KERNEL_MAP),
    ) else {
        return Err(
            "the vmlinux's linux_banner, init_top_pgt or _text is not in the kernel image mapping"
                .into(),
        );
    };
    let in_pmd = banner_rel % PMD_SIZE;
    let mut buf = [0u8; BANNER.len()];
    for r in mem.ranges() {
        let Some(mut pa) = (r.start.0 - r.start.0 % PMD_SIZE).checked_add(in_pmd) else {
            continue;
        };
        while pa
            .checked_add(BANNER.len() as u64)
            .is_some_and(|e| e <= r.end())
        {
            if pa >= r.start.0 && mem.read_phys(PhysAddr(pa), &mut buf).is_ok() && buf == BANNER {
                // Physical load delta: PA = link − __START_KERNEL_map + delta
                // (signed: the kernel may sit below its link address).
                let delta = i128::from(pa) - i128::from(banner_rel);
                let Some(root_pa) = address_sum(&[top_rel.into(), delta]) else {
                    break;
                };
                let root = PageTableRoot(PhysAddr(root_pa));
                for five_level in [false, true] {
                    let paging = Paging::X86_64(X86Paging::new(five_level));
                    let Some((text_va, text_pa)) = image_start(mem, &paging, root) else {
                        continue;
                    };
                    let Some(offset) = text_va.checked_sub(text) else {
                        continue;
                    };
                    let expect_pa = address_sum(&[text_rel.into(), delta]);
                    let phys_base = i64::try_from(delta - i128::from(offset)).ok();
                    if let (Some(phys_base), true) = (
                        phys_base,
                        expect_pa == Some(text_pa.0) && banner_ok(mem, &paging, root, v, offset),
                    ) {
                        return Ok(Detected {
                            root,
                            paging,
                            kaslr_offset: offset,
                            phys_base,
                            method: format!(
                                "no VMCOREINFO, no CR3: linux_banner found at physical {pa:#x}, init_top_pgt's kernel image mapping; linux_banner confirmed"
                            ),
                        });
                    }
                }
            }
            let Some(next) = pa.checked_add(PMD_SIZE) else {
                break;
            };
            pa = next;
        }
    }
    Err("no VMCOREINFO and no CR3, and linux_banner was not found in RAM at any 2 MiB-aligned load address (wrong vmlinux?)".into())
}
