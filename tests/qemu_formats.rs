//! QEMU inputs on the real fixtures: the QEMU `dump-guest-memory` ELF
//! (x86_64 and arm64), the same ELF with its VMCOREINFO hidden (KASLR found
//! by kernel::kaslr), and raw guest RAM cut out of it (`--raw-ram`) with
//! registers from QEMU's `info registers -a`. Ground truth: truth.json
//! (boots.qemu) and qemu-panic.info-registers.txt, parsed here
//! independently of the program's own parser.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use corestub::addr::{Arch, VirtAddr};
use corestub::dump::{self, Dump};
use corestub::fixtures::fixture;
use corestub::kernel::symbols::Vmlinux;
use corestub::kernel::{Kernel, RootSource};
use corestub::target::x86_64::cpu_registers;

const SET: &str = "x86_64-6.1";
const USER_VA: u64 = 0x5a5a_5a5a_0000;
const USER_PAGE: &str = "FIXTURE-USER-PAGE comm=fixture-spinC pid=119";
const KASLR: u64 = 0x39a0_0000;
const PHYS_BASE: i64 = -0x3360_0000;
/// init_top_pgt − __START_KERNEL_map + phys_base (VMCOREINFO path).
const KERNEL_ROOT: u64 = 0x8e1_0000;

/// Registers per CPU from `info registers -a`, under GDB's names.
fn truth_registers(text: &str) -> Vec<BTreeMap<String, u64>> {
    let mut cpus: Vec<BTreeMap<String, u64>> = Vec::new();
    for line in text.lines() {
        if line.starts_with("CPU#") {
            cpus.push(BTreeMap::new());
            continue;
        }
        let Some(cur) = cpus.last_mut() else { continue };
        let line = line.replace(" =", "=");
        let words: Vec<&str> = line.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            let Some((k, v)) = w.split_once('=') else {
                continue;
            };
            let hex = |s: &str| u64::from_str_radix(s, 16).unwrap();
            match k {
                "RAX" | "RBX" | "RCX" | "RDX" | "RSI" | "RDI" | "RBP" | "RSP" | "R8" | "R9"
                | "R10" | "R11" | "R12" | "R13" | "R14" | "R15" | "RIP" | "CR0" | "CR2" | "CR3"
                | "CR4" => {
                    cur.insert(k.to_lowercase(), hex(v));
                }
                "RFL" => {
                    cur.insert("eflags".into(), hex(v));
                }
                "ES" | "CS" | "SS" | "DS" | "FS" | "GS" => {
                    cur.insert(k.to_lowercase(), hex(v));
                    if k == "FS" || k == "GS" {
                        cur.insert(format!("{}_base", k.to_lowercase()), hex(words[i + 1]));
                    }
                }
                _ => {}
            }
        }
    }
    cpus
}

fn truth_text() -> String {
    std::fs::read_to_string(
        corestub::fixtures::root()
            .join(SET)
            .join("qemu-panic.info-registers.txt"),
    )
    .unwrap()
}

/// Checks every register `info registers` has against the kernel's view of
/// each CPU (the values the `g` packet carries).
fn check_cpu_registers(k: &Kernel, what: &str) {
    let truth = truth_registers(&truth_text());
    assert_eq!(truth.len(), 4);
    assert_eq!(k.cpus.len(), 4, "{what}");
    for (cpu, t) in truth.iter().enumerate() {
        // 16 GPRs, rip, eflags, 6 selectors, fs/gs base, cr0/2/3/4
        assert_eq!(t.len(), 30, "{t:?}");
        let regs = cpu_registers(&k.cpus[cpu]);
        for (name, want) in t {
            assert_eq!(
                regs.get(name),
                Some(*want),
                "{what}: CPU {cpu} {name}: {:#x?} != {want:#x}",
                regs.get(name)
            );
        }
        // the CPU's CR3 is its thread's user root
        assert_eq!(
            k.cpus[cpu].space.user.map(|r| r.0.0),
            Some(t["cr3"]),
            "{what}: CPU {cpu}"
        );
    }
}

fn check_user_page(k: &Kernel, what: &str) {
    let mut buf = [0u8; 44];
    k.read_virt(&k.cpus[3].space, VirtAddr(USER_VA), &mut buf)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(&buf[..], USER_PAGE.as_bytes(), "{what}");
}

