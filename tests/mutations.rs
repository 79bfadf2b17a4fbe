//! Hostile input derived from the real fixtures: truncated files, lying
//! header fields, zeroed bitmaps, descriptor lies, decompression bombs,
//! page-table loops and entries pointing past RAM. Each mutated dump is
//! opened in memory (`dump::open_bytes`), run through `Kernel::new` and a set
//! of physical and virtual reads. Every case must: not panic, finish in
//! without hanging (common::HANG_GUARD), allocate a bounded amount, and fail (if it fails) with an error
//! that names a file offset or an address. Truncated copies must still serve
//! the pages they hold, byte-identical to the intact file, and say they are
//! incomplete (also through `corestub info`).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use corestub::addr::{PhysAddr, VirtAddr};
use corestub::dump::{self, Dump, MemError};
use corestub::kernel::Kernel;

// ---- a counting allocator: peak heap use per case ----

struct Counting;
static CUR: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = CUR.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        CUR.fetch_sub(l.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Cases run one at a time so the peak belongs to one case.
static SERIAL: Mutex<()> = Mutex::new(());
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

const MAX_CASE_TIME: Duration = common::HANG_GUARD;
/// Heap a case may add on top of its input (the input is an mmap, not heap).
const MAX_CASE_HEAP: usize = 128 << 20;

// ---- the reference: what the intact fixture says ----

struct Reference {
    name: String,
    bytes: Vec<u8>,
    /// Physical addresses sampled over the dump's ranges, with the bytes
    /// the intact dump holds there (None: unreadable in the intact dump).
    samples: Vec<(u64, Option<[u8; 64]>)>,
    /// Kernel virtual addresses that are readable in the intact dump.
    vas: Vec<(u64, [u8; 64])>,
}

fn read64(d: &Dump, pa: u64) -> Result<[u8; 64], MemError> {
    let mut b = [0u8; 64];
    d.memory.read_phys(PhysAddr(pa), &mut b).map(|_| b)
}

fn reference(set: &str, file: &str, prefix: Option<usize>) -> Option<Reference> {
    let path = common::fixture(set, file, "mutations")?;
    let full = dump::open(&path).expect("intact fixture opens");
    let mut samples = Vec::new();
    let ranges = full.memory.ranges().to_vec();
    for r in ranges.iter().take(32) {
        for k in 0..8u64 {
            let pa = r.start.0 + (r.len / 8) * k;
            samples.push((pa, read64(&full, pa).ok()));
        }
    }
    let kernel = Kernel::new(full).expect("intact fixture has a kernel");
    let mut vas = Vec::new();
    let vi = &kernel.vmcoreinfo;
    for sym in [
        "init_uts_ns",
        "init_top_pgt",
        "swapper_pg_dir",
        "_stext",
        "node_online_map",
        "log_buf",
        "prb",
        "mem_section",
    ] {
        if let Some(va) = vi.symbol(sym) {
            let mut b = [0u8; 64];
            if kernel
                .read_virt(&kernel.kernel_space(), VirtAddr(va), &mut b)
                .is_ok()
            {
                vas.push((va, b));
            }
        }
    }
    assert!(!vas.is_empty(), "{file}: no readable VMCOREINFO symbol");
    let mut bytes = std::fs::read(&path).unwrap();
    if let Some(n) = prefix {
        bytes.truncate(n);
    }
    Some(Reference {
        name: format!("{set}/{file}"),
        bytes,
        samples,
        vas,
    })
}

// ---- running one case ----

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Anything goes, as long as it is safe and errors are clear.
    Anything,
    /// A truncated copy: whatever it reads must match the intact dump, and
    /// it must say it is incomplete (or refuse to open).
    Prefix,
}

#[derive(Default, Debug)]
struct Outcome {
    opened: bool,
    kernel: bool,
    incomplete: bool,
    phys_ok: usize,
    virt_ok: usize,
}

fn assert_clear(what: &str, case: &str, msg: &str) {
    assert!(
        msg.contains("0x") || msg.contains("offset") || msg.contains("not a dump"),
        "{case}: {what} error names no offset or address: {msg}"
    );
}

