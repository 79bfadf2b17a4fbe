//! corestub: serve a Linux crash dump to GDB/LLDB as a stopped remote target.
//!
//! Layers, each a module that only uses the ones before it:
//! [`dump`] (physical memory) → [`mmu`] (page-table walkers) → [`kernel`]
//! (VMCOREINFO, KASLR, symbols, tasks) → [`target`] (the gdbstub target) →
//! `cli` in the binary.

pub mod addr;
pub mod dump;
pub mod kernel;
pub mod mmu;
#[doc(hidden)]
pub mod fixtures;
