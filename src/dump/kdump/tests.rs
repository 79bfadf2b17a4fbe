//! Synthetic kdump-compressed files built in memory by a tiny writer, read
//! back through [`open_source`], then damaged in every way we can think of:
//! the reader must answer with errors, never panic.

use std::io::Write;
use std::path::Path;

use super::*;

const BS: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Codec {
    Raw,
    Zlib,
    Lzo,
    Snappy,
    Zstd,
}

/// A page the writer stores: its pfn, codec and content.
struct Page {
    pfn: u64,
    codec: Codec,
    data: Vec<u8>,
}

/// What to write.
struct Spec {
    signature: &'static [u8; 8],
    version: i32,
    block_size: usize,
    machine: &'static str,
    max_mapnr: u64,
    /// RAM pfns that are not dumped (excluded).
    excluded: Vec<u64>,
    pages: Vec<Page>,
    prstatus_size: usize,
    cpus: usize,
    /// VMCOREINFO inside the note blob (else only the separate blob).
    vmcoreinfo_in_notes: bool,
    vmcoreinfo: String,
    phys_base: i64,
    /// `makedumpfile --split`: this part's pfn range (bitmaps stay global,
    /// descriptors and data cover only the range).
    split: Option<(u64, u64)>,
}

/// A recognisable page: `seed` in every 8th byte, position elsewhere.
fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            if i % 8 == 0 {
                seed
            } else {
                (i / 8) as u8 ^ seed
            }
        })
        .collect()
}

fn default_pages(bs: usize) -> Vec<Page> {
    let p = |pfn, codec, seed| Page {
        pfn,
        codec,
        data: pattern(seed, bs),
    };
    let mut pages = vec![
        p(0, Codec::Zlib, 1),
        p(1, Codec::Lzo, 2),
        p(2, Codec::Snappy, 3),
        p(3, Codec::Zstd, 4),
        p(4, Codec::Raw, 5),
        Page {
            pfn: 5,
            codec: Codec::Zlib,
            data: vec![0; bs],
        },
    ];
    // pfn 6 excluded, 7..16 a hole, 16..20 more pages, 20..24 excluded
    for pfn in 16..20 {
        pages.push(p(pfn, Codec::Zlib, pfn as u8));
    }
    pages
}

impl Spec {
    fn new() -> Spec {
        Spec {
            signature: SIGNATURE_KDUMP,
            version: 6,
            block_size: BS,
            machine: "x86_64",
            max_mapnr: 100,
            excluded: vec![6, 20, 21, 22, 23],
            pages: default_pages(BS),
            prstatus_size: 336,
            cpus: 2,
            vmcoreinfo_in_notes: false,
            vmcoreinfo: "OSRELEASE=6.1.0-test\nPAGESIZE=4096\nNUMBER(phys_base)=-278921216\n"
                .into(),
            phys_base: -0x10a00000,
            split: None,
        }
    }
}

fn note(name: &[u8], ntype: u32, desc: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    crate::dump::notes::encode_note(&mut v, name, ntype, desc);
    v
}

fn compress(codec: Codec, data: &[u8]) -> Vec<u8> {
    match codec {
        Codec::Raw => data.to_vec(),
        Codec::Zlib => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Codec::Lzo => lzokay_native::compress(data).unwrap(),
        Codec::Snappy => snap::raw::Encoder::new().compress_vec(data).unwrap(),
        Codec::Zstd => zstd::bulk::compress(data, 3).unwrap(),
    }
}

fn flag(codec: Codec) -> u32 {
    match codec {
        Codec::Raw => 0,
        Codec::Zlib => DUMP_DH_COMPRESSED_ZLIB,
        Codec::Lzo => DUMP_DH_COMPRESSED_LZO,
        Codec::Snappy => DUMP_DH_COMPRESSED_SNAPPY,
        Codec::Zstd => DUMP_DH_COMPRESSED_ZSTD,
    }
}

/// Where things landed in a built file.
struct Layout {
    desc_base: usize,
    /// (data offset, size) per page, in pfn order.
    data: Vec<(usize, usize)>,
    bitmap_off: usize,
    bitmap_half: usize,
}

fn put(v: &mut [u8], off: usize, b: &[u8]) {
    v[off..off + b.len()].copy_from_slice(b);
}

