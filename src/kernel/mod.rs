//! Kernel knowledge on top of a dump: VMCOREINFO, KASLR, the kernel page
//! table root, per-CPU register contexts, and virtual memory reads.

pub mod btf;
pub mod btf_dwarf;
pub mod dwarf;
pub mod gdb_index;
pub mod init_task_search;
pub mod kallsyms;
pub mod kallsyms_search;
pub mod kaslr;
pub mod objects;
pub mod orc;
pub mod page;
pub mod printk;
pub mod symbols;
pub mod symfile;
pub mod tasks;
pub mod uts;
pub mod vmcoreinfo;

use crate::addr::{Arch, PageTableRoot, PhysAddr, VirtAddr};
use crate::dump::{Dump, MemError};
use crate::mmu::aarch64::Arm64Paging;
use crate::mmu::cache::WalkCache;
use crate::mmu::{AddressSpace, Paging, TranslateError, x86_64::X86Paging};
pub use vmcoreinfo::VmcoreInfo;

/// x86_64 `__START_KERNEL_map`: the kernel image's link-time mapping base.
const X86_START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;

/// A virtual read failed: the address and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Translate(#[from] TranslateError),
    #[error("virtual address {va}: {source}")]
    Memory { va: VirtAddr, source: MemError },
    /// A read whose end lies past the top of the address space (a corrupt
    /// pointer near 2^64, or a length that does not fit).
    #[error(
        "virtual address {va}: a read of {len:#x} bytes runs past the top of the address space"
    )]
    PastTop { va: VirtAddr, len: u64 },
}

impl ReadError {
    pub fn va(&self) -> VirtAddr {
        match self {
            ReadError::Translate(t) => t.va(),
            ReadError::Memory { va, .. } | ReadError::PastTop { va, .. } => *va,
        }
    }
}

/// Why the kernel layer could not answer: what was asked (a member, an
/// address, a symbol) and the reason, kept typed so callers can tell "no
/// vmlinux" from "a vmlinux without DWARF" from "unreadable memory" from "a
/// corrupt pointer". The one error type of the kernel layer: the typed
/// views ([`objects`]) and the page-table set-up return it alike.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    #[error("{0}: cannot find the kernel page tables: {1}")]
    NoPageTables(String, String),
    #[error(
        "no debug vmlinux for this dump: pass --vmlinux (the kernel's -dbg vmlinux, with DWARF)"
    )]
    NoVmlinux,
    /// The vmlinux is there but its DWARF is not usable (stripped, damaged).
    #[error("{}: {source}", path.display())]
    Dwarf {
        path: std::path::PathBuf,
        #[source]
        source: dwarf::DwarfError,
    },
    /// A struct member (or type) the kernel's DWARF does not have.
    #[error("{member}: {source}")]
    Member {
        member: String,
        #[source]
        source: dwarf::DwarfError,
    },
    /// A layout fact neither VMCOREINFO nor the DWARF gives.
    #[error("{what}: {reason}")]
    Layout { what: String, reason: String },
    /// A symbol neither VMCOREINFO nor the vmlinux names.
    #[error("symbol {0} not found (neither VMCOREINFO nor a vmlinux names it: give --vmlinux)")]
    NoSymbol(&'static str),
    /// Kernel memory that could not be read: which member, where, and why.
    #[error("{member} at {addr}: {source}")]
    Read {
        member: String,
        addr: VirtAddr,
        #[source]
        source: ReadError,
    },
    /// Base + offset (or a `container_of`) leaves the address space: a
    /// corrupt pointer.
    #[error("{member}: {base} {op} {offset:#x} leaves the address space (corrupt pointer?)")]
    Overflow {
        member: String,
        base: VirtAddr,
        op: char,
        offset: u64,
    },
    /// The object's contents make no sense (a list that does not close, a
    /// ring size past any real kernel's).
    #[error("{what} at {addr}: {reason}")]
    Corrupt {
        what: String,
        addr: VirtAddr,
        reason: String,
    },
}

/// How the kernel page-table root and KASLR offset were found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootSource {
    Vmcoreinfo,
    QemuCr3,
    /// No VMCOREINFO: found by [`kaslr`] (the text says how).
    Detected(String),
}

