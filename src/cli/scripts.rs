//! Where `corestub gdb` (and `serve`'s hints) find corestub's GDB scripts.
//!
//! The scripts are compiled into the binary (build.rs embeds every
//! `gdb-scripts/*.py`), so an installed copy is complete. GDB needs files,
//! so the embedded copy is written once per version and contents to
//! `$XDG_CACHE_HOME/corestub/scripts-VERSION-HASH/` (or `~/.cache/...`).
//! Precedence, first match wins:
//! 1. `$CORESTUB_SCRIPTS`: a directory holding corestub.py (explicit choice;
//!    an error if it has none, never a silent fallback);
//! 2. the source tree's `gdb-scripts/`, when the binary runs from the cargo
//!    target directory it was built in (a development build: edits to the
//!    scripts apply without rebuilding);
//! 3. `../share/corestub/gdb-scripts` beside the binary (a distribution's
//!    package layout);
//! 4. the embedded copy, written to the cache directory.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/gdb_scripts.rs"));
}

/// The file `corestub gdb` sources; it loads the others from its directory.
pub const MAIN: &str = "corestub.py";

/// The lookup order, for `corestub gdb --help` and its man page.
pub const LOOKUP_HELP: &str = "GDB scripts (dmesg, ps, sys, lsmod, modsyms, trapinfo, task) are \
sourced from the first of: $CORESTUB_SCRIPTS (a directory holding corestub.py); \
the source tree's gdb-scripts/ when this binary runs from the cargo target directory \
it was built in; ../share/corestub/gdb-scripts beside the binary; else the copy built \
into the binary, written once per version to \
$XDG_CACHE_HOME/corestub/scripts-VERSION-HASH/ (default ~/.cache/corestub/...). \
`corestub serve` prints the `source` command for the same file.";

/// Where the scripts came from (for the log and error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Env,
    SourceTree,
    Share,
    Cache,
}

/// The directory holding corestub.py, chosen as the module doc describes.
pub fn dir() -> Result<(PathBuf, Origin), String> {
    if let Some(d) = std::env::var_os("CORESTUB_SCRIPTS") {
        let d = PathBuf::from(d);
        if !d.join(MAIN).is_file() {
            return Err(format!("CORESTUB_SCRIPTS={} has no {MAIN}", d.display()));
        }
        return Ok((d, Origin::Env));
    }
    let exe = std::env::current_exe().ok();
    if let Some(exe) = &exe {
        if running_from_build_dir(exe) {
            let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("gdb-scripts");
            if source.join(MAIN).is_file() {
                return Ok((source, Origin::SourceTree));
            }
        }
        if let Some(bin) = exe.parent() {
            let share = bin.join("../share/corestub/gdb-scripts");
            if share.join(MAIN).is_file() {
                return Ok((share, Origin::Share));
            }
        }
    }
    let root = cache_root().ok_or("neither XDG_CACHE_HOME nor HOME names a directory")?;
    let dir = root.join(format!(
        "scripts-{}-{}",
        env!("CARGO_PKG_VERSION"),
        embedded::SCRIPTS_HASH
    ));
    install(&dir, embedded::SCRIPTS)
        .map_err(|e| format!("cannot write the GDB scripts to {}: {e}", dir.display()))?;
    Ok((dir, Origin::Cache))
}

/// True when `exe` lies in the cargo profile directory this binary was
/// built in (target/debug, target/release, ...), i.e. it was not installed
/// or copied elsewhere.
fn running_from_build_dir(exe: &Path) -> bool {
    let profile = env!("CORESTUB_BUILD_PROFILE_DIR");
    if profile.is_empty() {
        return false;
    }
    match (fs::canonicalize(exe), fs::canonicalize(profile)) {
        (Ok(exe), Ok(profile)) => exe.starts_with(profile),
        _ => false,
    }
}

/// `$XDG_CACHE_HOME/corestub`, else `~/.cache/corestub` (a relative
/// XDG_CACHE_HOME is ignored, as the XDG spec asks).
pub(super) fn cache_root() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let base = xdg.or_else(|| {
        std::env::home_dir()
            .filter(|h| h.is_absolute())
            .map(|h| h.join(".cache"))
    })?;
    Some(base.join("corestub"))
}

