//! The repository's own small test data in `fixtures/` (the real dumps
//! live in the fixture cache, see README): each file is what the code named
//! in fixtures/README.md makes, byte for byte, so it can never go stale,
//! and each is described there. `CORESTUB_REGENERATE_FIXTURES=1 cargo test
//! --test fixtures_dir` rewrites them.

use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Every generated file: its name and how it is made.
fn generated() -> Vec<(&'static str, Vec<u8>)> {
    vec![(
        "synthetic-x86_64.vmcore",
        corestub::fuzz_harness::synthetic_elf(),
    )]
}

#[test]
fn fixtures_are_what_their_generators_make() {
    let regenerate = std::env::var("CORESTUB_REGENERATE_FIXTURES").is_ok_and(|v| v == "1");
    for (name, bytes) in generated() {
        let path = dir().join(name);
        if regenerate {
            std::fs::write(&path, &bytes).unwrap();
        }
        let on_disk = std::fs::read(&path).unwrap_or_else(|e| {
            panic!("{}: {e} (regenerate, see this file's doc)", path.display())
        });
        assert!(
            on_disk == bytes,
            "{} differs from what its generator makes: regenerate (see this file's doc)",
            path.display()
        );
    }
}

#[test]
fn every_fixture_is_described_in_the_readme() {
    let readme = std::fs::read_to_string(dir().join("README.md")).unwrap();
    for e in std::fs::read_dir(dir()).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name != "README.md" {
            assert!(
                readme.contains(&format!("`{name}`")),
                "fixtures/{name} is not in README.md"
            );
        }
    }
}

/// The committed dump opens and reads like the generated one: the kernel
/// text address maps to the bytes the generator put there.
#[test]
fn synthetic_vmcore_reads() {
    let path = dir().join("synthetic-x86_64.vmcore");
    let dump = corestub::dump::open(&path).unwrap();
    let k = corestub::kernel::Kernel::new(dump).unwrap();
    let mut b = [0u8; 8];
    k.read_virt(
        &k.kernel_space(),
        corestub::addr::VirtAddr(0xffff_ffff_8100_0000),
        &mut b,
    )
    .unwrap();
    assert_eq!(&b, b"corestub");
}
