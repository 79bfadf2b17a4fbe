//! Symbols, build-id and DWARF layouts on the real debug vmlinux fixtures.
//!
//! Expected offsets were checked with GDB on these exact files (pinned by
//! build-id, asserted first), e.g.
//! `gdb -batch -ex 'print &((struct task_struct *)0)->comm' vmlinux`.
//! GDB takes ~35 s per query batch on the x86_64 vmlinux, so the values
//! are hard-coded rather than computed here.

use corestub::addr::Arch;
use corestub::fixtures::fixture;
use corestub::kernel::dwarf::{BitField, CompositeKind, DwarfError};
use corestub::kernel::symbols::Vmlinux;

fn open(set: &str, test: &str) -> Option<(Vmlinux, serde_json::Value)> {
    let vmlinux = fixture(set, "vmlinux", test)?;
    let truth = fixture(set, "truth.json", test)?;
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(truth).unwrap()).unwrap();
    let vm = Vmlinux::open(&vmlinux).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        vm.build_id(),
        truth["vmlinux"]["build_id"].as_str(),
        "{set}: vmlinux is not the pinned build"
    );
    Some((vm, truth))
}

fn hex(v: &serde_json::Value) -> u64 {
    let s = v.as_str().unwrap();
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

/// Every symbol in truth.json (KASLR-relocated, from the crashed kernel's
/// kallsyms) equals the vmlinux link address plus the dump's kernel_offset.
fn check_truth_symbols(vm: &Vmlinux, truth: &serde_json::Value, must: &[&str]) {
    let kaslr = hex(&truth["boots"]["kdump"]["kernel_offset"]);
    let syms = truth["boots"]["kdump"]["symbols"].as_object().unwrap();
    for name in must {
        assert!(syms.contains_key(*name), "truth.json lacks {name}");
    }
    for (name, addr) in syms {
        let link = vm
            .addr(name)
            .unwrap_or_else(|| panic!("symbol {name} missing"));
        assert_eq!(
            vm.relocate(link, kaslr),
            Some(hex(addr)),
            "{name}: link {link:#x} + kaslr {kaslr:#x}"
        );
    }
}

#[test]
fn x86_64_build_id_arch_symbols() {
    let Some((vm, truth)) = open("x86_64-6.1", "x86_64_build_id_arch_symbols") else {
        return;
    };
    assert_eq!(vm.arch(), Arch::X86_64);
    check_truth_symbols(
        &vm,
        &truth,
        &["init_task", "jiffies", "linux_banner", "_text"],
    );
    // nm vmlinux: ffffffff82a1aa40 D init_task
    assert_eq!(vm.addr("init_task"), Some(0xffff_ffff_82a1_aa40));
    assert_eq!(vm.addr("no_such_symbol_anywhere"), None);

    // Per-CPU symbols: zero-based on x86_64, never relocated.
    let percpu = vm.percpu_range().unwrap();
    assert_eq!(percpu, 0..0x34000);
    assert!(vm.percpu_zero_based());
    let cur = vm.addr("pcpu_hot").or(vm.addr("current_task")).unwrap();
    assert!(vm.is_percpu(cur));
    assert_eq!(vm.relocate(cur, 0x1600_0000), Some(cur));
    // an offset that would wrap (a damaged dump's) relocates nothing
    assert_eq!(
        vm.relocate(vm.addr("init_task").unwrap(), u64::MAX - 0xfff),
        None
    );
    let rq = vm.addr("runqueues").unwrap();
    assert!(vm.is_percpu(rq));
    assert!(!vm.is_percpu(vm.addr("init_task").unwrap()));
    let text = vm.section(".text").unwrap();
    assert_eq!(text.addr, 0xffff_ffff_8100_0000);
    assert_eq!(vm.addr("_stext"), Some(text.addr));

    // Symbolization.
    let crash = vm.addr("sysrq_handle_crash").unwrap();
    let (s, off) = vm.symbolize(crash + 4).unwrap();
    assert_eq!((s.name, off), ("sysrq_handle_crash", 4));
    let (s, off) = vm.symbolize(vm.addr("panic").unwrap()).unwrap();
    assert_eq!((s.name, off), ("panic", 0));
    // A sized symbol covers [addr, addr + size) and nothing past it: the
    // byte after `panic` is another symbol's (or none), never `panic+size`.
    for name in ["panic", "sysrq_handle_crash"] {
        let sym = vm.symbol(name).unwrap();
        assert!(sym.size > 0, "{name} has no size");
        let (s, off) = vm.symbolize(sym.addr + sym.size - 1).unwrap();
        assert_eq!((s.name, off), (name, sym.size - 1));
        if let Some((s, _)) = vm.symbolize(sym.addr + sym.size) {
            assert_ne!(s.name, name, "{name}: symbolized past its end");
        }
    }
}

#[test]
fn arm64_build_id_arch_symbols() {
    let Some((vm, truth)) = open("arm64-6.1", "arm64_build_id_arch_symbols") else {
        return;
    };
    assert_eq!(vm.arch(), Arch::Aarch64);
    check_truth_symbols(&vm, &truth, &["_stext", "prb", "init_uts_ns"]);
    // nm vmlinux: ffff800009828c80 D init_task
    assert_eq!(vm.addr("init_task"), Some(0xffff_8000_0982_8c80));
    assert!(vm.addr("jiffies").is_some());
    assert!(vm.addr("linux_banner").is_some());
    // Per-CPU data is a normal part of the image on arm64: relocated.
    assert!(!vm.percpu_zero_based());
    let rq = vm.addr("runqueues").unwrap();
    assert!(vm.is_percpu(rq));
    assert_eq!(vm.relocate(rq, 0x10), Some(rq + 0x10));
    // `$x`/`$d` mapping symbols are never the answer.
    let crash = vm.addr("sysrq_handle_crash").unwrap();
    let (s, off) = vm.symbolize(crash + 8).unwrap();
    assert_eq!((s.name, off), ("sysrq_handle_crash", 8));
}

#[test]
fn x86_64_task_struct_layout() {
    let Some((vm, _)) = open("x86_64-6.1", "x86_64_task_struct_layout") else {
        return;
    };
    let di = vm.debug_info().unwrap();
    // GDB: sizeof(struct task_struct) = 9728; offsets below via
    // print &((struct task_struct *)0)->MEMBER.
    assert_eq!(di.size_of("task_struct").unwrap(), 9728);
    assert_eq!(di.size_of("struct task_struct").unwrap(), 9728);
    assert_eq!(di.offset_of("task_struct", "__state").unwrap(), 0x18);
    assert_eq!(di.offset_of("task_struct", "stack").unwrap(), 0x20);
    assert_eq!(di.offset_of("task_struct", "on_cpu").unwrap(), 0x34);
    assert_eq!(di.offset_of("task_struct", "tasks").unwrap(), 0x890);
    assert_eq!(di.offset_of("task_struct", "pid").unwrap(), 0x970);
    assert_eq!(di.offset_of("task_struct", "thread_pid").unwrap(), 0x9d8);
    assert_eq!(di.offset_of("task_struct", "comm").unwrap(), 0xba0);
    assert_eq!(di.offset_of("task_struct", "signal").unwrap(), 0xc00);
    assert_eq!(di.offset_of("task_struct", "thread.sp").unwrap(), 0x14d8);

    // 6.1 has __state, not state: absent, not an error.
    assert_eq!(di.try_offset_of("task_struct", "state").unwrap(), None);
    let e = di.offset_of("task_struct", "state").unwrap_err();
    assert!(e.is_absent(), "{e}");
    assert!(e.to_string().contains("state"), "{e}");
    assert_eq!(
        di.first_offset_of("task_struct", &["state", "__state"])
            .unwrap(),
        ("__state", 0x18)
    );

    let ts = di.layout("task_struct").unwrap();
    assert_eq!(ts.kind, CompositeKind::Struct);
    assert_eq!(ts.name, "struct task_struct");
    let comm = ts.member("comm").unwrap();
    assert_eq!(
        (comm.size, comm.type_name.as_str()),
        (Some(16), "char [16]")
    );
    let sig = ts.member("signal").unwrap();
    assert_eq!(
        (sig.size, sig.type_name.as_str()),
        (Some(8), "struct signal_struct *")
    );
    let f = di.field("task_struct", "thread.sp").unwrap();
    assert_eq!(
        (f.size, f.type_name.as_str()),
        (Some(8), "long unsigned int")
    );
}

#[test]
fn x86_64_other_layouts() {
    let Some((vm, _)) = open("x86_64-6.1", "x86_64_other_layouts") else {
        return;
    };
    let di = vm.debug_info().unwrap();
    let missing = di
        .preload(&[
            "task_struct",
            "mm_struct",
            "list_head",
            "inactive_task_frame",
            "printk_ringbuffer",
            "prb_desc_ring",
            "prb_data_ring",
            "prb_desc",
            "printk_info",
            "module",
            "rq",
            "pid",
            "upid",
            "signal_struct",
            "thread_struct",
        ])
        .unwrap();
    assert!(missing.is_empty(), "{missing:?}");

    // ptype/o struct inactive_task_frame
    let f = di.layout("inactive_task_frame").unwrap();
    let got: Vec<(&str, u64)> = f
        .members
        .iter()
        .map(|m| (m.name.as_str(), m.offset))
        .collect();
    assert_eq!(
        got,
        [
            ("r15", 0),
            ("r14", 8),
            ("r13", 16),
            ("r12", 24),
            ("bx", 32),
            ("bp", 40),
            ("ret_addr", 48)
        ]
    );
    assert_eq!(di.size_of("inactive_task_frame").unwrap(), 56);

    assert_eq!(di.offset_of("mm_struct", "pgd").unwrap(), 0x48);
    assert_eq!(di.field("mm_struct", "pgd").unwrap().type_name, "pgd_t *");
    assert_eq!(di.size_of("rq").unwrap(), 3264);
    assert_eq!(di.offset_of("rq", "curr").unwrap(), 0x960);
    assert_eq!(
        di.offset_of("printk_ringbuffer", "text_data_ring").unwrap(),
        0x30
    );
    // ptype/o struct prb_desc_ring
    let r = di.layout("prb_desc_ring").unwrap();
    let got: Vec<(&str, u64, Option<u64>)> = r
        .members
        .iter()
        .map(|m| (m.name.as_str(), m.offset, m.size))
        .collect();
    assert_eq!(
        got,
        [
            ("count_bits", 0, Some(4)),
            ("descs", 8, Some(8)),
            ("infos", 16, Some(8)),
            ("head_id", 24, Some(8)),
            ("tail_id", 32, Some(8)),
            ("last_finalized_id", 40, Some(8))
        ]
    );
    assert_eq!(r.member("head_id").unwrap().type_name, "atomic_long_t");
    assert_eq!(r.member("descs").unwrap().type_name, "struct prb_desc *");
    // print &((struct pid*)0)->numbers[0].nr
    assert_eq!(di.offset_of("pid", "numbers[0].nr").unwrap(), 0x60);
    assert_eq!(
        di.offset_of("pid", "numbers[1].nr").unwrap(),
        0x60 + di.size_of("upid").unwrap()
    );
    assert_eq!(di.size_of("list_head").unwrap(), 16);
    assert_eq!(di.variable_type("init_task").unwrap(), "struct task_struct");
}

#[test]
fn arm64_layouts() {
    let Some((vm, _)) = open("arm64-6.1", "arm64_layouts") else {
        return;
    };
    let di = vm.debug_info().unwrap();
    let missing = di
        .preload(&[
            "task_struct",
            "mm_struct",
            "list_head",
            "cpu_context",
            "printk_ringbuffer",
            "prb_desc_ring",
            "prb_data_ring",
            "prb_desc",
            "printk_info",
            "module",
            "rq",
            "pid",
            "upid",
            "signal_struct",
            "thread_struct",
        ])
        .unwrap();
    assert!(missing.is_empty(), "{missing:?}");
    // GDB on the arm64 vmlinux: sizeof / print &((struct task_struct *)0)->...
    assert_eq!(di.size_of("task_struct").unwrap(), 4160);
    assert_eq!(di.offset_of("task_struct", "__state").unwrap(), 0x18);
    assert_eq!(di.offset_of("task_struct", "stack").unwrap(), 0x20);
    assert_eq!(di.offset_of("task_struct", "tasks").unwrap(), 0x468);
    assert_eq!(di.offset_of("task_struct", "thread_pid").unwrap(), 0x5b0);
    assert_eq!(di.offset_of("task_struct", "comm").unwrap(), 0x778);
    assert_eq!(di.offset_of("task_struct", "signal").unwrap(), 0x7d8);
    assert_eq!(di.offset_of("task_struct", "thread_info.flags").unwrap(), 0);
    // THREAD_INFO_IN_TASK on arm64: the CPU is in thread_info, not task_struct.
    assert_eq!(di.try_offset_of("task_struct", "cpu").unwrap(), None);
    assert!(
        di.try_offset_of("task_struct", "thread_info.cpu")
            .unwrap()
            .is_some()
    );
    assert_eq!(
        di.offset_of("task_struct", "thread.cpu_context").unwrap(),
        0xbc0
    );
    assert_eq!(
        di.offset_of("task_struct", "thread.cpu_context.x19")
            .unwrap(),
        0xbc0
    );
    assert_eq!(
        di.offset_of("task_struct", "thread.cpu_context.sp")
            .unwrap(),
        0xc18
    );
    assert_eq!(
        di.offset_of("task_struct", "thread.cpu_context.pc")
            .unwrap(),
        0xc20
    );
    assert_eq!(di.size_of("thread_struct").unwrap(), 1120);
    assert_eq!(di.offset_of("mm_struct", "pgd").unwrap(), 0x38);
    assert_eq!(di.size_of("rq").unwrap(), 3264);
    assert_eq!(di.offset_of("rq", "curr").unwrap(), 0x960);
    assert_eq!(di.offset_of("pid", "numbers[0].nr").unwrap(), 0x60);

    // ptype/o struct cpu_context: x19..x28, fp, sp, pc, 8 bytes each.
    let cc = di.layout("cpu_context").unwrap();
    let names: Vec<&str> = cc.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", "fp", "sp", "pc"
        ]
    );
    for (i, m) in cc.members.iter().enumerate() {
        assert_eq!((m.offset, m.size), (8 * i as u64, Some(8)), "{}", m.name);
    }
    assert_eq!(cc.size, 104);

    // ptype/o struct upid / printk_info (bitfields: `u8 flags : 5` at
    // byte 19 bit 0, `u8 level : 3` at byte 19 bit 5).
    let u = di.layout("upid").unwrap();
    assert_eq!(u.member("ns").unwrap().offset, 8);
    assert_eq!(u.member("ns").unwrap().type_name, "struct pid_namespace *");
    let pi = di.layout("printk_info").unwrap();
    assert_eq!(pi.size, 88);
    let flags = pi.member("flags").unwrap();
    assert_eq!(flags.offset, 19);
    assert_eq!(
        flags.bits,
        Some(BitField {
            bit_offset: 19 * 8,
            bit_size: 5
        })
    );
    let level = pi.member("level").unwrap();
    assert_eq!(
        level.bits,
        Some(BitField {
            bit_offset: 19 * 8 + 5,
            bit_size: 3
        })
    );
    assert_eq!(level.type_name, "u8");
    assert_eq!(di.offset_of("printk_info", "dev_info.device").unwrap(), 40);
    assert_eq!(
        di.field("printk_info", "dev_info.device")
            .unwrap()
            .type_name,
        "char [48]"
    );
}

