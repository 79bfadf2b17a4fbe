//! Helpers for tests that boot QEMU guests: a process guard that kills a
//! child and its descendants, a temporary directory, a busybox initramfs
//! writer and the SKIP rule for missing tools.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// True under `CORESTUB_REQUIRE_FIXTURES=1` (CI): nothing may be skipped.
pub fn required() -> bool {
    std::env::var("CORESTUB_REQUIRE_FIXTURES").is_ok_and(|v| v == "1")
}

/// Skips `test` loudly, or fails when fixtures are required.
pub fn skip(test: &str, why: &str) {
    assert!(!required(), "{test}: {why} and CORESTUB_REQUIRE_FIXTURES=1");
    eprintln!("SKIP {test}: {why}");
}

/// True if `cmd arg` runs and exits 0 (e.g. `have("gdb", "--version")`).
pub fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// PIDs of every descendant of `pid` (children first), from /proc.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of: Vec<(u32, u32)> = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rsplit(") ").next() else {
            continue;
        };
        if let Some(pp) = rest.split_whitespace().nth(1).and_then(|v| v.parse().ok()) {
            parent_of.push((p, pp));
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(q) = frontier.pop() {
        for &(c, pp) in &parent_of {
            if pp == q && !out.contains(&c) {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out
}

/// A process's command name from /proc (empty if gone).
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a PID this test started.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// A process this test started: on drop, it and all its descendants are
/// killed by PID and reaped.
pub struct Proc {
    pub child: Child,
    pub name: &'static str,
}

impl Proc {
    pub fn spawn(name: &'static str, cmd: &mut Command) -> Proc {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc { child, name }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `t` for exit; the exit status if it did.
    pub fn wait_timeout(&mut self, t: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + t;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.alive() {
            for d in descendants(self.pid()).into_iter().rev() {
                signal(d, libc::SIGKILL);
            }
            eprintln!("killing {} (pid {})", self.name, self.pid());
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The host's statically linked busybox (busybox-static), or None.
pub fn busybox() -> Option<Vec<u8>> {
    static_busybox(std::path::Path::new("/bin/busybox"))
}

/// The busybox at `path` if it is statically linked, else None.
pub fn static_busybox(path: &std::path::Path) -> Option<Vec<u8>> {
    let b = std::fs::read(path).ok()?;
    // dynamic executables name their loader (PT_INTERP) near the start
    let head = &b[..b.len().min(4096)];
    let dynamic = head
        .windows(8)
        .any(|w| w == b"/lib64/l" || w == b"/lib/ld-");
    (!dynamic).then_some(b)
}

/// cpio "newc" archive writer (what the kernel unpacks as initramfs).
struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        self.ino += 1;
        let hdr = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() + 1,
            0
        );
        self.out.extend_from_slice(hdr.as_bytes());
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
        self.out.extend_from_slice(data);
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }
}

/// A gzipped initramfs: /bin/busybox, /dev/console, empty /proc /sys /dev
/// /tmp, and `init` (a `#!/bin/busybox sh` script) as /init.
/// The start of every test guest's busybox /init: applets installed and
/// /proc, /sys, /dev mounted.
pub const INIT_PREAMBLE: &str = "#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
";

pub fn initramfs(busybox: &[u8], init: &str) -> Vec<u8> {
    initramfs_with(busybox, init, &[])
}

/// [`initramfs`] plus `files`, each (path without a leading /, contents),
/// mode 0644; directories above them are created (e.g. a module for /init
/// to insmod, or a program's shared libraries under lib/).
pub fn initramfs_with(busybox: &[u8], init: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut c = Cpio {
        out: Vec::new(),
        ino: 0,
    };
    let mut dirs: Vec<String> = [".", "bin", "proc", "sys", "dev", "tmp"]
        .map(String::from)
        .to_vec();
    for d in &dirs {
        c.entry(d, 0o040755, (0, 0), &[]);
    }
    c.entry("dev/console", 0o020600, (5, 1), &[]);
    c.entry("bin/busybox", 0o100755, (0, 0), busybox);
    c.entry("init", 0o100755, (0, 0), init.as_bytes());
    for (name, data) in files {
        let parts: Vec<&str> = name.split('/').collect();
        for i in 1..parts.len() {
            let d = parts[..i].join("/");
            if !dirs.contains(&d) {
                c.entry(&d, 0o040755, (0, 0), &[]);
                dirs.push(d);
            }
        }
        c.entry(name, 0o100644, (0, 0), data);
    }
    c.entry("TRAILER!!!", 0, (0, 0), &[]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&c.out).unwrap();
    gz.finish().unwrap()
}

/// A marker unique to this run, for the guest to log and the test to find.
pub fn marker(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos:08x}", std::process::id())
}

/// Polls `f` every 100 ms; panics after `timeout` (a hang guard).
pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `cmd`; Ok(its stderr) if it exits 0, else Err(status + stderr).
pub fn cmd_ok(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stderr).to_string())
    } else {
        Err(format!(
            "{what}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `dpkg-deb --fsys-tarfile DEB | tar -x -C DIR MEMBERS…`.
pub fn extract(deb: &Path, dir: &Path, members: &[String]) -> Result<(), String> {
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("dpkg-deb: {e}"))?;
    let tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dir)
        .args(members)
        .stdin(dpkg.stdout.take().unwrap())
        .status();
    let dpkg = dpkg.wait();
    match (dpkg, tar) {
        (Ok(d), Ok(t)) if d.success() && t.success() => Ok(()),
        (d, t) => Err(format!(
            "extracting {members:?} from {}: dpkg-deb {d:?}, tar {t:?}",
            deb.display()
        )),
    }
}

/// The `PKG_*.deb` that `apt-get download` left in `dir`.
pub fn downloaded(dir: &Path, pkg: &str) -> Result<PathBuf, String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let n = p.file_name().unwrap_or_default().to_string_lossy();
            n.starts_with(&format!("{pkg}_")) && n.ends_with(".deb")
        })
        .ok_or_else(|| format!("apt-get download left no {pkg}_*.deb"))
}