fn run_case(r: &Reference, case: &str, bytes: &[u8], expect: Expect) -> Outcome {
    let base = CUR.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let t0 = Instant::now();
    let mut out = Outcome::default();
    let name = PathBuf::from(format!("{}~{case}", r.name));
    match dump::open_bytes(&name, bytes) {
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(&r.name), "{case}: error names no file: {msg}");
            assert_clear("open", case, &msg);
        }
        Ok(d) => {
            out.opened = true;
            out.incomplete = d.format.incomplete.is_some();
            for (pa, want) in &r.samples {
                match read64(&d, *pa) {
                    Ok(got) => {
                        out.phys_ok += 1;
                        if expect == Expect::Prefix {
                            assert_eq!(
                                Some(got),
                                *want,
                                "{case}: read at {pa:#x} differs from the intact dump"
                            );
                        }
                    }
                    Err(e) => {
                        assert_eq!(e.addr().0, *pa, "{case}: {e}");
                        assert_clear("read_phys", case, &e.to_string());
                    }
                }
            }
            // a long read across the whole first range
            if let Some(rg) = d.memory.ranges().first() {
                let mut big = vec![0u8; (rg.len as usize).min(4 << 20)];
                let _ = d.memory.read_phys(rg.start, &mut big);
            }
            match Kernel::new(d) {
                Err(e) => assert!(!e.to_string().is_empty()),
                Ok(k) => {
                    out.kernel = true;
                    let space = k.kernel_space();
                    for (va, want) in &r.vas {
                        let mut b = [0u8; 64];
                        match k.read_virt(&space, VirtAddr(*va), &mut b) {
                            Ok(()) => {
                                out.virt_ok += 1;
                                if expect == Expect::Prefix {
                                    assert_eq!(&b, want, "{case}: read at {va:#x} differs");
                                }
                            }
                            Err(e) => assert_clear("read_virt", case, &e.to_string()),
                        }
                    }
                    let _ = k.panic_cpu();
                    let mut b = vec![0u8; 1 << 20];
                    let _ = k.read_virt_partial(&space, VirtAddr(0xffff_ffff_8100_0000), &mut b);
                    // beyond Kernel::new: CPU threads and their registers,
                    // the log and the monitor commands (no vmlinux here:
                    // the task list is covered by damaged_task_list_*)
                    let s = std::sync::Arc::new(corestub::target::Session::new(
                        k,
                        corestub::target::ThreadMode::All,
                    ));
                    for out in real::exercise(&s) {
                        assert!(!out.is_empty(), "{case}: empty monitor answer");
                    }
                }
            }
        }
    }
    let took = t0.elapsed();
    let heap = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    assert!(took < MAX_CASE_TIME, "{case}: took {took:?}");
    assert!(
        heap < MAX_CASE_HEAP,
        "{case}: used {} MiB of heap",
        heap >> 20
    );
    out
}

