//! `init_uts_ns.name` (struct new_utsname): the kernel's uname.

use crate::kernel::objects::{c_string, member, symbol};
use crate::kernel::{Kernel, KernelError};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Utsname {
    pub sysname: String,
    pub nodename: String,
    pub release: String,
    pub version: String,
    pub machine: String,
    pub domainname: String,
}

/// Each field is a NUL-terminated char[__NEW_UTS_LEN + 1] (65 since 2.6).
const FIELD: usize = 65;

/// Reads `init_uts_ns.name` (VMCOREINFO's SYMBOL/OFFSET, else the vmlinux
/// and its DWARF: raw RAM, QEMU without vmcoreinfo).
pub fn read(k: &Kernel) -> Result<Utsname, KernelError> {
    let ns = symbol(k, "init_uts_ns")?;
    let name = member(k, "uts_namespace", "name")?;
    let b = name.read_bytes::<{ FIELD * 6 }>(k, ns)?;
    let f = |i: usize| c_string(&b[i * FIELD..(i + 1) * FIELD]);
    Ok(Utsname {
        sysname: f(0),
        nodename: f(1),
        release: f(2),
        version: f(3),
        machine: f(4),
        domainname: f(5),
    })
}