/// One CPU as the dump saved it.
#[derive(Clone, Debug)]
pub struct CpuContext {
    pub index: usize,
    /// pr_pid of the CPU's note (Linux PID on kdump, 0 when idle; vCPU+1 on QEMU).
    pub note_pid: u32,
    /// Registers in the architecture's `elf_gregset_t` order.
    pub regs: Vec<u64>,
    /// The tables this CPU was using: kernel root + the CR3 the CPU had, if known.
    pub space: AddressSpace,
    /// Control registers when the dump has them (QEMU notes): cr0, cr2, cr3, cr4.
    pub control: Option<[u64; 5]>,
    /// fs_base, gs_base, kernel_gs_base from QEMU notes.
    pub seg_bases: Option<(u64, u64, Option<u64>)>,
}

impl CpuContext {
    /// Program counter (x86_64 rip / arm64 pc).
    pub fn pc(&self, arch: Arch) -> u64 {
        match arch {
            Arch::X86_64 => self.regs.get(16).copied().unwrap_or(0),
            Arch::Aarch64 => self.regs.get(32).copied().unwrap_or(0),
            Arch::I386 => self.regs.get(12).copied().unwrap_or(0),
            Arch::Arm => self.regs.get(15).copied().unwrap_or(0),
        }
    }

    /// True if the CPU was executing kernel code.
    pub fn in_kernel(&self, arch: Arch) -> bool {
        match arch {
            Arch::X86_64 => self.regs.get(17).is_some_and(|cs| cs & 3 == 0),
            Arch::Aarch64 => self.regs.get(33).is_some_and(|ps| ps & 0xf != 0),
            Arch::I386 => self.regs.get(13).is_some_and(|cs| cs & 3 == 0),
            // CPSR.M: 0b10000 is user mode
            Arch::Arm => self.regs.get(16).is_some_and(|cpsr| cpsr & 0x1f != 0x10),
        }
    }
}

pub struct Kernel {
    pub dump: Dump,
    pub arch: Arch,
    pub vmcoreinfo: VmcoreInfo,
    pub paging: Paging,
    pub kernel_root: PageTableRoot,
    pub root_source: RootSource,
    /// KASLR offset of the kernel image (KERNELOFFSET).
    pub kaslr_offset: u64,
    /// x86_64 phys_base (signed); 0 elsewhere.
    pub phys_base: i64,
    pub cpus: Vec<CpuContext>,
    /// The debug vmlinux, when one matching the dump was given or found.
    pub vmlinux: Option<symbols::Vmlinux>,
    /// NUMBER()s VMCOREINFO lacked and detection derived (arm64 without
    /// VMCOREINFO: VA_BITS, PHYS_OFFSET, ...); see [`Kernel::number`].
    pub derived_numbers: Vec<(&'static str, u64)>,
    /// The typed views' layouts, resolved on first use ([`objects`]).
    layouts: objects::Layouts,
    /// Translations and page-table pages of [`Kernel::read_virt`]'s walks,
    /// dropped with the kernel (a live guest gets a new one per stop).
    /// `CORESTUB_WALK_CACHE=0` turns it off (bench/ measures both).
    pub walk_cache: WalkCache,
    /// The kernel's own symbol table, read on first need when there is no
    /// vmlinux ([`Kernel::kallsyms`]).
    kallsyms: std::sync::OnceLock<Result<kallsyms::Kallsyms, kallsyms::KallsymsError>>,
}

/// `table` (found by its shape at `at`) if it places `_stext`, and
/// `init_uts_ns` when it lists it, where `vi` does. Without
/// CONFIG_KALLSYMS_ALL (arm64 cloud kernels) kallsyms lists text only, so
/// a data symbol's absence says nothing.
fn placed_as_in(
    table: kallsyms::Kallsyms,
    vi: &VmcoreInfo,
    at: &kallsyms::TableAddrs,
) -> Result<kallsyms::Kallsyms, kallsyms::KallsymsError> {
    let agrees = |name: &str, required: bool| match (vi.symbol(name), table.addr(name)) {
        (Some(a), Some(t)) => a == t,
        (Some(_), None) => !required,
        (None, _) => true,
    };
    if agrees("_stext", true) && agrees("init_uts_ns", false) {
        return Ok(table);
    }
    Err(kallsyms::KallsymsError::Malformed {
        what: "kallsyms tables",
        va: at.names,
        reason: "they place _stext or init_uts_ns elsewhere than VMCOREINFO".into(),
    })
}

/// The error of a kallsyms search that followed `first`: `first`, the
/// search's logged.
fn searched(
    search: kallsyms::KallsymsError,
    first: kallsyms::KallsymsError,
) -> kallsyms::KallsymsError {
    log::info!("kallsyms by shape: {search}");
    first
}

/// An arm64 dump without a VMCOREINFO note (QEMU `dump-guest-memory`
/// without `-device vmcoreinfo`) and no vmlinux to locate the image: the
/// kernel's own VMCOREINFO page in memory, when it has what the page
/// tables need (`swapper_pg_dir`, `VA_BITS`, `kimage_voffset`). Checked by
/// [`Kernel::check_vmcoreinfo_page`] once the kernel is open.
fn arm64_vmcoreinfo_page(dump: &Dump, vmlinux: Option<&symbols::Vmlinux>) -> Option<VmcoreInfo> {
    if dump.arch != Arch::Aarch64 || dump.notes.vmcoreinfo.is_some() || vmlinux.is_some() {
        return None;
    }
    let vi = kallsyms::vmcoreinfo_in_memory(dump.memory.as_ref(), None, "swapper_pg_dir")?;
    (vi.number("VA_BITS").is_some() && vi.number("kimage_voffset").is_some()).then_some(vi)
}

impl Kernel {
    pub fn new(dump: Dump) -> Result<Kernel, KernelError> {
        Self::with_vmlinux(dump, None)
    }

