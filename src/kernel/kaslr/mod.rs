//! KASLR and the kernel page-table root without VMCOREINFO: QEMU dumps
//! taken without `-device vmcoreinfo` (or of a kernel whose fw_cfg driver
//! never registered it), raw guest RAM. One file per architecture; each
//! confirms its answer by reading `linux_banner` through the page tables
//! it found.

pub mod aarch64;
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
        let Ok(t) = paging.translate(mem, &space(root), VirtAddr(va + done as u64), None) else {
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
    read(mem, paging, root, b.wrapping_add(offset), &mut buf) && buf == BANNER
}
