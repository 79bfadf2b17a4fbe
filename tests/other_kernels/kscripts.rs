//! The kernel's own GDB helpers (scripts/gdb: lx-dmesg, lx-ps, ...) of the
//! guest kernel's exact version, as a client: `scripts/gdb` from Debian's
//! `linux-source-X.Y` of the same package version as the kernel's headers,
//! and `constants.py` made as `make scripts_gdb` makes it (the C
//! preprocessor over `constants.py.in`), with the configured headers of
//! that kernel (`linux-headers-RELEASE` + its `-common`). Cached as
//! `RELEASE/kscripts/` beside the kernel; the source tarball is not kept.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::fetch::{Kernel, Series, Target, deb_files, member, private_apt, remove_stale};
use crate::common;
use common::guest::{TempDir, cmd_ok, downloaded, extract};

/// The scripts' directory in a kernel's cache.
const DIR: &str = "kscripts";

/// `DIR/vmlinux-gdb.py` (with `DIR/scripts/gdb/linux/`) for `k`, fetched and
/// made once.
pub fn kernel_scripts(k: &Kernel, series: &Series, t: &Target) -> Result<PathBuf, String> {
    let done = k.dir.join(DIR);
    if done.join("vmlinux-gdb.py").is_file() {
        return Ok(done);
    }
    remove_stale(&k.dir, "kscripts-work-");
    let work = k.dir.join(format!("kscripts-work-{}", std::process::id()));
    let _work = TempDir(work.clone());
    let opts = private_apt(&work, series.suite, t.deb)?;
    cmd_ok(
        Command::new("apt-get").args(&opts).args(["-q", "update"]),
        &format!("apt-get update ({})", series.suite),
    )?;
    let headers = format!("linux-headers-{}", k.release);
    let (version, common) = headers_version(&opts, &headers)?;
    let mm: String = version_prefix(&version)?;
    let source = format!("linux-source-{mm}");
    let debs = work.join("debs");
    std::fs::create_dir_all(&debs).map_err(|e| e.to_string())?;
    cmd_ok(
        Command::new("apt-get")
            .args(&opts)
            .args(["-q", "download"])
            .arg(format!("{headers}:{}={version}", t.deb))
            .arg(format!("{common}={version}"))
            .arg(format!("{source}={version}"))
            .current_dir(&debs),
        "apt-get download (kernel source and headers)",
    )?;
    let x = work.join("x");
    std::fs::create_dir_all(&x).map_err(|e| e.to_string())?;
    for pkg in [&headers, &common] {
        extract(&downloaded(&debs, pkg)?, &x, &[])?;
    }
    let tree = x.join("tree");
    source_gdb_scripts(&downloaded(&debs, &source)?, &mm, &x, &tree)?;
    let src = x.join("usr/src");
    let input = tree.join("scripts/gdb/linux/constants.py.in");
    stable_sb_fix(&input)?;
    let constants = preprocess_constants(&input, &src.join(&common), &src.join(&headers), t)?;
    std::fs::write(tree.join("scripts/gdb/linux/constants.py"), constants)
        .map_err(|e| e.to_string())?;
    // the kernel's build puts a copy of vmlinux-gdb.py at the tree's top;
    // it finds its package in scripts/gdb beside itself
    std::fs::copy(
        tree.join("scripts/gdb/vmlinux-gdb.py"),
        tree.join("vmlinux-gdb.py"),
    )
    .map_err(|e| e.to_string())?;
    match std::fs::rename(&tree, &done) {
        Err(e) if !done.join("vmlinux-gdb.py").is_file() => {
            Err(format!("{} → {}: {e}", tree.display(), done.display()))
        }
        _ => Ok(done),
    }
}