    /// [`Kernel::new`] with the debug vmlinux known up front: a dump without
    /// VMCOREINFO needs its symbols to find KASLR ([`kaslr`]).
    pub fn with_vmlinux(
        dump: Dump,
        vmlinux: Option<symbols::Vmlinux>,
    ) -> Result<Kernel, KernelError> {
        let arch = dump.arch;
        let mut detected_offset = None;
        let mut derived_numbers = Vec::new();
        let in_memory = arm64_vmcoreinfo_page(&dump, vmlinux.as_ref());
        let vmcoreinfo = match (dump.notes.vmcoreinfo.as_deref(), &in_memory) {
            (Some(text), _) => VmcoreInfo::parse(text),
            (None, Some(vi)) => vi.clone(),
            (None, None) => VmcoreInfo::default(),
        };
        let path = dump.path.display().to_string();
        if let Some(w) = vmcoreinfo.bad_build_id() {
            log::warn!("{path}: {w}");
        }
        let (paging, kernel_root, root_source, phys_base) = match arch {
            Arch::X86_64 => {
                let five = vmcoreinfo.number("pgtable_l5_enabled").unwrap_or(0) != 0;
                // AMD SME/SEV: the C-bit rides in every entry and CR3.
                let sme = vmcoreinfo.number("sme_mask").unwrap_or(0) as u64;
                let paging = Paging::X86_64(X86Paging::new(five).with_sme_mask(sme));
                let phys_base = vmcoreinfo.number("phys_base").unwrap_or(0);
                let sym = vmcoreinfo
                    .symbol("init_top_pgt")
                    .or_else(|| vmcoreinfo.symbol("swapper_pg_dir"));
                if let Some(sym) = sym {
                    // PA = VA - __START_KERNEL_map + phys_base (signed)
                    let pa = sym
                        .checked_sub(X86_START_KERNEL_MAP)
                        .and_then(|o| o.checked_add_signed(phys_base))
                        .ok_or_else(|| {
                            KernelError::NoPageTables(
                                path.clone(),
                                format!(
                                    "VMCOREINFO's kernel page table {sym:#x} with phys_base {phys_base:#x} is not a physical address"
                                ),
                            )
                        })?;
                    (
                        paging,
                        PageTableRoot(PhysAddr(pa)),
                        RootSource::Vmcoreinfo,
                        phys_base,
                    )
                } else {
                    let d = kaslr::x86_64::detect(&dump, vmlinux.as_ref())
                        .map_err(|e| KernelError::NoPageTables(path, e))?;
                    detected_offset = Some(d.kaslr_offset);
                    (
                        d.paging,
                        d.root,
                        RootSource::Detected(d.method),
                        d.phys_base,
                    )
                }
            }
            Arch::I386 | Arch::Arm => {
                let setup = if arch == Arch::I386 {
                    kaslr::i386::setup(&dump, &vmcoreinfo, vmlinux.as_ref())
                } else {
                    kaslr::arm::setup(&dump, &vmcoreinfo, vmlinux.as_ref())
                }
                .map_err(|e| KernelError::NoPageTables(path, e))?;
                detected_offset = Some(setup.detected.kaslr_offset);
                derived_numbers = setup.numbers;
                let d = setup.detected;
                let source = if setup.from_vmcoreinfo {
                    RootSource::Vmcoreinfo
                } else {
                    RootSource::Detected(d.method)
                };
                (d.paging, d.root, source, 0)
            }
            Arch::Aarch64 if vmcoreinfo.number("VA_BITS").is_none() => {
                let d = kaslr::aarch64::detect(dump.memory.as_ref(), vmlinux.as_ref())
                    .map_err(|e| KernelError::NoPageTables(path, e))?;
                detected_offset = Some(d.detected.kaslr_offset);
                derived_numbers = d.numbers;
                let d = d.detected;
                (d.paging, d.root, RootSource::Detected(d.method), 0)
            }
            Arch::Aarch64 => {
                let num = |k: &str| vmcoreinfo.number(k).map(|v| v as u64);
                let page_size = vmcoreinfo.page_size().unwrap_or(4096);
                let va_bits = num("VA_BITS").unwrap_or(48);
                let p = Arm64Paging::from_vmcoreinfo(
                    page_size,
                    va_bits,
                    num("TCR_EL1_T1SZ"),
                    num("MAX_PHYSMEM_BITS"),
                )
                .map_err(|e| KernelError::NoPageTables(path.clone(), e.to_string()))?;
                let (Some(swapper), Some(voff)) =
                    (vmcoreinfo.symbol("swapper_pg_dir"), num("kimage_voffset"))
                else {
                    return Err(KernelError::NoPageTables(
                        path,
                        "VMCOREINFO lacks SYMBOL(swapper_pg_dir) or NUMBER(kimage_voffset)".into(),
                    ));
                };
                // The kernel image is mapped at PA = VA - kimage_voffset.
                let pa = swapper.checked_sub(voff).ok_or_else(|| {
                    KernelError::NoPageTables(
                        path.clone(),
                        format!("SYMBOL(swapper_pg_dir) {swapper:#x} is below NUMBER(kimage_voffset) {voff:#x}"),
                    )
                })?;
                let root = p.kernel_root_from_swapper_pg_dir(PhysAddr(pa), va_bits);
                (Paging::Aarch64(p), root, RootSource::Vmcoreinfo, 0)
            }
        };
        let kaslr_offset = detected_offset.or(vmcoreinfo.kernel_offset()).unwrap_or(0);
        let cpus = dump
            .notes
            .cpus
            .iter()
            .enumerate()
            .map(|(index, n)| {
                let qemu = dump.notes.qemu_cpus.get(index);
                // a PAE CR3 is 32-byte aligned (Linux allocates 32-byte PGDs)
                let cr3_mask = if arch == Arch::I386 {
                    0xffff_ffe0
                } else {
                    0x000f_ffff_ffff_f000
                };
                let user = qemu.map(|q| PageTableRoot(PhysAddr(q.cr[3] & cr3_mask)));
                CpuContext {
                    index,
                    note_pid: n.pid,
                    regs: n.regs.clone(),
                    space: AddressSpace {
                        kernel: kernel_root,
                        user,
                    },
                    control: qemu.map(|q| q.cr),
                    seg_bases: qemu.map(|q| (q.segments[3].1, q.segments[4].1, q.kernel_gs_base)),
                }
            })
            .collect();
        let kernel = Kernel {
            dump,
            arch,
            vmcoreinfo,
            paging,
            kernel_root,
            root_source,
            kaslr_offset,
            phys_base,
            cpus,
            vmlinux,
            derived_numbers,
            layouts: Default::default(),
            walk_cache: WalkCache::new(
                std::env::var_os("CORESTUB_WALK_CACHE").is_none_or(|v| v != "0"),
            ),
            kallsyms: std::sync::OnceLock::new(),
        };
        if in_memory.is_some() {
            kernel.check_vmcoreinfo_page(&kernel.dump.path.display().to_string())?;
        }
        Ok(kernel)
    }

