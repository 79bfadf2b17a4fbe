//! Finding the debug vmlinux that matches a dump, by build-id.

use std::path::{Path, PathBuf};

use corestub::kernel::symbols::Vmlinux;

use super::debuginfod::{self, BuildId};

/// Where distributions and users put vmlinux files.
fn candidates(dump: &Path, release: Option<&str>, build_id: Option<&BuildId>) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(id) = build_id {
        let (dir, rest) = id.as_str().split_at(2);
        v.push(PathBuf::from(format!(
            "/usr/lib/debug/.build-id/{dir}/{rest}.debug"
        )));
        v.push(PathBuf::from(format!(
            "/usr/lib/debug/.build-id/{dir}/{rest}"
        )));
    }
    if let Some(r) = release {
        v.push(PathBuf::from(format!("/usr/lib/debug/boot/vmlinux-{r}")));
        v.push(PathBuf::from(format!(
            "/usr/lib/debug/lib/modules/{r}/vmlinux"
        )));
        v.push(PathBuf::from(format!("/lib/modules/{r}/build/vmlinux")));
        v.push(PathBuf::from(format!("/boot/vmlinux-{r}")));
    }
    if let Some(dir) = dump.parent() {
        v.push(dir.join("vmlinux"));
        if let Some(r) = release {
            v.push(dir.join(format!("vmlinux-{r}")));
        }
    }
    v
}

/// Returns the vmlinux to use: the given one (checked) or one found by
/// build-id/release. A mismatched build-id is refused: symbols from another
/// build would silently show wrong data.
pub fn resolve(
    given: Option<&Path>,
    dump: &Path,
    release: Option<&str>,
    dump_build_id: Option<&str>,
) -> Result<Option<(PathBuf, Vmlinux)>, String> {
    if let Some(p) = given {
        let v = Vmlinux::open(p).map_err(|e| e.to_string())?;
        if let (Some(want), Some(got)) = (dump_build_id, v.build_id())
            && !want.eq_ignore_ascii_case(got)
        {
            return Err(format!(
                "{} does not match the dump: its build-id is {got}, the dumped kernel's is {want} (VMCOREINFO BUILD-ID)",
                p.display()
            ));
        }
        return Ok(Some((p.to_path_buf(), v)));
    }
    let id = dump_build_id.and_then(|t| {
        let id = BuildId::parse(t);
        if id.is_none() {
            log::warn!("the dump's build-id {t:?} is not hex: ignored");
        }
        id
    });
    let dump_build_id = id.as_ref().map(BuildId::as_str);
    for c in candidates(dump, release, id.as_ref()) {
        if !c.is_file() {
            continue;
        }
        let Ok(v) = Vmlinux::open(&c) else {
            continue;
        };
        let matches = match (v.build_id(), dump_build_id) {
            (Some(got), Some(want)) => got.eq_ignore_ascii_case(want),
            (_, None) => true,
            (None, Some(_)) => false,
        };
        if matches {
            return Ok(Some((c, v)));
        }
        log::info!("{}: build-id does not match, skipped", c.display());
    }
    match id {
        Some(id) => from_debuginfod(&id),
        None => Ok(None),
    }
}

/// The debug file for `id` from the debuginfod cache, else fetched from
/// `$DEBUGINFOD_URLS`. No servers configured is not an error (the caller
/// explains a missing vmlinux); a server that was asked and failed is.
fn from_debuginfod(id: &BuildId) -> Result<Option<(PathBuf, Vmlinux)>, String> {
    let matching = |p: &Path| -> Result<Vmlinux, String> {
        let v = Vmlinux::open(p).map_err(|e| format!("{}: {e}", p.display()))?;
        match v.build_id() {
            Some(got) if got.eq_ignore_ascii_case(id.as_str()) => Ok(v),
            got => Err(format!(
                "{}: build-id {} is not the dump's {}",
                p.display(),
                got.unwrap_or("(none)"),
                id.as_str()
            )),
        }
    };
    if let Some(p) = debuginfod::cached(id) {
        match matching(&p) {
            Ok(v) => return Ok(Some((p, v))),
            Err(e) => log::warn!("debuginfod cache: {e}"),
        }
    }
    if debuginfod::server_urls().is_empty() {
        return Ok(None);
    }
    // a server that lacks the kernel is reported, not fatal: the session
    // still has CPU threads and memory without symbols
    match debuginfod::fetch(id, &|p| matching(p).map(|_| ())) {
        Ok(path) => {
            let v = matching(&path)?;
            log::info!("vmlinux from debuginfod: {}", path.display());
            Ok(Some((path, v)))
        }
        Err(e) => {
            log::warn!(
                "no debug vmlinux for build-id {} from debuginfod: {e}",
                id.as_str()
            );
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_id_paths_only_for_hex_ids() {
        let dump = Path::new("/nonexistent/vmcore");
        let id = BuildId::parse("3b0aff12");
        let c = candidates(dump, None, id.as_ref());
        assert_eq!(
            c[0],
            PathBuf::from("/usr/lib/debug/.build-id/3b/0aff12.debug")
        );
        // A non-ASCII or non-hex id (a damaged dump) is no build-id at all.
        for bad in ["\u{e9}\u{e9}\u{e9}", "3\u{e9}0a", "zz00"] {
            assert!(BuildId::parse(bad).is_none(), "{bad:?}");
        }
    }
}
