//! Build-time facts the binary carries so that an installed copy
//! (`cargo install`) is complete without the source tree:
//! - `$OUT_DIR/gdb_scripts.rs`: every `gdb-scripts/*.py`, embedded with
//!   `include_bytes!`, and a hash of their names and contents (the cache
//!   directory they are written to is named after it: src/cli/scripts.rs);
//! - `CORESTUB_GDBSTUB_VERSION` / `CORESTUB_GDBSTUB_PATCHES`: the vendored
//!   gdbstub's version and how many patches vendor/gdbstub/PATCHES.md lists
//!   (for `corestub --version`);
//! - `CORESTUB_BUILD_PROFILE_DIR`: where cargo puts this build's binary, so
//!   a binary still running from there knows it is a development build and
//!   may read the scripts from the source tree.

use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env("OUT_DIR"));
    embed_scripts(&manifest.join("gdb-scripts"), &out.join("gdb_scripts.rs"));
    gdbstub_patch_level(&manifest.join("vendor/gdbstub"));
    // OUT_DIR is PROFILE/build/corestub-HASH/out; PROFILE holds the binary.
    let profile = out.ancestors().nth(3).filter(|_| {
        out.parent()
            .and_then(Path::parent)
            .and_then(Path::file_name)
            == Some("build".as_ref())
    });
    println!(
        "cargo:rustc-env=CORESTUB_BUILD_PROFILE_DIR={}",
        profile.map(|p| p.display().to_string()).unwrap_or_default()
    );
    println!("cargo:rerun-if-changed=build.rs");
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
}

/// Writes a `SCRIPTS` table (name, bytes) of every `.py` in `dir`, sorted
/// by name, and `SCRIPTS_HASH`. The hash only names the cache directory:
/// std's SipHash is enough (a build of the same version with other script
/// contents gets another name; the program also compares the cached files
/// byte for byte before using them).
fn embed_scripts(dir: &Path, dest: &Path) {
    // A directory: cargo reruns this script when any file in it changes.
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("gdb-scripts entry").file_name())
        .filter_map(|n| n.into_string().ok())
        .filter(|n| n.ends_with(".py"))
        .collect();
    names.sort();
    assert!(
        names.iter().any(|n| n == "corestub.py"),
        "{} has no corestub.py",
        dir.display()
    );
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut table = String::from("pub const SCRIPTS: &[(&str, &[u8])] = &[\n");
    for name in &names {
        let path = dir.join(name);
        let bytes =
            std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        (name, &bytes).hash(&mut hasher);
        writeln!(
            table,
            "    ({name:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .expect("write to a String");
    }
    table.push_str("];\n");
    writeln!(
        table,
        "pub const SCRIPTS_HASH: &str = \"{:016x}\";",
        hasher.finish()
    )
    .expect("write to a String");
    std::fs::write(dest, table).unwrap_or_else(|e| panic!("cannot write {}: {e}", dest.display()));
}

/// The vendored gdbstub's version (its Cargo.toml's `[package] version`)
/// and the number of patches PATCHES.md lists (top-level items `N. `,
/// which must run 1, 2, 3, ... so a mis-numbered list fails the build
/// instead of printing a wrong patch level).
fn gdbstub_patch_level(vendor: &Path) {
    let manifest = vendor.join("Cargo.toml");
    let patches = vendor.join("PATCHES.md");
    println!("cargo:rerun-if-changed={}", manifest.display());
    println!("cargo:rerun-if-changed={}", patches.display());
    let toml = std::fs::read_to_string(&manifest)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", manifest.display()));
    let version = package_version(&toml)
        .unwrap_or_else(|| panic!("no [package] version in {}", manifest.display()));
    let text = std::fs::read_to_string(&patches)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", patches.display()));
    let count = patch_count(&text).unwrap_or_else(|e| panic!("{}: {e}", patches.display()));
    println!("cargo:rustc-env=CORESTUB_GDBSTUB_VERSION={version}");
    println!("cargo:rustc-env=CORESTUB_GDBSTUB_PATCHES={count}");
}

/// `version = "X"` in the `[package]` table of a Cargo.toml.
fn package_version(toml: &str) -> Option<&str> {
    let mut in_package = false;
    for line in toml.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package {
            let value = line
                .strip_prefix("version")
                .and_then(|rest| rest.trim_start().strip_prefix('='));
            if let Some(v) = value {
                return v.trim().strip_prefix('"')?.strip_suffix('"');
            }
        }
    }
    None
}

/// Counts the top-level numbered items (`N. ` at the start of a line).
fn patch_count(text: &str) -> Result<u32, String> {
    let mut count = 0;
    for line in text.lines() {
        let digits = line.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || !line[digits..].starts_with(". ") {
            continue;
        }
        let n: u32 = line[..digits]
            .parse()
            .map_err(|e| format!("{line:?}: {e}"))?;
        if n != count + 1 {
            return Err(format!("patch {n} follows patch {count}: {line:?}"));
        }
        count = n;
    }
    if count == 0 {
        return Err("lists no numbered patches".into());
    }
    Ok(count)
}
