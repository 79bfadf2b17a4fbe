//! Locating the real-dump fixtures for tests (not used by the program).
//!
//! Tests on real dumps call [`fixture`]. Where the fixtures are missing the
//! test skips loudly (a line on stderr), unless `CORESTUB_REQUIRE_FIXTURES=1`
//! (set by `.ci/run`), in which case the test fails: CI never skips silently.

use std::path::PathBuf;

/// The fixture cache: `$CORESTUB_FIXTURES`, else `~/.cache/corestub-fixtures`.
pub fn root() -> PathBuf {
    if let Some(d) = std::env::var_os("CORESTUB_FIXTURES") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/corestub-fixtures")
}

/// `root()/set/name` if it exists. Otherwise: panics when fixtures are
/// required, else prints a SKIP line naming the test and returns `None`.
pub fn fixture(set: &str, name: &str, test: &str) -> Option<PathBuf> {
    let p = root().join(set).join(name);
    if p.exists() {
        return Some(p);
    }
    let required = std::env::var("CORESTUB_REQUIRE_FIXTURES").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{test}: fixture {} is missing and CORESTUB_REQUIRE_FIXTURES=1 (run ../shared/fixtures/unpack.sh)",
        p.display()
    );
    eprintln!(
        "SKIP {test}: fixture {} not found (run ../shared/fixtures/unpack.sh)",
        p.display()
    );
    None
}
