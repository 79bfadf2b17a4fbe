//! Finding the debug vmlinux that matches a dump, by build-id.

use std::path::{Path, PathBuf};

use corestub::kernel::symbols::Vmlinux;
use corestub::kernel::vmcoreinfo::is_build_id;

/// Where distributions and users put vmlinux files.
fn candidates(dump: &Path, release: Option<&str>, build_id: Option<&str>) -> Vec<PathBuf> {
    let mut v = Vec::new();
    // The id comes from the dump: only a hex one names a file (`split_at`
    // on anything else could cut a character in two).
    if let Some((dir, file)) = build_id
        .filter(|id| id.len() > 2 && is_build_id(id))
        .map(|id| id.split_at(2))
    {
        v.push(PathBuf::from(format!(
            "/usr/lib/debug/.build-id/{dir}/{file}.debug"
        )));
        v.push(PathBuf::from(format!(
            "/usr/lib/debug/.build-id/{dir}/{file}"
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
    for c in candidates(dump, release, dump_build_id) {
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
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_id_paths_only_for_hex_ids() {
        let dump = Path::new("/nonexistent/vmcore");
        let c = candidates(dump, None, Some("3b0aff12"));
        assert_eq!(
            c[0],
            PathBuf::from("/usr/lib/debug/.build-id/3b/0aff12.debug")
        );
        // A non-ASCII or non-hex id (a damaged dump) names no build-id path
        // and does not panic.
        for bad in ["\u{e9}\u{e9}\u{e9}", "3\u{e9}0a", "zz00"] {
            let c = candidates(dump, None, Some(bad));
            assert!(
                c.iter().all(|p| !p.starts_with("/usr/lib/debug/.build-id")),
                "{bad:?}: {c:?}"
            );
        }
    }
}