fn read_banner(k: &Kernel) -> String {
    let va = k.symbol("linux_banner").expect("linux_banner");
    let mut b = [0u8; 64];
    k.read_virt(&k.kernel_space(), va, &mut b).unwrap();
    String::from_utf8_lossy(&b).into_owned()
}

fn open_elf(test: &str) -> Option<(PathBuf, PathBuf)> {
    Some((
        fixture(SET, "qemu-panic.elf", test)?,
        fixture(SET, "vmlinux", test)?,
    ))
}

#[test]
fn qemu_elf_notes_are_vcpus_and_match_info_registers() {
    let Some((elf, _)) = open_elf("qemu_elf_notes_are_vcpus_and_match_info_registers") else {
        return;
    };
    let d = dump::open(&elf).unwrap();
    assert!(d.notes.vcpu_numbered);
    assert!(d.format.name.contains("QEMU"), "{}", d.format.name);
    assert!(
        d.format.quirks.iter().any(|q| q.contains("vCPU")),
        "{:?}",
        d.format.quirks
    );
    let k = Kernel::new(d).unwrap();
    assert_eq!(k.root_source, RootSource::Vmcoreinfo);
    assert_eq!(k.kaslr_offset, KASLR);
    assert_eq!(k.phys_base, PHYS_BASE);
    assert_eq!(k.kernel_root.0.0, KERNEL_ROOT);
    for (i, c) in k.cpus.iter().enumerate() {
        assert_eq!(c.note_pid as usize, i + 1, "QEMU numbers notes by vCPU");
        // kernel_gs_base comes only from the QEMU note
        assert!(c.seg_bases.unwrap().2.is_some());
    }
    check_cpu_registers(&k, "QEMU ELF");
    check_user_page(&k, "QEMU ELF, CPU 3's CR3");
}

/// The ELF as QEMU writes it without `-device vmcoreinfo`: KASLR, phys_base
/// and the kernel root must come out the same from CR3 + IDT + the image
/// mapping, confirmed by linux_banner.
#[test]
fn qemu_elf_without_vmcoreinfo_finds_kaslr() {
    let Some((elf, vmlinux)) = open_elf("qemu_elf_without_vmcoreinfo_finds_kaslr") else {
        return;
    };
    let strip = |d: &mut Dump| d.notes.vmcoreinfo = None;
    let mut d = dump::open(&elf).unwrap();
    strip(&mut d);
    let k = Kernel::with_vmlinux(d, Some(Vmlinux::open(&vmlinux).unwrap())).unwrap();
    let RootSource::Detected(how) = &k.root_source else {
        panic!("{:?}", k.root_source)
    };
    assert!(how.contains("agree") && how.contains("confirmed"), "{how}");
    assert_eq!(k.kaslr_offset, KASLR, "{how}");
    assert_eq!(k.phys_base, PHYS_BASE, "{how}");
    assert_eq!(k.kernel_root.0.0, KERNEL_ROOT, "{how}");
    assert!(read_banner(&k).starts_with("Linux version 6.1.0-56-cloud-amd64"));
    check_user_page(&k, "no VMCOREINFO");

    // Without a vmlinux: CPU 0's CR3 as root, offset from the default link address.
    let mut d = dump::open(&elf).unwrap();
    strip(&mut d);
    let k = Kernel::new(d).unwrap();
    assert_eq!(k.kaslr_offset, KASLR);
    assert_eq!(k.phys_base, PHYS_BASE);
    assert_eq!(k.kernel_root.0.0, 0x1fd1_e000, "CPU 0's CR3");
    let RootSource::Detected(how) = &k.root_source else {
        panic!()
    };
    assert!(how.contains("unverified"), "{how}");
}

/// Guest RAM cut out of qemu-panic.elf: its first PT_LOAD is all 512 MiB of
/// RAM from GPA 0, so file offset == GPA (zero pages left as holes).
fn raw_ram(test: &str) -> Option<PathBuf> {
    let (elf, _) = open_elf(test)?;
    static RAM: OnceLock<PathBuf> = OnceLock::new();
    Some(
        RAM.get_or_init(|| {
            let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qemu-panic.ram");
            let (off, len) = (0x1b00u64, 0x2000_0000u64);
            if std::fs::metadata(&out).is_ok_and(|m| m.len() == len) {
                return out;
            }
            let mut src = std::fs::File::open(&elf).unwrap();
            src.seek(SeekFrom::Start(off)).unwrap();
            let tmp = out.with_extension("tmp");
            let mut dst = std::fs::File::create(&tmp).unwrap();
            let mut buf = vec![0u8; 1 << 20];
            let mut done = 0;
            while done < len {
                src.read_exact(&mut buf).unwrap();
                for page in buf.chunks(4096) {
                    if page.iter().all(|&b| b == 0) {
                        dst.seek(SeekFrom::Current(4096)).unwrap();
                    } else {
                        dst.write_all(page).unwrap();
                    }
                }
                done += buf.len() as u64;
            }
            dst.set_len(len).unwrap();
            drop(dst);
            std::fs::rename(&tmp, &out).unwrap();
            out
        })
        .clone(),
    )
}

