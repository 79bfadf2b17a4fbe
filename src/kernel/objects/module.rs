//! Loaded modules: the `modules` list of `struct module`, each with its
//! name, where its code sits, its size, its state and its reference count
//! (what `lsmod` shows; `monitor lsmod` renders it and the GDB scripts ask
//! for it on corestub).
//!
//! The memory layout changed in 6.4: `core_layout`/`init_layout` (one
//! region each) became `mem[]`, one region per `enum mod_mem_type`. Which
//! members the DWARF has decides, never the version: with `mem[]` the base
//! is `mem[0]` (`MOD_TEXT`, the first type) and the size the sum of every
//! region, as `/proc/modules` counts it (`module_total_size`); before, the
//! base is `core_layout.base` and the size `core_layout.size` plus
//! `init_layout.size` (what `/proc/modules` printed then). The kernel
//! zeroes the init regions once a module is initialised, so a live
//! module's size is its core.

use super::{KernelError, Member, Result, c_string, debug_info, member, optional_member, symbol};
use crate::addr::VirtAddr;
use crate::kernel::Kernel;
use crate::kernel::objects::task::walk_list;

/// `struct module`, resolved once.
#[derive(Clone, Debug)]
pub struct ModuleLayout {
    pub list: Member,
    pub name: Member,
    pub name_len: usize,
    /// Where the module's code starts.
    pub base: Member,
    /// The `unsigned int` sizes whose sum is the module's size.
    pub sizes: Vec<Member>,
    pub state: Option<Member>,
    /// `atomic_t refcnt` (CONFIG_MODULE_UNLOAD).
    pub refcnt: Option<Member>,
    pub sect_attrs: Option<Member>,
    /// `enum module_state`'s enumerators, from the DWARF.
    pub state_names: Vec<(String, i64)>,
}

/// `mem[i].size` as a [`Member`], elements `stride` bytes apart.
fn mem_size(size0: u64, i: u64, stride: u64) -> Result<Member> {
    let offset = i
        .checked_mul(stride)
        .and_then(|o| o.checked_add(size0))
        .ok_or_else(|| KernelError::Layout {
            what: "module.mem[]".into(),
            reason: format!("element {i} of {stride:#x} bytes lies past 64 bits"),
        })?;
    Ok(Member {
        ty: "module",
        path: "mem[].size",
        offset,
    })
}

/// Base and sizes from `mem[]` (6.4+): every region of the array.
fn mem_regions(k: &Kernel) -> Result<(Member, Vec<Member>)> {
    let d = debug_info(k, "module.mem")?;
    let field = |path: &str| {
        d.field("module", path).map_err(|e| KernelError::Member {
            member: format!("module.{path}"),
            source: e,
        })
    };
    let stride = field("mem[0]")?
        .size
        .filter(|&s| s > 0)
        .ok_or(KernelError::Layout {
            what: "module.mem[0]".into(),
            reason: "the DWARF gives no element size".into(),
        })?;
    let count = field("mem")?.size.unwrap_or(0) / stride;
    let base = Member {
        ty: "module",
        path: "mem[0].base",
        offset: field("mem[0].base")?.offset,
    };
    let size0 = field("mem[0].size")?.offset;
    let sizes = (0..count)
        .map(|i| mem_size(size0, i, stride))
        .collect::<Result<_>>()?;
    Ok((base, sizes))
}

impl ModuleLayout {
    pub fn resolve(k: &Kernel) -> Result<ModuleLayout> {
        let d = debug_info(k, "struct module")?;
        let name_len = d
            .field("module", "name")
            .ok()
            .and_then(|f| f.size)
            .unwrap_or(56)
            .min(256) as usize;
        let (base, sizes) = match optional_member(k, "module", "mem")? {
            Some(_) => mem_regions(k)?,
            None => {
                let mut sizes = vec![member(k, "module", "core_layout.size")?];
                sizes.extend(optional_member(k, "module", "init_layout.size")?);
                (member(k, "module", "core_layout.base")?, sizes)
            }
        };
        Ok(ModuleLayout {
            list: member(k, "module", "list")?,
            name: member(k, "module", "name")?,
            name_len,
            base,
            sizes,
            state: optional_member(k, "module", "state")?,
            refcnt: optional_member(k, "module", "refcnt")?,
            sect_attrs: optional_member(k, "module", "sect_attrs")?,
            state_names: d.enumerators("module_state").unwrap_or_default(),
        })
    }

    /// `MODULE_STATE_LIVE` → `live`; the number when the DWARF has no name.
    fn state_name(&self, v: u32) -> String {
        self.state_names
            .iter()
            .find(|(_, n)| *n == i64::from(v))
            .map(|(name, _)| {
                name.strip_prefix("MODULE_STATE_")
                    .unwrap_or(name)
                    .to_lowercase()
            })
            .unwrap_or_else(|| v.to_string())
    }
}

/// One loaded module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    /// The `struct module`.
    pub addr: VirtAddr,
    pub name: String,
    pub base: VirtAddr,
    pub size: u64,
    /// `live`, `coming`, `going`, `unformed` (the kernel's names).
    pub state: Option<String>,
    /// Holders, as `lsmod` counts them: `refcnt` less the module's own
    /// reference (`MODULE_REF_BASE`, 1).
    pub refs: Option<i64>,
    /// `struct module_sect_attrs *` (the section addresses, for symbols).
    pub sect_attrs: VirtAddr,
}

impl Module {
    fn read(k: &Kernel, l: &ModuleLayout, addr: VirtAddr) -> Result<Module> {
        let at = l.name.at(addr)?;
        let mut b = vec![0u8; l.name_len];
        k.read_virt(&k.kernel_space(), at, &mut b)
            .map_err(|source| KernelError::Read {
                member: l.name.to_string(),
                addr: at,
                source,
            })?;
        let mut size = 0u64;
        for m in &l.sizes {
            size = size.saturating_add(u64::from(m.u32(k, addr)?));
        }
        Ok(Module {
            addr,
            name: c_string(&b),
            base: l.base.ptr(k, addr)?,
            size,
            state: match l.state {
                Some(m) => Some(l.state_name(m.u32(k, addr)?)),
                None => None,
            },
            refs: match l.refcnt {
                Some(m) => Some(i64::from(m.u32(k, addr)? as i32) - 1),
                None => None,
            },
            sect_attrs: match l.sect_attrs {
                Some(m) => m.ptr(k, addr)?,
                None => VirtAddr(0),
            },
        })
    }
}

/// The modules on the `modules` list, newest first (the kernel adds at the
/// head), and what stopped the walk early, if anything.
pub fn modules(k: &Kernel) -> Result<(Vec<Module>, Option<KernelError>)> {
    let l = k.module_layout()?;
    let head = symbol(k, "modules")?;
    let next = Member {
        ty: "list_head",
        path: "next",
        offset: 0,
    };
    let walk = walk_list(head, |a| next.ptr(k, a), "modules");
    let mut out = Vec::with_capacity(walk.links.len());
    for link in walk.links {
        out.push(Module::read(k, l, l.list.container_of(link)?)?);
    }
    Ok((out, walk.stopped))
}
