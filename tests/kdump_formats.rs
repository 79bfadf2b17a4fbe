//! kdump-compressed and flattened readers against the real fixtures: every
//! page they hold must equal the same boot's ELF vmcore, page for page.

use std::path::Path;
use std::time::Instant;

use corestub::addr::{Arch, PhysAddr};
use corestub::dump::{self, Dump, MemError};
use corestub::fixtures::fixture;

fn open_timed(p: &Path) -> Dump {
    let t = Instant::now();
    let d = dump::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    eprintln!(
        "opened {} in {:?}: {:?}",
        p.display(),
        t.elapsed(),
        d.format
    );
    d
}

/// Compares every page `kd` stores with `elf`; returns pages compared.
fn compare_pages(kd: &Dump, elf: &Dump) -> u64 {
    let bs = kd.format.block_size.unwrap();
    let mut a = vec![0u8; bs as usize];
    let mut b = vec![0u8; bs as usize];
    let (mut compared, mut excluded, mut elf_missing) = (0u64, 0u64, 0u64);
    for r in kd.memory.ranges() {
        let mut pa = r.start.0;
        while pa < r.end() {
            match kd.memory.read_phys(PhysAddr(pa), &mut a) {
                Ok(()) => match elf.memory.read_phys(PhysAddr(pa), &mut b) {
                    Ok(()) => {
                        assert!(
                            a == b,
                            "{}: page {pa:#x} differs from the ELF",
                            kd.path.display()
                        );
                        compared += 1;
                    }
                    Err(_) => elf_missing += 1,
                },
                Err(MemError::Excluded(_)) => excluded += 1,
                Err(e) => panic!("{}: {e}", kd.path.display()),
            }
            pa += bs;
        }
    }
    eprintln!(
        "{}: {compared} pages equal to the ELF, {excluded} excluded, {elf_missing} not in the ELF",
        kd.path.display()
    );
    assert_eq!(Some(excluded), kd.format.excluded_pages);
    compared
}

fn check_notes(d: &Dump, osrelease: &str) {
    assert_eq!(d.notes.cpus.len(), 4, "{}", d.path.display());
    let vi = d.notes.vmcoreinfo.as_deref().expect("VMCOREINFO");
    assert!(vi.contains(&format!("OSRELEASE={osrelease}")), "{vi}");
}

fn user_pas(set: &str) -> Vec<u64> {
    let Some(p) = fixture(set, "truth.json", "user_pas") else {
        return vec![];
    };
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    v["boots"]["kdump"]["processes"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["user_pa"].as_str())
                .map(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap())
                .collect()
        })
        .unwrap_or_default()
}

fn check_set(set: &str, files: &[&str], arch: Arch, osrelease: &str, test: &str) {
    let Some(elf_path) = fixture(set, "elf-d31.vmcore", test) else {
        return;
    };
    let elf = open_timed(&elf_path);
    let user = user_pas(set);
    for name in files {
        let Some(p) = fixture(set, name, test) else {
            continue;
        };
        let kd = open_timed(&p);
        assert_eq!(kd.arch, arch);
        assert!(kd.format.incomplete.is_none(), "{:?}", kd.format.incomplete);
        check_notes(&kd, osrelease);
        let n = compare_pages(&kd, &elf);
        assert!(n > 10_000, "{name}: only {n} pages compared");
        for &pa in &user {
            let mut buf = [0u8; 64];
            assert_eq!(
                kd.memory.read_phys(PhysAddr(pa), &mut buf),
                Err(MemError::Excluded(PhysAddr(pa))),
                "{name}: user page {pa:#x}"
            );
            // …while the ELF has it, with the fixture's marker
            elf.memory.read_phys(PhysAddr(pa), &mut buf).unwrap();
            assert!(
                buf.starts_with(b"FIXTURE-USER-PAGE"),
                "{:?}",
                String::from_utf8_lossy(&buf)
            );
        }
    }
}

#[test]
fn x86_64_kdump_codecs_match_elf() {
    check_set(
        "x86_64-6.1",
        &[
            "kdump-zlib-d31.kdump",
            "kdump-lzo-d31.kdump",
            "kdump-zstd-d31.kdump",
            "kdump-snappy-d31.kdump",
            "flat-zlib-d31.flat",
        ],
        Arch::X86_64,
        "6.1.0-56-cloud-amd64",
        "x86_64_kdump_codecs_match_elf",
    );
}

#[test]
fn arm64_kdump_zlib_matches_elf() {
    check_set(
        "arm64-6.1",
        &["kdump-zlib-d31.kdump"],
        Arch::Aarch64,
        "6.1.0-56-cloud-arm64",
        "arm64_kdump_zlib_matches_elf",
    );
}

/// `makedumpfile -F -E`: the ELF fixture written as a flattened stream (1 MiB
/// records, in reverse order as interleaved streams come out of order)
/// reads page for page as the ELF, with the same notes; `corestub info`
/// names the format and finds the panic.
#[test]
fn flattened_elf_matches_elf() {
    let test = "flattened_elf_matches_elf";
    let Some(elf_path) = fixture("x86_64-6.1", "elf-d31.vmcore", test) else {
        return;
    };
    let bytes = std::fs::read(&elf_path).unwrap();
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("elf-d31.flat");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&out).unwrap());
        let mut head = vec![0u8; 4096];
        head[..12].copy_from_slice(b"makedumpfile");
        head[16..24].copy_from_slice(&1i64.to_be_bytes());
        head[24..32].copy_from_slice(&1i64.to_be_bytes());
        f.write_all(&head).unwrap();
        let chunks: Vec<(usize, &[u8])> = bytes.chunks(1 << 20).enumerate().collect();
        for (i, c) in chunks.into_iter().rev() {
            f.write_all(&((i << 20) as i64).to_be_bytes()).unwrap();
            f.write_all(&(c.len() as i64).to_be_bytes()).unwrap();
            f.write_all(c).unwrap();
        }
        f.write_all(&(-1i64).to_be_bytes()).unwrap();
        f.write_all(&(-1i64).to_be_bytes()).unwrap();
    }
    drop(bytes);
    let elf = open_timed(&elf_path);
    let flat = open_timed(&out);
    assert_eq!(flat.format.name, "flattened ELF vmcore");
    assert_eq!(flat.notes.vmcoreinfo, elf.notes.vmcoreinfo);
    assert_eq!(flat.notes.cpus.len(), elf.notes.cpus.len());
    assert_eq!(flat.memory.ranges(), elf.memory.ranges());
    let mut compared = 0;
    let mut a = vec![0u8; 4096];
    let mut b = vec![0u8; 4096];
    for r in elf.memory.ranges() {
        let mut pa = r.start.0 & !0xfff;
        while pa < r.end() {
            let ea = elf.memory.read_phys(PhysAddr(pa), &mut a);
            let fa = flat.memory.read_phys(PhysAddr(pa), &mut b);
            assert_eq!(ea.is_ok(), fa.is_ok(), "page {pa:#x}");
            if ea.is_ok() {
                assert!(a == b, "page {pa:#x} differs");
                compared += 1;
            }
            pa += 4096;
        }
    }
    assert!(compared > 10_000, "{compared} pages compared");
    let info = std::process::Command::new(env!("CARGO_BIN_EXE_corestub"))
        .args(["info", "--json"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(info.status.success(), "{info:?}");
    let j: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(j["format"], "flattened ELF vmcore", "{j:#}");
    assert!(
        j["panic"].as_str().unwrap_or_default().contains("sysrq"),
        "{j:#}"
    );
    let _ = std::fs::remove_file(&out);
}
