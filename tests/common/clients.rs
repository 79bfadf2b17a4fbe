//! The debuggers end-to-end tests run corestub with: the host's (Debian 12:
//! GDB 13, LLDB 14) and Debian 13's (GDB 16 and LLDB 19 from trixie, GDB 18
//! and LLDB 22 from trixie-backports), which tests/clients/trixie.sh
//! installs once into debootstrap roots cached beside the fixtures and
//! wraps so they run with the host's paths.
//!
//! Where the roots cannot be built (not root, no debootstrap, offline) the
//! newer clients are skipped loudly, unless `CORESTUB_REQUIRE_FIXTURES=1`:
//! then that is a failure, like a missing fixture.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::corestub_bin;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gdb,
    Lldb,
}

/// One debugger: `name` is the program and major version ("gdb-16"),
/// `version` the first line of its `--version`, `program` what to pass as
/// `corestub gdb --gdb` / `corestub lldb --lldb` (None: corestub's own
/// choice, the host's gdb or gdb-multiarch).
#[derive(Clone, Debug)]
pub struct Client {
    pub kind: Kind,
    pub name: String,
    pub version: String,
    pub program: Option<PathBuf>,
}

impl Client {
    /// (major, minor) of the version line's first `N.N`.
    pub fn version_number(&self) -> (u32, u32) {
        let words = self
            .version
            .split(|c: char| !(c.is_ascii_digit() || c == '.'));
        for w in words {
            let mut parts = w.split('.').filter(|p| !p.is_empty());
            if let (Some(a), Some(b)) = (parts.next(), parts.next())
                && let (Ok(a), Ok(b)) = (a.parse(), b.parse())
            {
                return (a, b);
            }
        }
        panic!("{}: no version number in {:?}", self.name, self.version)
    }

    /// `corestub gdb|lldb [--gdb|--lldb PROGRAM]`, with the directories a
    /// chroot client must see (CORESTUB_CLIENT_BINDS, see
    /// tests/clients/in-root.sh).
    pub fn corestub(&self) -> Command {
        let mut c = Command::new(corestub_bin());
        let (sub, flag) = match self.kind {
            Kind::Gdb => ("gdb", "--gdb"),
            Kind::Lldb => ("lldb", "--lldb"),
        };
        c.arg(sub);
        if let Some(p) = &self.program {
            c.arg(flag).arg(p);
        }
        c.env("CORESTUB_CLIENT_BINDS", binds());
        c
    }

    /// The `corestub gdb|lldb` arguments naming the debugger, for callers
    /// that build their own argument list (`gdb` / `--gdb PROGRAM`).
    pub fn select_args(&self) -> Vec<String> {
        let (sub, flag) = match self.kind {
            Kind::Gdb => ("gdb", "--gdb"),
            Kind::Lldb => ("lldb", "--lldb"),
        };
        let mut a = vec![sub.to_string()];
        if let Some(p) = &self.program {
            a.push(flag.into());
            a.push(p.display().to_string());
        }
        a
    }
}

/// What a chroot client must find at the host's paths besides $HOME, /tmp
/// and its working directory: the fixtures, the cargo target dir (the
/// corestub that GDB's `target remote |` starts) and the source tree
/// (gdb-scripts).
pub fn binds() -> String {
    let target = Path::new(corestub_bin())
        .ancestors()
        .nth(2)
        .expect("corestub is TARGET/PROFILE/corestub");
    [
        corestub::fixtures::root().as_path(),
        target,
        Path::new(env!("CARGO_MANIFEST_DIR")),
    ]
    .iter()
    .map(|p| p.display().to_string())
    .collect::<Vec<_>>()
    .join(":")
}

fn required() -> bool {
    std::env::var("CORESTUB_REQUIRE_FIXTURES").is_ok_and(|v| v == "1")
}

fn first_line(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok().filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|l| l.trim().to_string())
}

