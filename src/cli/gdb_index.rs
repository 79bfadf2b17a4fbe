//! The GDB index cache of `corestub gdb`: `$XDG_CACHE_HOME/corestub/
//! gdb-index/FORMAT/` (else `~/.cache/...`), which GDB is pointed at with
//! `set index-cache directory`. When the vmlinux has no index of its own,
//! corestub writes `BUILD-ID.gdb-index` there itself (built from the DWARF
//! on every core, kernel/gdb_index.rs) before GDB loads the vmlinux, so even
//! GDB's first start skips indexing the DWARF. GDB reads that file as its
//! own cache entry; should a GDB not accept it, it indexes the DWARF and
//! replaces the file with its own, as with any cache entry.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use corestub::kernel::gdb_index;
use corestub::kernel::symbols::Vmlinux;

use super::scripts;

/// Bumped whenever the written index's content changes, so that files
/// written by an older corestub are not reused.
const FORMAT: &str = "v1";

/// The directory GDB's index cache should use.
pub fn cache_dir() -> Option<PathBuf> {
    Some(scripts::cache_root()?.join("gdb-index").join(FORMAT))
}

/// GDB's cache file name for an objfile with this build-id.
fn file_name(build_id: &str) -> String {
    format!("{build_id}.gdb-index")
}

/// Does the vmlinux carry an index GDB reads instead of any cache?
fn has_own_index(v: &Vmlinux) -> bool {
    v.section(".gdb_index").is_some() || v.section(".debug_names").is_some()
}

/// Makes sure `dir` holds the index of `v` when GDB will want one from the
/// cache (no index in the file, a build-id to name it by). Failures are
/// logged: GDB then indexes the DWARF itself, only slower.
pub fn prepare(v: &Vmlinux, dir: &Path) {
    let Some(build_id) = v.build_id() else {
        return;
    };
    let path = dir.join(file_name(build_id));
    if has_own_index(v) || path.exists() {
        return;
    }
    let t = std::time::Instant::now();
    match write_index(v, dir, &path) {
        Ok(bytes) => log::info!(
            "GDB index of {} written to {} ({bytes} bytes) in {:?}",
            v.path().display(),
            path.display(),
            t.elapsed()
        ),
        Err(e) => log::warn!(
            "no GDB index written for {} ({e}): GDB will index its DWARF itself",
            v.path().display()
        ),
    }
}

/// Builds the index and puts it at `path` whole: written to a temporary
/// file in `dir`, then renamed (a concurrent corestub may do the same; GDB
/// never sees a partial file).
fn write_index(v: &Vmlinux, dir: &Path, path: &Path) -> Result<usize, String> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let di = v.debug_info().map_err(|e| e.to_string())?;
    let index = gdb_index::build(di, threads).map_err(|e| e.to_string())?;
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file_name_of(path),
        std::process::id()
    ));
    let written = fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(&index))
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(format!("{}: {e}", path.display()));
    }
    Ok(index.len())
}

fn file_name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
