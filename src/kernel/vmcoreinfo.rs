//! VMCOREINFO for the kernel layer. The parser lives in the dump layer
//! ([`crate::dump::vmcoreinfo`]), which needs it while opening a dump
//! (phys_base and page size checks) and may not reach upward; this is the
//! same type, re-exported where kernel code looks for it.

pub use crate::dump::vmcoreinfo::{VmcoreInfo, is_build_id};
