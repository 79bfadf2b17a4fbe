//! `init_uts_ns.name` (struct new_utsname): the kernel's uname.

use crate::addr::VirtAddr;
use crate::kernel::Kernel;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Utsname {
    pub sysname: String,
    pub nodename: String,
    pub release: String,
    pub version: String,
    pub machine: String,
    pub domainname: String,
}

/// Each field is a NUL-terminated char[65].
const FIELD: usize = 65;

pub fn read(k: &Kernel) -> Option<Utsname> {
    // VMCOREINFO's SYMBOL/OFFSET, else the vmlinux and its DWARF (raw RAM,
    // QEMU without vmcoreinfo)
    let base = k.symbol("init_uts_ns")?.0 + k.member_offset("uts_namespace.name")?;
    let mut b = [0u8; FIELD * 6];
    k.read_virt(&k.kernel_space(), VirtAddr(base), &mut b)
        .ok()?;
    let f = |i: usize| {
        let s = &b[i * FIELD..(i + 1) * FIELD];
        let end = s.iter().position(|&c| c == 0).unwrap_or(FIELD);
        String::from_utf8_lossy(&s[..end]).into_owned()
    };
    Some(Utsname {
        sysname: f(0),
        nodename: f(1),
        release: f(2),
        version: f(3),
        machine: f(4),
        domainname: f(5),
    })
}
