//! Times opening a debug vmlinux and resolving the types corestub needs:
//! `cargo run --release --example vmlinux_probe -- path/to/vmlinux [type...]`
use std::time::Instant;

use corestub::kernel::symbols::Vmlinux;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: vmlinux_probe VMLINUX [TYPE...]");
    let extra: Vec<String> = args.collect();
    let t0 = Instant::now();
    let vm = Vmlinux::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let t_open = t0.elapsed();
    let t1 = Instant::now();
    let init_task = vm.addr("init_task");
    let t_sym = t1.elapsed();
    println!(
        "open {:?}  first symbol lookup {:?} ({} symbols)  init_task={:x?} build-id {:?} arch {:?}",
        t_open,
        t_sym,
        vm.symbol_count(),
        init_task,
        vm.build_id(),
        vm.arch()
    );
    let di = vm.debug_info().unwrap_or_else(|e| panic!("{e}"));
    let arch_ty = match vm.arch() {
        corestub::addr::Arch::X86_64 | corestub::addr::Arch::I386 => "inactive_task_frame",
        corestub::addr::Arch::Aarch64 => "cpu_context",
        corestub::addr::Arch::Arm => "cpu_context_save",
    };
    let mut names: Vec<&str> = vec![
        "task_struct",
        "mm_struct",
        "list_head",
        arch_ty,
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
    ];
    names.extend(extra.iter().map(|s| s.as_str()));
    let t2 = Instant::now();
    let missing = di.preload(&names).unwrap_or_else(|e| panic!("{e}"));
    let t_scan = t2.elapsed();
    let t3 = Instant::now();
    for n in &names {
        match di.layout(n) {
            Ok(l) => println!(
                "  {:<24} size {:>5} members {:>4}",
                l.name,
                l.size,
                l.members.len()
            ),
            Err(e) => println!("  {n}: {e}"),
        }
    }
    let t_layout = t3.elapsed();
    println!(
        "scan {:?} ({} CUs scanned, missing {:?}); layouts {:?}; total since open {:?}",
        t_scan,
        di.units_scanned(),
        missing,
        t_layout,
        t0.elapsed()
    );
}
