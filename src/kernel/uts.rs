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

/// The release in `init_uts_ns` when its layout is not known yet (no
/// OFFSET(uts_namespace.name) in VMCOREINFO before 6.x kernels, no DWARF
/// before the symbol file is built): the name is the first `Linux\0`
/// (`sysname`) in the namespace's first [`NAME_WITHIN`] bytes, the release
/// two fields on. Only for checking an expected release, never shown.
pub fn release_by_shape(k: &Kernel) -> Result<String, KernelError> {
    let ns = symbol(k, "init_uts_ns")?;
    let mut b = [0u8; NAME_WITHIN + FIELD * 3];
    k.read_virt(&k.kernel_space(), ns, &mut b)
        .map_err(|source| KernelError::Read {
            member: "init_uts_ns".into(),
            addr: ns,
            source,
        })?;
    let sysname = memchr::memmem::find(&b[..NAME_WITHIN + 6], b"Linux\0").ok_or_else(|| {
        KernelError::Corrupt {
            what: "init_uts_ns".into(),
            addr: ns,
            reason: format!("no sysname \"Linux\" in its first {NAME_WITHIN} bytes"),
        }
    })?;
    let release = sysname + 2 * FIELD;
    Ok(c_string(&b[release..release + FIELD]))
}

/// Bytes of `struct uts_namespace` before its `name` at most (5.10 has a
/// 4-byte `kref` there; 6.1 and later put `name` first).
const NAME_WITHIN: usize = 64;
