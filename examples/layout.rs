//! Prints a struct layout from a vmlinux (or any ELF with DWARF):
//! `cargo run --release --example layout -- VMLINUX TYPE [MEMBER.PATH]`
use corestub::kernel::symbols::Vmlinux;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, ty, rest @ ..] = &args[..] else {
        eprintln!("usage: layout VMLINUX TYPE [MEMBER.PATH]");
        std::process::exit(2);
    };
    let vm = Vmlinux::open(path).unwrap_or_else(|e| panic!("{e}"));
    let di = vm.debug_info().unwrap_or_else(|e| panic!("{e}"));
    if let Some(p) = rest.first() {
        match di.field(ty, p) {
            Ok(f) => println!(
                "{ty}.{p}: offset {:#x} size {:?} type {} bits {:?}",
                f.offset, f.size, f.type_name, f.bits
            ),
            Err(e) => println!("{e}"),
        }
        return;
    }
    match di.layout(ty) {
        Ok(l) => {
            println!("{} (size {})", l.name, l.size);
            for m in &l.members {
                println!(
                    "  {:>6} {:>6?} {:<32} {} {:?}",
                    m.offset, m.size, m.type_name, m.name, m.bits
                );
            }
        }
        Err(e) => println!("{e}"),
    }
}
