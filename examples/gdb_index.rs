//! Writes the `.gdb_index` corestub builds for a vmlinux (what `corestub
//! gdb` puts in its index cache), and how long it took.
//! Usage: cargo run --release --example gdb_index -- VMLINUX OUT [THREADS]

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [vmlinux, out, rest @ ..] = args.as_slice() else {
        return Err("usage: gdb_index VMLINUX OUT [THREADS]".into());
    };
    let threads = match rest.first() {
        Some(n) => n.parse()?,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let t = std::time::Instant::now();
    let v = corestub::kernel::symbols::Vmlinux::open(vmlinux)?;
    let opened = t.elapsed();
    let index = corestub::kernel::gdb_index::build(v.debug_info()?, threads)?;
    let built = t.elapsed();
    std::fs::write(out, &index)?;
    eprintln!(
        "opened in {opened:?}, index built in {:?} ({threads} threads), {} bytes",
        built - opened,
        index.len()
    );
    Ok(())
}