fn patched(base: &[u8], at: usize, val: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    if at < v.len() {
        let end = (at + val.len()).min(v.len());
        v[at..end].copy_from_slice(&val[..end - at]);
    }
    v
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

// ---- kdump-compressed ----

/// Mutations of a kdump-compressed file: returns the number of cases.
fn kdump_cases(r: &Reference, full_len: usize) -> usize {
    let b = &r.bytes;
    let bs = le32(b, 428) as usize;
    let sub = le32(b, 432) as usize;
    let bitmap_blocks = le32(b, 436) as usize;
    let bitmap_off = (1 + sub) * bs;
    let desc_base = bitmap_off + bitmap_blocks * bs;
    let note_off = le64(b, bs + 48) as usize;
    let mut n = 0;
    let mut case = |name: String, bytes: &[u8], e: Expect| {
        run_case(r, &name, bytes, e);
        n += 1;
    };

    // truncations (the prefix itself is a truncated copy of the full file)
    let cuts = [
        0,
        7,
        100,
        463,
        464,
        bs + 50,
        note_off + 20,
        bitmap_off + 100,
        bitmap_off + bitmap_blocks * bs / 2,
        desc_base + 5,
        desc_base + 24 * 1000 + 7,
        desc_base + 24 * 5000,
    ];
    for cut in cuts {
        case(
            format!("cut@{cut:#x}"),
            &b[..cut.min(b.len())],
            Expect::Prefix,
        );
    }

    // header fields set to hostile values
    let fields = [8usize, 424, 428, 432, 436, 440, 460];
    let vals: [u32; 6] = [0, 1, 3, 0x7fff_ffff, 0x8000_0000, u32::MAX];
    for f in fields {
        for v in vals {
            case(
                format!("hdr@{f}={v:#x}"),
                &patched(b, f, &v.to_le_bytes()),
                Expect::Anything,
            );
        }
        let flipped = le32(b, f) ^ (1 << 20);
        case(
            format!("hdr@{f}^bit20"),
            &patched(b, f, &flipped.to_le_bytes()),
            Expect::Anything,
        );
    }
    // sub-header fields (phys_base, dump_level, split, start/end pfn,
    // vmcoreinfo and note offsets/sizes, max_mapnr_64, ...)
    for f in (0..104).step_by(8) {
        for v in [0u64, u64::MAX, 1 << 40, full_len as u64 - 8] {
            case(
                format!("sub@{f}={v:#x}"),
                &patched(b, bs + f, &v.to_le_bytes()),
                Expect::Anything,
            );
        }
    }

    // bitmaps: zeroed, all ones, each half
    let bm = bitmap_blocks * bs;
    for (what, range, val) in [
        ("zero-all", bitmap_off..bitmap_off + bm, 0u8),
        ("zero-ram", bitmap_off..bitmap_off + bm / 2, 0),
        ("zero-dumped", bitmap_off + bm / 2..bitmap_off + bm, 0),
        ("ones-dumped", bitmap_off + bm / 2..bitmap_off + bm, 0xff),
        ("ones-all", bitmap_off..bitmap_off + bm, 0xff),
    ] {
        let mut v = b.clone();
        v[range].fill(val);
        case(format!("bitmap-{what}"), &v, Expect::Anything);
    }

    // descriptor lies on descriptors 0, 1000 and 5000
    for idx in [0usize, 1000, 5000] {
        let d = desc_base + 24 * idx;
        let lies: [(&str, usize, Vec<u8>); 7] = [
            ("size-too-big", 8, (bs as u32 + 1).to_le_bytes().to_vec()),
            ("size-zero", 8, 0u32.to_le_bytes().to_vec()),
            ("size-max", 8, u32::MAX.to_le_bytes().to_vec()),
            ("offset-negative", 0, (-4096i64).to_le_bytes().to_vec()),
            ("offset-past-eof", 0, (1u64 << 40).to_le_bytes().to_vec()),
            ("offset-max", 0, i64::MAX.to_le_bytes().to_vec()),
            ("flags-all-codecs", 12, 0x27u32.to_le_bytes().to_vec()),
        ];
        for (what, off, val) in lies {
            case(
                format!("desc{idx}-{what}"),
                &patched(b, d + off, &val),
                Expect::Anything,
            );
        }
    }

    // decompression bombs: descriptor 0 points at a stream that inflates to
    // far more than a block, appended to the file
    let big = vec![0u8; 1 << 20];
    let bombs: [(&str, u32, Vec<u8>); 4] = [
        ("zlib", 0x1, {
            use std::io::Write;
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(&big).unwrap();
            e.finish().unwrap()
        }),
        ("zstd", 0x20, zstd::bulk::compress(&big, 19).unwrap()),
        (
            "lzo",
            0x2,
            lzokay_native::compress(&big[..64 << 10]).unwrap(),
        ),
        (
            "snappy",
            0x4,
            snap::raw::Encoder::new()
                .compress_vec(&big[..64 << 10])
                .unwrap(),
        ),
    ];
    for (codec, flag, stream) in bombs {
        assert!(stream.len() <= bs, "{codec} bomb of {} bytes", stream.len());
        let mut v = b.clone();
        let at = v.len() as u64;
        v.extend_from_slice(&stream);
        let d = desc_base;
        v[d..d + 8].copy_from_slice(&at.to_le_bytes());
        v[d + 8..d + 12].copy_from_slice(&(stream.len() as u32).to_le_bytes());
        v[d + 12..d + 16].copy_from_slice(&flag.to_le_bytes());
        let o = run_case(r, &format!("bomb-{codec}"), &v, Expect::Anything);
        assert!(o.opened, "bomb-{codec}: the header is intact");
        n += 1;
    }
    n
}

// ---- ELF ----

struct Phdr {
    at: usize,
    ty: u32,
    offset: u64,
    paddr: u64,
    filesz: u64,
}

fn phdrs(b: &[u8]) -> Vec<Phdr> {
    let phoff = le64(b, 32) as usize;
    let phnum = u16::from_le_bytes([b[56], b[57]]) as usize;
    (0..phnum)
        .map(|i| {
            let at = phoff + 56 * i;
            Phdr {
                at,
                ty: le32(b, at),
                offset: le64(b, at + 8),
                paddr: le64(b, at + 24),
                filesz: le64(b, at + 32),
            }
        })
        .collect()
}

fn elf_cases(r: &Reference) -> usize {
    let b = &r.bytes;
    let ph = phdrs(b);
    let note = ph.iter().find(|p| p.ty == 4).expect("PT_NOTE");
    let loads: Vec<&Phdr> = ph.iter().filter(|p| p.ty == 1 && p.filesz > 0).collect();
    let mut n = 0;
    let mut case = |name: String, bytes: &[u8], e: Expect| {
        run_case(r, &name, bytes, e);
        n += 1;
    };
    let first_load = loads[0].offset as usize;
    for cut in [
        0,
        5,
        63,
        64,
        64 + 56 * 2 + 3,
        note.offset as usize + 10,
        note.offset as usize + note.filesz as usize / 2,
        first_load + 100,
        first_load + 4096 * 100,
    ] {
        case(
            format!("cut@{cut:#x}"),
            &b[..cut.min(b.len())],
            Expect::Prefix,
        );
    }
    // ELF header fields
    let hdr: [(&str, usize, Vec<u8>); 10] = [
        ("class32", 4, vec![1]),
        ("bigendian", 5, vec![2]),
        ("machine", 18, 0xbeefu16.to_le_bytes().to_vec()),
        ("phoff-max", 32, u64::MAX.to_le_bytes().to_vec()),
        (
            "phoff-eof",
            32,
            (b.len() as u64 - 10).to_le_bytes().to_vec(),
        ),
        ("phentsize", 54, 7u16.to_le_bytes().to_vec()),
        ("phnum-0", 56, 0u16.to_le_bytes().to_vec()),
        ("phnum-max", 56, u16::MAX.to_le_bytes().to_vec()),
        ("type", 16, 0u16.to_le_bytes().to_vec()),
        ("ident", 0, b"\x7fELX".to_vec()),
    ];
    for (what, at, val) in hdr {
        case(
            format!("ehdr-{what}"),
            &patched(b, at, &val),
            Expect::Anything,
        );
    }
    // program headers: PT_NOTE and the first PT_LOADs lie
    for p in std::iter::once(note).chain(loads.iter().take(3).copied()) {
        for (what, off, val) in [
            ("offset-max", 8usize, u64::MAX - 16),
            ("offset-eof", 8, b.len() as u64 - 4),
            ("paddr-top", 24, u64::MAX - 4095),
            ("filesz-max", 32, u64::MAX),
            ("memsz-max", 40, u64::MAX),
            ("memsz-0", 40, 0),
            ("paddr-overlap", 24, p.paddr.wrapping_add(4096)),
        ] {
            case(
                format!("phdr@{:#x}-{what}", p.at),
                &patched(b, p.at + off, &val.to_le_bytes()),
                Expect::Anything,
            );
        }
    }
    // notes: garbage sizes
    let no = note.offset as usize;
    for (what, off, val) in [
        ("namesz-max", 0usize, u32::MAX),
        ("descsz-max", 4, u32::MAX),
        ("descsz-short", 4, 8),
        ("type", 8, 0xdead),
    ] {
        case(
            format!("note-{what}"),
            &patched(b, no + off, &val.to_le_bytes()),
            Expect::Anything,
        );
    }
    n
}

// ---- the tests ----

fn prefix_then_cases(set: &str, file: &str, prefix: usize) -> usize {
    let _g = serial();
    let Some(r) = reference(set, file, Some(prefix)) else {
        return 0;
    };
    let full_len = std::fs::metadata(common::fixture(set, file, "m").unwrap())
        .unwrap()
        .len() as usize;
    let t = Instant::now();
    let n = if r.bytes.starts_with(b"\x7fELF") {
        elf_cases(&r)
    } else {
        kdump_cases(&r, full_len)
    };
    eprintln!("{set}/{file}: {n} mutated inputs in {:?}", t.elapsed());
    n
}

#[test]
fn mutate_x86_kdump_zlib() {
    prefix_then_cases("x86_64-6.1", "kdump-zlib-d31.kdump", 2 << 20);
}

#[test]
fn mutate_x86_kdump_lzo() {
    prefix_then_cases("x86_64-6.1", "kdump-lzo-d31.kdump", 2 << 20);
}

#[test]
fn mutate_x86_kdump_zstd() {
    prefix_then_cases("x86_64-6.1", "kdump-zstd-d31.kdump", 2 << 20);
}

#[test]
fn mutate_arm64_kdump_zlib() {
    prefix_then_cases("arm64-6.1", "kdump-zlib-d31.kdump", 2 << 20);
}

#[test]
fn mutate_x86_elf() {
    prefix_then_cases("x86_64-6.1", "elf-d31.vmcore", 4 << 20);
}

#[test]
fn mutate_arm64_elf() {
    prefix_then_cases("arm64-6.1", "elf-d31.vmcore", 4 << 20);
}

/// The flattened stream: truncations, record headers that lie, and bytes
/// flipped over the first records (deterministically).
#[test]
fn mutate_x86_flat() {
    let _g = serial();
    let Some(r) = reference("x86_64-6.1", "flat-zlib-d31.flat", Some(2 << 20)) else {
        return;
    };
    let b = &r.bytes;
    let mut n = 0;
    for cut in [0, 12, 4095, 4096, 4100, 4112, 4113, 5000, 0x10000, 1 << 20] {
        run_case(
            r_ref(&r),
            &format!("cut@{cut:#x}"),
            &b[..cut],
            Expect::Prefix,
        );
        n += 1;
    }
    for (what, at, val) in [
        ("type", 16usize, 7i64),
        ("rec0-offset-neg", 4096, -2),
        ("rec0-offset-max", 4096, i64::MAX),
        ("rec0-size-max", 4104, i64::MAX),
        ("rec0-size-neg", 4104, -5),
        ("rec0-size-0", 4104, 0),
        ("rec0-end", 4096, -1),
    ] {
        run_case(
            &r,
            &format!("flat-{what}"),
            &patched(b, at, &val.to_be_bytes()),
            Expect::Anything,
        );
        n += 1;
    }
    let mut x = 0x1234_5678_9abc_def1u64;
    for i in 0..40 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = 4096 + (x as usize % 0x20000);
        let mut v = b.clone();
        v[at] ^= 1 << (x >> 60 & 7);
        run_case(&r, &format!("flip{i}@{at:#x}"), &v, Expect::Anything);
        n += 1;
    }
    eprintln!("flat: {n} mutated inputs");
}

