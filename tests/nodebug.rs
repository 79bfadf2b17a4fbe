//! Sessions with no debug vmlinux at all: the kernel's kallsyms table
//! (and, from it, the generated symbol file) checked against the real
//! debug vmlinux of each fixture.

use std::path::PathBuf;

use corestub::fixtures::fixture;
use corestub::kernel::Kernel;
use corestub::kernel::symbols::Vmlinux;

/// The dumps with their debug vmlinux: the 6.1 fixtures and the 7.x guest
/// dumps when a guest test has cached them.
fn dump_sets(test: &str) -> Vec<(PathBuf, PathBuf)> {
    let mut v = Vec::new();
    for set in ["x86_64-6.1", "arm64-6.1"] {
        if let (Some(d), Some(vm)) = (
            fixture(set, "elf-d31.vmcore", test),
            fixture(set, "vmlinux", test),
        ) {
            v.push((d, vm));
        }
    }
    for (set, rel) in [
        ("x86_64-7", "7.3.4+deb13-cloud-amd64"),
        ("arm64-7", "7.3.4+deb13-cloud-arm64"),
    ] {
        let dir = corestub::fixtures::root().join(set).join(rel);
        let (d, vm) = (dir.join("guest-v3/qemu.elf"), dir.join("vmlinux"));
        if d.is_file() && vm.is_file() {
            v.push((d, vm));
        } else {
            eprintln!("{test}: {} not cached: skipped", d.display());
        }
    }
    v
}

/// Every kallsyms symbol's address is that of an ELF symbol of the same
/// name in the debug vmlinux, plus the KASLR offset (per-CPU offsets as
/// they are).
#[test]
fn kallsyms_equal_the_vmlinux_symbols() {
    for (dump, vmlinux) in dump_sets("kallsyms_equal_the_vmlinux_symbols") {
        let k = Kernel::new(corestub::dump::open(&dump).unwrap()).unwrap();
        let t0 = std::time::Instant::now();
        let ks = k.kallsyms().unwrap_or_else(|e| panic!("{}: {e}", dump.display()));
        eprintln!(
            "{}: {} kallsyms symbols in {:?}",
            dump.display(),
            ks.syms.len(),
            t0.elapsed()
        );
        assert!(ks.syms.len() > 50_000, "{}", ks.syms.len());
        let vm = Vmlinux::open(&vmlinux).unwrap();
        let mut missing = Vec::new();
        for s in &ks.syms {
            // `__per_cpu_end` lies just past `.data..percpu`, so the
            // vmlinux relocates it; kallsyms keeps it absolute
            let percpu_end = |a: u64| vm.percpu_range().is_some_and(|r| r.end == a);
            let found = vm.symbols_named(&s.name).any(|e| {
                vm.relocate(e.addr, k.kaslr_offset) == Some(s.addr)
                    || (ks.percpu_absolute && percpu_end(e.addr) && e.addr == s.addr)
            });
            if !found {
                missing.push(format!("{} {:#x}", s.name, s.addr));
            }
        }
        assert!(
            missing.is_empty(),
            "{}: {} of {} kallsyms symbols differ from the vmlinux, e.g. {:?}",
            dump.display(),
            missing.len(),
            ks.syms.len(),
            &missing[..missing.len().min(10)]
        );
    }
}
