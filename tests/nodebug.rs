//! Sessions with no debug vmlinux at all: the kernel's kallsyms table
//! (and, from it, the generated symbol file) checked against the real
//! debug vmlinux of each fixture.

use std::path::PathBuf;

use corestub::fixtures::fixture;
use corestub::kernel::Kernel;
use corestub::kernel::symbols::Vmlinux;

/// The dumps with their debug vmlinux: the 6.1 fixtures and the 5.10 and
/// 7.x guest dumps when a guest test has cached them.
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
        // 5.10: no kallsyms in VMCOREINFO, the tables found by their shape
        ("x86_64-5.10", "5.10.0-32-cloud-amd64"),
        // arm64 5.10: text symbols only (no KALLSYMS_ALL), base-relative
        ("arm64-5.10", "5.10.0-32-cloud-arm64"),
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
        let k = match Kernel::new(corestub::dump::open(&dump).unwrap()) {
            Ok(k) => k,
            // arm64 QEMU dumps without VMCOREINFO need a vmlinux to find
            // the kernel at all
            Err(e) => {
                eprintln!("{}: {e}: skipped", dump.display());
                continue;
            }
        };
        let t0 = std::time::Instant::now();
        let ks = k
            .kallsyms()
            .unwrap_or_else(|e| panic!("{}: {e}", dump.display()));
        eprintln!(
            "{}: {} kallsyms symbols in {:?}",
            dump.display(),
            ks.syms.len(),
            t0.elapsed()
        );
        // arm64 Debian cloud kernels list functions only (no KALLSYMS_ALL)
        assert!(ks.syms.len() > 20_000, "{}", ks.syms.len());
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

mod common;

use std::collections::BTreeMap;

use common::{frame_functions, same_functions};
use std::process::Command;