fn raw_opts(registers: bool, cpus: Option<usize>) -> dump::raw::RawOptions {
    dump::raw::RawOptions {
        arch: Arch::X86_64,
        ram_map: Vec::new(),
        machine: None,
        registers: registers.then(truth_text),
        cpus,
    }
}

#[test]
fn raw_ram_with_registers_matches_the_elf() {
    let test = "raw_ram_with_registers_matches_the_elf";
    let Some(ram) = raw_ram(test) else { return };
    let d = dump::raw::open(&ram, &raw_opts(true, None)).unwrap();
    assert!(d.format.name.contains("raw guest RAM"), "{}", d.format.name);
    assert!(
        d.format
            .quirks
            .iter()
            .any(|q| q.contains("VMCOREINFO found in RAM")),
        "{:?}",
        d.format.quirks
    );
    let k = Kernel::new(d).unwrap();
    assert_eq!(k.root_source, RootSource::Vmcoreinfo);
    assert_eq!(k.kaslr_offset, KASLR);
    assert_eq!(k.phys_base, PHYS_BASE);
    assert_eq!(k.kernel_root.0.0, KERNEL_ROOT);
    check_cpu_registers(&k, "raw RAM + info registers");
    check_user_page(&k, "raw RAM, CPU 3's CR3");
}

#[test]
fn raw_ram_without_registers_or_vmcoreinfo() {
    let test = "raw_ram_without_registers_or_vmcoreinfo";
    let (Some(ram), Some(vmlinux)) = (raw_ram(test), fixture(SET, "vmlinux", test)) else {
        return;
    };
    // registers-less CPUs, kernel root from the VMCOREINFO note in RAM
    let d = dump::raw::open(&ram, &raw_opts(false, Some(4))).unwrap();
    let k = Kernel::with_vmlinux(d, Some(Vmlinux::open(&vmlinux).unwrap())).unwrap();
    assert_eq!(k.cpus.len(), 4);
    assert!(
        k.cpus
            .iter()
            .all(|c| c.regs.is_empty() && c.space.user.is_none())
    );
    assert_eq!(cpu_registers(&k.cpus[0]).get("rip"), None, "unavailable");
    assert_eq!(k.kernel_root.0.0, KERNEL_ROOT);
    assert!(read_banner(&k).starts_with("Linux version "));

    // no VMCOREINFO either: linux_banner scan in RAM + init_top_pgt
    let mut d = dump::raw::open(&ram, &raw_opts(false, None)).unwrap();
    d.notes.vmcoreinfo = None;
    let k = Kernel::with_vmlinux(d, Some(Vmlinux::open(&vmlinux).unwrap())).unwrap();
    let RootSource::Detected(how) = &k.root_source else {
        panic!("{:?}", k.root_source)
    };
    assert!(how.contains("no CR3"), "{how}");
    assert_eq!(k.kaslr_offset, KASLR, "{how}");
    assert_eq!(k.phys_base, PHYS_BASE, "{how}");
    assert_eq!(k.kernel_root.0.0, KERNEL_ROOT, "{how}");
    assert!(read_banner(&k).starts_with("Linux version 6.1.0-56-cloud-amd64"));
}

/// Runs `corestub gdb ARGS -- -batch` with labelled steps; returns the
/// output of each step and everything.
fn gdb(args: &[String], steps: &[(String, String)]) -> (BTreeMap<String, String>, String) {
    let mut a: Vec<String> = vec!["gdb".into()];
    a.extend(args.iter().cloned());
    a.push("--".into());
    a.extend(common::GDB_BATCH.map(String::from));
    for (label, cmd) in steps {
        a.extend(common::step_args(label, cmd));
    }
    a.extend(["-ex".into(), "echo @@STEP end\\n".into()]);
    let out = common::run(Command::new(common::corestub_bin()).args(&a));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    (common::split_steps(&stdout), all)
}

