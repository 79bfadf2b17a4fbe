//! B4: random 4 KiB physical reads per second inside the server (no GDB),
//! per dump format. Prints a table; run with `cargo bench --bench reads`.
//!
//! - uniform: pages drawn uniformly from every page the dump stores (most
//!   reads miss the decompressed-page cache: this measures decompression);
//! - hot: the same 64 pages over and over (what GDB does while walking one
//!   stack or one structure: the cache's best case).
//!
//! A second table reads the same pages through their direct-map virtual
//! addresses (`Kernel::read_virt`: a page-table walk, then the data), with
//! the walk cache off (every page walks from the root through the dump's
//! page cache) and on (src/mmu/cache.rs).

use std::time::Instant;

use corestub::addr::{PhysAddr, VirtAddr};
use corestub::dump;
use corestub::kernel::symbols::Vmlinux;
use corestub::kernel::{Kernel, page};
use corestub::mmu::cache::WalkCache;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn present_pages(mem: &dyn dump::PhysicalMemory) -> Vec<u64> {
    let mut buf = [0u8; 4096];
    let mut pages = Vec::new();
    for r in mem.ranges() {
        let mut pa = r.start.0 & !0xfff;
        while pa < r.end() {
            if mem.read_phys(PhysAddr(pa), &mut buf).is_ok() {
                pages.push(pa);
            }
            pa += 4096;
        }
    }
    pages
}