/// The URI of the machine's Debian archive (e.g. `http://MIRROR/debian`),
/// read from its apt source entries: deb822 `URIs:` fields in
/// /etc/apt/sources.list.d/*.sources and one-line `deb [opts] URI suite …`
/// entries in /etc/apt/sources.list{,.d/*.list}. The security archive and
/// entries corestub wrote (`corestub-*`) are skipped. Nothing in this
/// repository names a registry host: every suite a test fetches from is
/// reached through the mirror the machine already uses (the shell
/// equivalent is .ci/debian-archive-uri).
pub fn debian_archive_uri() -> Result<String, String> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    let mut parts: Vec<PathBuf> = std::fs::read_dir("/etc/apt/sources.list.d")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap_or_default().to_string_lossy();
            (n.ends_with(".sources") || n.ends_with(".list")) && !n.starts_with("corestub-")
        })
        .collect();
    parts.sort();
    files.extend(parts);
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|text| source_uris(&text))
        .map(|u| u.trim_end_matches('/').to_string())
        .find(|u| u.ends_with("/debian") && !u.contains("-security"))
        .ok_or_else(|| {
            "no Debian archive entry (…/debian) in /etc/apt/sources.list{,.d/*.list,.d/*.sources}"
                .to_string()
        })
}

/// Every archive URI in one apt source file, deb822 or one-line style.
pub fn source_uris(text: &str) -> Vec<String> {
    let is_uri = |w: &&str| w.contains("://");
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        if let Some(v) = line.strip_prefix("URIs:") {
            out.extend(v.split_whitespace().map(str::to_string));
        } else if let Some(rest) = line.strip_prefix("deb ") {
            // `[arch=… signed-by=…]` options may come before the URI
            out.extend(rest.split_whitespace().find(is_uri).map(str::to_string));
        }
    }
    out
}

/// The machine's own Debian suite (`VERSION_CODENAME` in /etc/os-release):
/// where the guests' user space (a static busybox) comes from, whatever
/// suite the guest's kernel is from, so every guest runs the same applets.
pub fn host_suite() -> Result<String, String> {
    let text =
        std::fs::read_to_string("/etc/os-release").map_err(|e| format!("/etc/os-release: {e}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| "/etc/os-release names no VERSION_CODENAME".into())
}

/// A one-line sources.list for a private apt configuration: `suite`'s
/// main component from the machine's Debian archive
/// ([`debian_archive_uri`]), signed by Debian's archive keyring when it is
/// installed where Debian puts it.
pub fn debian_sources_list(suite: &str) -> Result<String, String> {
    let uri = debian_archive_uri()?;
    let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
    let opts = if Path::new(keyring).is_file() {
        format!("[signed-by={keyring}] ")
    } else {
        String::new()
    };
    Ok(format!("deb {opts}{uri} {suite} main\n"))
}

/// `bin` and every shared library `ldd` says it loads, as initramfs files
/// (path without the leading /, contents) at their own paths, the dynamic
/// loader among them. Files are mode 0644 in the initramfs: the guest runs
/// them through the loader or chmods them.
pub fn with_libraries(bin: &Path) -> Result<Vec<(String, Vec<u8>)>, String> {
    let name = bin.display().to_string();
    let mut files = vec![(
        name.trim_start_matches('/').to_string(),
        std::fs::read(bin).map_err(|e| format!("{name}: {e}"))?,
    )];
    let ldd = Command::new("ldd")
        .arg(bin)
        .output()
        .map_err(|e| format!("ldd: {e}"))?;
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` or
        // `/lib64/ld-linux-x86-64.so.2 (0x…)`; the vDSO has no file
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        let Some(path) = path.filter(|p| p.starts_with('/')) else {
            continue;
        };
        let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
        files.push((path.trim_start_matches('/').to_string(), bytes));
    }
    if !files.iter().any(|(p, _)| p.contains("ld-linux")) {
        return Err(format!(
            "ldd named no dynamic loader for {name}:\n{}",
            String::from_utf8_lossy(&ldd.stdout)
        ));
    }
    Ok(files)
}

/// An ext4 image `img` of `size_mb` MiB holding the tree `src`
/// (`mke2fs -d`, no journal), written whole or not at all.
pub fn ext4_image(src: &Path, img: &Path, size_mb: u64) -> Result<(), String> {
    let tmp = img.with_extension(format!("tmp-{}", std::process::id()));
    cmd_ok(
        Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-O", "^has_journal", "-d"])
            .arg(src)
            .arg(&tmp)
            .arg(format!("{size_mb}M")),
        "mke2fs -d",
    )
    .inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    std::fs::rename(&tmp, img).map_err(|e| e.to_string())
}