/// `info threads` lists the four vCPUs, and no CPU thread shows its vCPU
/// number as a PID (task threads do carry PIDs).
fn assert_four_cpu_threads(threads: &str, context: &str) {
    for cpu in 0..4 {
        assert!(threads.contains(&format!("CPU {cpu}")), "{context}");
    }
    assert!(
        !threads
            .lines()
            .any(|l| l.contains("(CPU ") && l.contains("pid")),
        "vCPU numbers shown as PIDs:\n{threads}\n{context}"
    );
}

/// GDB's `info registers` text: name → value (second column, hex).
fn gdb_registers(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let name = w.next()?;
            let v = w.next()?.strip_prefix("0x")?;
            Some((name.to_string(), u64::from_str_radix(v, 16).ok()?))
        })
        .collect()
}

/// Through real GDB: threads labelled by CPU (no PIDs), every register of
/// every thread equal to `info registers -a`, and thread 4 (CPU 3) reading
/// fixture-spinC's user page through its CR3.
fn check_gdb_x86(args: &[String], what: &str) {
    let mut steps: Vec<(String, String)> = vec![("threads".into(), "info threads".into())];
    for t in 1..=4 {
        steps.push((format!("sel{t}"), format!("thread {t}")));
        steps.push((format!("regs{t}"), "info registers".into()));
    }
    steps.push(("t4".into(), "thread 4".into()));
    steps.push(("user".into(), format!("x/s {USER_VA:#x}")));
    steps.push(("t2".into(), "thread 2".into()));
    steps.push(("bt".into(), "bt".into()));
    // CPU 0, stopped by the panic's reboot IPI while idle: through the IRQ
    // stack and the entry stub's pt_regs (gdb-scripts/entry_unwind.py)
    steps.push(("t1".into(), "thread 1".into()));
    steps.push(("bt1".into(), "bt".into()));
    let (out, all) = gdb(args, &steps);
    let threads = &out["threads"];
    assert_four_cpu_threads(threads, &format!("{what}:\n{all}"));
    assert!(
        threads
            .lines()
            .any(|l| l.starts_with("* 2") && l.contains("[panic]")),
        "{what}: panic CPU 1 not selected:\n{threads}"
    );
    let truth = truth_registers(&truth_text());
    for (cpu, t) in truth.iter().enumerate() {
        let got = gdb_registers(&out[&format!("regs{}", cpu + 1)]);
        for (name, want) in t {
            assert_eq!(
                got.get(name),
                Some(want),
                "{what}: CPU {cpu} {name} in GDB:\n{}",
                out[&format!("regs{}", cpu + 1)]
            );
        }
    }
    assert!(out["user"].contains(USER_PAGE), "{what}:\n{all}");
    assert!(out["bt"].contains(" panic ("), "{what}: {}", out["bt"]);
    let bt1 = &out["bt1"];
    let at = |f: &str| {
        bt1.find(f)
            .unwrap_or_else(|| panic!("{what}: no {f} in CPU 0's bt:\n{bt1}"))
    };
    assert!(
        at("stop_this_cpu") < at("asm_sysvec_reboot") && at("asm_sysvec_reboot") < at("do_idle"),
        "{what}: CPU 0's bt:\n{bt1}"
    );
    assert!(!bt1.contains("corrupt stack"), "{what}: CPU 0's bt:\n{bt1}");
}

#[test]
fn qemu_elf_gdb_end_to_end() {
    let Some((elf, vmlinux)) = open_elf("qemu_elf_gdb_end_to_end") else {
        return;
    };
    check_gdb_x86(
        &[
            "--vmlinux".into(),
            vmlinux.display().to_string(),
            elf.display().to_string(),
        ],
        "QEMU ELF",
    );
}

#[test]
fn raw_ram_gdb_end_to_end() {
    let test = "raw_ram_gdb_end_to_end";
    let (Some(ram), Some(vmlinux)) = (raw_ram(test), fixture(SET, "vmlinux", test)) else {
        return;
    };
    let regs = corestub::fixtures::root()
        .join(SET)
        .join("qemu-panic.info-registers.txt");
    check_gdb_x86(
        &[
            "--vmlinux".into(),
            vmlinux.display().to_string(),
            "--raw-ram".into(),
            ram.display().to_string(),
            "--regs".into(),
            regs.display().to_string(),
        ],
        "raw RAM",
    );
}

