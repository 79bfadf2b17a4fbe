//! The GDB index cache of `corestub gdb`: `$XDG_CACHE_HOME/corestub/
//! gdb-index/FORMAT/` (else `~/.cache/...`), which GDB is pointed at with
//! `set index-cache directory`. When the vmlinux has no index of its own,
//! corestub writes `BUILD-ID.gdb-index` there itself (built from the DWARF
//! on every core, kernel/gdb_index.rs) before GDB loads the vmlinux, so even
//! GDB's first start skips indexing the DWARF. GDB reads that file as its
//! own cache entry; should a GDB not accept it, it indexes the DWARF and
//! replaces the file with its own, as with any cache entry.
//!
//! GDB starts while the index is built: its first command waits on a FIFO
//! (`shell : < FIFO`) that corestub opens and closes once the file is in
//! place, so GDB's own start-up (exec, Python) overlaps the build.

use std::ffi::CString;
use std::fs;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;

use corestub::kernel::gdb_index;
use corestub::kernel::symbols::Vmlinux;

use super::scripts;

/// Bumped whenever the written index's content changes, so that files
/// written by an older corestub are not reused.
const FORMAT: &str = "v2";

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

/// The index cache GDB is to use, and how it waits for the index.
pub struct Prepared {
    /// For `set index-cache directory`.
    pub dir: PathBuf,
    /// The FIFO GDB's `shell : < FIFO` waits on while corestub builds the
    /// index (removed by [`Prepared::finish`]).
    pub ready: Option<PathBuf>,
    /// Told when the index build has ended, for work that should not
    /// compete with it for CPUs ([`Prepared::take_built`]).
    built: Option<Receiver<()>>,
}

impl Prepared {
    /// The GDB command to run before loading the vmlinux, if any.
    pub fn wait_command(&self, quote: impl Fn(&str) -> String) -> Option<String> {
        let fifo = self.ready.as_ref()?;
        Some(format!("shell : < {}", quote(&fifo.to_string_lossy())))
    }

    /// If an index is being built: a receiver that hears (or sees hung
    /// up) when it is written or given up.
    pub fn take_built(&mut self) -> Option<Receiver<()>> {
        self.built.take()
    }

    /// After GDB has exited: the FIFO, if GDB never came to open it.
    pub fn finish(&self) {
        if let Some(fifo) = &self.ready {
            let _ = fs::remove_file(fifo);
        }
    }
}

/// Should GDB use an index cache for `v` at all? Not for a symbol file
/// corestub built from the dump (nodebug.rs): it carries the kernel's
/// build-id, so an index of it, cached under that build-id, would later be
/// taken for the debug vmlinux's (and it is indexed in no time).
pub fn wanted(v: Option<&Vmlinux>) -> bool {
    !v.is_some_and(|v| v.sizes_are_bounds())
}

/// Where GDB should find `v`'s index, starting its build on another thread
/// when the cache lacks it (`ready` then names the FIFO to wait on).
pub fn start(v: Option<&Vmlinux>) -> Option<Prepared> {
    if !wanted(v) {
        return None;
    }
    let dir = cache_dir()?;
    let mut prepared = Prepared {
        dir: dir.clone(),
        ready: None,
        built: None,
    };
    let Some(v) = v.filter(|v| needs_index(v, &dir)) else {
        return Some(prepared);
    };
    let fifo = dir.join(format!(".ready-{}", std::process::id()));
    if let Err(e) = fs::create_dir_all(&dir).and_then(|()| make_fifo(&fifo)) {
        log::debug!(
            "no FIFO at {} ({e}): the index is built first",
            fifo.display()
        );
        prepare(v, &dir);
        return Some(prepared);
    }
    let v = v.clone();
    let release = Release(fifo.clone());
    let (built, heard) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _release = release;
        prepare(&v, &dir);
        let _ = built.send(());
    });
    prepared.built = Some(heard);
    prepared.ready = Some(fifo);
    Some(prepared)
}

/// Opens and closes the FIFO when dropped (the index written, or its build
/// failed): GDB's `shell : < FIFO` then returns. Blocks until GDB opens it.
struct Release(PathBuf);

impl Drop for Release {
    fn drop(&mut self) {
        match fs::OpenOptions::new().write(true).open(&self.0) {
            Ok(f) => drop(f),
            Err(e) => log::warn!("cannot open {}: {e}", self.0.display()),
        }
        let _ = fs::remove_file(&self.0);
    }
}

fn make_fifo(path: &Path) -> std::io::Result<()> {
    let _ = fs::remove_file(path);
    let c = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: `c` is a NUL-terminated path that outlives the call.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Does GDB want `v`'s index from a cache that lacks it (no index in the
/// file, a build-id to name it by)?
fn needs_index(v: &Vmlinux, dir: &Path) -> bool {
    match v.build_id() {
        Some(id) => !has_own_index(v) && !dir.join(file_name(id)).exists(),
        None => false,
    }
}

/// Writes the index of `v` into `dir` unless it is there. Failures are
/// logged: GDB then indexes the DWARF itself, only slower.
fn prepare(v: &Vmlinux, dir: &Path) {
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