/// Writes `spec` the way makedumpfile lays a file out.
fn build(spec: &Spec) -> (Vec<u8>, Layout) {
    let bs = spec.block_size;
    let sub_hdr_size = 2usize;
    let half_blocks = (spec.max_mapnr as usize).div_ceil(8).div_ceil(bs);
    let bitmap_blocks = 2 * half_blocks;
    let bitmap_off = (1 + sub_hdr_size) * bs;
    let desc_base = bitmap_off + bitmap_blocks * bs;
    let mut all: Vec<&Page> = spec.pages.iter().collect();
    all.sort_by_key(|p| p.pfn);
    let (lo, hi) = spec.split.unwrap_or((0, u64::MAX));
    let pages: Vec<&Page> = all
        .iter()
        .copied()
        .filter(|p| (lo..hi).contains(&p.pfn))
        .collect();
    let data_start = desc_base + pages.len() * 24;
    let mut v = vec![0u8; data_start];

    // header
    put(&mut v, 0, spec.signature);
    put(&mut v, 8, &spec.version.to_le_bytes());
    let uts = [
        "Linux",
        "(none)",
        "6.1.0-test",
        "#1 SMP",
        spec.machine,
        "(none)",
    ];
    for (i, s) in uts.iter().enumerate() {
        if !spec.machine.is_empty() {
            put(&mut v, 12 + 65 * i, s.as_bytes());
        }
    }
    let status = pages.iter().fold(0, |a, p| a | flag(p.codec));
    put(&mut v, 424, &status.to_le_bytes());
    put(&mut v, 428, &(bs as u32).to_le_bytes());
    put(&mut v, 432, &(sub_hdr_size as u32).to_le_bytes());
    put(&mut v, 436, &(bitmap_blocks as u32).to_le_bytes());
    put(&mut v, 440, &(spec.max_mapnr as u32).to_le_bytes());
    put(&mut v, 460, &(spec.cpus as u32).to_le_bytes());

    // notes + vmcoreinfo inside the sub-header blocks
    let mut notes = Vec::new();
    for cpu in 0..spec.cpus {
        let mut d = vec![0u8; spec.prstatus_size];
        d[32..36].copy_from_slice(&(100 + cpu as u32).to_le_bytes());
        notes.extend(note(b"CORE", 1, &d));
    }
    if spec.vmcoreinfo_in_notes {
        notes.extend(note(b"VMCOREINFO", 0, spec.vmcoreinfo.as_bytes()));
    }
    let off_note = bs + 104;
    let off_vi = off_note + notes.len();
    assert!(off_vi + spec.vmcoreinfo.len() <= bitmap_off);
    put(&mut v, off_note, &notes);
    put(&mut v, off_vi, spec.vmcoreinfo.as_bytes());
    let sub: Vec<u64> = vec![
        spec.phys_base as u64,
        31 | (spec.split.is_some() as u64) << 32, // dump_level, split
        0,
        0,
        off_vi as u64,
        spec.vmcoreinfo.len() as u64,
        off_note as u64,
        notes.len() as u64,
        0,
        0,
        spec.split.map_or(0, |s| s.0),
        spec.split.map_or(spec.max_mapnr, |s| s.1),
        spec.max_mapnr,
    ];
    for (i, w) in sub.iter().enumerate() {
        put(&mut v, bs + 8 * i, &w.to_le_bytes());
    }

    // bitmaps
    let half = half_blocks * bs;
    let set = |v: &mut Vec<u8>, base: usize, pfn: u64| v[base + pfn as usize / 8] |= 1 << (pfn % 8);
    for p in &all {
        set(&mut v, bitmap_off, p.pfn);
        set(&mut v, bitmap_off + half, p.pfn);
    }
    for &pfn in &spec.excluded {
        set(&mut v, bitmap_off, pfn);
    }

    // descriptors + data; zero pages share one data block, as makedumpfile does
    let mut layout = Layout {
        desc_base,
        data: Vec::new(),
        bitmap_off,
        bitmap_half: half,
    };
    let mut zero_at: Option<(usize, usize, u32)> = None;
    for (i, p) in pages.iter().enumerate() {
        let is_zero = p.data.iter().all(|&b| b == 0);
        let (off, size, fl) = match zero_at {
            Some(z) if is_zero => z,
            _ => {
                let c = compress(p.codec, &p.data);
                let (c, fl) = if c.len() < bs || p.codec == Codec::Raw {
                    (c, flag(p.codec))
                } else {
                    (p.data.clone(), 0)
                };
                let off = v.len();
                v.extend_from_slice(&c);
                if is_zero {
                    zero_at = Some((off, c.len(), fl));
                }
                (off, c.len(), fl)
            }
        };
        let d = desc_base + 24 * i;
        put(&mut v, d, &(off as i64).to_le_bytes());
        put(&mut v, d + 8, &(size as u32).to_le_bytes());
        put(&mut v, d + 12, &fl.to_le_bytes());
        layout.data.push((off, size));
    }
    (v, layout)
}

fn anon(bytes: &[u8]) -> memmap2::Mmap {
    let mut m = memmap2::MmapMut::map_anon(bytes.len().max(1)).unwrap();
    m[..bytes.len()].copy_from_slice(bytes);
    m.make_read_only().unwrap()
}

fn open_bytes(bytes: &[u8]) -> Result<Dump, DumpError> {
    open_source(Path::new("synthetic.kdump"), Source::Mapped(anon(bytes)))
}

fn read(d: &Dump, pa: u64, len: usize) -> Result<Vec<u8>, MemError> {
    let mut b = vec![0u8; len];
    d.memory.read_phys(PhysAddr(pa), &mut b).map(|()| b)
}

/// Reads every block of `spec`'s pfn range, at least twice (cache hit).
fn check_contents(d: &Dump, spec: &Spec) {
    let bs = spec.block_size as u64;
    for _ in 0..2 {
        for p in &spec.pages {
            assert_eq!(
                read(d, p.pfn * bs, bs as usize).unwrap(),
                p.data,
                "pfn {}",
                p.pfn
            );
        }
    }
}

#[test]
fn reads_every_codec_and_reports_format() {
    let spec = Spec::new();
    let (bytes, _) = build(&spec);
    let d = open_bytes(&bytes).unwrap();
    assert_eq!(d.arch, Arch::X86_64);
    check_contents(&d, &spec);
    let f = &d.format;
    assert_eq!(f.name, "kdump-compressed v6");
    assert_eq!(f.codec.as_deref(), Some("zlib+lzo+snappy+zstd"));
    assert_eq!(f.stored_pages, Some(10));
    assert_eq!(f.excluded_pages, Some(5));
    assert_eq!(f.dump_level, Some(31));
    assert_eq!(f.block_size, Some(4096));
    assert_eq!(f.machine.as_deref(), Some("x86_64"));
    assert!(f.quirks.is_empty(), "{:?}", f.quirks);
    assert!(f.incomplete.is_none());
    assert_eq!(d.notes.cpus.len(), 2);
    assert_eq!(d.notes.cpus[1].pid, 101);
    // VMCOREINFO came from the separate blob
    assert!(
        d.notes
            .vmcoreinfo
            .as_deref()
            .unwrap()
            .contains("OSRELEASE=6.1.0-test")
    );
    let ranges: Vec<(u64, u64)> = d
        .memory
        .ranges()
        .iter()
        .map(|r| (r.start.0, r.len))
        .collect();
    assert_eq!(ranges, vec![(0, 7 * 4096), (16 * 4096, 8 * 4096)]);
}