/// Makes `dir` hold exactly `files`' contents (extra files are left
/// alone). A complete directory is used as it is; otherwise the files are
/// written to a fresh sibling directory which is then renamed to `dir`, so
/// a reader (another corestub starting at the same time) never sees a
/// half-written set.
fn install(dir: &Path, files: &[(&str, &[u8])]) -> io::Result<()> {
    if holds(dir, files) {
        return Ok(());
    }
    let parent = dir.parent().ok_or_else(|| io::Error::other("no parent"))?;
    fs::create_dir_all(parent)?;
    let tmp = fresh_dir(parent, ".scripts-tmp")?;
    let written = files
        .iter()
        .try_for_each(|(name, bytes)| fs::write(tmp.join(name), bytes))
        .and_then(|()| replace_dir(&tmp, dir, parent));
    if tmp.exists() {
        let _ = fs::remove_dir_all(&tmp);
    }
    match written {
        Ok(()) => Ok(()),
        // Another corestub may have put a complete copy there first.
        Err(_) if holds(dir, files) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Renames `tmp` to `dir`; an existing `dir` (stale or damaged: it failed
/// [`holds`]) is first moved aside and then removed.
fn replace_dir(tmp: &Path, dir: &Path, parent: &Path) -> io::Result<()> {
    if dir.exists() {
        let old = fresh_dir(parent, ".scripts-old")?;
        // rename onto an empty directory replaces it
        fs::rename(dir, &old)?;
        let _ = fs::remove_dir_all(&old);
    }
    fs::rename(tmp, dir)
}

/// Creates a new, empty directory `parent/PREFIX-PID-N`. `create_dir`
/// fails on an existing name, so concurrent callers never share one (no
/// random names needed inside the user's own cache directory).
fn fresh_dir(parent: &Path, prefix: &str) -> io::Result<PathBuf> {
    let pid = std::process::id();
    for n in 0..1000 {
        let p = parent.join(format!("{prefix}-{pid}-{n}"));
        match fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "no free {prefix}-{pid}-N name in {}",
        parent.display()
    )))
}

/// True when every file in `files` is in `dir` with exactly that content.
fn holds(dir: &Path, files: &[(&str, &[u8])]) -> bool {
    files
        .iter()
        .all(|(name, bytes)| fs::read(dir.join(name)).is_ok_and(|b| b == *bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "corestub-scripts-test-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    /// The embedded table is exactly the source tree's gdb-scripts/*.py,
    /// byte for byte (build.rs lists the directory; this catches a stale
    /// build or a filter that drops a file).
    #[test]
    fn embedded_scripts_match_the_source_tree() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("gdb-scripts");
        let on_disk: Vec<String> = names(&src)
            .into_iter()
            .filter(|n| n.ends_with(".py"))
            .collect();
        let embedded: Vec<String> = embedded::SCRIPTS
            .iter()
            .map(|(n, _)| n.to_string())
            .collect();
        assert_eq!(embedded, on_disk);
        assert!(holds(&src, embedded::SCRIPTS));
        assert!(on_disk.iter().any(|n| n == MAIN));
    }

    #[test]
    fn install_writes_once_and_repairs_damage() {
        let root = scratch("install");
        let dir = root.join("scripts-x");
        let files: &[(&str, &[u8])] = &[("a.py", b"print(1)\n"), ("b.py", b"")];
        install(&dir, files).unwrap();
        assert_eq!(names(&dir), ["a.py", "b.py"]);
        assert!(holds(&dir, files));
        // no temporary directory is left behind
        assert_eq!(names(&root), ["scripts-x"]);

        // a complete copy is reused as it is (an extra file survives)
        fs::write(dir.join("extra"), b"x").unwrap();
        install(&dir, files).unwrap();
        assert!(dir.join("extra").exists());

        // a damaged copy (edited, truncated) is replaced as a whole
        fs::write(dir.join("a.py"), b"print(2)\n").unwrap();
        assert!(!holds(&dir, files));
        install(&dir, files).unwrap();
        assert!(holds(&dir, files));
        assert!(!dir.join("extra").exists());
        assert_eq!(names(&root), ["scripts-x"]);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn install_reports_an_unwritable_cache() {
        let root = scratch("unwritable");
        // the cache's parent is a file: nothing can be created under it
        let blocker = root.join("file");
        fs::write(&blocker, b"").unwrap();
        assert!(install(&blocker.join("scripts-x"), &[("a.py", b"1")]).is_err());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_test_binary_counts_as_a_development_build() {
        // test binaries run from PROFILE/deps, inside the build's profile dir
        let exe = std::env::current_exe().unwrap();
        assert!(running_from_build_dir(&exe), "{}", exe.display());
        assert!(!running_from_build_dir(
            &std::env::temp_dir().join("corestub")
        ));
    }
}
