//! x86_64 page walks on the real kdump boot, checked against crash 8.0.2's
//! walk of 833 addresses in every kernel region (truth/vtop-sample.tsv).

use corestub::addr::VirtAddr;
use corestub::dump;
use corestub::fixtures::fixture;
use corestub::kernel::Kernel;

fn check_vtop_sample(file: &str, test: &str) {
    let Some(path) = fixture("x86_64-6.1", file, test) else {
        return;
    };
    let tsv =
        std::fs::read_to_string(fixture("x86_64-6.1", "truth/vtop-sample.tsv", test).unwrap())
            .unwrap();
    let kernel = Kernel::new(dump::open(&path).unwrap()).unwrap();
    let space = kernel.kernel_space();
    let mut checked = 0;
    for line in tsv.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        let va = u64::from_str_radix(f[0].trim_start_matches("0x"), 16).unwrap();
        let got = kernel
            .paging
            .translate(kernel.dump.memory.as_ref(), &space, VirtAddr(va), None);
        match f[1] {
            "none" => assert!(
                got.is_err(),
                "{va:#x} ({}) should be unmapped, got {got:?}",
                f[2]
            ),
            pa => {
                let pa = u64::from_str_radix(pa.trim_start_matches("0x"), 16).unwrap();
                let t = got.unwrap_or_else(|e| panic!("{va:#x} ({}): {e}", f[2]));
                assert_eq!(t.pa.0, pa, "{va:#x} ({})", f[2]);
                let size = match f[3] {
                    "4K" => 4096,
                    "2M" => 2 << 20,
                    "1G" => 1 << 30,
                    s => panic!("page size {s}"),
                };
                assert_eq!(t.page_size, size, "{va:#x} ({})", f[2]);
            }
        }
        checked += 1;
    }
    assert!(checked > 800, "only {checked} rows");
}

#[test]
fn vtop_sample_matches_crash_on_elf() {
    check_vtop_sample("elf-d31.vmcore", "vtop_sample_matches_crash_on_elf");
}

#[test]
fn kernel_root_and_kaslr_from_vmcoreinfo() {
    let Some(path) = fixture(
        "x86_64-6.1",
        "elf-d31.vmcore",
        "kernel_root_and_kaslr_from_vmcoreinfo",
    ) else {
        return;
    };
    let k = Kernel::new(dump::open(&path).unwrap()).unwrap();
    assert_eq!(k.kaslr_offset, 0x16000000);
    assert_eq!(k.phys_base, -0x10a00000);
    assert_eq!(k.cpus.len(), 4);
    // init_task.comm via the page tables: swapper/0
    let init_task = 0xffffffff98a1aa40u64;
    let mut found = false;
    let mut buf = vec![0u8; 0x1000];
    k.read_virt(&k.kernel_space(), VirtAddr(init_task), &mut buf)
        .unwrap();
    if buf.windows(9).any(|w| w == b"swapper/0") {
        found = true;
    }
    assert!(found);
}
