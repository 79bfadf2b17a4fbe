//! The arm64 walker against real dumps of the Debian 6.1 arm64 kernel
//! (4K granule, 48-bit VAs, KASLR, PAC): every translation in truth.json,
//! both boots (kdump ELF vmcore and QEMU dump-guest-memory ELF).

use std::collections::HashMap;
use std::path::Path;

use corestub::addr::{PhysAddr, VirtAddr};
use corestub::dump::{self, Dump};
use corestub::mmu::aarch64::{Arm64Paging, Granule, Pa52Mode};
use corestub::mmu::{AddressSpace, Paging, TranslateError};

fn hex(v: &serde_json::Value) -> u64 {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("not a hex string: {v}"));
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

fn truth(dump_path: &Path) -> serde_json::Value {
    let p = dump_path.with_file_name("truth.json");
    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
}

/// VMCOREINFO KEY=VALUE lines (parsed here, locally: the kernel layer does
/// it for real elsewhere).
fn vmcoreinfo(d: &Dump) -> HashMap<String, String> {
    d.notes
        .vmcoreinfo
        .as_deref()
        .expect("dump has VMCOREINFO")
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// SYMBOL() values are bare hex; NUMBER()s are 0x-hex or decimal.
fn num(info: &HashMap<String, String>, key: &str) -> u64 {
    let v = info
        .get(key)
        .unwrap_or_else(|| panic!("VMCOREINFO lacks {key}"));
    if let Some(h) = v.strip_prefix("0x") {
        u64::from_str_radix(h, 16).unwrap()
    } else if key.starts_with("SYMBOL(") {
        u64::from_str_radix(v, 16).unwrap()
    } else {
        v.parse().unwrap()
    }
}

fn paging_from_vmcoreinfo(info: &HashMap<String, String>) -> Arm64Paging {
    let max_phys = info
        .get("NUMBER(MAX_PHYSMEM_BITS)")
        .map(|_| num(info, "NUMBER(MAX_PHYSMEM_BITS)"));
    Arm64Paging::from_vmcoreinfo(
        num(info, "PAGESIZE"),
        num(info, "NUMBER(VA_BITS)"),
        Some(num(info, "NUMBER(TCR_EL1_T1SZ)")),
        max_phys,
    )
    .unwrap()
}

fn read(d: &Dump, pa: u64, n: usize) -> Result<Vec<u8>, dump::MemError> {
    let mut b = vec![0; n];
    d.memory.read_phys(PhysAddr(pa), &mut b).map(|_| b)
}

/// Translates `va`, checks the PA, and checks that the bytes there are the
/// bytes at the expected PA (both must be readable when `must_read`).
fn check(
    d: &Dump,
    paging: &Paging,
    space: &AddressSpace,
    va: u64,
    pa: u64,
    what: &str,
    must_read: bool,
) {
    let t = paging
        .translate(&*d.memory, space, VirtAddr(va), None)
        .unwrap_or_else(|e| panic!("{what}: {va:#x}: {e}"));
    assert_eq!(t.pa, PhysAddr(pa), "{what}: {va:#x}");
    assert_eq!(t.page_size, 4096, "{what}: {va:#x} (truth lists 4K pages)");
    match (read(d, t.pa.0, 32), read(d, pa, 32)) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{what}"),
        (a, b) => assert!(
            !must_read,
            "{what}: {va:#x} → {pa:#x} unreadable: {a:?} {b:?}"
        ),
    }
}

