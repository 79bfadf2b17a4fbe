//! Typed views of kernel objects: each view resolves the layout it needs
//! once (VMCOREINFO's OFFSET/SIZE, else the vmlinux's DWARF), keeps it in
//! [`Layouts`] (owned by the [`Kernel`]), and reads members with checked
//! address arithmetic. Every failure is a [`KernelError`] naming the
//! member and the address: never a zero, never a wrapped pointer.
//!
//! The views are the one place where the kernel's structures are known;
//! `tasks`, `printk`, `uts`, `page` and the monitor commands are built on
//! them, and the GDB scripts ask the server (`monitor X --json`) for what
//! these views read.

pub mod mm;
pub mod module;
pub mod printk_ring;
pub mod runqueue;
pub mod state;
pub mod task;

use std::sync::OnceLock;

use crate::addr::VirtAddr;
use crate::kernel::dwarf::DwarfError;
use crate::kernel::{Kernel, KernelError};

pub type Result<T> = std::result::Result<T, KernelError>;

/// A member of a kernel type, resolved: its name (for errors) and offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub ty: &'static str,
    pub path: &'static str,
    pub offset: u64,
}

impl std::fmt::Display for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.ty, self.path)
    }
}

impl Member {
    /// The member's address inside the object at `base`.
    pub fn at(self, base: VirtAddr) -> Result<VirtAddr> {
        base.checked_add(self.offset)
            .ok_or_else(|| KernelError::Overflow {
                member: self.to_string(),
                base,
                op: '+',
                offset: self.offset,
            })
    }

    /// `container_of`: the object whose member sits at `member_addr`.
    pub fn container_of(self, member_addr: VirtAddr) -> Result<VirtAddr> {
        member_addr
            .checked_sub(self.offset)
            .ok_or_else(|| KernelError::Overflow {
                member: self.to_string(),
                base: member_addr,
                op: '-',
                offset: self.offset,
            })
    }

    /// Reads `N` bytes of the member of the object at `base`.
    pub fn read_bytes<const N: usize>(self, k: &Kernel, base: VirtAddr) -> Result<[u8; N]> {
        let addr = self.at(base)?;
        let mut b = [0u8; N];
        k.read_virt(&k.kernel_space(), addr, &mut b)
            .map_err(|source| KernelError::Read {
                member: self.to_string(),
                addr,
                source,
            })?;
        Ok(b)
    }

    pub fn u64(self, k: &Kernel, base: VirtAddr) -> Result<u64> {
        self.read_bytes::<8>(k, base).map(u64::from_le_bytes)
    }

    pub fn u32(self, k: &Kernel, base: VirtAddr) -> Result<u32> {
        self.read_bytes::<4>(k, base).map(u32::from_le_bytes)
    }

    /// An `unsigned long` (or `long`, zero-extended) member: 4 bytes on a
    /// 32-bit kernel, 8 on a 64-bit one.
    pub fn ulong(self, k: &Kernel, base: VirtAddr) -> Result<u64> {
        match k.arch.pointer_size() {
            4 => self.u32(k, base).map(u64::from),
            _ => self.u64(k, base),
        }
    }

    /// A pointer member.
    pub fn ptr(self, k: &Kernel, base: VirtAddr) -> Result<VirtAddr> {
        self.ulong(k, base).map(VirtAddr)
    }
}

/// `OFFSET(ty.path)` from VMCOREINFO, else from DWARF; the error says why
/// neither gave it (no vmlinux, no DWARF, no such member).
pub fn member(k: &Kernel, ty: &'static str, path: &'static str) -> Result<Member> {
    let key = format!("{ty}.{path}");
    if let Some(offset) = k.vmcoreinfo.offset(&key) {
        return Ok(Member { ty, path, offset });
    }
    let d = debug_info(k, &key)?;
    d.offset_of(ty, path)
        .map(|offset| Member { ty, path, offset })
        .map_err(|e| layout_error(&key, e))
}

/// Like [`member`], `None` when the kernel has no such member (a member
/// that differs between versions); other failures are errors.
pub fn optional_member(k: &Kernel, ty: &'static str, path: &'static str) -> Result<Option<Member>> {
    let key = format!("{ty}.{path}");
    if let Some(offset) = k.vmcoreinfo.offset(&key) {
        return Ok(Some(Member { ty, path, offset }));
    }
    match debug_info(k, &key)?.field(ty, path) {
        Ok(f) => Ok(Some(Member {
            ty,
            path,
            offset: f.offset,
        })),
        Err(DwarfError::NoMember { .. }) => Ok(None),
        Err(e) => Err(layout_error(&key, e)),
    }
}