/// A directory holding only a link to `dump` (no vmlinux beside it) and
/// an empty cache, so `corestub gdb` finds no debug file anywhere.
fn lonely(dump: &std::path::Path, tag: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("corestub-nodebug-{tag}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(dir.join("cache")).unwrap();
    let link = dir.join(dump.file_name().unwrap());
    std::os::unix::fs::symlink(dump, &link).unwrap();
    (link, dir)
}

/// `corestub gdb DUMP -- -batch` with no vmlinux and no debuginfod: each
/// step's output, everything printed, and the symbol file's build time
/// (from the log) when it was built.
fn nodebug_steps(
    dump: &std::path::Path,
    tag: &str,
    steps: &[(&str, &str)],
) -> (BTreeMap<String, String>, String, Option<String>) {
    let (link, dir) = lonely(dump, tag);
    let mut args: Vec<String> = vec!["gdb".into(), link.display().to_string(), "--".into()];
    args.extend(common::GDB_BATCH.map(String::from));
    for (label, cmd) in steps {
        args.extend(common::step_args(label, cmd));
    }
    args.extend(["-ex".into(), "echo @@STEP end\\n".into()]);
    let out = common::run(
        Command::new(common::corestub_bin())
            .args(&args)
            .env_remove("DEBUGINFOD_URLS")
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .env("RUST_LOG", "corestub::cli::nodebug=info"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let built = stderr
        .lines()
        .find_map(|l| l.split_once("symbol file built from the dump in "))
        .map(|(_, rest)| rest.split(':').next().unwrap_or("").to_string());
    let all = format!("{}{stderr}", String::from_utf8_lossy(&out.stdout));
    std::fs::remove_dir_all(&dir).ok();
    (
        common::split_steps(&String::from_utf8_lossy(&out.stdout)),
        all,
        built,
    )
}

#[test]
fn frame_functions_takes_the_outermost_inlined_name() {
    let bt = "#0  crash_setup_regs (a=1) at x.h:1\n#1  __crash_kexec (r=0) at k.c:2\n\
              #2  0xffffffff979cd06e in panic (fmt=0x0) at p.c:3\n\
              #3  0xffffffff97a03f4d in el0_svc_common.constprop.0 ()\n#4  0x000000000047b7a0 in ?? ()\n";
    assert_eq!(
        frame_functions(bt),
        ["__crash_kexec", "panic", "el0_svc_common"]
    );
}

/// `bt` of `thread` with the debug vmlinux, by frame function.
fn debug_bt(dump: &std::path::Path, vmlinux: &std::path::Path, thread: &str) -> Vec<String> {
    let (out, all) = common::gdb_steps(dump, vmlinux, &[("t", thread), ("bt", "bt")]);
    let f = frame_functions(&out["bt"]);
    assert!(!f.is_empty(), "debug bt of {thread}: {all}");
    f
}

/// With no vmlinux anywhere and DEBUGINFOD_URLS unset, `corestub gdb` on
/// the x86_64 6.1 kdump builds a symbol file from the dump (kallsyms, BTF,
/// ORC) and gives the task list, backtraces whose function names are the
/// debug session's, dmesg, ps, and the kernel's types.
#[test]
fn x86_64_session_without_any_debug_file() {
    let test = "x86_64_session_without_any_debug_file";
    let (Some(dump), Some(vmlinux)) = (
        fixture("x86_64-6.1", "elf-d31.vmcore", test),
        fixture("x86_64-6.1", "vmlinux", test),
    ) else {
        return;
    };
    let (out, all, built) = nodebug_steps(
        &dump,
        "x86",
        &[
            ("threads", "info threads"),
            ("bt", "bt"),
            ("t1", "thread 1"),
            ("bt1", "bt"),
            ("dmesg", "dmesg"),
            ("ps", "ps"),
            ("ptype", "ptype struct task_struct"),
            ("comm", "p ((struct task_struct *)&init_task)->comm"),
            ("addr", "p &init_task"),
        ],
    );
    eprintln!("x86_64-6.1: symbol file built in {built:?}");
    assert!(built.is_some(), "no symbol file was built: {all}");
    assert!(all.contains("using symbols built from the dump"), "{all}");
    let threads = &out["threads"];
    assert!(threads.contains("pid 1 init"), "{threads}");
    assert!(threads.lines().count() > 50, "{threads}");
    assert!(
        out["dmesg"].contains("Linux version 6.1"),
        "{}",
        out["dmesg"]
    );
    assert!(out["ps"].contains("[kthreadd]"), "{}", out["ps"]);
    let ptype = &out["ptype"];
    assert!(
        ptype.contains("char comm[16];") && ptype.contains("struct list_head tasks;"),
        "{ptype}"
    );
    assert!(out["comm"].contains("\"swapper/0"), "{}", out["comm"]);
    // the address GDB prints for init_task, cast back by hand
    let addr = out["addr"]
        .split_whitespace()
        .find(|w| w.starts_with("0x"))
        .unwrap_or_else(|| panic!("{}", out["addr"]));
    let (cast, _, _) = nodebug_steps(
        &dump,
        "x86-cast",
        &[("comm", &format!("p ((struct task_struct *){addr})->comm"))],
    );
    assert!(cast["comm"].contains("\"swapper/0"), "{}", cast["comm"]);

    // CPU 0 (idle) and the panicking CPU (through __crash_kexec, which
    // has no ORC: found by the stack scan)
    for thread in ["thread 1", "thread 3"] {
        let bt = if thread == "thread 1" {
            &out["bt1"]
        } else {
            &out["bt"]
        };
        let ours = frame_functions(bt);
        let theirs = debug_bt(&dump, &vmlinux, thread);
        eprintln!("{thread}: {ours:?}\n debug: {theirs:?}");
        same_functions(&ours, &theirs);
    }
}

/// arm64 6.1 (Debian cloud: no KALLSYMS_ALL, so kallsyms has functions
/// only): the symbol file names functions, GDB's own prologue analysis
/// unwinds the panicking CPU as with the debug vmlinux, and the types come
/// from the BTF found by its header. `init_task`, `task_state_array` and
/// `runqueues` are in neither kallsyms nor VMCOREINFO: the kernel layer
/// finds them by their structure, so `ps` rows and thread labels equal the
/// debug session's, and a task from `ps` casts to its comm.
#[test]
fn arm64_session_without_any_debug_file() {
    let test = "arm64_session_without_any_debug_file";
    let (Some(dump), Some(vmlinux)) = (
        fixture("arm64-6.1", "elf-d31.vmcore", test),
        fixture("arm64-6.1", "vmlinux", test),
    ) else {
        return;
    };
    let (theirs, _) = common::gdb_steps(
        &dump,
        &vmlinux,
        &[
            ("ps", "ps"),
            ("threads", "info threads"),
            ("init", "p init_task.comm"),
        ],
    );
    let (pid1, comm1) = task_of_pid(&theirs["ps"], "1");
    let cast = format!("p ((struct task_struct *)0x{pid1})->comm");
    let (out, all, built) = nodebug_steps(
        &dump,
        "arm64",
        &[
            ("threads", "info threads"),
            ("bt", "bt"),
            ("dmesg", "dmesg"),
            ("ptype", "ptype struct task_struct"),
            ("ps", "ps"),
            ("comm", &cast),
            ("init", "p init_task.comm"),
        ],
    );
    eprintln!("arm64-6.1: symbol file built in {built:?}");
    // init_task is not in kallsyms (functions only): the symbol file has it
    // from the kernel layer's search, typed from BTF
    same_value(&out["init"], &theirs["init"]);
    assert!(all.contains("using symbols built from the dump"), "{all}");
    // types from the BTF found by its header (kallsyms has no __start_BTF)
    assert!(out["ptype"].contains("char comm[16];"), "{}", out["ptype"]);
    assert!(
        out["dmesg"].contains("Linux version 6.1"),
        "{}",
        out["dmesg"]
    );
    assert!(
        out["threads"].contains("in arch_cpu_idle ()"),
        "{}",
        out["threads"]
    );
    same_tasks(&out, &theirs, &dump);
    assert!(
        out["comm"].contains(&format!("\"{comm1}")),
        "{cast}: {}",
        out["comm"]
    );
    let ours = frame_functions(&out["bt"]);
    let theirs = debug_bt(&dump, &vmlinux, "thread 4");
    eprintln!("panic CPU: {ours:?}\n debug: {theirs:?}");
    assert!(ours.len() > 10, "{ours:?}");
    same_functions(&ours, &theirs);
}

/// A `print` step's value (after `$N = `) equals the debug session's.
fn same_value(ours: &str, theirs: &str) {
    let value = |s: &str| {
        s.lines()
            .find_map(|l| l.split_once(" = ").map(|(_, v)| v.to_string()))
    };
    assert!(value(theirs).is_some(), "debug session: {theirs}");
    assert_eq!(value(ours), value(theirs), "{ours}");
}

/// The TASK address and COMM of the `ps` row of `pid`.
fn task_of_pid(ps: &str, pid: &str) -> (String, String) {
    ps_rows(ps)
        .find(|f| f[0] == pid && f.len() >= 9)
        .map(|f| (f[3].to_string(), f[8].trim_matches(['[', ']']).to_string()))
        .unwrap_or_else(|| panic!("no ps row for pid {pid}:\n{ps}"))
}

/// `ps` rows (PID, TASK, state) and task thread labels of the no-debug
/// session (`ours`: steps "ps" and "threads") equal the debug session's,
/// and the CPU threads' labels too.
fn same_tasks(
    ours: &BTreeMap<String, String>,
    theirs: &BTreeMap<String, String>,
    dump: &std::path::Path,
) {
    let (ps, debug_ps) = (ps_states(&ours["ps"]), ps_states(&theirs["ps"]));
    assert!(ps.len() > 50, "{}: {}", dump.display(), ours["ps"]);
    assert!(ps.iter().all(|(_, _, st)| st != "??"), "{}", ours["ps"]);
    assert_eq!(ps, debug_ps, "{}", dump.display());
    let labels = thread_labels(&ours["threads"], " (pid ");
    assert!(labels.len() > 50, "{}", ours["threads"]);
    assert_eq!(
        labels,
        thread_labels(&theirs["threads"], " (pid "),
        "{}",
        dump.display()
    );
    assert_eq!(
        thread_labels(&ours["threads"], " (CPU "),
        thread_labels(&theirs["threads"], " (CPU "),
        "{}",
        dump.display()
    );
    eprintln!(
        "{}: {} ps rows and {} thread labels as in the debug session",
        dump.display(),
        ps.len(),
        labels.len()
    );
}

/// The x86_64 7.x guest dump (QEMU without `-device vmcoreinfo`: no
/// VMCOREINFO note) when a guest test has cached it: kallsyms through the
/// kernel's own VMCOREINFO page, place-relative offsets, types from BTF.
#[test]
fn x86_64_7x_guest_dump_without_vmcoreinfo_note() {
    // made by qemu_other_kernel (which runs after this test on a fresh
    // machine): whichever 7.x release it cached
    let series = corestub::fixtures::root().join("x86_64-7");
    let Some(dump) = std::fs::read_dir(&series)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("guest-v3/qemu.elf"))
        .find(|p| p.is_file())
    else {
        eprintln!(
            "SKIP x86_64_7x_guest_dump_without_vmcoreinfo_note: no 7.x guest dump cached in {} yet (qemu_other_kernel makes it)",
            series.display()
        );
        return;
    };
    let (out, all, built) = nodebug_steps(
        &dump,
        "x86-7",
        &[
            ("threads", "info threads"),
            ("dmesg", "dmesg"),
            ("ptype", "ptype struct task_struct"),
            ("comm", "p ((struct task_struct *)&init_task)->comm"),
            ("bt", "bt"),
        ],
    );
    eprintln!("x86_64-7: symbol file built in {built:?}");
    // 7.x renumbered ORC's registers: the panic CPU unwinds through the
    // sysrq handler only with the right numbering
    for f in [
        "sysrq_handle_crash",
        "__handle_sysrq",
        "write_sysrq_trigger",
    ] {
        assert!(out["bt"].contains(f), "{f} not in bt:\n{}", out["bt"]);
    }
    assert!(all.contains("using symbols built from the dump"), "{all}");
    assert!(out["threads"].contains("pid 1 init"), "{}", out["threads"]);
    assert!(
        out["dmesg"].contains("Linux version 7."),
        "{}",
        out["dmesg"]
    );
    assert!(out["ptype"].contains("char comm[16];"), "{}", out["ptype"]);
    assert!(out["comm"].contains("\"swapper/0"), "{}", out["comm"]);
}

/// The fields of each row of our crash-style `ps` (a 64-bit TASK).
fn ps_rows(ps: &str) -> impl Iterator<Item = Vec<&str>> {
    ps.lines().filter_map(|l| {
        let f: Vec<&str> = l
            .trim_start_matches([' ', '>'])
            .split_whitespace()
            .collect();
        let task = f.get(3)?;
        (task.len() == 16 && task.bytes().all(|b| b.is_ascii_hexdigit()) && f.len() > 4)
            .then_some(f)
    })
}

/// (PID, TASK, ST) of each row of our crash-style `ps`.
fn ps_states(ps: &str) -> Vec<(String, String, String)> {
    ps_rows(ps)
        .map(|f| (f[0].to_string(), f[3].to_string(), f[4].to_string()))
        .collect()
}

/// The labels of task threads (`pid 1 init [S]`, after ` (pid `) or CPU
/// threads (`CPU 3 sh/200 [panic]`, after ` (CPU `) in `info threads`.
fn thread_labels(threads: &str, kind: &str) -> Vec<String> {
    threads
        .lines()
        .filter_map(|l| {
            let label = l.split_once(kind)?.1;
            Some(label[..label.find(')')?].to_string())
        })
        .collect()
}

/// Task state letters without DWARF (the kernel's `task_state_array`,
/// found by kallsyms and read up to its first non-entry, the symbol's size
/// being only a bound): `ps` and the thread labels show the debug
/// session's letters, on the x86_64 6.1 fixture and the 5.10 (kallsyms
/// found by their shape) and 7.x x86_64 guest dumps when cached (arm64 6.1,
/// whose kallsyms has no data symbols: `arm64_session_without_any_debug_file`).
#[test]
fn task_states_equal_the_debug_sessions() {
    let test = "task_states_equal_the_debug_sessions";
    let mut sets: Vec<(PathBuf, PathBuf)> = Vec::new();
    if let (Some(d), Some(vm)) = (
        fixture("x86_64-6.1", "elf-d31.vmcore", test),
        fixture("x86_64-6.1", "vmlinux", test),
    ) {
        sets.push((d, vm));
    }
    sets.extend(dump_sets(test).into_iter().filter(|(d, _)| {
        let d = d.to_string_lossy();
        d.contains("x86_64-7") || d.contains("x86_64-5.10")
    }));
    for (i, (dump, vmlinux)) in sets.iter().enumerate() {
        let steps = [("ps", "ps"), ("threads", "info threads")];
        let (ours, all, _) = nodebug_steps(dump, &format!("states{i}"), &steps);
        assert!(all.contains("using symbols built from the dump"), "{all}");
        let (theirs, _) = common::gdb_steps(dump, vmlinux, &steps);
        same_tasks(&ours, &theirs, dump);
    }
}

/// The kallsyms tables found by their shape alone (the search for kernels
/// before 6.0, whose VMCOREINFO does not give them) are the ones
/// VMCOREINFO gives on the 6.0+ dumps, and decode to the same symbols.
#[test]
fn kallsyms_tables_found_by_their_shape() {
    use corestub::kernel::kallsyms::{Kallsyms, TableAddrs};
    for (dump, _) in dump_sets("kallsyms_tables_found_by_their_shape") {
        let Ok(k) = Kernel::new(corestub::dump::open(&dump).unwrap()) else {
            continue;
        };
        let (Some(stext), Ok(given)) = (
            k.vmcoreinfo.symbol("_stext"),
            TableAddrs::from_vmcoreinfo(&k.vmcoreinfo),
        ) else {
            eprintln!(
                "{}: no VMCOREINFO tables to compare: skipped",
                dump.display()
            );
            continue;
        };
        // the search knows the table order of 5.10 and 6.1; later kernels
        // reordered the tables and give their addresses (the arm64 7.x
        // guest dump, without a VMCOREINFO note, opens with the kernel's
        // own VMCOREINFO page since the page tables come from it)
        let release = k.vmcoreinfo.osrelease().unwrap_or("").to_string();
        let version: Vec<u32> = release
            .split(['.', '-', '+'])
            .take(2)
            .filter_map(|n| n.parse().ok())
            .collect();
        if version.as_slice() > [6, 1].as_slice() {
            eprintln!(
                "{}: {release}: tables reordered after 6.1, not searched: skipped",
                dump.display()
            );
            continue;
        }
        let t0 = std::time::Instant::now();
        let layouts = corestub::kernel::kallsyms_search::search(&k, stext, stext + (256 << 20))
            .unwrap_or_else(|e| panic!("{}: {e}", dump.display()));
        eprintln!("{}: found in {:?}", dump.display(), t0.elapsed());
        let found = layouts[0];
        assert_eq!(
            (
                found.num_syms,
                found.names,
                found.token_table,
                found.token_index
            ),
            (
                given.num_syms,
                given.names,
                given.token_table,
                given.token_index
            ),
            "{}",
            dump.display()
        );
        let ours = layouts
            .iter()
            .find_map(|at| Kallsyms::read(&k, at).ok())
            .unwrap_or_else(|| panic!("{}: no layout decodes", dump.display()));
        assert_eq!(ours.syms, k.kallsyms().unwrap().syms, "{}", dump.display());
    }
}

/// The x86_64 5.10 guest dump (no VMCOREINFO note; the kernel's own
/// VMCOREINFO page has `_stext` but no kallsyms tables, which 5.10 does
/// not export) when qemu_other_kernel has cached it: kallsyms found by
/// their shape, then the whole no-debug session: tasks, ORC backtrace
/// through the sysrq handler, types, dmesg.
#[test]
fn x86_64_510_guest_dump_kallsyms_by_shape() {
    let dump =
        corestub::fixtures::root().join("x86_64-5.10/5.10.0-32-cloud-amd64/guest-v3/qemu.elf");
    if !dump.is_file() {
        eprintln!(
            "SKIP x86_64_510_guest_dump_kallsyms_by_shape: {} not cached (qemu_other_kernel makes it)",
            dump.display()
        );
        return;
    }
    let (out, all, built) = nodebug_steps(
        &dump,
        "x86-510",
        &[
            ("threads", "info threads"),
            ("bt", "bt"),
            ("comm", "p ((struct task_struct *)&init_task)->comm"),
            ("dmesg", "dmesg"),
        ],
    );
    eprintln!("x86_64-5.10: symbol file built in {built:?}");
    assert!(all.contains("using symbols built from the dump"), "{all}");
    for f in ["sysrq_handle_crash", "write_sysrq_trigger", "ksys_write"] {
        assert!(out["bt"].contains(f), "{f} not in bt:\n{}", out["bt"]);
    }
    assert!(
        out["threads"].contains("pid 1 init [S]"),
        "{}",
        out["threads"]
    );
    assert!(out["comm"].contains("\"swapper/0"), "{}", out["comm"]);
    assert!(
        out["dmesg"].contains("Linux version 5.10"),
        "{}",
        out["dmesg"]
    );
}

/// The arm64 5.10 guest dump (no VMCOREINFO note; the kernel's own page
/// has `_stext` but no kallsyms tables; kallsyms lists text only, so the
/// tables found by their shape cannot show `init_uts_ns`) when
/// qemu_other_kernel has cached it: tasks, `ps`, the panic CPU (no
/// `panic_cpu` symbol: the one that logged the panic message) and its
/// `bt`, and `init_task` (found by its structure) equal the debug
/// session's.
#[test]
fn arm64_510_guest_dump_kallsyms_by_shape() {
    let dir = corestub::fixtures::root().join("arm64-5.10/5.10.0-32-cloud-arm64");
    let (dump, vmlinux) = (dir.join("guest-v3/qemu.elf"), dir.join("vmlinux"));
    if !dump.is_file() || !vmlinux.is_file() {
        eprintln!(
            "SKIP arm64_510_guest_dump_kallsyms_by_shape: {} not cached (qemu_other_kernel makes it)",
            dump.display()
        );
        return;
    }
    let steps = [
        ("ps", "ps"),
        ("threads", "info threads"),
        ("bt", "bt"),
        ("init", "p init_task.comm"),
    ];
    let (theirs, _) = common::gdb_steps(&dump, &vmlinux, &steps);
    let mut ours_steps = steps.to_vec();
    ours_steps.push(("dmesg", "dmesg"));
    let (ours, all, built) = nodebug_steps(&dump, "arm64-510", &ours_steps);
    eprintln!("arm64-5.10: symbol file built in {built:?}");
    assert!(all.contains("using symbols built from the dump"), "{all}");
    same_tasks(&ours, &theirs, &dump);
    assert!(
        theirs["threads"].contains("[panic]"),
        "{}",
        theirs["threads"]
    );
    same_value(&ours["init"], &theirs["init"]);
    let (bt, debug) = (frame_functions(&ours["bt"]), frame_functions(&theirs["bt"]));
    eprintln!("arm64-5.10 panic CPU: {bt:?}\n debug: {debug:?}");
    assert!(
        bt.contains(&"sysrq_handle_crash".to_string()),
        "{}",
        ours["bt"]
    );
    same_functions(&bt, &debug);
    assert!(
        ours["dmesg"].contains("Linux version 5.10"),
        "{}",
        ours["dmesg"]
    );
}

/// The 6.12 guest dump of `set` (`x86_64-6.12`, `arm64-6.12`) and its
/// debug vmlinux, when qemu_other_kernel has cached them.
fn guest_612(set: &str, test: &str) -> Option<(PathBuf, PathBuf)> {
    let series = corestub::fixtures::root().join(set);
    let found = std::fs::read_dir(&series)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| (e.path().join("guest-v3/qemu.elf"), e.path().join("vmlinux")))
        .find(|(d, vm)| d.is_file() && vm.is_file());
    if found.is_none() {
        eprintln!(
            "SKIP {test}: no 6.12 guest dump cached in {} yet (qemu_other_kernel makes it)",
            series.display()
        );
    }
    found
}

/// The no-debug session on a 6.12 guest dump (QEMU without `-device
/// vmcoreinfo`: no VMCOREINFO note; the kernel's own page gives kallsyms
/// and, on arm64, the page tables) against the debug session of the same
/// dump: `info threads` (task and CPU labels), `ps` rows, `bt` of the
/// panicking CPU by function, `dmesg`, `ptype struct task_struct`, and a
/// task cast by the address `ps` prints.
fn session_612_equals_the_debug_one(set: &str, test: &str) {
    let Some((dump, vmlinux)) = guest_612(set, test) else {
        return;
    };
    let steps = [
        ("threads", "info threads"),
        ("ps", "ps"),
        ("bt", "bt"),
        ("dmesg", "dmesg"),
        ("ptype", "ptype struct task_struct"),
    ];
    let (theirs, _) = common::gdb_steps(&dump, &vmlinux, &steps);
    let (pid1, comm1) = task_of_pid(&theirs["ps"], "1");
    let cast = format!("p ((struct task_struct *)0x{pid1})->comm");
    let mut ours_steps = steps.to_vec();
    ours_steps.push(("comm", &cast));
    let (ours, all, built) = nodebug_steps(&dump, set, &ours_steps);
    eprintln!("{set}: symbol file built in {built:?}");
    assert!(all.contains("using symbols built from the dump"), "{all}");
    same_tasks(&ours, &theirs, &dump);
    let (bt, debug_bt) = (frame_functions(&ours["bt"]), frame_functions(&theirs["bt"]));
    eprintln!("{set} panic CPU: {bt:?}\n debug: {debug_bt:?}");
    assert!(bt.len() > 5, "{}", ours["bt"]);
    same_functions(&bt, &debug_bt);
    let log_lines = |s: &str| s.lines().filter(|l| l.starts_with('[')).count();
    assert!(
        ours["dmesg"].contains("Linux version 6.12"),
        "{}",
        ours["dmesg"]
    );
    assert!(log_lines(&ours["dmesg"]) > 100, "{}", ours["dmesg"]);
    assert_eq!(log_lines(&ours["dmesg"]), log_lines(&theirs["dmesg"]));
    for m in ["char comm[16];", "struct list_head tasks;", "pid_t pid;"] {
        assert!(ours["ptype"].contains(m), "{m}: {}", ours["ptype"]);
    }
    assert!(
        ours["comm"].contains(&format!("\"{comm1}")),
        "{cast}: {}",
        ours["comm"]
    );
}

#[test]
fn x86_64_612_guest_session_equals_the_debug_one() {
    session_612_equals_the_debug_one(
        "x86_64-6.12",
        "x86_64_612_guest_session_equals_the_debug_one",
    );
}

/// arm64 6.12 cloud: no KALLSYMS_ALL (init_task, task_state_array and the
/// runqueues found by their structure) and no VMCOREINFO note.
#[test]
fn arm64_612_guest_session_equals_the_debug_one() {
    session_612_equals_the_debug_one("arm64-6.12", "arm64_612_guest_session_equals_the_debug_one");
}