#[test]
fn kdump_elf_kernel_and_user_translations() {
    let test = "kdump_elf_kernel_and_user_translations";
    let Some(path) = corestub::fixtures::fixture("arm64-6.1", "elf-d31.vmcore", test) else {
        return;
    };
    let d = dump::open(&path).unwrap();
    let truth = truth(&path);
    let boot = &truth["boots"]["kdump"];
    let info = vmcoreinfo(&d);

    let arm = paging_from_vmcoreinfo(&info);
    // a Linux kernel by its VMCOREINFO: TBI0 (always set by Linux), not TBI1
    assert_eq!(
        arm,
        Arm64Paging::new(Granule::K4, 48, 48, Pa52Mode::None)
            .unwrap()
            .with_tbi(true, false)
    );
    let swapper_pa =
        num(&info, "SYMBOL(swapper_pg_dir)").wrapping_sub(num(&info, "NUMBER(kimage_voffset)"));
    assert_eq!(swapper_pa, hex(&boot["swapper_pg_dir"]["pa"]));
    let kernel =
        arm.kernel_root_from_swapper_pg_dir(PhysAddr(swapper_pa), num(&info, "NUMBER(VA_BITS)"));
    assert_eq!(kernel.0, PhysAddr(swapper_pa));
    let paging = Paging::Aarch64(arm.clone());
    let kspace = AddressSpace { kernel, user: None };

    let translations = boot["translations"].as_array().unwrap();
    assert!(translations.len() >= 7);
    for t in translations {
        let what = t["what"].as_str().unwrap();
        check(
            &d,
            &paging,
            &kspace,
            hex(&t["va"]),
            hex(&t["pa"]),
            what,
            true,
        );
    }
    // content through the walk: init_uts_ns.name.sysname / .release
    let uts = hex(&boot["symbols"]["init_uts_ns"]);
    let pa = paging
        .translate(&*d.memory, &kspace, VirtAddr(uts), None)
        .unwrap()
        .pa;
    let name = read(&d, pa.0, 65 * 3).unwrap();
    assert_eq!(&name[..6], b"Linux\0");
    let release = truth["kernel_release"].as_str().unwrap();
    assert_eq!(&name[130..130 + release.len()], release.as_bytes());

    // the user half needs a user root
    assert!(matches!(
        paging.translate(&*d.memory, &kspace, VirtAddr(0x40_0000), None),
        Err(TranslateError::NoRoot { .. })
    ));

    // pid 124 through its own pgd (TTBR0 = mm->pgd's PA)
    let procs = boot["processes"].as_array().unwrap();
    let p124 = procs.iter().find(|p| p["pid"] == 124).unwrap();
    let space = AddressSpace {
        kernel,
        user: Some(arm.ttbr_to_root(hex(&p124["pgd_pa"]))),
    };
    let mut checked = 0;
    for t in p124["user_translations_from_pagemap"].as_array().unwrap() {
        let va = hex(&t["va"]);
        if t["pa"].is_null() {
            let e = paging.translate(&*d.memory, &space, VirtAddr(va), None);
            assert!(
                matches!(e, Err(TranslateError::NotMapped { .. })),
                "pid 124 {va:#x} is not present: {e:?}"
            );
            continue;
        }
        // -d 31 filters user pages out of the kdump-compressed file, but this
        // ELF kept them (truth.json notes): the bytes must be readable
        check(
            &d,
            &paging,
            &space,
            va,
            hex(&t["pa"]),
            "pid 124 user page",
            true,
        );
        checked += 1;
    }
    assert_eq!(checked, 5);
    // "page 0 of the busybox binary": an ELF header
    let pa = paging
        .translate(&*d.memory, &space, VirtAddr(0x40_0000), None)
        .unwrap()
        .pa;
    assert_eq!(read(&d, pa.0, 4).unwrap(), b"\x7fELF");
}

/// `cpuN NAME=0xVALUE` lines of the QEMU gdbstub register dump.
fn sysregs(path: &Path) -> HashMap<(usize, String), u64> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = HashMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("cpu") else {
            continue;
        };
        let Some((cpu, kv)) = rest.split_once(' ') else {
            continue;
        };
        let Some((k, v)) = kv.split_once('=') else {
            continue;
        };
        let (Ok(cpu), Some(v)) = (cpu.parse::<usize>(), v.strip_prefix("0x")) else {
            continue;
        };
        if let Ok(v) = u64::from_str_radix(v, 16) {
            out.insert((cpu, k.to_string()), v);
        }
    }
    out
}