#[test]
fn corestub_info_on_qemu_inputs() {
    let test = "corestub_info_on_qemu_inputs";
    let (Some((elf, vmlinux)), Some(ram)) = (open_elf(test), raw_ram(test)) else {
        return;
    };
    let info = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_corestub"))
            .arg("info")
            .arg("--json")
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let v = vmlinux.to_str().unwrap();
    let j = info(&["--vmlinux", v, elf.to_str().unwrap()]);
    assert!(j["format"].as_str().unwrap().contains("QEMU"), "{j}");
    assert!(j["panic_pid"].is_null(), "vCPU number shown as a PID: {j}");
    assert_eq!(j["kaslr_offset"], "0x39a00000");
    let j = info(&[
        "--vmlinux",
        v,
        "--raw-ram",
        ram.to_str().unwrap(),
        "--cpus",
        "4",
    ]);
    assert!(
        j["format"].as_str().unwrap().contains("raw guest RAM"),
        "{j}"
    );
    assert_eq!(j["cpus"], 4);
    assert_eq!(j["kaslr_offset"], "0x39a00000");
    assert_eq!(j["phys_base"], "-0x33600000");
    assert!(
        j["quirks"].to_string().contains("VMCOREINFO found in RAM"),
        "{j}"
    );
    assert_eq!(j["release"], "6.1.0-56-cloud-amd64");
}

/// arm64 QEMU ELF (NT_PRSTATUS + NT_FPREGSET + NT_ARM_SVE per vCPU):
/// opens, serves, and gdb-multiarch gets threads and backtraces.
#[test]
fn arm64_qemu_elf_serves() {
    let test = "arm64_qemu_elf_serves";
    let (Some(elf), Some(vmlinux)) = (
        fixture("arm64-6.1", "qemu.elf", test),
        fixture("arm64-6.1", "vmlinux", test),
    ) else {
        return;
    };
    let d = dump::open(&elf).unwrap();
    assert_eq!(d.arch, Arch::Aarch64);
    assert!(d.notes.vcpu_numbered, "QEMU arm64 ELF not recognised");
    assert_eq!(d.notes.cpus.len(), 4);
    assert_eq!(d.notes.fpregsets, 4);
    let steps: Vec<(String, String)> = vec![
        ("threads".into(), "info threads".into()),
        ("bt".into(), "bt".into()),
        ("t3".into(), "thread 3".into()),
        ("bt3".into(), "bt".into()),
        ("comm".into(), "p init_task.comm".into()),
    ];
    let (out, all) = gdb(
        &[
            "--vmlinux".into(),
            vmlinux.display().to_string(),
            elf.display().to_string(),
        ],
        &steps,
    );
    let threads = &out["threads"];
    assert_four_cpu_threads(threads, &all);
    for bt in [&out["bt"], &out["bt3"]] {
        assert!(bt.starts_with("#0 "), "{all}");
        assert!(bt.lines().count() >= 2, "{all}");
    }
    assert!(out["comm"].contains("\"swapper/0"), "{all}");
}

/// Without a vmlinux (no task list) CPU threads are labelled from the
/// notes, whose pr_pid on QEMU dumps is the vCPU number + 1: never shown as
/// a PID ("CPU 0 pid 1" was what arm64 QEMU dumps got).
#[test]
fn arm64_qemu_elf_without_vmlinux_shows_no_note_pids() {
    let test = "arm64_qemu_elf_without_vmlinux_shows_no_note_pids";
    let Some(elf) = fixture("arm64-6.1", "qemu.elf", test) else {
        return;
    };
    let kernel = corestub::kernel::Kernel::new(dump::open(&elf).unwrap()).unwrap();
    assert!(!kernel.notes_carry_pids());
    let s =
        corestub::target::session::Session::new(kernel, corestub::target::session::ThreadMode::All);
    for cpu in 0..4 {
        let label = s.cpu_label(cpu);
        assert!(label.starts_with(&format!("CPU {cpu}")), "{label}");
        assert!(!label.contains("pid"), "CPU {cpu}: {label}");
    }
}