#[test]
fn missing_struct_is_an_error_naming_it() {
    let Some((vm, _)) = open("x86_64-6.1", "missing_struct_is_an_error_naming_it") else {
        return;
    };
    let di = vm.debug_info().unwrap();
    // Only scan as far as needed for task_struct, then ask for nonsense:
    // this scans every CU (the slow path) and must say which type.
    let e = di.layout("corestub_no_such_struct").unwrap_err();
    assert_eq!(
        e,
        DwarfError::TypeNotFound("corestub_no_such_struct".into())
    );
    assert!(e.to_string().contains("corestub_no_such_struct"));
    let e = di.offset_of("task_struct", "thread.no_such").unwrap_err();
    assert!(
        e.is_absent() && e.to_string().contains("thread.no_such"),
        "{e}"
    );
    let e = di.offset_of("task_struct", "comm.x").unwrap_err();
    assert!(!e.is_absent(), "{e}");
}

/// A stripped vmlinux (`objcopy --strip-debug`: symbols and build-id kept,
/// DWARF gone) still gives symbols, and what needs DWARF says the file has
/// none, naming it, instead of asking for a vmlinux the user already gave.
/// Cold: one objcopy of the 590 MB vmlinux (~5 s), kept in the target's
/// tmp dir; warm: nothing.
#[test]
fn stripped_vmlinux_says_it_has_no_dwarf() {
    let test = "stripped_vmlinux_says_it_has_no_dwarf";
    let (Some(vmlinux), Some(dump)) = (
        fixture("x86_64-6.1", "vmlinux", test),
        fixture("x86_64-6.1", "kdump-zlib-d31.kdump", test),
    ) else {
        return;
    };
    let stripped = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("vmlinux-6.1-stripped");
    if !stripped.exists() {
        let part = stripped.with_extension("part");
        let st = std::process::Command::new("objcopy")
            .arg("--strip-debug")
            .arg(&vmlinux)
            .arg(&part)
            .status()
            .expect("run objcopy (binutils)");
        assert!(st.success(), "objcopy --strip-debug failed");
        std::fs::rename(&part, &stripped).unwrap();
    }
    let full = Vmlinux::open(&vmlinux).unwrap();
    let vm = Vmlinux::open(&stripped).unwrap();
    assert_eq!(vm.build_id(), full.build_id());
    assert_eq!(vm.addr("init_task"), full.addr("init_task"));
    let e = vm.debug_info().unwrap_err().to_string();
    assert!(
        e.contains("no DWARF") && e.contains("vmlinux-6.1-stripped"),
        "{e}"
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_corestub"))
        .args(["info", "--json", "--vmlinux"])
        .arg(&stripped)
        .arg(&dump)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let why = info["task_threads"].as_str().unwrap_or_default();
    assert!(
        why.contains("no DWARF") && why.contains("vmlinux-6.1-stripped"),
        "task_threads: {why:?}\n{info:#}"
    );
    assert!(!why.contains("pass --vmlinux"), "{why}");
}

/// A member of a variable whose type has no name (`tk_core`, before 6.13:
/// `static struct { seqcount_raw_spinlock_t seq; struct timekeeper
/// timekeeper; } tk_core`), at its DWARF offset and width: on x86_64 the
/// timekeeper follows the 4-byte seqcount at 8 (64-bit members align to
/// 8), `ktime_sec` (an `unsigned long`) is 8 bytes. On a cached i386 guest
/// kernel (tests/qemu_other_kernel.rs) it follows at 4 (i386 aligns u64 to
/// 4) and `ktime_sec` is 4 bytes, as `ptype/o tk_core` shows.
#[test]
fn member_of_a_variable_of_anonymous_type() {
    let Some((vm, _)) = open("x86_64-6.1", "member_of_a_variable_of_anonymous_type") else {
        return;
    };
    let check = |vm: &Vmlinux, timekeeper_at: u64, word: u64| {
        let di = vm.debug_info().unwrap();
        let f = di
            .variable_field("tk_core", "timekeeper.ktime_sec")
            .unwrap();
        let inner = di.offset_of("struct timekeeper", "ktime_sec").unwrap();
        assert_eq!(f.offset, timekeeper_at + inner);
        assert_eq!(f.size, Some(word));
        assert_eq!(
            di.variable_field("tk_core", "seq").unwrap().offset,
            0,
            "the seqcount comes first"
        );
        assert!(
            di.variable_field("tk_core", "timekeeper.no_such")
                .unwrap_err()
                .is_absent()
        );
    };
    check(&vm, 8, 8);
    let i386 = corestub::fixtures::root().join("i386-6.1");
    let cached = std::fs::read_dir(&i386)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("vmlinux"))
        .find(|v| v.is_file());
    match cached {
        Some(v) => check(&Vmlinux::open(&v).unwrap(), 4, 4),
        None => eprintln!(
            "no i386 guest vmlinux under {}: x86_64 only",
            i386.display()
        ),
    }
}