fn rate(mem: &dyn dump::PhysicalMemory, pages: &[u64], n: usize, seed: u64) -> f64 {
    let mut rng = Rng(seed);
    let mut buf = vec![0u8; 4096];
    let t = Instant::now();
    for _ in 0..n {
        let pa = pages[(rng.next() % pages.len() as u64) as usize];
        mem.read_phys(PhysAddr(pa), &mut buf).unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// Virtual reads of `size` bytes at the direct-map addresses of `pages`.
fn virt_rate(k: &Kernel, pages: &[u64], size: usize, n: usize, seed: u64) -> f64 {
    let vas: Vec<u64> = pages
        .iter()
        .map(|&pa| page::ptov(k, PhysAddr(pa)).unwrap().0)
        .collect();
    let space = k.kernel_space();
    let mut rng = Rng(seed);
    let mut buf = vec![0u8; size];
    let t = Instant::now();
    for _ in 0..n {
        let va = vas[(rng.next() % vas.len() as u64) as usize];
        k.read_virt(
            &space,
            VirtAddr(va + (rng.next() % (4096 - size as u64 + 1))),
            &mut buf,
        )
        .unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// The virtual-read table: each figure with the walk cache off, then on.
fn virtual_reads(root: &std::path::Path, files: &[&str]) {
    println!();
    println!(
        "| B4 dump, direct-map virtual reads | uniform 4 KiB reads/s, walk cache off | on | hot-set 64 B reads/s, off | on |"
    );
    println!("|---|---|---|---|---|");
    for f in files {
        let path = root.join(f);
        if !path.exists() {
            continue;
        }
        let vmlinux = path.with_file_name("vmlinux");
        if !vmlinux.exists() {
            println!("| {f} | no vmlinux beside it | | | |");
            continue;
        }
        let mut figures = Vec::new();
        let pages = present_pages(dump::open(&path).unwrap().memory.as_ref());
        // the direct map starts at PA 0 on x86_64: every stored page has a VA
        let hot: Vec<u64> = pages
            .iter()
            .step_by(pages.len() / 64 + 1)
            .copied()
            .take(64)
            .collect();
        let n = 20_000.min(pages.len() * 2);
        for (size, set, n) in [(4096, &pages, n), (64, &hot, 200_000)] {
            for enabled in [false, true] {
                let mut k = Kernel::new(dump::open(&path).unwrap()).unwrap();
                // page_offset_base (the direct map's address) needs symbols
                k.vmlinux = Some(Vmlinux::open(&vmlinux).unwrap());
                k.walk_cache = WalkCache::new(enabled);
                figures.push(virt_rate(&k, set, size, n, 4));
            }
        }
        println!(
            "| {f} | {:.0} | {:.0} | {:.0} | {:.0} |",
            figures[0], figures[1], figures[2], figures[3]
        );
    }
}

/// One figure of the virtual-read table, alone (`--one uniform-on`,
/// `uniform-off`, `hot-on`, `hot-off`): what a profiler should look at.
fn one_case(path: &std::path::Path, case: &str) {
    let (set_name, enabled) = case.rsplit_once('-').unwrap_or((case, ""));
    let enabled = match enabled {
        "on" => true,
        "off" => false,
        _ => panic!("--one SET-on|SET-off; SET: uniform, small (4 KiB-mapped pages), hot"),
    };
    let pages = present_pages(dump::open(path).unwrap().memory.as_ref());
    let mut k = Kernel::new(dump::open(path).unwrap()).unwrap();
    k.vmlinux = Some(Vmlinux::open(path.with_file_name("vmlinux")).unwrap());
    let space = k.kernel_space();
    let small = |pa: &u64| {
        let va = page::ptov(&k, PhysAddr(*pa)).unwrap();
        k.paging
            .translate(k.dump.memory.as_ref(), &space, va, None)
            .is_ok_and(|t| t.page_size == 4096)
    };
    let (set, size): (Vec<u64>, usize) = match set_name {
        "hot" => (
            pages
                .iter()
                .step_by(pages.len() / 64 + 1)
                .copied()
                .take(64)
                .collect(),
            64,
        ),
        // the miss-heavy case: pages mapped by 4 KiB entries only, drawn
        // at random, so a TLB rarely holds the next one
        "small" => (pages.iter().copied().filter(small).collect(), 4096),
        _ => (pages.clone(), 4096),
    };
    let n = if size == 64 {
        200_000
    } else {
        20_000.min(set.len() * 2)
    };
    k.walk_cache = WalkCache::new(enabled);
    println!(
        "{} {case} ({} pages): {:.0} reads/s",
        path.display(),
        set.len(),
        virt_rate(&k, &set, size, n, 4)
    );
}

fn main() {
    let root = corestub::fixtures::root();
    // `cargo bench --bench reads -- [--virtual] [NAME...]`: only the dumps
    // whose file names contain a NAME, only the virtual-read table (for
    // profiling one case: `valgrind --tool=callgrind` on the bench binary)
    let args: Vec<String> = std::env::args().skip(1).collect();
    let names: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let files: Vec<&str> = [
        "x86_64-6.1/elf-d31.vmcore",
        "x86_64-6.1/kdump-zlib-d31.kdump",
        "x86_64-6.1/kdump-lzo-d31.kdump",
        "x86_64-6.1/kdump-zstd-d31.kdump",
        "x86_64-6.1/kdump-snappy-d31.kdump",
        "x86_64-6.1/flat-zlib-d31.flat",
    ]
    .into_iter()
    .filter(|f| names.is_empty() || names.iter().any(|n| f.contains(n.as_str())))
    .collect();
    if let Some(i) = args.iter().position(|a| a == "--one") {
        let case = args.get(i + 1).map_or("", String::as_str);
        for f in &files {
            one_case(&root.join(f), case);
        }
        return;
    }
    if args.iter().any(|a| a == "--virtual") {
        virtual_reads(&root, &files);
        return;
    }
    println!(
        "| B4 dump | pages stored | open ms | uniform reads/s (cold cache) | uniform reads/s (2nd pass) | hot-set reads/s |"
    );
    println!("|---|---|---|---|---|---|");
    for &f in &files {
        let path = root.join(f);
        if !path.exists() {
            println!("| {f} | missing (run ../shared/fixtures/unpack.sh) | | | | |");
            continue;
        }
        let t = Instant::now();
        let d = dump::open(&path).unwrap();
        let open_ms = t.elapsed().as_secs_f64() * 1e3;
        let mem = d.memory.as_ref();
        let pages = present_pages(mem);
        let d = dump::open(&path).unwrap(); // fresh caches
        let mem = d.memory.as_ref();
        let n = 20_000.min(pages.len() * 2);
        let cold = rate(mem, &pages, n, 1);
        let second = rate(mem, &pages, n, 2);
        let hot: Vec<u64> = pages
            .iter()
            .step_by(pages.len() / 64 + 1)
            .copied()
            .take(64)
            .collect();
        let hot_rate = rate(mem, &hot, 200_000, 3);
        println!(
            "| {f} | {} | {open_ms:.1} | {cold:.0} | {second:.0} | {hot_rate:.0} |",
            pages.len()
        );
    }
    virtual_reads(&root, &files);
}