#[test]
fn reads_span_pages_and_fail_at_the_first_missing_byte() {
    let spec = Spec::new();
    let d = open_bytes(&build(&spec).0).unwrap();
    // across pfn 3 (zstd) → 4 (raw)
    let got = read(&d, 4 * 4096 - 10, 20).unwrap();
    assert_eq!(&got[..10], &spec.pages[3].data[4086..]);
    assert_eq!(&got[10..], &spec.pages[4].data[..10]);
    // a whole run of pages in one read
    let all = read(&d, 0, 6 * 4096).unwrap();
    for p in &spec.pages[..6] {
        assert_eq!(&all[p.pfn as usize * 4096..][..4096], &p.data[..]);
    }
    // zero page
    assert_eq!(read(&d, 5 * 4096 + 100, 8).unwrap(), vec![0; 8]);
    // pfn 5 → 6 (excluded): the error names pfn 6's first byte
    assert_eq!(
        read(&d, 6 * 4096 - 4, 8),
        Err(MemError::Excluded(PhysAddr(6 * 4096)))
    );
    assert_eq!(
        read(&d, 21 * 4096 + 7, 1),
        Err(MemError::Excluded(PhysAddr(21 * 4096 + 7)))
    );
    // hole between RAM ranges, past the RAM, past max_mapnr, address wrap
    assert_eq!(
        read(&d, 8 * 4096, 1),
        Err(MemError::NotInDump(PhysAddr(8 * 4096)))
    );
    assert_eq!(
        read(&d, 50 * 4096, 1),
        Err(MemError::NotInDump(PhysAddr(50 * 4096)))
    );
    assert_eq!(
        read(&d, 1 << 40, 1),
        Err(MemError::NotInDump(PhysAddr(1 << 40)))
    );
    assert!(matches!(
        read(&d, u64::MAX - 1, 4),
        Err(MemError::NotInDump(_))
    ));
    // empty read
    assert_eq!(read(&d, 8 * 4096, 0), Ok(vec![]));
}

#[test]
fn reader_is_shared_between_threads() {
    let spec = Spec::new();
    let d = open_bytes(&build(&spec).0).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let (d, spec) = (&d, &spec);
            s.spawn(move || {
                for round in 0..50 {
                    let p = &spec.pages[(t + round) % spec.pages.len()];
                    assert_eq!(read(d, p.pfn * 4096, 4096).unwrap(), p.data);
                }
            });
        }
    });
}

#[test]
fn many_pages_exercise_rank_and_cache_eviction() {
    let mut spec = Spec::new();
    spec.max_mapnr = 5000;
    spec.excluded = (0..5000).filter(|p| p % 7 == 3).collect();
    spec.pages = (0..5000u64)
        .filter(|p| p % 7 != 3 && p % 5 != 0)
        .map(|pfn| Page {
            pfn,
            codec: [
                Codec::Zlib,
                Codec::Lzo,
                Codec::Snappy,
                Codec::Zstd,
                Codec::Raw,
            ][pfn as usize % 5],
            data: pattern(pfn as u8, BS),
        })
        .collect();
    let d = open_bytes(&build(&spec).0).unwrap();
    assert_eq!(d.format.stored_pages, Some(spec.pages.len() as u64));
    // backwards, so every shard slot is evicted many times
    for p in spec.pages.iter().rev() {
        assert_eq!(
            read(&d, p.pfn * 4096 + 8, 8).unwrap(),
            p.data[8..16],
            "pfn {}",
            p.pfn
        );
    }
    assert_eq!(
        read(&d, 3 * 4096, 1),
        Err(MemError::Excluded(PhysAddr(3 * 4096)))
    );
    assert_eq!(
        read(&d, 5 * 4096, 1),
        Err(MemError::NotInDump(PhysAddr(5 * 4096)))
    );
}

#[test]
fn truncated_files_give_errors_not_panics() {
    let spec = Spec::new();
    let (bytes, layout) = build(&spec);
    let cuts = [
        0,
        7,
        100,
        463,
        BS,
        BS + 50,
        layout.bitmap_off + 10,
        layout.desc_base,
        layout.desc_base + 30,
        layout.data[0].0,
        layout.data[2].0 + 5,
        layout.data[9].0 + 1,
        bytes.len() - 1,
    ];
    for cut in cuts {
        let Ok(d) = open_bytes(&bytes[..cut]) else {
            continue;
        };
        assert!(
            cut >= layout.desc_base,
            "cut {cut}: opened without its bitmaps"
        );
        assert!(
            d.format.incomplete.is_some() || cut >= layout.desc_base + 24 * 10,
            "cut {cut}"
        );
        for (i, p) in spec.pages.iter().enumerate() {
            match read(&d, p.pfn * 4096, 4096) {
                Ok(b) => assert_eq!(b, p.data),
                Err(MemError::Truncated { pa, offset }) => {
                    assert_eq!(pa, PhysAddr(p.pfn * 4096));
                    assert!(offset >= cut as u64, "cut {cut}: offset {offset:#x}");
                    assert!(
                        layout.data[i].0 + layout.data[i].1 > cut
                            || layout.desc_base + 24 * (i + 1) > cut
                    );
                }
                Err(e) => panic!("cut {cut}: pfn {}: {e}", p.pfn),
            }
        }
    }
    // the page whose data is cut reports the first missing file offset
    let cut = layout.data[2].0 + 5;
    let d = open_bytes(&bytes[..cut]).unwrap();
    assert_eq!(
        read(&d, 2 * 4096, 1),
        Err(MemError::Truncated {
            pa: PhysAddr(2 * 4096),
            offset: cut as u64
        })
    );
    assert_eq!(read(&d, 4096, 1).unwrap(), spec.pages[1].data[..1]);
}

