//! Pieces of `qemu_other_kernel`: fetching Debian kernels through a
//! private apt configuration, and booting them into dumps.

pub mod boot;
pub mod fetch;
pub mod kscripts;
