//! A dump whose VMCOREINFO is damaged must start with a warning, never a
//! panic: the real x86_64 ELF fixture, copied to a temp dir with its
//! `BUILD-ID=` value made non-ASCII (the two bytes of "é" over its second
//! and third hex digits, so every length stays the same and byte 2 falls
//! inside a character: `&id[..2]` panicked there), served to `corestub
//! info` and to `corestub gdb`. Cold and warm cost: one 100 MB copy, two
//! starts (~1 s).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{corestub_bin, fixture};

/// Copies `src` into a fresh temp dir (no vmlinux beside it) with every
/// `BUILD-ID=<hex>` turned into `BUILD-ID=<h>é<hex…>`; returns (dir, dump).
fn with_non_ascii_build_id(src: &Path, what: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("corestub-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut bytes = std::fs::read(src).unwrap();
    let key = b"BUILD-ID=";
    let mut patched = 0;
    let mut i = 0;
    while let Some(p) = memchr::memmem::find(&bytes[i..], key).map(|p| p + i) {
        let v = p + key.len();
        if bytes
            .get(v..v + 3)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
        {
            bytes[v + 1..v + 3].copy_from_slice("é".as_bytes());
            patched += 1;
        }
        i = v;
    }
    assert!(patched > 0, "{}: no BUILD-ID= to patch", src.display());
    let dump = dir.join("vmcore");
    std::fs::write(&dump, bytes).unwrap();
    (dir, dump)
}

fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn non_ascii_build_id_warns_and_starts() {
    let test = "non_ascii_build_id_warns_and_starts";
    let Some(src) = fixture("x86_64-6.1", "elf-d31.vmcore", test) else {
        return;
    };
    let (dir, dump) = with_non_ascii_build_id(&src, "bad-build-id");

    let out = Command::new(corestub_bin())
        .args(["info", "--json"])
        .arg(&dump)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "info failed:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("BUILD-ID") && stderr.contains("ignored"),
        "no warning about the build-id:\n{stderr}"
    );
    let info: serde_json::Value = serde_json::from_str(&stdout).expect("info --json parses");
    assert_eq!(info["release"], "6.1.0-56-cloud-amd64", "{info:#}");
    assert_eq!(info["cpus"], 4, "{info:#}");

    let out = Command::new(corestub_bin())
        .arg("gdb")
        .arg(&dump)
        .args(["--", "-nx", "-batch", "-ex", "info threads"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "gdb failed:\n{stdout}\n{stderr}");
    assert!(
        stderr.contains("BUILD-ID") && stderr.contains("ignored"),
        "no warning about the build-id:\n{stderr}"
    );
    // No symbols, but the server answered: one thread per CPU.
    assert!(
        stdout.contains("CPU 0") && stdout.contains("CPU 3"),
        "{stdout}\n{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
