//! Checks shared by the tests that make QEMU `dump-guest-memory` files:
//! QEMU >= 8.2's `kdump-raw-*` formats (plain diskdump files) against a
//! dump of the same moment in another format.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use corestub::addr::PhysAddr;
use corestub::dump::Dump;
use serde_json::Value;

/// The codec a QEMU kdump format name carries ("kdump-raw-lzo" → "lzo",
/// "kdump-zlib" → "zlib").
pub fn codec(format: &str) -> &str {
    format
        .strip_prefix("kdump-raw-")
        .or_else(|| format.strip_prefix("kdump-"))
        .unwrap_or(format)
}

/// The `kdump-raw-*` formats in a `query-dump-guest-memory-capability`
/// reply (none before QEMU 8.2; Debian's QEMU 10 builds offer only zlib).
pub fn raw_formats(capability: &Value) -> Vec<String> {
    capability["formats"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|f| f.starts_with("kdump-raw-"))
        .map(str::to_string)
        .collect()
}

/// `corestub info --json` on a QEMU `kdump-raw-*` file: a plain
/// kdump-compressed file (not flattened) compressed with `format`'s codec.
/// Returns the JSON.
pub fn check_raw_info(dump: &Path, format: &str) -> Value {
    let out = Command::new(super::corestub_bin())
        .args(["info", "--json"])
        .arg(dump)
        .output()
        .expect("run corestub info");
    assert!(
        out.status.success(),
        "corestub info {}: {out:?}",
        dump.display()
    );
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    let name = info["format"].as_str().unwrap_or_default();
    assert!(
        name.starts_with("kdump-compressed") && !name.contains("flattened"),
        "{format}: QEMU writes a plain diskdump file: {info:#}"
    );
    assert_eq!(info["compression"], codec(format), "{format}: {info:#}");
    assert!(info["incomplete"].is_null(), "{format}: {info:#}");
    info
}

/// Compares every block `d` stores with `reference` (a dump of the same
/// moment: the ELF, or the flattened kdump): as much RAM, the same bytes.
/// Returns the number of blocks compared.
pub fn compare_pages(d: &Dump, reference: &Dump) -> u64 {
    let what = || format!("{} vs {}", d.path.display(), reference.path.display());
    // The same RAM, however each format splits it into ranges.
    let covered = |x: &Dump| -> u64 { x.memory.ranges().iter().map(|r| r.end() - r.start.0).sum() };
    assert_eq!(covered(d), covered(reference), "bytes of RAM: {}", what());
    let bs = d.format.block_size.unwrap_or(4096) as usize;
    let (mut a, mut b) = (vec![0u8; bs], vec![0u8; bs]);
    let mut compared = 0u64;
    for r in d.memory.ranges() {
        let mut pa = r.start.0;
        while pa < r.end() {
            let n = (r.end() - pa).min(bs as u64) as usize;
            d.memory
                .read_phys(PhysAddr(pa), &mut a[..n])
                .unwrap_or_else(|e| panic!("{}: {e}", what()));
            reference
                .memory
                .read_phys(PhysAddr(pa), &mut b[..n])
                .unwrap_or_else(|e| panic!("{}: {e}", what()));
            assert!(a[..n] == b[..n], "{}: block at {pa:#x} differs", what());
            compared += 1;
            pa += n as u64;
        }
    }
    eprintln!("{}: {compared} blocks equal", what());
    assert!(compared > 0, "{}: nothing compared", what());
    compared
}

/// The VMCOREINFO and the per-CPU notes' count agree between two dumps of
/// the same moment.
pub fn compare_notes(d: &Dump, reference: &Dump) {
    assert_eq!(
        d.notes.vmcoreinfo,
        reference.notes.vmcoreinfo,
        "{} vs {}",
        d.path.display(),
        reference.path.display()
    );
    assert_eq!(d.notes.cpus.len(), reference.notes.cpus.len());
}