#[test]
fn qemu_elf_translations_through_ttbrs() {
    let test = "qemu_elf_translations_through_ttbrs";
    let Some(path) = corestub::fixtures::fixture("arm64-6.1", "qemu.elf", test) else {
        return;
    };
    let Some(regs_path) =
        corestub::fixtures::fixture("arm64-6.1", "qemu-gdbstub-sysregs.txt", test)
    else {
        return;
    };
    let d = dump::open(&path).unwrap();
    let truth = truth(&path);
    let boot = &truth["boots"]["qemu"];
    let regs = sysregs(&regs_path);
    let info = vmcoreinfo(&d);
    let from_info = paging_from_vmcoreinfo(&info);

    let cpus = boot["cpu_regs"].as_object().unwrap();
    assert_eq!(cpus.len(), 4);
    let mut checked = 0;
    for (cpu, r) in cpus {
        let n: usize = cpu.parse().unwrap();
        let reg = |name: &str| regs[&(n, name.to_string())];
        assert_eq!(reg("TTBR0_EL1"), hex(&r["ttbr0"]), "cpu{n}");
        assert_eq!(reg("TTBR1_EL1"), hex(&r["ttbr1"]), "cpu{n}");
        let arm = Arm64Paging::from_tcr_el1(reg("TCR_EL1")).unwrap();
        // TCR_EL1 also says TBI1 (Debian's CONFIG_ARM64_MTE sets it), which
        // VMCOREINFO cannot tell
        assert_eq!(arm.tbi(), (true, true), "cpu{n}");
        assert_eq!(
            arm.clone().with_tbi(true, false),
            from_info,
            "cpu{n}: TCR_EL1 and VMCOREINFO agree"
        );
        // TTBR1 carries an ASID (TCR.A1) and CnP; TTBR0 carries CnP
        let kernel = arm.ttbr_to_root(reg("TTBR1_EL1"));
        let swapper_pa =
            num(&info, "SYMBOL(swapper_pg_dir)").wrapping_sub(num(&info, "NUMBER(kimage_voffset)"));
        assert_eq!(kernel.0, PhysAddr(swapper_pa), "cpu{n}");
        let space = AddressSpace {
            kernel,
            user: Some(arm.ttbr_to_root(reg("TTBR0_EL1"))),
        };
        let paging = Paging::Aarch64(arm);
        for (va_key, pa_key) in [("pc", "pc_pa"), ("sp", "sp_pa")] {
            if r.get(pa_key).is_some() {
                let what = format!("cpu{n} {va_key}");
                check(
                    &d,
                    &paging,
                    &space,
                    hex(&r[va_key]),
                    hex(&r[pa_key]),
                    &what,
                    true,
                );
                checked += 1;
            }
        }
        if let Some(pa) = r.get("user_va_0x400000_pa") {
            let what = format!("cpu{n} user 0x400000");
            check(&d, &paging, &space, 0x40_0000, hex(pa), &what, true);
            // page 0 of busybox
            assert_eq!(read(&d, hex(pa), 4).unwrap(), b"\x7fELF");
            checked += 1;
        }
    }
    // cpu0 pc+sp, cpu1 pc+user, cpu2 sp+user, cpu3 sp+user
    assert_eq!(checked, 8);

    // truth/qemucheck.txt (cpu1): SP_EL0 and x30 are user addresses, and the
    // vmalloc'd sp 0xffff8000083bc000 (a stack guard page) is unmapped
    let arm = Arm64Paging::from_tcr_el1(regs[&(1, "TCR_EL1".to_string())]).unwrap();
    let space = AddressSpace {
        kernel: arm.ttbr_to_root(regs[&(1, "TTBR1_EL1".to_string())]),
        user: Some(arm.ttbr_to_root(regs[&(1, "TTBR0_EL1".to_string())])),
    };
    let paging = Paging::Aarch64(arm);
    check(
        &d,
        &paging,
        &space,
        0xffff_fd1e_21f0,
        0x419b_41f0,
        "cpu1 SP_EL0",
        true,
    );
    check(
        &d,
        &paging,
        &space,
        0x41_9404,
        0x4524_a404,
        "cpu1 x30",
        true,
    );
    let e = paging.translate(&*d.memory, &space, VirtAddr(0xffff_8000_083b_c000), None);
    assert!(matches!(e, Err(TranslateError::NotMapped { .. })), "{e:?}");
    // a PAC-signed return address is not an address until it is stripped
    let signed = regs[&(0, "x30".to_string())];
    assert_ne!(signed >> 48, 0xffff);
    assert!(matches!(
        paging.translate(&*d.memory, &space, VirtAddr(signed), None),
        Err(TranslateError::NonCanonical { .. })
    ));
    let stripped = signed | num(&info, "NUMBER(KERNELPACMASK)");
    check(
        &d,
        &paging,
        &space,
        stripped,
        0x40da_f514,
        "cpu0 x30 stripped",
        true,
    );
    // a tag in the top byte: the CPU (TBI1 in its TCR_EL1) ignores it for a
    // data access; without TCR_EL1 (VMCOREINFO only) it is a fault
    let tagged = (stripped & 0x00ff_ffff_ffff_ffff) | (0xf2 << 56);
    check(
        &d,
        &paging,
        &space,
        tagged,
        0x40da_f514,
        "cpu0 x30 tagged",
        true,
    );
    assert!(matches!(
        Paging::Aarch64(from_info).translate(&*d.memory, &space, VirtAddr(tagged), None),
        Err(TranslateError::NonCanonical { .. })
    ));
}