fn r_ref(r: &Reference) -> &Reference {
    r
}

/// Truncated copies on disk: `corestub info` opens them, says INCOMPLETE,
/// and exits cleanly (no panic, bounded time); reads of the pages they
/// still hold match the intact file.
#[test]
fn truncated_files_are_reported_incomplete() {
    let dir = tempdir("truncated");
    for (set, file, keep) in [
        ("x86_64-6.1", "kdump-zlib-d31.kdump", 0.6),
        ("x86_64-6.1", "kdump-lzo-d31.kdump", 0.3),
        ("x86_64-6.1", "flat-zlib-d31.flat", 0.5),
        ("x86_64-6.1", "elf-d31.vmcore", 0.5),
        ("arm64-6.1", "kdump-zlib-d31.kdump", 0.5),
        ("arm64-6.1", "elf-d31.vmcore", 0.5),
    ] {
        let Some(src) = common::fixture(set, file, "truncated_files_are_reported_incomplete")
        else {
            return;
        };
        let bytes = std::fs::read(&src).unwrap();
        let cut = (bytes.len() as f64 * keep) as usize;
        let dst = dir.join(format!("{}-{file}", set.replace('/', "_")));
        std::fs::write(&dst, &bytes[..cut]).unwrap();
        // in-process: incomplete, and serves what it holds
        let d = dump::open(&dst).unwrap_or_else(|e| panic!("{file} cut at {cut}: {e}"));
        assert!(d.format.incomplete.is_some(), "{file} cut at {cut:#x}");
        let full = dump::open(&src).unwrap();
        let (mut ok, mut missing) = (0, 0);
        for rg in full.memory.ranges().iter().take(64) {
            for k in 0..16u64 {
                let pa = rg.start.0 + rg.len / 16 * k;
                let want = read64(&full, pa);
                match read64(&d, pa) {
                    Ok(got) => {
                        assert_eq!(Ok(got), want, "{file}: {pa:#x}");
                        ok += 1;
                    }
                    Err(e) => {
                        if want.is_ok() {
                            assert!(
                                matches!(e, MemError::Truncated { .. }),
                                "{file}: {pa:#x}: {e}"
                            );
                            assert!(e.to_string().contains("file offset"), "{e}");
                            missing += 1;
                        }
                    }
                }
            }
        }
        assert!(
            ok > 0 && missing > 0,
            "{file}: {ok} readable, {missing} cut off"
        );
        // the CLI says so
        let t = Instant::now();
        let out = common::run(
            std::process::Command::new(common::corestub_bin())
                .args(["info", dst.to_str().unwrap()]),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stderr.contains("panicked"), "{file}: {stderr}");
        assert!(out.status.success(), "{file}: {stderr}");
        assert!(stdout.contains("INCOMPLETE"), "{file}:\n{stdout}");
        assert!(
            t.elapsed() < common::HANG_GUARD,
            "{file}: info took {:?}",
            t.elapsed()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir(what: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("corestub-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Page-table damage in a full copy of the x86_64 ELF: the kernel root's
/// top entry (which maps the kernel image) made to loop back to the root
/// and made to point past RAM. Reads through it fail naming the address
/// (or, for the loop, return bounded garbage); reads elsewhere (vmalloc'd
/// stacks, the direct map) still work and match the intact dump.
#[test]
fn page_table_loop_and_pte_past_ram() {
    let _g = serial();
    let test = "page_table_loop_and_pte_past_ram";
    let Some(path) = common::fixture("x86_64-6.1", "elf-d31.vmcore", test) else {
        return;
    };
    let bytes = std::fs::read(&path).unwrap();
    let full = Kernel::new(dump::open(&path).unwrap()).unwrap();
    let root = full.kernel_root.0.0;
    let ph = phdrs(&bytes);
    let seg = ph
        .iter()
        .find(|p| p.ty == 1 && p.paddr <= root && root + 4096 <= p.paddr + p.filesz)
        .expect("root page in a PT_LOAD");
    let root_off = (seg.offset + (root - seg.paddr)) as usize;
    // kernel-image VAs (PGD slot 511) and others from truth.json
    let truth: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(corestub::fixtures::root().join("x86_64-6.1/truth.json")).unwrap(),
    )
    .unwrap();
    let vas: Vec<u64> = truth["boots"]["kdump"]["translations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| u64::from_str_radix(t["va"].as_str()?.trim_start_matches("0x"), 16).ok())
        .collect();
    let space = full.kernel_space();
    let intact: Vec<(u64, Option<[u8; 16]>)> = vas
        .iter()
        .map(|&va| {
            let mut b = [0u8; 16];
            (
                va,
                full.read_virt(&space, VirtAddr(va), &mut b).ok().map(|_| b),
            )
        })
        .collect();
    let slot = |va: u64| (va >> 39) & 0x1ff;
    assert!(intact.iter().any(|(va, b)| slot(*va) == 511 && b.is_some()));
    assert!(intact.iter().any(|(va, b)| slot(*va) != 511 && b.is_some()));

    let e511 = root_off + 511 * 8;
    for (what, entry) in [
        ("loop", root | 0x63),
        ("past-ram", 0x000d_ead0_0000_0000u64 | 0x63),
        ("huge-at-pgd", 0x000f_ffff_c000_0000u64 | 0xe3),
    ] {
        let t = Instant::now();
        let mut v = bytes.clone();
        v[e511..e511 + 8].copy_from_slice(&entry.to_le_bytes());
        let k = Kernel::new(dump::open_bytes(Path::new(what), &v).unwrap()).unwrap();
        let space = k.kernel_space();
        for (va, want) in &intact {
            let mut b = [0u8; 16];
            let got = k.read_virt(&space, VirtAddr(*va), &mut b);
            if slot(*va) == 511 {
                if let Err(e) = got {
                    let msg = e.to_string();
                    assert!(msg.contains(&format!("{va:#x}")), "{what}: {msg}");
                    if what == "past-ram" {
                        assert!(msg.contains("0xdead"), "{what}: {msg}");
                    }
                } else {
                    assert_eq!(what, "loop", "{va:#x} read through a bad entry");
                }
            } else {
                assert_eq!(got.ok().map(|_| b), *want, "{what}: {va:#x}");
            }
        }
        let mut big = vec![0u8; 1 << 20];
        let _ = k.read_virt_partial(&space, VirtAddr(0xffff_ffff_8000_0000), &mut big);
        assert!(t.elapsed() < MAX_CASE_TIME, "{what}: {:?}", t.elapsed());
    }
    // the root page filled with entries pointing at itself
    let mut v = bytes;
    for i in 0..512 {
        v[root_off + 8 * i..root_off + 8 * i + 8].copy_from_slice(&(root | 0x63).to_le_bytes());
    }
    let k = Kernel::new(dump::open_bytes(Path::new("self-root"), &v).unwrap()).unwrap();
    let mut big = vec![0u8; 1 << 20];
    let t = Instant::now();
    let (n, _) = k.read_virt_partial(&k.kernel_space(), VirtAddr(0xffff_ffff_8000_0000), &mut big);
    assert!(n <= big.len() && t.elapsed() < MAX_CASE_TIME);
}

/// The fixture files are never modified by the readers (they are mapped
/// read-only); this reads them fully before and after a set of opens.
#[test]
fn fixtures_unchanged_by_mutation_suite() {
    let files = [
        ("x86_64-6.1", "kdump-zlib-d31.kdump"),
        ("x86_64-6.1", "flat-zlib-d31.flat"),
        ("arm64-6.1", "elf-d31.vmcore"),
    ];
    let mut paths = Vec::new();
    for (set, f) in files {
        let Some(p) = common::fixture(set, f, "fixtures_unchanged_by_mutation_suite") else {
            return;
        };
        paths.push(p);
    }
    let before: Vec<_> = paths.iter().map(|p| common::file_fingerprint(p)).collect();
    let siblings = |p: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let dirs_before: Vec<_> = paths.iter().map(|p| siblings(p)).collect();
    for p in &paths {
        let k = Kernel::new(dump::open(p).unwrap()).unwrap();
        let mut b = vec![0u8; 1 << 20];
        let _ = k.read_virt_partial(&k.kernel_space(), VirtAddr(0xffff_ffff_8100_0000), &mut b);
    }
    let after: Vec<_> = paths.iter().map(|p| common::file_fingerprint(p)).collect();
    assert_eq!(before, after);
    let dirs_after: Vec<_> = paths.iter().map(|p| siblings(p)).collect();
    assert_eq!(dirs_before, dirs_after, "files appeared beside the dumps");
}

// ---- beyond Kernel::new: tasks, printk, monitor commands, registers ----

use corestub::fuzz_harness::real;

/// Physical address of kernel virtual address `va` in the intact fixture.
fn pa_of(k: &Kernel, va: u64) -> PhysAddr {
    k.paging
        .translate(
            k.dump.memory.as_ref(),
            &k.kernel_space(),
            VirtAddr(va),
            None,
        )
        .unwrap_or_else(|e| panic!("{va:#x}: {e}"))
        .pa
}

fn member(k: &Kernel, ty: &str, path: &str) -> u64 {
    k.debug_info()
        .expect("fixture vmlinux has DWARF")
        .offset_of(ty, path)
        .unwrap_or_else(|e| panic!("{ty}.{path}: {e}"))
}

/// One damaged session: it must serve its threads, registers and monitor
/// commands without panicking, in bounded time and heap; a monitor command
/// that fails says why, naming an address when memory was the reason.
fn serve_damaged(
    fixture: usize,
    case: &str,
    patches: Vec<(PhysAddr, Vec<u8>)>,
    edit: impl FnOnce(&mut corestub::dump::notes::Notes),
) -> std::sync::Arc<corestub::target::Session> {
    let base = CUR.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let t0 = Instant::now();
    let s = real::patched_session(fixture, patches, edit).expect("fixture serves");
    let outs = real::exercise(&s);
    for out in &outs {
        assert!(!out.is_empty(), "{case}: empty monitor answer");
        if out.contains("cannot read") || out.contains("unreadable") {
            assert!(out.contains("0x"), "{case}: error names no address: {out}");
        }
    }
    let took = t0.elapsed();
    let heap = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    assert!(took < MAX_CASE_TIME, "{case}: took {took:?}");
    assert!(heap < MAX_CASE_HEAP, "{case}: {} MiB of heap", heap >> 20);
    s
}

fn le(v: u64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// Task-list, task and register damage on both ELF fixtures: lists that
/// loop, end in poison, overflow the address space or point at themselves;
/// a repeated PID; a non-UTF-8 comm; saved stack pointers and CPU notes
/// that point nowhere. The server must answer every thread and command.
#[test]
fn damaged_task_list_and_registers() {
    let _g = serial();
    let test = "damaged_task_list_and_registers";
    for (i, (set, file)) in real::FIXTURES.iter().enumerate() {
        if common::fixture(set, file, test).is_none()
            || common::fixture(set, "vmlinux", test).is_none()
        {
            return;
        }
        let intact = real::intact_session(i as u8).expect("intact session");
        let k = &intact.kernel;
        let tasks = intact.tasks();
        let n_intact = tasks.len();
        let init = k.symbol("init_task").unwrap().0;
        let t1 = tasks.iter().find(|t| t.task.pid == 1).unwrap().task.clone();
        let t2 = tasks.iter().find(|t| t.task.pid > 1).unwrap().task.clone();
        let ts = "struct task_struct";
        let link = member(k, ts, "tasks");
        let at = |task: u64, path: &str| pa_of(k, task + member(k, ts, path));
        let sp_path = match k.arch {
            corestub::addr::Arch::X86_64 => "thread.sp",
            corestub::addr::Arch::Aarch64 => "thread.cpu_context.sp",
            corestub::addr::Arch::I386 => "thread.sp",
            corestub::addr::Arch::Arm => "thread_info.cpu_context.sp",
        };
        type Patches = Vec<(PhysAddr, Vec<u8>)>;
        let cases: Vec<(&str, Patches)> = vec![
            ("empty-list", vec![(at(init, "tasks"), le(init + link))]),
            (
                "self-loop",
                vec![(at(t1.addr.0, "tasks"), le(t1.addr.0 + link))],
            ),
            (
                "back-loop",
                vec![(at(t2.addr.0, "tasks"), le(t1.addr.0 + link))],
            ),
            (
                "poison",
                vec![(at(t1.addr.0, "tasks"), le(0xdead_0000_0000_0100))],
            ),
            ("wraps", vec![(at(t1.addr.0, "tasks"), le(u64::MAX - 3))]),
            ("null", vec![(at(t1.addr.0, "tasks"), le(0))]),
            (
                "same-pid",
                vec![(at(t2.addr.0, "pid"), t1.pid.to_le_bytes().to_vec())],
            ),
            (
                "negative-pid",
                vec![(at(t2.addr.0, "pid"), (-7i32).to_le_bytes().to_vec())],
            ),
            ("comm-0xff", vec![(at(t2.addr.0, "comm"), vec![0xff; 16])]),
            (
                "sp-nowhere",
                vec![(at(t2.addr.0, sp_path), le(u64::MAX - 7))],
            ),
            ("stack-nowhere", vec![(at(t2.addr.0, "stack"), le(8))]),
            ("mm-wraps", vec![(at(t2.addr.0, "mm"), le(u64::MAX - 15))]),
            (
                "parent-wraps",
                vec![(at(t2.addr.0, "real_parent"), le(u64::MAX - 1))],
            ),
            (
                "thread-group-loop",
                vec![(at(t2.addr.0, "thread_group"), le(t1.addr.0 + link))],
            ),
        ];
        for (case, patches) in cases {
            let case = format!("{set}: {case}");
            let s = serve_damaged(i, &case, patches, |_| {});
            let n = s.tasks().len();
            // a list linked into another yields that list's elements once
            // more (as bogus tasks), never an endless walk
            assert!(n <= 2 * n_intact + 2, "{case}: {n} tasks from {n_intact}");
            let order = &s.threads().order;
            let mut tids: Vec<usize> = order.iter().map(|(t, _)| *t).collect();
            tids.sort_unstable();
            tids.dedup();
            assert_eq!(tids.len(), order.len(), "{case}: a thread id listed twice");
        }
        // CPU notes: every register all ones, PIDs that name other tasks
        let s = serve_damaged(i, &format!("{set}: notes"), Vec::new(), |n| {
            for (j, c) in n.cpus.iter_mut().enumerate() {
                c.regs.iter_mut().for_each(|r| *r = u64::MAX);
                c.pid = [1, u32::MAX, 0][j % 3];
            }
        });
        assert_eq!(s.kernel.cpus.len(), k.cpus.len());
    }
}

/// printk ring damage on both ELF fixtures: the ring pointer, descriptor
/// counts, the text buffer pointer, descriptor positions and text lengths.
/// `monitor log` answers with records or an error naming an address.
#[test]
fn damaged_printk_ring() {
    let _g = serial();
    let test = "damaged_printk_ring";
    for (i, (set, file)) in real::FIXTURES.iter().enumerate() {
        if common::fixture(set, file, test).is_none()
            || common::fixture(set, "vmlinux", test).is_none()
        {
            return;
        }
        let intact = real::intact_session(i as u8).expect("intact session");
        let k = &intact.kernel;
        let prb_sym = k.symbol("prb").expect("6.1 has prb").0;
        let prb = k.read_u64(&k.kernel_space(), VirtAddr(prb_sym)).unwrap();
        let off = |name: &str| k.member_offset(name).unwrap();
        let ring = off("printk_ringbuffer.desc_ring");
        let text = off("printk_ringbuffer.text_data_ring");
        let descs_ptr = prb + ring + off("prb_desc_ring.descs");
        let descs = k.read_u64(&k.kernel_space(), VirtAddr(descs_ptr)).unwrap();
        let infos_ptr = prb + ring + off("prb_desc_ring.infos");
        let infos = k.read_u64(&k.kernel_space(), VirtAddr(infos_ptr)).unwrap();
        let lpos = descs + off("prb_desc.text_blk_lpos");
        let text_len = infos + off("printk_info.text_len");
        let cases: Vec<(&str, u64, Vec<u8>)> = vec![
            ("prb-nowhere", prb_sym, le(0xdead_0000_0000_0000)),
            ("prb-wraps", prb_sym, le(u64::MAX - 8)),
            (
                "count-bits-63",
                prb + ring + off("prb_desc_ring.count_bits"),
                le(63),
            ),
            (
                "count-bits-0",
                prb + ring + off("prb_desc_ring.count_bits"),
                vec![0; 4],
            ),
            ("descs-wrap", descs_ptr, le(u64::MAX - 64)),
            ("infos-null", infos_ptr, le(0)),
            ("size-bits-31", prb + text, vec![31, 0, 0, 0]),
            ("data-nowhere", prb + text + 8, le(0xffff_0000_dead_0000)),
            ("lpos-backwards", lpos, [le(u64::MAX - 1), le(3)].concat()),
            ("lpos-huge", lpos, [le(0), le(1 << 40)].concat()),
            ("text-len-max", text_len, vec![0xff, 0xff]),
            (
                "head-id-max",
                prb + ring + off("prb_desc_ring.head_id"),
                le(u64::MAX),
            ),
            (
                "tail-id-max",
                prb + ring + off("prb_desc_ring.tail_id"),
                le(u64::MAX),
            ),
        ];
        for (case, va, bytes) in cases {
            let case = format!("{set}: {case}");
            let s = serve_damaged(i, &case, vec![(pa_of(k, va), bytes)], |_| {});
            let log = corestub::target::monitor::run(&s, "log");
            assert!(!log.is_empty(), "{case}");
        }
    }
}
