//! Pieces of `qemu_other_kernel`: fetching Debian kernels through a
//! private apt configuration, and booting them into dumps.

pub mod boot;
pub mod fetch;
pub mod kscripts;
// the in-guest kdump tests' pieces: not every test uses all of them
#[allow(dead_code)]
pub mod kdump;