    /// A VMCOREINFO taken from the kernel's own page in memory (see
    /// [`arm64_vmcoreinfo_page`]) is this kernel's only if the page tables
    /// it gives read back its release from `init_uts_ns`.
    fn check_vmcoreinfo_page(&self, path: &str) -> Result<(), KernelError> {
        let release = self.vmcoreinfo.osrelease().unwrap_or("");
        let read_back = match uts::read(self) {
            Ok(u) => Ok(u.release),
            Err(KernelError::Layout { .. }) => uts::release_by_shape(self),
            Err(e) => Err(e),
        };
        match read_back {
            Ok(r) if r == release => {
                log::info!(
                    "{path}: no VMCOREINFO note: the kernel's own VMCOREINFO page ({release}) used, \
                     its page tables reading back the release"
                );
                Ok(())
            }
            found => Err(KernelError::NoPageTables(
                path.into(),
                format!(
                    "no VMCOREINFO note, and the VMCOREINFO page found in memory ({release}) \
                     does not read back its release through its page tables ({}): give --vmlinux",
                    match found {
                        Ok(r) => format!("init_uts_ns says {r:?}"),
                        Err(e) => e.to_string(),
                    }
                ),
            )),
        }
    }

    /// Attaches the debug vmlinux found after the kernel was opened (from
    /// VMCOREINFO's release or build-id). A 32-bit kernel's VMCOREINFO has
    /// no KERNELOFFSET: its relocation is `SYMBOL(_stext)` minus the
    /// vmlinux's `_stext` (i386 kernels only move up).
    pub fn attach_vmlinux(&mut self, v: symbols::Vmlinux) {
        if matches!(self.arch, Arch::I386 | Arch::Arm)
            && self.vmcoreinfo.kernel_offset().is_none()
            && let (Some(run), Some(link)) = (self.vmcoreinfo.symbol("_stext"), v.addr("_stext"))
        {
            self.kaslr_offset = run.saturating_sub(link);
        }
        self.vmlinux = Some(v);
    }