/// The host's GDB and LLDB (the defaults of `corestub gdb` / `lldb`).
fn host_clients() -> Vec<Client> {
    let mut v = Vec::new();
    if let Some(version) = first_line(Command::new("gdb").arg("--version")) {
        let mut c = Client {
            kind: Kind::Gdb,
            name: String::new(),
            version,
            program: None,
        };
        c.name = format!("gdb-{}", c.version_number().0);
        v.push(c);
    }
    if let Some(version) = first_line(Command::new("lldb").arg("--version")) {
        let mut c = Client {
            kind: Kind::Lldb,
            name: String::new(),
            version,
            program: Some("lldb".into()),
        };
        c.name = format!("lldb-{}", c.version_number().0);
        v.push(c);
    }
    v
}

/// Where the Debian 13 roots live: `$CORESTUB_CLIENTS`, else
/// `corestub-clients` beside the fixture cache.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CORESTUB_CLIENTS") {
        return PathBuf::from(d);
    }
    let fixtures = corestub::fixtures::root();
    fixtures
        .parent()
        .unwrap_or(Path::new("/"))
        .join("corestub-clients")
}

/// Builds the roots if needed (once per test process; trixie.sh's lock
/// serialises test processes) and lists their wrappers. Err: why not.
fn build_chroot_clients() -> Result<Vec<Client>, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("debootstrap, chroot and mount namespaces need root".into());
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/trixie.sh");
    let cache = cache_dir();
    let start = std::time::Instant::now();
    let out = Command::new("bash")
        .arg(&script)
        .arg(&cache)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("{} failed:\n{stderr}", script.display()));
    }
    if !stderr.is_empty() {
        eprintln!(
            "{stderr}(trixie.sh: {:.1} s)",
            start.elapsed().as_secs_f64()
        );
    }
    let bin = cache.join("bin");
    let versions = std::fs::read_to_string(cache.join("versions"))
        .map_err(|e| format!("{}/versions: {e}", cache.display()))?;
    let mut v = Vec::new();
    for line in versions.lines() {
        let Some((name, version)) = line.split_once(' ') else {
            continue;
        };
        let kind = if name.starts_with("gdb") {
            Kind::Gdb
        } else {
            Kind::Lldb
        };
        v.push(Client {
            kind,
            name: name.to_string(),
            version: version.to_string(),
            program: Some(bin.join(name)),
        });
    }
    Ok(v)
}

fn chroot_clients(test: &str) -> Vec<Client> {
    static BUILT: OnceLock<Result<Vec<Client>, String>> = OnceLock::new();
    match BUILT.get_or_init(build_chroot_clients) {
        Ok(v) => v.clone(),
        Err(e) => {
            assert!(
                !required(),
                "{test}: no Debian 13 debuggers and CORESTUB_REQUIRE_FIXTURES=1: {e}"
            );
            eprintln!("SKIP {test} (Debian 13 debuggers only): {e}");
            Vec::new()
        }
    }
}

/// Every client of `kind`, oldest first: the host's, then the chroot's.
pub fn clients(kind: Kind, test: &str) -> Vec<Client> {
    let mut v: Vec<Client> = host_clients()
        .into_iter()
        .chain(chroot_clients(test))
        .filter(|c| c.kind == kind)
        .collect();
    v.sort_by_key(|c| c.version_number());
    v.dedup_by_key(|c| c.name.clone());
    assert!(
        !(required() && v.len() < 2),
        "{test}: only {:?} and CORESTUB_REQUIRE_FIXTURES=1",
        v.iter().map(|c| &c.name).collect::<Vec<_>>()
    );
    v
}

/// Runs `f` for every client on its own thread and returns the results in
/// client order; a client's panic fails the test naming the client.
pub fn for_each<T: Send>(clients: &[Client], f: impl Fn(&Client) -> T + Sync) -> Vec<T> {
    std::thread::scope(|s| {
        let handles: Vec<_> = clients.iter().map(|c| (c, s.spawn(|| f(c)))).collect();
        let mut failed = Vec::new();
        let mut out = Vec::new();
        for (c, h) in handles {
            match h.join() {
                Ok(v) => out.push(v),
                Err(e) => {
                    let msg = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    failed.push(format!("{} ({}): {msg}", c.name, c.version));
                }
            }
        }
        assert!(
            failed.is_empty(),
            "failed with:\n{}",
            failed.join("\n---\n")
        );
        out
    })
}
