//! corestub: serve a Linux crash dump to GDB/LLDB as a stopped remote target.
//!
//! Layers, each a module that only uses the ones before it:
//! [`dump`] (physical memory) → [`mmu`] (page-table walkers) → [`kernel`]
//! (VMCOREINFO, KASLR, symbols, tasks) → [`target`] (the gdbstub target) →
//! `cli` in the binary.

pub mod addr;
pub mod dump;
#[doc(hidden)]
pub mod fixtures;
#[doc(hidden)]
pub mod fuzz_harness;
pub mod kernel;
pub mod mmu;
pub mod qmp;
pub mod target;