/// What a (damaged) file gave: `None` if it did not open, else each
/// pfn's read of a block and 16 bytes more.
type Outcome = Option<Vec<Result<Vec<u8>, MemError>>>;

/// Opens `bytes` and reads pfns 0..40, checking what must hold whatever
/// the damage: an error names an address inside the read that failed;
/// reading again (from the cache this time) gives the same answer; the
/// memory ranges are ordered, disjoint and do not wrap.
fn exercise(bytes: &[u8]) -> Outcome {
    let d = open_bytes(bytes).ok()?;
    let bs = d.format.block_size.unwrap_or(4096);
    let len = bs as usize + 16;
    let mut reads = Vec::new();
    for pfn in 0..40u64 {
        let pa = pfn * bs;
        let first = read(&d, pa, len);
        if let Err(e) = &first {
            let at = e.addr().0;
            assert!(
                (pa..pa + len as u64).contains(&at),
                "read of {pa:#x}+{len}: error names {at:#x}: {e}"
            );
        }
        assert_eq!(read(&d, pa, len), first, "pfn {pfn}: a second read differs");
        reads.push(first);
    }
    let mut end = 0u64;
    for r in d.memory.ranges() {
        assert!(r.start.0 >= end, "ranges overlap or are unordered");
        end = r.start.0.checked_add(r.len).expect("range wraps");
    }
    Some(reads)
}

#[test]
fn every_damaged_header_byte_is_survived() {
    let (bytes, layout) = build(&Spec::new());
    let intact = exercise(&bytes).expect("the undamaged file opens");
    // utsname's sysname..version and the timestamp: read by nobody, so
    // damage there must change nothing at all.
    let ignored = 12..12 + 4 * 65;
    let ignored_too = 408..424;
    let mut offsets: Vec<usize> = (0..464).chain(BS..BS + 104).collect();
    offsets.extend((layout.bitmap_off..layout.desc_base).step_by(7).take(200));
    offsets.extend(layout.desc_base..layout.desc_base + 24 * 10);
    let mut opened = 0;
    for &o in &offsets {
        for v in [0x00u8, 0xff, 0x80, 0x01] {
            let mut b = bytes.clone();
            b[o] ^= v;
            if v == 0x00 {
                b[o] = 0;
            }
            let got = exercise(&b);
            if ignored.contains(&o) || ignored_too.contains(&o) {
                assert_eq!(got.as_ref(), Some(&intact), "byte {o:#x} ^ {v:#x}");
            }
            opened += usize::from(got.is_some());
        }
    }
    // Most single-byte damage leaves a readable file: a reader that gave
    // up on everything would pass the checks above without reading.
    assert!(
        opened * 2 > offsets.len() * 4,
        "{opened} of {} opened",
        offsets.len() * 4
    );
}

#[test]
fn random_damage_is_survived() {
    let (bytes, _) = build(&Spec::new());
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut opened, mut read_ok) = (0, 0);
    for _ in 0..300 {
        let mut b = bytes.clone();
        for _ in 0..1 + rnd() % 8 {
            let i = (rnd() % b.len() as u64) as usize;
            b[i] = rnd() as u8;
        }
        if let Some(reads) = exercise(&b) {
            opened += 1;
            read_ok += reads.iter().filter(|r| r.is_ok()).count();
        }
    }
    assert!(
        opened > 100 && read_ok > 1000,
        "{opened} opened, {read_ok} reads"
    );
    for n in [0usize, 1, 8, 464, 4096, 20000] {
        // noise has no signature; a signature and zeros has no block size
        assert!(exercise(&(0..n).map(|_| rnd() as u8).collect::<Vec<_>>()).is_none());
        let mut b = vec![0u8; n.max(8)];
        b[..8].copy_from_slice(SIGNATURE_KDUMP);
        assert!(exercise(&b).is_none(), "{n} bytes");
    }
}

#[test]
fn bad_header_fields_are_open_errors() {
    let (bytes, _) = build(&Spec::new());
    let set32 = |off: usize, val: u32| {
        let mut b = bytes.clone();
        b[off..off + 4].copy_from_slice(&val.to_le_bytes());
        b
    };
    for (what, b) in [
        ("version 0", set32(8, 0)),
        ("negative version", set32(8, u32::MAX)),
        ("block size 3000", set32(428, 3000)),
        ("block size 0", set32(428, 0)),
        ("block size 1<<30", set32(428, 1 << 30)),
        ("negative sub_hdr_size", set32(432, u32::MAX)),
        ("no bitmap", set32(436, 0)),
        ("huge bitmap", set32(436, u32::MAX)),
        ("unknown machine", {
            let mut b = bytes.clone();
            b[12 + 65 * 4..12 + 65 * 5].fill(0);
            b[12 + 65 * 4..12 + 65 * 4 + 5].copy_from_slice(b"s390x");
            b
        }),
    ] {
        assert!(open_bytes(&b).is_err(), "{what}");
    }
    // a huge max_mapnr_64 is clamped to what the bitmap can hold
    let mut b = bytes.clone();
    b[BS + 96..BS + 104].copy_from_slice(&u64::MAX.to_le_bytes());
    let d = open_bytes(&b).unwrap();
    assert!(d.format.quirks.iter().any(|q| q.contains("clamped")));
    // notes pointing past the end: a quirk, not an error
    let mut b = bytes.clone();
    b[BS + 48..BS + 56].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let d = open_bytes(&b).unwrap();
    assert!(d.notes.cpus.is_empty());
    assert!(
        d.format.quirks.iter().any(|q| q.contains("past the end")),
        "{:?}",
        d.format.quirks
    );
}