/// Upstream's "scripts/gdb: fix SB_* constants parsing": since fs.h
/// defines the SB_* flags with BIT(), `LX_VALUE(SB_RDONLY)` expands to C
/// (`((((1UL))) << (0))`) that is no Python, and vmlinux-gdb.py cannot
/// load at all. Stable kernels that took the fs.h change without the
/// scripts' fix (Debian's 5.10.223) need it; on the others this is a
/// no-op (they already say LX_GDBPARSED).
fn stable_sb_fix(input: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let fixed = text.replace("LX_VALUE(SB_", "LX_GDBPARSED(SB_");
    if fixed != text {
        eprintln!(
            "{}: applying upstream's SB_* parsing fix (the kernel's fs.h uses BIT())",
            input.display()
        );
        std::fs::write(input, fixed).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The Debian version of `headers` and the name of its `-common` package.
fn headers_version(opts: &[String], headers: &str) -> Result<(String, String), String> {
    let out = Command::new("apt-cache")
        .args(opts)
        .args(["show", headers])
        .output()
        .map_err(|e| format!("apt-cache: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    let version = field("Version:").ok_or_else(|| format!("apt-cache knows no {headers}"))?;
    let common = field("Depends:")
        .and_then(|d| {
            d.split(',')
                .map(|p| p.split_whitespace().next().unwrap_or_default().to_string())
                .find(|p| p.starts_with("linux-headers-") && p.ends_with("-common"))
        })
        .ok_or_else(|| format!("{headers} depends on no linux-headers-*-common"))?;
    Ok((version, common))
}

/// `7.3.4-1~bpo13+1` → `7.3`: the linux-source package's suffix.
fn version_prefix(version: &str) -> Result<String, String> {
    let mut parts = version.split(['.', '-']);
    match (parts.next(), parts.next()) {
        (Some(a), Some(b)) => Ok(format!("{a}.{b}")),
        _ => Err(format!("odd kernel package version {version}")),
    }
}

/// `scripts/gdb/` of the source tarball in `deb`, into `tree`.
fn source_gdb_scripts(deb: &Path, mm: &str, x: &Path, tree: &Path) -> Result<(), String> {
    let tarball = member(&deb_files(deb)?, &format!("linux-source-{mm}.tar.xz"))
        .ok_or_else(|| format!("no source tarball in {}", deb.display()))?;
    extract(deb, x, std::slice::from_ref(&tarball))?;
    let top = format!("linux-source-{mm}");
    cmd_ok(
        Command::new("tar")
            .arg("-xJf")
            .arg(x.join(&tarball))
            .arg("-C")
            .arg(x)
            .arg("--wildcards")
            .arg(format!("{top}/scripts/gdb/*")),
        "tar (scripts/gdb from the kernel source)",
    )?;
    let _ = std::fs::remove_file(x.join(&tarball));
    std::fs::create_dir_all(tree).map_err(|e| e.to_string())?;
    std::fs::rename(x.join(&top).join("scripts"), tree.join("scripts")).map_err(|e| e.to_string())
}

/// `constants.py`: `CPP -E -x c -P` over `constants.py.in` with the
/// configured kernel's include paths and forced includes (as Kbuild's
/// c_flags have them), for the guest's architecture, then everything up
/// to the `<!-- end-c-headers -->` line dropped, as the kernel's rule does.
fn preprocess_constants(
    input: &Path,
    common: &Path,
    flavour: &Path,
    t: &Target,
) -> Result<String, String> {
    let (cpp, arch, arch_flags) = arch_preprocessor(t.deb, flavour)?;
    let mut cmd = Command::new(cpp);
    cmd.args(["-x", "c", "-P", "-nostdinc", "-D__KERNEL__"]);
    cmd.args(&arch_flags);
    // Kbuild's `-isystem $(CC -print-file-name=include)`: kernels before
    // 5.15 take <stdarg.h> from the compiler. The cross cpp ships no
    // headers of its own; the host compiler's freestanding ones serve.
    let compiler_include = Command::new("cpp")
        .arg("-print-file-name=include")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|d| Path::new(d).is_dir());
    if let Some(dir) = compiler_include {
        cmd.arg("-isystem").arg(dir);
    }
    for (root, sub) in [
        (common, format!("arch/{arch}/include")),
        (flavour, format!("arch/{arch}/include/generated")),
        (common, "include".into()),
        (flavour, "include".into()),
        (common, format!("arch/{arch}/include/uapi")),
        (flavour, format!("arch/{arch}/include/generated/uapi")),
        (common, "include/uapi".into()),
        (flavour, "include/generated/uapi".into()),
    ] {
        cmd.arg("-I").arg(root.join(sub));
    }
    for forced in ["compiler-version.h", "kconfig.h", "compiler_types.h"] {
        let h = common.join("include/linux").join(forced);
        if h.is_file() {
            cmd.arg("-include").arg(h);
        }
    }
    let out = cmd.arg(input).output().map_err(|e| format!("{cpp}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cpp} over constants.py.in: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let body = text
        .split_once("<!-- end-c-headers -->")
        .map(|(_, rest)| rest.split_once('\n').map_or("", |(_, r)| r))
        .ok_or("constants.py.in had no end-c-headers line")?;
    Ok(body.to_string())
}

/// The preprocessor, the kernel's `arch/` directory and the flags of
/// arch/*/Makefile that change what the headers expand to, for a Debian
/// architecture: i386 is the host's cpp with Kbuild's `-m32` (so
/// `__i386__`, 4-byte longs); armhf is the cross cpp with arch/arm's
/// `-D__LINUX_ARM_ARCH__=N` (from the configured CPU_32vN) and
/// `-mlittle-endian`.
fn arch_preprocessor(
    deb: &str,
    flavour: &Path,
) -> Result<(&'static str, &'static str, Vec<String>), String> {
    Ok(match deb {
        "amd64" => ("cpp", "x86", vec![]),
        "i386" => ("cpp", "x86", vec!["-m32".into()]),
        "arm64" => ("aarch64-linux-gnu-cpp", "arm64", vec![]),
        "armhf" => {
            let config = flavour.join(".config");
            let text = std::fs::read_to_string(&config)
                .map_err(|e| format!("{}: {e}", config.display()))?;
            let level = arm_arch_level(&text)
                .ok_or_else(|| format!("{}: no CONFIG_CPU_32vN=y", config.display()))?;
            (
                "arm-linux-gnueabihf-cpp",
                "arm",
                vec![
                    format!("-D__LINUX_ARM_ARCH__={level}"),
                    "-mlittle-endian".into(),
                ],
            )
        }
        other => return Err(format!("no preprocessor known for {other}")),
    })
}

/// arch/arm/Makefile's `__LINUX_ARM_ARCH__`: its `arch-$(CONFIG_CPU_32vN)`
/// lines run from v7 down to v4, the last one set wins, so the lowest
/// `CONFIG_CPU_32vN=y` (v7M counts as 7; v6K only counts with v6, which
/// gives 6 anyway).
fn arm_arch_level(config: &str) -> Option<u32> {
    config
        .lines()
        .filter_map(|l| l.strip_prefix("CONFIG_CPU_32v")?.strip_suffix("=y"))
        .filter_map(|v| v.trim_end_matches('M').parse().ok())
        .min()
}

#[test]
fn arm_arch_level_from_the_config() {
    let v7 = "CONFIG_CPU_32v6K=y\nCONFIG_CPU_32v7=y\n# CONFIG_CPU_32v6 is not set\n";
    assert_eq!(arm_arch_level(v7), Some(7));
    assert_eq!(arm_arch_level("CONFIG_CPU_32v7=y\n"), Some(7));
    assert_eq!(
        arm_arch_level("CONFIG_CPU_32v6=y\nCONFIG_CPU_32v7=y\n"),
        Some(6)
    );
    assert_eq!(arm_arch_level("CONFIG_ARM=y\n"), None);
}

#[test]
fn version_prefix_is_major_minor() {
    assert_eq!(version_prefix("7.3.4-1~bpo13+1").unwrap(), "7.3");
    assert_eq!(version_prefix("5.10.223-1").unwrap(), "5.10");
    assert!(version_prefix("7").is_err());
}
