//! Runs monitor commands without GDB, timing each:
//! `cargo run --release --example monitor -- DUMP [--vmlinux VMLINUX] 'CMD' ['CMD'...]`
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dump) = args.next() else {
        eprintln!("usage: monitor DUMP [--vmlinux VMLINUX] CMD...");
        std::process::exit(2);
    };
    let mut vmlinux: Option<PathBuf> = None;
    let mut cmds = Vec::new();
    while let Some(a) = args.next() {
        if a == "--vmlinux" {
            vmlinux = args.next().map(PathBuf::from);
        } else {
            cmds.push(a);
        }
    }
    let t = Instant::now();
    let s = corestub::target::monitor::open_session(dump.as_ref(), vmlinux.as_deref())
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("open: {:?}", t.elapsed());
    for c in cmds {
        let t = Instant::now();
        let out = corestub::target::monitor::run(&s, &c);
        print!("{out}");
        eprintln!("'{c}': {:?}", t.elapsed());
    }
}
