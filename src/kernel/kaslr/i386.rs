//! i386: the kernel's page tables and relocation, from VMCOREINFO or, for
//! a QEMU dump without it, from a CPU's CR3 and IDT.
//!
//! The whole kernel image lives in the direct map (lowmem): VA = PA +
//! PAGE_OFFSET, and a relocated kernel (CONFIG_RELOCATABLE, RANDOMIZE_BASE)
//! moves virtually by what it moved physically. PAGE_OFFSET is the
//! vmlinux's first PT_LOAD p_vaddr − p_paddr (LOAD_OFFSET = __PAGE_OFFSET
//! in vmlinux.lds), else the usual 3G/1G split's 0xc0000000.
//!
//! - VMCOREINFO: `SYMBOL(swapper_pg_dir)` is the runtime address of the
//!   kernel's root, `CONFIG_X86_PAE=y` says PAE; the relocation is
//!   `SYMBOL(_stext)` minus the vmlinux's `_stext` (once the vmlinux is
//!   attached); PAGE_OFFSET the VMSPLIT choice under which that root maps
//!   its own address to where it was read from.
//! - QEMU without VMCOREINFO: CR4.PAE and CR3 of a CPU (every process's
//!   table maps the kernel half); IDT entry 0 holds the divide-error
//!   handler's runtime address, minus its link address is the relocation,
//!   confirmed by reading `linux_banner` there.

use super::{Detected, VMSPLITS, banner_ok, read, self_mapping_page_offset};
use crate::addr::{PageTableRoot, PhysAddr};
use crate::dump::{Dump, QemuCpuState};
use crate::kernel::VmcoreInfo;
use crate::kernel::symbols::Vmlinux;
use crate::mmu::Paging;
use crate::mmu::i386::I386Paging;

/// CONFIG_PAGE_OFFSET of the usual VMSPLIT_3G.
pub const DEFAULT_PAGE_OFFSET: u64 = 0xc000_0000;
const CR4_PAE: u64 = 1 << 5;