    /// The kernel-only address space (no user half).
    pub fn kernel_space(&self) -> AddressSpace {
        AddressSpace {
            kernel: self.kernel_root,
            user: None,
        }
    }

    /// Reads as many bytes as possible from `va`; returns how many were read
    /// and, if short, why the next byte could not be.
    pub fn read_virt_partial(
        &self,
        space: &AddressSpace,
        va: VirtAddr,
        buf: &mut [u8],
    ) -> (usize, Option<ReadError>) {
        let mut done = 0;
        while done < buf.len() {
            let Some(cur) = va.checked_add(done as u64) else {
                let len = buf.len() as u64;
                return (done, Some(ReadError::PastTop { va, len }));
            };
            let t =
                match self
                    .walk_cache
                    .translate(&self.paging, self.dump.memory.as_ref(), space, cur)
                {
                    Ok(t) => t,
                    Err(e) => return (done, Some(e.into())),
                };
            let mut n = (t.bytes_left_in_page() as usize).min(buf.len() - done);
            if let Err(source) = self.dump.memory.read_phys(t.pa, &mut buf[done..done + n]) {
                // A large (2M/1G) page spans many dump pages, some of which
                // the dump may leave out: read up to the next 4 KiB frame
                // (the smallest dump page) so that a partial read returns
                // what precedes the missing frame.
                let to_frame = (4096 - (t.pa.0 & 0xfff)) as usize;
                if n <= to_frame {
                    return (done, Some(ReadError::Memory { va: cur, source }));
                }
                n = to_frame;
                if let Err(source) = self.dump.memory.read_phys(t.pa, &mut buf[done..done + n]) {
                    return (done, Some(ReadError::Memory { va: cur, source }));
                }
            }
            done += n;
        }
        (done, None)
    }

