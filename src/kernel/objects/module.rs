//! Loaded modules: the `modules` list of `struct module`, name and address
//! (what a module listing needs to find each one; the GDB-side `lsmod`
//! reads the rest).

use super::{Member, Result, c_string, member, symbol};
use crate::addr::VirtAddr;
use crate::kernel::Kernel;
use crate::kernel::objects::task::walk_list;

#[derive(Clone, Debug)]
pub struct ModuleLayout {
    pub list: Member,
    pub name: Member,
    pub name_len: usize,
}

impl ModuleLayout {
    pub fn resolve(k: &Kernel) -> Result<ModuleLayout> {
        let name_len = super::debug_info(k, "struct module")
            .ok()
            .and_then(|d| d.field("module", "name").ok())
            .and_then(|f| f.size)
            .unwrap_or(56)
            .min(256) as usize;
        Ok(ModuleLayout {
            list: member(k, "module", "list")?,
            name: member(k, "module", "name")?,
            name_len,
        })
    }
}

/// One loaded module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    pub addr: VirtAddr,
    pub name: String,
}

/// The modules on the `modules` list, newest first (the kernel adds at the
/// head), and what stopped the walk early, if anything.
pub fn modules(k: &Kernel) -> Result<(Vec<Module>, Option<super::KernelError>)> {
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
        let addr = l.list.container_of(link)?;
        let at = l.name.at(addr)?;
        let mut b = vec![0u8; l.name_len];
        k.read_virt(&k.kernel_space(), at, &mut b)
            .map_err(|source| super::KernelError::Read {
                member: l.name.to_string(),
                addr: at,
                source,
            })?;
        out.push(Module {
            addr,
            name: c_string(&b),
        });
    }
    Ok((out, walk.stopped))
}