/// arm64 dumps with VMCOREINFO hidden (QEMU notes carry no TTBR1/TCR_EL1):
/// the kernel image is found in RAM with the vmlinux's symbols, and every
/// number VMCOREINFO would have given (KASLR offset, kernel root, VA_BITS,
/// PHYS_OFFSET, kimage_voffset, KERNELPACMASK, TCR_EL1_T1SZ) and the
/// vmemmap base come out equal to what the intact dump's VMCOREINFO says.
/// On the QEMU ELF and on the kdump ELF (a different boot and KASLR).
#[test]
fn arm64_without_vmcoreinfo_finds_the_kernel() {
    let test = "arm64_without_vmcoreinfo_finds_the_kernel";
    let Some(vmlinux) = fixture("arm64-6.1", "vmlinux", test) else {
        return;
    };
    for name in ["qemu.elf", "elf-d31.vmcore"] {
        let Some(path) = fixture("arm64-6.1", name, test) else {
            return;
        };
        let with = Kernel::with_vmlinux(
            dump::open(&path).unwrap(),
            Some(Vmlinux::open(&vmlinux).unwrap()),
        )
        .unwrap();
        let mut d = dump::open(&path).unwrap();
        d.notes.vmcoreinfo = None;
        let k = Kernel::with_vmlinux(d, Some(Vmlinux::open(&vmlinux).unwrap()))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let RootSource::Detected(how) = &k.root_source else {
            panic!("{name}: {:?}", k.root_source)
        };
        assert!(how.contains("linear map checked"), "{name}: {how}");
        assert_eq!(k.kaslr_offset, with.kaslr_offset, "{name}: {how}");
        assert_eq!(k.kernel_root, with.kernel_root, "{name}: {how}");
        for n in [
            "VA_BITS",
            "PHYS_OFFSET",
            "kimage_voffset",
            "KERNELPACMASK",
            "TCR_EL1_T1SZ",
        ] {
            let want = with.vmcoreinfo.number(n).map(|v| v as u64);
            assert!(want.is_some(), "{name}: VMCOREINFO lacks {n}");
            assert_eq!(k.number(n), want, "{name}: {n} ({how})");
        }
        assert!(
            read_banner(&k).starts_with("Linux version 6.1.0-56-cloud-arm64"),
            "{name}"
        );
        // VMEMMAP_START from the kernel's formula, checked against the
        // intact dump's NUMBER(VMEMMAP_START).
        assert_eq!(
            corestub::kernel::page::vmemmap(&k).unwrap(),
            corestub::kernel::page::vmemmap(&with).unwrap(),
            "{name}"
        );
    }
}

/// The brief's end-to-end variant: a copy of qemu-panic.elf whose
/// VMCOREINFO note is renamed (as if QEMU ran without `-device
/// vmcoreinfo`), through `corestub info`: the method is reported and the
/// numbers equal truth.json.
#[test]
fn corestub_info_on_qemu_elf_without_vmcoreinfo_note() {
    let test = "corestub_info_on_qemu_elf_without_vmcoreinfo_note";
    let Some((elf, vmlinux)) = open_elf(test) else {
        return;
    };
    let copy = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qemu-panic-novmcoreinfo.elf");
    let st = Command::new("cp")
        .args(["--sparse=always", "-f"])
        .arg(&elf)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(st.success());
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&copy)
        .unwrap();
    let mut head = vec![0u8; 0x2000];
    f.read_exact(&mut head).unwrap();
    let at = head
        .windows(11)
        .position(|w| w == b"VMCOREINFO\0")
        .expect("VMCOREINFO note name");
    f.seek(SeekFrom::Start(at as u64)).unwrap();
    f.write_all(b"XMCOREINFO").unwrap();
    drop(f);
    assert!(dump::open(&copy).unwrap().notes.vmcoreinfo.is_none());

    let o = Command::new(env!("CARGO_BIN_EXE_corestub"))
        .args(["info", "--json", "--vmlinux"])
        .arg(&vmlinux)
        .arg(&copy)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let from = j["kernel_root_from"].as_str().unwrap();
    assert!(from.contains("Detected") && from.contains("CR3"), "{j}");
    assert_eq!(j["kaslr_offset"], "0x39a00000", "{j}");
    assert_eq!(j["phys_base"], "-0x33600000", "{j}");
    assert_eq!(j["kernel_root"], "0x8e10000", "{j}");
    assert_eq!(j["release"], "6.1.0-56-cloud-amd64", "{j}");
    assert_eq!(j["panic_cpu"], 1, "{j}");
    std::fs::remove_file(&copy).unwrap();
}