    /// Reads exactly `buf.len()` bytes at `va`.
    pub fn read_virt(
        &self,
        space: &AddressSpace,
        va: VirtAddr,
        buf: &mut [u8],
    ) -> Result<(), ReadError> {
        match self.read_virt_partial(space, va, buf) {
            (_, Some(e)) => Err(e),
            _ => Ok(()),
        }
    }

    pub fn read_u64(&self, space: &AddressSpace, va: VirtAddr) -> Result<u64, ReadError> {
        let mut b = [0u8; 8];
        self.read_virt(space, va, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    pub fn read_u32(&self, space: &AddressSpace, va: VirtAddr) -> Result<u32, ReadError> {
        let mut b = [0u8; 4];
        self.read_virt(space, va, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// A kernel symbol's runtime address: from vmlinux (relocated by the
    /// KASLR offset; x86_64 per-CPU offsets stay as they are), else from
    /// VMCOREINFO's SYMBOL() list, else (no vmlinux) from the kernel's own
    /// kallsyms table.
    pub fn symbol(&self, name: &str) -> Option<VirtAddr> {
        if let Some(v) = &self.vmlinux
            && let Some(a) = v.addr(name)
        {
            return v.relocate(a, self.kaslr_offset).map(VirtAddr);
        }
        if let Some(a) = self.vmcoreinfo.symbol(name) {
            return Some(VirtAddr(a));
        }
        if self.vmlinux.is_none() {
            return self.kallsyms().ok()?.addr(name).map(VirtAddr);
        }
        None
    }

    /// The kernel's kallsyms table, decoded from memory on first call.
    pub fn kallsyms(&self) -> Result<&kallsyms::Kallsyms, kallsyms::KallsymsError> {
        self.kallsyms
            .get_or_init(|| {
                let at = match kallsyms::TableAddrs::from_vmcoreinfo(&self.vmcoreinfo) {
                    Ok(at) => at,
                    // no VMCOREINFO note: the kernel's own copy in memory
                    Err(e) if self.dump.notes.vmcoreinfo.is_none() => {
                        let mem = self.dump.memory.as_ref();
                        let kaslr = Some(self.kaslr_offset);
                        if let Some(vi) =
                            kallsyms::vmcoreinfo_in_memory(mem, kaslr, "kallsyms_names")
                        {
                            kallsyms::TableAddrs::from_vmcoreinfo(&vi)?
                        } else {
                            let vi = kallsyms::vmcoreinfo_in_memory(mem, kaslr, "_stext")
                                .ok_or(e.clone())?;
                            return self.kallsyms_by_shape(&vi).map_err(|s| searched(s, e));
                        }
                    }
                    // before 6.0: not exported
                    Err(e) => {
                        return self
                            .kallsyms_by_shape(&self.vmcoreinfo)
                            .map_err(|s| searched(s, e));
                    }
                };
                kallsyms::Kallsyms::read(self, &at)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The kallsyms tables found by their shape in the image (kernels
    /// before 6.0, [`kallsyms_search`]) from `vi`'s `_stext` on (the dump's
    /// VMCOREINFO or the kernel's own page), and accepted only if they
    /// place `_stext` (and `init_uts_ns`, when `vi` has it) where `vi` does.
    fn kallsyms_by_shape(
        &self,
        vi: &VmcoreInfo,
    ) -> Result<kallsyms::Kallsyms, kallsyms::KallsymsError> {
        /// Image bytes searched: text and read-only data come first.
        const SEARCHED: u64 = 256 << 20;
        // the search knows 64-bit tables only (8-byte alignment)
        if self.arch.pointer_size() != 8 {
            return Err(kallsyms::KallsymsError::NotExported("kallsyms_names"));
        }
        let stext = vi
            .symbol("_stext")
            .ok_or(kallsyms::KallsymsError::NotExported("_stext"))?;
        let layouts = kallsyms_search::search(self, stext, stext.saturating_add(SEARCHED))?;
        let mut why = Vec::new();
        for (at, layout) in layouts.iter().zip(["relative", "absolute"]) {
            match kallsyms::Kallsyms::read(self, at).and_then(|t| placed_as_in(t, vi, at)) {
                Ok(table) => {
                    log::info!(
                        "kallsyms found by their shape: {} symbols ({layout} addresses), names at {:#x}",
                        table.syms.len(),
                        at.names
                    );
                    return Ok(table);
                }
                Err(e) => why.push(format!("as {layout} addresses: {e}")),
            }
        }
        Err(kallsyms::KallsymsError::Malformed {
            what: "kallsyms tables found by their shape",
            va: layouts[0].names,
            reason: why.join("; "),
        })
    }

    /// `NUMBER(name)` from VMCOREINFO, else as detection derived it (arm64
    /// dumps without VMCOREINFO: VA_BITS, PHYS_OFFSET, kimage_voffset,
    /// KERNELPACMASK, TCR_EL1_T1SZ).
    pub fn number(&self, name: &str) -> Option<u64> {
        self.vmcoreinfo.number(name).map(|v| v as u64).or_else(|| {
            self.derived_numbers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|&(_, v)| v)
        })
    }

    /// `OFFSET(type.member)` as VMCOREINFO exports it, else the same member
    /// from the vmlinux's DWARF: QEMU dumps without `-device vmcoreinfo`
    /// (or of a kernel that panicked before its driver ran) and raw RAM have
    /// no VMCOREINFO, as crash copes with from the debuginfo.
    pub fn member_offset(&self, name: &str) -> Option<u64> {
        if let Some(o) = self.vmcoreinfo.offset(name) {
            return Some(o);
        }
        let (ty, path) = name.split_once('.')?;
        self.debug_info()?.offset_of(ty, path).ok()
    }

    /// `SIZE(type)` from VMCOREINFO, else `sizeof` from DWARF (see
    /// [`Kernel::member_offset`]).
    pub fn type_size(&self, name: &str) -> Option<u64> {
        if let Some(s) = self.vmcoreinfo.size(name) {
            return Some(s);
        }
        self.debug_info()?.size_of(name).ok()
    }

    /// DWARF layouts, when the vmlinux has debug info (see
    /// [`Kernel::dwarf`] for why not).
    pub fn debug_info(&self) -> Option<&dwarf::DebugInfo> {
        self.dwarf().ok()
    }

    /// DWARF layouts, or why there are none: no vmlinux, or a vmlinux
    /// without (usable) DWARF, naming the file.
    pub fn dwarf(&self) -> Result<&dwarf::DebugInfo, KernelError> {
        let v = self.vmlinux.as_ref().ok_or(KernelError::NoVmlinux)?;
        v.debug_info().map_err(|e| match e {
            symbols::VmlinuxError::Dwarf { path, source } => KernelError::Dwarf { path, source },
            other => KernelError::Dwarf {
                path: v.path().to_path_buf(),
                source: dwarf::DwarfError::Malformed {
                    offset: 0,
                    reason: other.to_string(),
                },
            },
        })
    }

    /// Byte offset of `path` (`thread.sp`) in struct/union `ty`, from DWARF,
    /// or why not (naming the member).
    pub fn dwarf_offset(&self, ty: &str, path: &str) -> Result<u64, KernelError> {
        self.dwarf()?
            .offset_of(ty, path)
            .map_err(|source| KernelError::Member {
                member: format!("{ty}.{path}"),
                source,
            })
    }

    /// Per-CPU base of `cpu` (`__per_cpu_offset[cpu]`). A 32-bit kernel's
    /// offset is sign-extended, so that [`VirtAddr::per_cpu`]'s 64-bit sum
    /// is the kernel's 32-bit one.
    pub fn per_cpu_offset(&self, cpu: usize) -> Option<u64> {
        let arr = self.symbol("__per_cpu_offset")?;
        let size = self.arch.pointer_size();
        let slot = (cpu as u64)
            .checked_mul(size)
            .and_then(|o| arr.checked_add(o))?;
        let v = self.read_ulong(&self.kernel_space(), slot).ok()?;
        Some(if size == 4 {
            v as u32 as i32 as i64 as u64
        } else {
            v
        })
    }

    /// Reads an `unsigned long` (or a pointer) of the dumped kernel: 4 bytes
    /// on 32-bit architectures, 8 on 64-bit ones.
    pub fn read_ulong(&self, space: &AddressSpace, va: VirtAddr) -> Result<u64, ReadError> {
        match self.arch.pointer_size() {
            4 => self.read_u32(space, va).map(u64::from),
            _ => self.read_u64(space, va),
        }
    }
}

impl Kernel {
    /// The CPU that called panic(): the kernel's `panic_cpu` variable when
    /// the symbol is known, else the log's panic record
    /// ([`Kernel::panic_cpu_from_log`]), else [`Kernel::guess_panic_cpu`].
    /// `None` when the kernel had not panicked (e.g. a QEMU dump of a
    /// running guest: panic_cpu is still PANIC_CPU_INVALID, -1).
    pub fn panic_cpu(&self) -> Option<usize> {
        if let Some(va) = self.symbol("panic_cpu")
            && let Ok(v) = self.read_u32(&self.kernel_space(), va)
        {
            return ((v as usize) < self.cpus.len()).then_some(v as usize);
        }
        self.panic_cpu_from_log().or_else(|| self.guess_panic_cpu())
    }

    /// Without a `panic_cpu` symbol (kallsyms of functions only): the CPU
    /// that logged the last "Kernel panic - not syncing" record, told by the
    /// record's caller id (5.10+): the CPU itself outside task context,
    /// else the CPU whose runqueue was running the task of that PID (not
    /// PID 0: every CPU runs an idle task).
    fn panic_cpu_from_log(&self) -> Option<usize> {
        const CPU_CALLER: u32 = 0x8000_0000;
        let log = printk::read_log(self).ok()?;
        let caller = log
            .iter()
            .rev()
            .find(|r| r.text.starts_with("Kernel panic - not syncing"))?
            .caller?;
        let cpu = if caller & CPU_CALLER != 0 {
            let cpu = (caller & !CPU_CALLER) as usize;
            (cpu < self.cpus.len()).then_some(cpu)?
        } else {
            let pid = i32::try_from(caller).ok().filter(|&p| p != 0)?;
            let tasks = objects::task::TaskView::new(self).ok()?;
            let rqs = objects::runqueue::runqueues(self).ok()?;
            rqs.iter().find_map(|rq| {
                let curr = tasks.read(*rq.curr.as_ref().ok()?).ok()?;
                (curr.pid == pid).then_some(rq.cpu)
            })?
        };
        log::info!("panic CPU {cpu}: it logged the kernel's panic message (caller id {caller:#x})");
        Some(cpu)
    }

    /// True when NT_PRSTATUS pr_pid fields are Linux PIDs (kdump), false
    /// when they number vCPUs (QEMU writes cpu index + 1): as the dump's
    /// opener decided ([`crate::dump::Notes::vcpu_numbered`]).
    pub fn notes_carry_pids(&self) -> bool {
        !self.dump.notes.vcpu_numbered
    }

    /// The panicking CPU when no symbol table is available: the first CPU
    /// that was in kernel mode running a task (kdump notes carry the task's
    /// PID; idle CPUs have 0). QEMU notes number by vCPU, so they say nothing.
    pub fn guess_panic_cpu(&self) -> Option<usize> {
        // vCPU-numbered notes (QEMU) say nothing about who panicked, and
        // such dumps are often of a running guest: claim no panic CPU.
        if !self.notes_carry_pids() {
            return None;
        }
        self.cpus
            .iter()
            .find(|c| c.note_pid != 0 && c.in_kernel(self.arch))
            .map(|c| c.index)
            .or((!self.cpus.is_empty()).then_some(0))
    }
}