/// A member with its DWARF type (for members whose type changed between
/// versions: `mm_struct.rss_stat`).
pub fn typed_member(
    k: &Kernel,
    ty: &'static str,
    path: &'static str,
) -> Result<Option<(Member, crate::kernel::dwarf::Field)>> {
    let key = format!("{ty}.{path}");
    match debug_info(k, &key)?.field(ty, path) {
        Ok(f) => Ok(Some((
            Member {
                ty,
                path,
                offset: f.offset,
            },
            f,
        ))),
        Err(DwarfError::NoMember { .. }) => Ok(None),
        Err(e) => Err(layout_error(&key, e)),
    }
}

/// The first of `paths` that `ty` has (`__state` since 5.14, `state` before).
pub fn first_member(k: &Kernel, ty: &'static str, paths: &[&'static str]) -> Result<Member> {
    for p in paths {
        if let Some(m) = optional_member(k, ty, p)? {
            return Ok(m);
        }
    }
    Err(KernelError::Layout {
        what: format!("{ty}.{}", paths.join("|")),
        reason: "the kernel's DWARF has none of these members".into(),
    })
}

/// `SIZE(ty)` from VMCOREINFO, else `sizeof` from DWARF.
pub fn size_of(k: &Kernel, ty: &'static str) -> Result<u64> {
    if let Some(s) = k.vmcoreinfo.size(ty) {
        return Ok(s);
    }
    debug_info(k, ty)?
        .size_of(ty)
        .map_err(|e| layout_error(&format!("sizeof({ty})"), e))
}

/// The vmlinux's DWARF, or an error saying what `what` needed it for.
pub fn debug_info<'k>(k: &'k Kernel, what: &str) -> Result<&'k crate::kernel::dwarf::DebugInfo> {
    let Some(v) = &k.vmlinux else {
        return Err(KernelError::Layout {
            what: what.to_string(),
            reason: "not in VMCOREINFO, and no vmlinux was given (pass --vmlinux)".into(),
        });
    };
    v.debug_info().map_err(|e| KernelError::Layout {
        what: what.to_string(),
        reason: e.to_string(),
    })
}

fn layout_error(what: &str, e: DwarfError) -> KernelError {
    KernelError::Layout {
        what: what.to_string(),
        reason: format!("not in VMCOREINFO, and the DWARF says: {e}"),
    }
}

/// A kernel symbol's runtime address, or [`KernelError::NoSymbol`].
pub fn symbol(k: &Kernel, name: &'static str) -> Result<VirtAddr> {
    k.symbol(name).ok_or(KernelError::NoSymbol(name))
}

/// Each view's layout, resolved on first use and kept for the life of the
/// [`Kernel`] (the vmlinux must be attached before the first use).
#[derive(Default)]
pub struct Layouts {
    task: OnceLock<Result<task::TaskLayout>>,
    mm: OnceLock<Result<mm::MmLayout>>,
    states: OnceLock<Result<state::TaskStates>>,
    runqueue: OnceLock<Result<runqueue::RqLayout>>,
    module: OnceLock<Result<module::ModuleLayout>>,
    /// `init_task` found by its structure ([`crate::kernel::init_task_search`]).
    pub(in crate::kernel) init_task: OnceLock<Result<VirtAddr>>,
    runqueues_found: OnceLock<Result<Vec<Option<VirtAddr>>>>,
}

impl std::fmt::Debug for Layouts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layouts").finish_non_exhaustive()
    }
}

fn cached<T>(cell: &OnceLock<Result<T>>, init: impl FnOnce() -> Result<T>) -> Result<&T> {
    cell.get_or_init(init).as_ref().map_err(Clone::clone)
}

impl Kernel {
    /// `struct task_struct` (see [`task`]).
    pub fn task_layout(&self) -> Result<&task::TaskLayout> {
        cached(&self.layouts.task, || task::TaskLayout::resolve(self))
    }

    /// `struct mm_struct` (see [`mm`]).
    pub fn mm_layout(&self) -> Result<&mm::MmLayout> {
        cached(&self.layouts.mm, || mm::MmLayout::resolve(self))
    }

    /// The kernel's task-state letters (see [`state`]).
    pub fn task_states(&self) -> Result<&state::TaskStates> {
        cached(&self.layouts.states, || state::TaskStates::resolve(self))
    }

    /// `struct rq` (see [`runqueue`]).
    pub fn rq_layout(&self) -> Result<&runqueue::RqLayout> {
        cached(&self.layouts.runqueue, || runqueue::RqLayout::resolve(self))
    }

    /// Each CPU's runqueue found from its tasks, when no symbol names
    /// them (see [`runqueue`]).
    pub fn runqueues_found(&self) -> Result<&[Option<VirtAddr>]> {
        cached(&self.layouts.runqueues_found, || {
            runqueue::runqueues_from_tasks(self)
        })
        .map(Vec::as_slice)
    }

    /// `struct module` (see [`module`]).
    pub fn module_layout(&self) -> Result<&module::ModuleLayout> {
        cached(&self.layouts.module, || module::ModuleLayout::resolve(self))
    }
}

/// A NUL-terminated string from a fixed-size char array.
pub fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}