/// What [`setup`] found, and the numbers VMCOREINFO does not carry.
pub struct Setup {
    pub detected: Detected,
    pub from_vmcoreinfo: bool,
    pub numbers: Vec<(&'static str, u64)>,
}

/// PAGE_OFFSET from the vmlinux's program headers, else the default.
fn page_offset(vmlinux: Option<&Vmlinux>) -> u64 {
    vmlinux
        .and_then(|v| v.load_offset())
        .filter(|&o| o != 0 && o <= u32::MAX as u64)
        .unwrap_or(DEFAULT_PAGE_OFFSET)
}

pub fn setup(dump: &Dump, vi: &VmcoreInfo, vmlinux: Option<&Vmlinux>) -> Result<Setup, String> {
    let mut page_offset = page_offset(vmlinux);
    if let Some(swapper) = vi.symbol("swapper_pg_dir") {
        let pae = vi.get("CONFIG_X86_PAE") == Some("y");
        // The vmlinux usually arrives after VMCOREINFO opened the dump:
        // PAGE_OFFSET is the VMSPLIT whose swapper_pg_dir maps itself.
        let mut candidates = vec![page_offset];
        candidates.extend(VMSPLITS);
        let root_of = |po: u64| {
            let pa = swapper.checked_sub(po)?;
            Some((
                Paging::I386(I386Paging::new(pae, po)),
                PageTableRoot(PhysAddr(pa)),
            ))
        };
        if let Some(po) =
            self_mapping_page_offset(dump.memory.as_ref(), &candidates, swapper, root_of)
        {
            page_offset = po;
        }
        let numbers = vec![("PAGE_OFFSET", page_offset), ("PHYS_OFFSET", 0)];
        let pa = swapper.checked_sub(page_offset).ok_or_else(|| {
            format!("SYMBOL(swapper_pg_dir) {swapper:#x} is below PAGE_OFFSET {page_offset:#x}")
        })?;
        let offset = match (vi.symbol("_stext"), vmlinux.and_then(|v| v.addr("_stext"))) {
            // i386 kernels only move up; a vmlinux linked above the running
            // _stext is another kernel's (the banner check elsewhere says so)
            (Some(run), Some(link)) => run.saturating_sub(link),
            _ => 0,
        };
        return Ok(Setup {
            detected: Detected {
                root: PageTableRoot(PhysAddr(pa)),
                paging: Paging::I386(I386Paging::new(pae, page_offset)),
                kaslr_offset: offset,
                phys_base: 0,
                method: "VMCOREINFO".into(),
            },
            from_vmcoreinfo: true,
            numbers,
        });
    }
    let numbers = vec![("PAGE_OFFSET", page_offset), ("PHYS_OFFSET", 0)];
    let (cpu, q) = dump
        .notes
        .qemu_cpus
        .iter()
        .enumerate()
        .find(|(_, q)| q.cr[3] & 0xffff_f000 != 0)
        .ok_or(
            "no VMCOREINFO and no CPU with a CR3 (QEMU note): the kernel's page tables are unknown",
        )?;
    let detected = from_cr3(dump, cpu, q, page_offset, vmlinux)?;
    Ok(Setup {
        detected,
        from_vmcoreinfo: false,
        numbers,
    })
}

/// Runtime address of IDT entry 0's handler (a 32-bit interrupt gate:
/// offset bits 15:0 in bytes 0..2, 31:16 in bytes 6..8).
fn idt_divide_error(
    dump: &Dump,
    paging: &Paging,
    root: PageTableRoot,
    q: &QemuCpuState,
) -> Option<u64> {
    if q.idt_base == 0 || q.idt_limit < 7 {
        return None;
    }
    let mut e = [0u8; 8];
    read(dump.memory.as_ref(), paging, root, q.idt_base, &mut e).then_some(())?;
    Some(u16::from_le_bytes([e[0], e[1]]) as u64 | (u16::from_le_bytes([e[6], e[7]]) as u64) << 16)
}

fn from_cr3(
    dump: &Dump,
    cpu: usize,
    q: &QemuCpuState,
    page_offset: u64,
    vmlinux: Option<&Vmlinux>,
) -> Result<Detected, String> {
    let pae = q.cr[4] & CR4_PAE != 0;
    let paging = Paging::I386(I386Paging::new(pae, page_offset));
    let cr3 = PageTableRoot(PhysAddr(
        q.cr[3] & if pae { 0xffff_ffe0 } else { 0xffff_f000 },
    ));
    let Some(v) = vmlinux else {
        return Ok(Detected {
            root: cr3,
            paging,
            kaslr_offset: 0,
            phys_base: 0,
            method: format!(
                "no VMCOREINFO: CR3 of CPU {cpu}; relocation unknown without a vmlinux (assumed none)"
            ),
        });
    };
    let mem = dump.memory.as_ref();
    let link = v
        .addr("asm_exc_divide_error")
        .or_else(|| v.addr("divide_error"))
        .ok_or("the vmlinux has no asm_exc_divide_error/divide_error")?;
    let by_idt = idt_divide_error(dump, &paging, cr3, q).and_then(|h| h.checked_sub(link));
    let offset = match by_idt {
        Some(o) if banner_ok(mem, &paging, cr3, v, o) => o,
        _ if banner_ok(mem, &paging, cr3, v, 0) => 0,
        _ => {
            return Err(format!(
                "no VMCOREINFO: neither IDT entry 0 ({by_idt:#x?}) nor no relocation makes linux_banner read \"Linux version\" through CPU {cpu}'s CR3 {:#x} (wrong vmlinux?)",
                cr3.0
            ));
        }
    };
    // The kernel's own root, as VMCOREINFO would give it.
    let root = v
        .addr("swapper_pg_dir")
        .and_then(|a| a.checked_add(offset)?.checked_sub(page_offset))
        .map(|pa| PageTableRoot(PhysAddr(pa)))
        .filter(|&r| banner_ok(mem, &paging, r, v, offset))
        .unwrap_or(cr3);
    Ok(Detected {
        root,
        paging,
        kaslr_offset: offset,
        phys_base: 0,
        method: format!(
            "no VMCOREINFO: CR3 of CPU {cpu} + IDT entry 0 (relocation {offset:#x}); linux_banner confirmed"
        ),
    })
}
