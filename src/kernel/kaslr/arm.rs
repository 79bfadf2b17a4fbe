//! 32-bit ARM: the kernel's page tables, from VMCOREINFO or the vmlinux.
//! ARM kernels are not randomised: the image sits in the direct map at
//! VA = PA − PHYS_OFFSET + PAGE_OFFSET.
//!
//! - PAGE_OFFSET (CONFIG_PAGE_OFFSET: 0xc0000000, 0xb0000000, 0x80000000
//!   or 0x40000000 by VMSPLIT) is the 256 MiB boundary below `_text`
//!   (TEXT_OFFSET is a few MiB at most); without a vmlinux (VMCOREINFO
//!   only), the VMSPLIT whose `swapper_pg_dir` maps its own address.
//! - PHYS_OFFSET: VMCOREINFO `NUMBER(PHYS_OFFSET)` when a kernel exports
//!   it, else the start of the dump's first RAM range (the kernel patches
//!   its PHYS_OFFSET to where RAM starts: ARM_PATCH_PHYS_VIRT).
//! - Format: VMCOREINFO `CONFIG_ARM_LPAE=y` (arch_crash_save_vmcoreinfo)
//!   says LPAE, its absence short descriptors. Without VMCOREINFO (QEMU's
//!   arm notes carry no TTBR or TTBCR) both are tried, and the one whose
//!   walk of `swapper_pg_dir` reads `linux_banner` wins.
//!
//! The kernel's tables give one table for all of the address space, as
//! Linux sets TTBCR.N = 0 (short) and walks `swapper_pg_dir` from its
//! 4-entry PGD (LPAE; its TTBR1 points into the PMDs, but the full table
//! translates the same addresses).

use super::{Detected, VMSPLITS, banner_ok, self_mapping_page_offset};
use crate::addr::{PageTableRoot, PhysAddr};
use crate::dump::Dump;
use crate::kernel::VmcoreInfo;
use crate::kernel::symbols::Vmlinux;
use crate::mmu::Paging;
use crate::mmu::arm::ArmPaging;

pub use super::i386::Setup;

const DEFAULT_PAGE_OFFSET: u64 = 0xc000_0000;

fn page_offset(vi: &VmcoreInfo, vmlinux: Option<&Vmlinux>) -> u64 {
    vi.number("PAGE_OFFSET")
        .map(|v| v as u64)
        .or_else(|| vmlinux?.addr("_text").map(|t| t & !0x0fff_ffff))
        .filter(|&o| o != 0 && o <= u32::MAX as u64)
        .unwrap_or(DEFAULT_PAGE_OFFSET)
}

pub fn setup(dump: &Dump, vi: &VmcoreInfo, vmlinux: Option<&Vmlinux>) -> Result<Setup, String> {
    let mut page_offset = page_offset(vi, vmlinux);
    let phys_offset = vi
        .number("PHYS_OFFSET")
        .map(|v| v as u64)
        .or_else(|| dump.memory.ranges().first().map(|r| r.start.0))
        .ok_or("no NUMBER(PHYS_OFFSET) and no RAM in the dump")?;
    let swapper = vi
        .symbol("swapper_pg_dir")
        .or_else(|| vmlinux?.addr("swapper_pg_dir"))
        .ok_or("neither VMCOREINFO nor a vmlinux gives swapper_pg_dir: give --vmlinux")?;
    let lpae_by_vmcoreinfo = vi.get("CONFIG_ARM_LPAE") == Some("y");
    if vi.symbol("swapper_pg_dir").is_some() && vmlinux.is_none() {
        // no vmlinux yet (it is attached after VMCOREINFO opened the
        // dump): PAGE_OFFSET is the VMSPLIT whose swapper_pg_dir maps itself
        let mut candidates = vec![page_offset];
        candidates.extend(VMSPLITS);
        let root_of = |po: u64| {
            let pa = swapper.checked_sub(po)?.checked_add(phys_offset)?;
            let kernel_start = po.saturating_sub(16 << 20);
            let p = if lpae_by_vmcoreinfo {
                ArmPaging::lpae(0, 0, kernel_start)
            } else {
                ArmPaging::short(0, kernel_start)
            };
            Some((Paging::Arm(p), PageTableRoot(PhysAddr(pa))))
        };
        if let Some(po) =
            self_mapping_page_offset(dump.memory.as_ref(), &candidates, swapper, root_of)
        {
            page_offset = po;
        }
    }
    let numbers = vec![("PAGE_OFFSET", page_offset), ("PHYS_OFFSET", phys_offset)];
    let root = swapper
        .checked_sub(page_offset)
        .and_then(|o| o.checked_add(phys_offset))
        .map(|pa| PageTableRoot(PhysAddr(pa)))
        .ok_or_else(|| {
            format!("swapper_pg_dir {swapper:#x} is below PAGE_OFFSET {page_offset:#x}")
        })?;
    // TASK_SIZE: the modules area (16 MiB below PAGE_OFFSET) is kernel space
    let task_size = page_offset.saturating_sub(16 << 20);
    let lpae = ArmPaging::lpae(0, 0, task_size);
    let short = ArmPaging::short(0, task_size);
    let (paging, from_vmcoreinfo, method) = if vi.symbol("swapper_pg_dir").is_some() {
        let p = if lpae_by_vmcoreinfo { lpae } else { short };
        (p, true, "VMCOREINFO".to_string())
    } else {
        let v = vmlinux.ok_or("no VMCOREINFO: give --vmlinux")?;
        let mem = dump.memory.as_ref();
        let p = [lpae, short]
            .into_iter()
            .find(|p| banner_ok(mem, &Paging::Arm(p.clone()), root, v, 0))
            .ok_or_else(|| {
                format!(
                    "no VMCOREINFO: neither an LPAE nor a short-descriptor walk of swapper_pg_dir at {} (PAGE_OFFSET {page_offset:#x}, PHYS_OFFSET {phys_offset:#x}) reads linux_banner (wrong vmlinux?)",
                    root.0
                )
            })?;
        let how = format!(
            "no VMCOREINFO: swapper_pg_dir at {} (PHYS_OFFSET {phys_offset:#x} = first RAM), {}; linux_banner confirmed",
            root.0,
            p.mode_name()
        );
        (p, false, how)
    };
    Ok(Setup {
        detected: Detected {
            root,
            paging: Paging::Arm(paging),
            kaslr_offset: 0,
            phys_base: 0,
            method,
        },
        from_vmcoreinfo,
        numbers,
    })
}