#[test]
fn zeroed_bitmaps() {
    let (bytes, layout) = build(&Spec::new());
    let mut b = bytes.clone();
    b[layout.bitmap_off + layout.bitmap_half..][..layout.bitmap_half].fill(0);
    let d = open_bytes(&b).unwrap();
    assert_eq!(d.format.stored_pages, Some(0));
    assert_eq!(read(&d, 0, 1), Err(MemError::Excluded(PhysAddr(0))));
    b[layout.bitmap_off..][..layout.bitmap_half].fill(0);
    let d = open_bytes(&b).unwrap();
    assert_eq!(read(&d, 0, 1), Err(MemError::NotInDump(PhysAddr(0))));
    assert!(d.memory.ranges().is_empty());
}

/// Rewrites descriptor `i` of a built file.
fn patch_desc(
    bytes: &[u8],
    layout: &Layout,
    i: usize,
    offset: i64,
    size: u32,
    flags: u32,
) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let d = layout.desc_base + 24 * i;
    b[d..d + 8].copy_from_slice(&offset.to_le_bytes());
    b[d + 8..d + 12].copy_from_slice(&size.to_le_bytes());
    b[d + 12..d + 16].copy_from_slice(&flags.to_le_bytes());
    b
}

fn corrupt_at(r: Result<Vec<u8>, MemError>) -> u64 {
    match r {
        Err(MemError::Corrupt { offset, .. }) => offset,
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn descriptor_lies_are_corrupt_or_truncated() {
    let (bytes, layout) = build(&Spec::new());
    let (off0, size0) = layout.data[0];
    let zlib = DUMP_DH_COMPRESSED_ZLIB;
    let desc0 = layout.desc_base as u64;
    // size larger than a block: rejected before reading anything
    let b = patch_desc(&bytes, &layout, 0, off0 as i64, 4097, zlib);
    assert_eq!(corrupt_at(read(&open_bytes(&b).unwrap(), 0, 1)), desc0);
    let b = patch_desc(&bytes, &layout, 0, off0 as i64, u32::MAX, zlib);
    assert_eq!(corrupt_at(read(&open_bytes(&b).unwrap(), 0, 1)), desc0);
    // size smaller than the compressed data
    let b = patch_desc(&bytes, &layout, 0, off0 as i64, size0 as u32 - 3, zlib);
    assert_eq!(
        corrupt_at(read(&open_bytes(&b).unwrap(), 0, 1)),
        off0 as u64
    );
    // negative offset, offset past the end
    let b = patch_desc(&bytes, &layout, 0, -5, 100, zlib);
    assert_eq!(corrupt_at(read(&open_bytes(&b).unwrap(), 0, 1)), desc0);
    let b = patch_desc(&bytes, &layout, 0, i64::MAX, 100, zlib);
    assert_eq!(
        read(&open_bytes(&b).unwrap(), 0, 1),
        Err(MemError::Truncated {
            pa: PhysAddr(0),
            offset: i64::MAX as u64
        })
    );
    // wrong codec for the data, two codecs, raw page of the wrong size
    for flags in [
        DUMP_DH_COMPRESSED_LZO,
        DUMP_DH_COMPRESSED_SNAPPY,
        DUMP_DH_COMPRESSED_ZSTD,
        0x3,
        0,
    ] {
        let b = patch_desc(&bytes, &layout, 0, off0 as i64, size0 as u32, flags);
        corrupt_at(read(&open_bytes(&b).unwrap(), 0, 1));
    }
    // an unwritten descriptor (incomplete dump)
    let b = patch_desc(&bytes, &layout, 0, 0, 0, 0);
    assert_eq!(
        read(&open_bytes(&b).unwrap(), 0, 1),
        Err(MemError::Truncated {
            pa: PhysAddr(0),
            offset: desc0
        })
    );
}

#[test]
fn decompression_bombs_and_short_pages_are_corrupt() {
    let (bytes, layout) = build(&Spec::new());
    let mut b = bytes;
    // pages that decompress to more, or less, than a block
    let big = vec![0x41u8; 1 << 20];
    let small = vec![0x41u8; 100];
    for codec in [Codec::Zlib, Codec::Lzo, Codec::Snappy, Codec::Zstd] {
        for data in [&big, &small] {
            let c = compress(codec, data);
            if c.len() > 4096 {
                continue; // a descriptor can't even say that size
            }
            let off = b.len();
            b.extend_from_slice(&c);
            let patched = patch_desc(&b, &layout, 0, off as i64, c.len() as u32, flag(codec));
            let r = read(&open_bytes(&patched).unwrap(), 0, 4096);
            assert_eq!(corrupt_at(r), off as u64, "{codec:?} {}", data.len());
        }
    }
    // garbage input to each codec
    for codec in [Codec::Zlib, Codec::Lzo, Codec::Snappy, Codec::Zstd] {
        let off = b.len();
        b.extend((0..600u32).map(|i| (i * 7919 % 251) as u8));
        let patched = patch_desc(&b, &layout, 0, off as i64, 600, flag(codec));
        corrupt_at(read(&open_bytes(&patched).unwrap(), 0, 4096));
    }
}

#[test]
fn qemu_style_file_64k_blocks_empty_utsname() {
    let mut spec = Spec::new();
    spec.block_size = 65536;
    spec.machine = "";
    spec.prstatus_size = 392;
    spec.cpus = 4;
    spec.max_mapnr = 40;
    spec.excluded = vec![];
    spec.pages = default_pages(65536);
    spec.vmcoreinfo_in_notes = true;
    spec.vmcoreinfo = "OSRELEASE=6.1.0-test\nPAGESIZE=4096\nNUMBER(phys_base)=-278921216\n".into();
    spec.phys_base = 0x1234; // QEMU 7.2 misparses the signed decimal
    let (bytes, _) = build(&spec);
    let d = open_bytes(&bytes).unwrap();
    assert_eq!(d.arch, Arch::Aarch64);
    assert_eq!(d.format.block_size, Some(65536));
    assert_eq!(d.format.machine, None);
    assert_eq!(d.notes.cpus.len(), 4);
    let q = d.format.quirks.join("\n");
    assert!(q.contains("NT_PRSTATUS size"), "{q}");
    assert!(q.contains("phys_base"), "{q}");
    assert!(q.contains("pa / 65536"), "{q}");
    check_contents(&d, &spec);
    // pa → block: a 4 KiB page inside the 64 KiB block of pfn 1
    let got = read(&d, 65536 + 3 * 4096, 4096).unwrap();
    assert_eq!(got, spec.pages[1].data[3 * 4096..4 * 4096]);

    // the same content, flattened the way QEMU/makedumpfile stream it:
    // header blocks first, then descriptors and data interleaved
    let flat = flatten_interleaved(&bytes, 65536 * 3 + 4096, 5000);
    let d = super::super::flat::open(Path::new("synthetic.flat"), anon(&flat)).unwrap();
    assert_eq!(d.format.name, "flattened kdump-compressed v6");
    check_contents(&d, &spec);
}

/// A flattened stream of `file`: `[0, split)` in 4 KiB records in order,
/// then the rest in `chunk`-sized records, odd ones first (out of order).
fn flatten_interleaved(file: &[u8], split: usize, chunk: usize) -> Vec<u8> {
    let mut v = vec![0u8; 4096];
    v[..12].copy_from_slice(b"makedumpfile");
    v[16..24].copy_from_slice(&1i64.to_be_bytes());
    v[24..32].copy_from_slice(&1i64.to_be_bytes());
    let rec = |v: &mut Vec<u8>, off: usize, d: &[u8]| {
        v.extend_from_slice(&(off as i64).to_be_bytes());
        v.extend_from_slice(&(d.len() as i64).to_be_bytes());
        v.extend_from_slice(d);
    };
    for off in (0..split).step_by(4096) {
        rec(&mut v, off, &file[off..(off + 4096).min(split)]);
    }
    let rest: Vec<usize> = (split..file.len()).step_by(chunk).collect();
    for parity in [1, 0] {
        for (i, &off) in rest.iter().enumerate() {
            if i % 2 == parity {
                rec(&mut v, off, &file[off..(off + chunk).min(file.len())]);
            }
        }
    }
    v.extend_from_slice(&(-1i64).to_be_bytes());
    v.extend_from_slice(&(-1i64).to_be_bytes());
    v
}

#[test]
fn flattened_kdump_reads_like_the_plain_file() {
    let spec = Spec::new();
    let (bytes, _) = build(&spec);
    // records of 1000 bytes: pages straddle records (assembled in scratch)
    let flat = flatten_interleaved(&bytes, 3 * 4096, 1000);
    let d = super::super::flat::open(Path::new("synthetic.flat"), anon(&flat)).unwrap();
    check_contents(&d, &spec);
    assert_eq!(d.format.codec.as_deref(), Some("zlib+lzo+snappy+zstd"));
    assert!(
        d.format
            .quirks
            .iter()
            .any(|q| q.contains("out of offset order"))
    );
    // a truncated stream still serves what it holds (or, cut before the
    // bitmaps were streamed, fails to open)
    let mut opened = 0;
    for frac in 1..8 {
        let cut = &flat[..flat.len() * frac / 8];
        let Ok(d) = super::super::flat::open(Path::new("synthetic.flat"), anon(cut)) else {
            continue;
        };
        opened += 1;
        assert!(d.format.incomplete.is_some());
        for p in &spec.pages {
            // errors are fine (bitmap bytes not streamed yet read as zeros:
            // "not dumped"); what is served must be right
            if let Ok(b) = read(&d, p.pfn * 4096, 4096) {
                assert!(b == p.data, "frac {frac}/8: pfn {}", p.pfn);
            }
        }
    }
    assert!(opened > 0);
}

#[test]
fn diskdump_signature_and_old_versions() {
    let mut spec = Spec::new();
    spec.signature = SIGNATURE_DISKDUMP;
    spec.version = 1;
    let (bytes, _) = build(&spec);
    let d = open_bytes(&bytes).unwrap();
    assert_eq!(d.format.name, "diskdump v1");
    check_contents(&d, &spec);
    // kdump v2: no notes fields, max_mapnr from the header
    let mut spec = Spec::new();
    spec.version = 2;
    let (bytes, _) = build(&spec);
    let d = open_bytes(&bytes).unwrap();
    assert!(d.notes.cpus.is_empty() && d.notes.vmcoreinfo.is_none());
    check_contents(&d, &spec);
}

#[test]
fn split_dump_serves_its_own_range() {
    let spec = Spec::new();
    let (mut bytes, layout) = build(&spec);
    // this part holds pfns 2..17: descriptors start at the first dumped pfn
    // ≥ 2, so drop the two before it
    bytes[BS + 12..BS + 16].copy_from_slice(&1u32.to_le_bytes());
    bytes[BS + 80..BS + 88].copy_from_slice(&2u64.to_le_bytes());
    bytes[BS + 88..BS + 96].copy_from_slice(&17u64.to_le_bytes());
    bytes.drain(layout.desc_base..layout.desc_base + 48);
    // data offsets moved by 48
    for i in 0..8 {
        let d = layout.desc_base + 24 * i;
        let off = i64::from_le_bytes(bytes[d..d + 8].try_into().unwrap()) - 48;
        bytes[d..d + 8].copy_from_slice(&off.to_le_bytes());
    }
    let d = open_bytes(&bytes).unwrap();
    assert_eq!(d.format.stored_pages, Some(5));
    assert!(d.format.quirks.iter().any(|q| q.contains("split dump")));
    for p in &spec.pages {
        let r = read(&d, p.pfn * 4096, 4096);
        if (2..17).contains(&p.pfn) {
            assert_eq!(r.unwrap(), p.data, "pfn {}", p.pfn);
        } else {
            assert_eq!(r, Err(MemError::NotInDump(PhysAddr(p.pfn * 4096))));
        }
    }
}

#[test]
fn lzo_decoder_round_trips_and_rejects_garbage() {
    let mut inputs: Vec<Vec<u8>> = vec![
        vec![7],
        b"abc".to_vec(),
        vec![0; 4096],
        pattern(9, 4096),
        (0..70000u64).map(|i| (i * i % 253) as u8).collect(),
        (0..5000u32)
            .map(|i| if i % 300 < 200 { 0 } else { i as u8 })
            .collect(),
    ];
    let mut x = 12345u32;
    inputs.push(
        (0..8192)
            .map(|_| {
                x = x.wrapping_mul(1103515245).wrapping_add(12345);
                (x >> 16) as u8 & 0x0f
            })
            .collect(),
    );
    for data in &inputs {
        let c = lzokay_native::compress(data).unwrap();
        let mut out = vec![0u8; data.len()];
        assert_eq!(
            lzo1x_decompress(&c, &mut out),
            Ok(data.len()),
            "{} bytes",
            data.len()
        );
        assert_eq!(&out, data);
        // too small an output buffer is an error, not a panic
        if !data.is_empty() {
            let mut short = vec![0u8; data.len() - 1];
            assert!(lzo1x_decompress(&c, &mut short).is_err());
        }
        // every truncation of the input is an error
        for cut in 0..c.len() {
            let mut o = vec![0u8; data.len()];
            assert!(lzo1x_decompress(&c[..cut], &mut o).is_err(), "cut {cut}");
        }
    }
    let mut out = vec![0u8; 4096];
    for seed in 0..2000u32 {
        let g: Vec<u8> = (0..64)
            .map(|i| (seed.wrapping_mul(2654435761).rotate_left(i) >> 3) as u8)
            .collect();
        // Whatever garbage decodes, decodes the same into a buffer of
        // exactly its size, and does not fit one byte less.
        if let Ok(n) = lzo1x_decompress(&g, &mut out) {
            let mut exact = vec![0u8; n];
            assert_eq!(lzo1x_decompress(&g, &mut exact), Ok(n), "seed {seed}");
            assert_eq!(exact, out[..n], "seed {seed}");
            if n > 0 {
                assert!(lzo1x_decompress(&g, &mut vec![0u8; n - 1]).is_err());
            }
        }
    }
}

/// `makedumpfile --split`: three parts of one dump, given out of order,
/// read as the whole; a read crossing from one part into the next; a
/// missing part is a reported gap, a repeated or foreign file an error.
#[test]
fn split_parts_join_into_one_dump() {
    let whole = Spec::new();
    let cuts = [(0, 5), (5, 18), (18, whole.max_mapnr)];
    let part = |(lo, hi): (u64, u64)| {
        let spec = Spec {
            split: Some((lo, hi)),
            ..Spec::new()
        };
        open_bytes(&build(&spec).0).unwrap()
    };
    let one = part(cuts[1]);
    assert_eq!(one.format.split_pfns, Some(cuts[1]));
    assert!(read(&one, 0, 8).is_err(), "pfn 0 is another part's");

    let d = super::super::split::join(vec![part(cuts[2]), part(cuts[0]), part(cuts[1])]).unwrap();
    check_contents(&d, &whole);
    assert!(
        d.format.name.ends_with("split in 3 files"),
        "{}",
        d.format.name
    );
    assert!(d.format.quirks.is_empty(), "{:?}", d.format.quirks);
    assert_eq!(d.format.stored_pages, Some(whole.pages.len() as u64));
    // pfn 4 (part 0) → 5 (part 1) in one read
    let span = read(&d, 4 * 4096 + 4000, 200).unwrap();
    let p = |pfn| &whole.pages.iter().find(|p| p.pfn == pfn).unwrap().data;
    assert_eq!(&span[..96], &p(4)[4000..]);
    assert_eq!(&span[96..], &p(5)[..104]);
    assert!(matches!(read(&d, 6 * 4096, 8), Err(MemError::Excluded(_))));

    // a part missing: its pages are not in the dump, and info says which
    let d = super::super::split::join(vec![part(cuts[0]), part(cuts[2])]).unwrap();
    assert!(
        d.format
            .quirks
            .iter()
            .any(|q| q.contains("0x5..0x12 are in no part")),
        "{:?}",
        d.format.quirks
    );
    assert!(read(&d, 5 * 4096, 8).is_err());
    assert_eq!(read(&d, 19 * 4096, 4096).unwrap(), *p(19));

    let e = super::super::split::join(vec![part(cuts[0]), part(cuts[0])]).unwrap_err();
    assert!(e.to_string().contains("overlap"), "{e}");
    let e = super::super::split::join(vec![part(cuts[0]), open_bytes(&build(&whole).0).unwrap()])
        .unwrap_err();
    assert!(e.to_string().contains("not a part"), "{e}");
}

/// A file [`build`] wrote, rewritten as a 32-bit kernel's: `disk_dump_header`
/// with an 8-byte `struct timeval` (its int fields 12 bytes earlier), and
/// `kdump_sub_header` with 32-bit longs: packed (QEMU, i386 makedumpfile)
/// or with ARM's 8-byte aligned `off_t`/`u64` members (`arm_aligned`).
fn as_32_bit(mut v: Vec<u8>, arm_aligned: bool) -> Vec<u8> {
    // header: status..nr_cpus from 424 to 412
    let ints = v[424..464].to_vec();
    v[404..464].fill(0);
    put(&mut v, 412, &ints);
    // sub-header: the LP64 words rewritten with 32-bit longs
    let w: Vec<u64> = (0..13)
        .map(|i| u64::from_le_bytes(v[BS + 8 * i..BS + 8 * i + 8].try_into().unwrap()))
        .collect();
    v[BS..BS + 104].fill(0);
    put(&mut v, BS, &(w[0] as u32).to_le_bytes());
    put(&mut v, BS + 4, &(w[1] as u32).to_le_bytes()); // dump_level
    put(&mut v, BS + 8, &((w[1] >> 32) as u32).to_le_bytes()); // split
    let (vi, note, pfn64) = if arm_aligned {
        (24, 40, 72)
    } else {
        (20, 32, 56)
    };
    put(&mut v, BS + vi, &w[4].to_le_bytes());
    put(&mut v, BS + vi + 8, &(w[5] as u32).to_le_bytes());
    put(&mut v, BS + note, &w[6].to_le_bytes());
    put(&mut v, BS + note + 8, &(w[7] as u32).to_le_bytes());
    for (i, x) in w[10..13].iter().enumerate() {
        put(&mut v, BS + pfn64 + 8 * i, &x.to_le_bytes());
    }
    v
}

/// A kdump-compressed file written for a 32-bit kernel: `disk_dump_header`
/// with an 8-byte `struct timeval` (its int fields 12 bytes earlier), and
/// `kdump_sub_header` with 32-bit longs: packed (QEMU, i386 makedumpfile)
/// or with ARM's 8-byte aligned `off_t`/`u64` members.
#[test]
fn reads_32_bit_headers() {
    for (machine, prstatus, arch, arm_aligned) in [
        ("armv7l", 148, Arch::Arm, true),
        ("", 148, Arch::Arm, false),
        ("i686", 144, Arch::I386, false),
    ] {
        let spec = Spec {
            machine,
            prstatus_size: prstatus,
            phys_base: 0,
            vmcoreinfo: "OSRELEASE=6.1.0-test\nPAGESIZE=4096\n".into(),
            ..Spec::new()
        };
        let v = as_32_bit(build(&spec).0, arm_aligned);
        let d = open_bytes(&v).unwrap_or_else(|e| panic!("{machine:?}: {e}"));
        assert_eq!(d.arch, arch, "{machine:?}");
        assert_eq!(d.notes.cpus.len(), 2, "{machine:?}");
        assert!(
            d.notes
                .vmcoreinfo
                .as_deref()
                .is_some_and(|t| t.contains("OSRELEASE=6.1.0-test")),
            "{machine:?}: VMCOREINFO blob"
        );
        check_contents(&d, &spec);
    }
}

/// makedumpfile on arm numbers pages from PHYS_OFFSET (the sub-header's
/// phys_base): pfn 0 of the file is the first page of RAM, at
/// 0x40000000 on QEMU's virt board.
#[test]
fn arm_makedumpfile_pfns_count_from_phys_offset() {
    let phys_offset = 0x4000_0000u64;
    let spec = Spec {
        machine: "armv7l",
        prstatus_size: 148,
        phys_base: phys_offset as i64,
        vmcoreinfo: "OSRELEASE=6.1.0-test\nPAGESIZE=4096\n".into(),
        ..Spec::new()
    };
    let d = open_bytes(&as_32_bit(build(&spec).0, true)).unwrap();
    assert_eq!(d.arch, Arch::Arm);
    let bs = BS as u64;
    for p in &spec.pages {
        let pa = phys_offset + p.pfn * bs;
        assert_eq!(read(&d, pa, BS).unwrap(), p.data, "pfn {}", p.pfn);
    }
    // below PHYS_OFFSET there is nothing
    assert!(matches!(
        d.memory.read_phys(PhysAddr(0), &mut [0u8; 8]),
        Err(MemError::NotInDump(_))
    ));
    let first = d.memory.ranges().first().map(|r| r.start.0);
    assert_eq!(first, Some(phys_offset));
    assert!(
        d.format
            .quirks
            .iter()
            .any(|q| q.contains("PHYS_OFFSET 0x40000000")),
        "{:?}",
        d.format.quirks
    );
}
