//! Debian kernels for the guests: found and fetched with apt-get through a
//! private apt configuration (own sources list, lists and cache under the
//! fixture cache; the machine's apt sources are never touched), and cached
//! as `fixtures::root()/ARCH-SERIES/RELEASE/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common;
use common::guest::{TempDir, cmd_ok, downloaded, extract, have, static_busybox};

/// The module every guest loads (`loop`: no dependencies), under
/// `lib/modules/RELEASE/` (`.ko`, `.ko.xz` or `.ko.zst`) in the image's or
/// modules' package and under `usr/lib/debug/lib/modules/RELEASE/` in -dbg.
pub const MODULE: &str = "kernel/drivers/block/loop.ko";

/// QEMU's fw_cfg driver, which registers VMCOREINFO with `-device
/// vmcoreinfo`: extracted when the image package has it (as a module).
pub const FW_CFG: &str = "kernel/drivers/firmware/qemu_fw_cfg.ko";

/// A kernel series: where Debian serves it and how its releases start.
pub struct Series {
    /// The cache's `ARCH-NAME/` and the test names: `6.12`, `5.10`, `7`.
    pub name: &'static str,
    /// The suite on the machine's Debian mirror.
    pub suite: &'static str,
    /// What its releases start with (`6.12.`, `5.10.0-`, `7.`).
    pub release_prefix: &'static str,
}

/// Debian 12's backported 6.12.
pub const S612: Series = Series {
    name: "6.12",
    suite: "bookworm-backports",
    release_prefix: "6.12.",
};

/// Debian 12's own 6.1: the newest series with i386 (686, 686-pae) and
/// armhf (armmp, armmp-lpae) kernels and their -dbg packages (trixie
/// dropped the i386 kernels; bookworm-backports carries no i386 -dbg).
pub const S61: Series = Series {
    name: "6.1",
    suite: "bookworm",
    release_prefix: "6.1.0-",
};

/// Debian 11's 5.10, the oldest kernel the archive serves.
pub const S510: Series = Series {
    name: "5.10",
    suite: "bullseye",
    release_prefix: "5.10.0-",
};

/// The newest: 7.x from trixie-backports (which carried a newer 7.x than
/// sid, with far smaller package lists, when this was written).
pub const S7: Series = Series {
    name: "7",
    suite: "trixie-backports",
    release_prefix: "7.",
};

/// A cached kernel: each file is put in place by a rename, so one that
/// exists is whole.
pub struct Kernel {
    pub release: String,
    pub dir: PathBuf,
    pub vmlinuz: PathBuf,
    pub vmlinux: PathBuf,
    /// The module as the guest loads it (uncompressed).
    pub loop_ko: PathBuf,
    /// `modsyms` directory: the debug loop.ko under it.
    pub modules: PathBuf,
    /// qemu_fw_cfg.ko (uncompressed), if the kernel has it as a module.
    pub fw_cfg_ko: PathBuf,
}

impl Kernel {
    /// The kernel in `dir` if every file is there.
    pub fn at(dir: PathBuf, series: &Series) -> Option<Kernel> {
        let release = dir.file_name()?.to_str()?.to_string();
        let k = Kernel {
            vmlinuz: dir.join("vmlinuz"),
            vmlinux: dir.join("vmlinux"),
            loop_ko: dir.join("loop.ko"),
            modules: dir.join("modules"),
            fw_cfg_ko: dir.join("qemu_fw_cfg.ko"),
            release,
            dir,
        };
        (k.release.starts_with(series.release_prefix)
            && [&k.vmlinuz, &k.vmlinux, &k.loop_ko, &k.modules.join(MODULE)]
                .iter()
                .all(|f| f.is_file()))
        .then_some(k)
    }
}

/// Scratch names carry the PID of the run that made them; one left by a
/// run that is gone is stale.
pub fn remove_stale(dir: &Path, prefix: &str) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(pid) = name.strip_prefix(prefix) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// `6.12.95+deb12-cloud-amd64` → [6, 12, 95], `5.10.0-32-cloud-amd64` →
/// [5, 10, 0, 32]: for picking the newest.
pub fn version_key(release: &str) -> Vec<u64> {
    release
        .split(|c: char| !c.is_ascii_digit())
        .map_while(|n| n.parse().ok())
        .collect()
}

/// The newest complete release of `flavour` already in `cache` (a cache
/// filled before the flavour match was exact may also hold another
/// flavour's kernel: `rt-armmp` for `armmp`).
pub fn cached_kernel(cache: &Path, series: &Series, flavour: &str) -> Option<Kernel> {
    std::fs::read_dir(cache)
        .ok()?
        .flatten()
        .filter_map(|e| Kernel::at(e.path(), series))
        .filter(|k| is_flavour_release(&k.release, flavour))
        .max_by_key(|k| version_key(&k.release))
}

/// What a fetch needs to know about the architecture.
pub struct Target<'a> {
    /// For messages.
    pub label: &'a str,
    /// Debian's architecture (`amd64`, `arm64`).
    pub deb: &'a str,
    /// Debian's kernel flavour (`cloud-amd64`, `arm64-16k`).
    pub flavour: &'a str,
}

/// A private apt configuration in `work` for `suite` of the machine's
/// Debian mirror: the `-o` options for apt-get and apt-cache.
pub fn private_apt(work: &Path, suite: &str, deb: &str) -> Result<Vec<String>, String> {
    for d in ["lists/partial", "cache/archives/partial"] {
        std::fs::create_dir_all(work.join(d)).map_err(|e| format!("{}: {e}", work.display()))?;
    }
    let sources = common::guest::debian_sources_list(suite)?;
    std::fs::write(work.join("sources.list"), sources).map_err(|e| e.to_string())?;
    let native = Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "amd64".into());
    Ok([
        format!(
            "Dir::Etc::SourceList={}",
            work.join("sources.list").display()
        ),
        "Dir::Etc::SourceParts=/dev/null".into(),
        format!("Dir::State::Lists={}", work.join("lists").display()),
        format!("Dir::Cache={}", work.join("cache").display()),
        format!("APT::Architecture={native}"),
        // only the lists of the guest's architecture
        format!("APT::Architectures={deb}"),
        // package lists only: no translations, no AppStream metadata
        "Acquire::Languages=none".into(),
        "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false".into(),
        "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false".into(),
        "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false".into(),
        "Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled=false".into(),
    ]
    .into_iter()
    .flat_map(|o| ["-o".to_string(), o])
    .collect())
}

/// Files of a .deb (`dpkg-deb -c`), as `./path` names.
pub fn deb_files(deb: &Path) -> Result<Vec<String>, String> {
    let out = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut d| {
            let tar = Command::new("tar")
                .arg("-t")
                .stdin(d.stdout.take().unwrap())
                .output();
            let _ = d.wait();
            tar
        })
        .map_err(|e| format!("listing {}: {e}", deb.display()))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// The member of `files` ending in `suffix` (a path without `./`).
pub fn member(files: &[String], suffix: &str) -> Option<String> {
    files.iter().find(|f| f.ends_with(suffix)).cloned()
}

/// Writes `from` (plain, `.xz` or `.zst`) uncompressed to `to`.
fn decompress(from: &Path, to: &Path) -> Result<(), String> {
    let tool = match from.extension().and_then(|e| e.to_str()) {
        Some("xz") => "xz",
        Some("zst") => "zstd",
        _ => return std::fs::copy(from, to).map(drop).map_err(|e| e.to_string()),
    };
    cmd_ok(
        Command::new(tool)
            .arg("-dc")
            .arg(from)
            .stdout(std::fs::File::create(to).map_err(|e| e.to_string())?),
        &format!("{tool} -dc {}", from.display()),
    )
    .map(drop)
}

/// `release` is `ABI-flavour` for exactly `flavour`: `6.1.0-50-armmp`,
/// `7.3.4+deb13-cloud-amd64`, not `6.1.0-50-rt-armmp` (the PREEMPT_RT
/// flavour `rt-armmp` ends the same way): the ABI's last part is a number.
fn is_flavour_release(release: &str, flavour: &str) -> bool {
    release
        .strip_suffix(flavour)
        .and_then(|abi| abi.strip_suffix('-'))
        .and_then(|abi| abi.rsplit('-').next())
        .is_some_and(|last| last.starts_with(|c: char| c.is_ascii_digit()))
}

#[test]
fn a_flavour_is_not_its_rt_variant() {
    assert!(is_flavour_release("6.1.0-50-armmp", "armmp"));
    assert!(!is_flavour_release("6.1.0-50-rt-armmp", "armmp"));
    assert!(is_flavour_release("6.1.0-50-rt-armmp", "rt-armmp"));
    assert!(!is_flavour_release("6.1.0-50-armmp-lpae", "armmp"));
    assert!(is_flavour_release("6.1.0-50-686", "686"));
    assert!(!is_flavour_release("6.1.0-50-686-pae", "686"));
    assert!(is_flavour_release("7.3.4+deb13-cloud-amd64", "cloud-amd64"));
    assert!(is_flavour_release("6.12.95+deb12-arm64-16k", "arm64-16k"));
    assert!(!is_flavour_release("6.12.95+deb12-arm64-16k", "arm64"));
}

/// Fetches the newest release of `series` in flavour `t.flavour` that has
/// a -dbg package: vmlinuz and loop.ko from its image (or, from 7.x on,
/// its `linux-binary-*` and `linux-modules-*`) package, the debug vmlinux
/// and loop.ko from -dbg, into `cache/RELEASE/`. The .debs are deleted.
/// Err: why not (network, packages).
pub fn fetch_kernel(cache: &Path, series: &Series, t: &Target) -> Result<Kernel, String> {
    for tool in ["apt-get", "apt-cache", "dpkg-deb", "tar", "xz", "zstd"] {
        if !have(tool, "--version") {
            return Err(format!("{tool} is missing (to fetch the kernel)"));
        }
    }
    std::fs::create_dir_all(cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    remove_stale(cache, "apt-work-");
    remove_stale(cache, "kernel.tmp-");
    let work = cache.join(format!("apt-work-{}", std::process::id()));
    let _work = TempDir(work.clone());
    let opts = private_apt(&work, series.suite, t.deb)?;
    for d in ["debs", "x"] {
        std::fs::create_dir_all(work.join(d)).map_err(|e| e.to_string())?;
    }
    // exits 0 even when nothing could be fetched: its warnings explain an
    // empty search below
    let update = cmd_ok(
        Command::new("apt-get").args(&opts).args(["-q", "update"]),
        &format!("apt-get update ({})", series.suite),
    )?;
    let out = Command::new("apt-cache")
        .args(&opts)
        .args(["search", "--names-only", r"^linux-"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("apt-cache: {e}"))?;
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(" - ").next())
        .map(|n| n.trim().to_string())
        .collect();
    let flavour = t.flavour;
    let release = names
        .iter()
        .filter_map(|n| n.strip_prefix("linux-image-")?.strip_suffix("-dbg"))
        .filter(|r| r.starts_with(series.release_prefix) && is_flavour_release(r, flavour))
        .max_by_key(|r| version_key(r))
        .ok_or_else(|| {
            format!(
                "no linux-image-{}*-{flavour}-dbg in {} ({} linux-* packages); apt-get update said:\n{update}",
                series.release_prefix,
                series.suite,
                names.len()
            )
        })?
        .to_string();
    let first = |cands: &[String]| cands.iter().find(|c| names.contains(c)).cloned();
    // where vmlinuz and the modules are: one package up to 6.x, split from 7.x
    let image = first(&[
        format!("linux-binary-unsigned-{release}"),
        format!("linux-image-{release}-unsigned"),
        format!("linux-binary-{release}"),
        format!("linux-image-{release}"),
    ])
    .ok_or_else(|| format!("no package with the {release} kernel image"))?;
    let mods = first(&[format!("linux-modules-{release}")]).unwrap_or_else(|| image.clone());
    let dbg = format!("linux-image-{release}-dbg");
    let mut pkgs = vec![image.clone(), dbg.clone()];
    if mods != image {
        pkgs.push(mods.clone());
    }
    eprintln!("{}: downloading {pkgs:?} from {}", t.label, series.suite);
    cmd_ok(
        Command::new("apt-get")
            .args(&opts)
            .args(["-q", "download"])
            .args(pkgs.iter().map(|p| format!("{p}:{}", t.deb)))
            .current_dir(work.join("debs")),
        "apt-get download",
    )?;
    let debs = work.join("debs");
    let mib: u64 = pkgs
        .iter()
        .filter_map(|p| downloaded(&debs, p).ok())
        .map(|d| std::fs::metadata(d).map_or(0, |m| m.len()))
        .sum::<u64>()
        >> 20;
    eprintln!("{}: downloaded {mib} MiB", t.label);
    let x = work.join("x");
    let (image_deb, mods_deb, dbg_deb) = (
        downloaded(&debs, &image)?,
        downloaded(&debs, &mods)?,
        downloaded(&debs, &dbg)?,
    );
    // boot/vmlinuz-R up to 6.x; usr/lib/modules/R/vmlinuz{,.unsigned}
    // from 7.x on
    let image_files = deb_files(&image_deb)?;
    let vmlinuz = [
        format!("boot/vmlinuz-{release}"),
        format!("modules/{release}/vmlinuz.unsigned"),
        format!("modules/{release}/vmlinuz"),
    ]
    .iter()
    .find_map(|s| member(&image_files, s))
    .ok_or_else(|| format!("no vmlinuz in {}", image_deb.display()))?;
    let mod_files = deb_files(&mods_deb)?;
    let loop_packed = [".ko", ".ko.xz", ".ko.zst"]
        .iter()
        .find_map(|z| {
            member(
                &mod_files,
                &format!("modules/{release}/{}{}", MODULE.trim_end_matches(".ko"), z),
            )
        })
        .ok_or_else(|| format!("no loop.ko in {} (built in?)", mods_deb.display()))?;
    let dbg_files = deb_files(&dbg_deb)?;
    // The debug vmlinux is in two places, one a symbolic link to the
    // other, and which one is the file varies: 7.x keeps it in
    // lib/modules/R/vmlinux (boot/vmlinux-R links there), 6.12.95's arm64
    // -dbg the other way round. Both are extracted, the regular file wins.
    let vmlinux_places: Vec<String> = [
        format!("modules/{release}/vmlinux"),
        format!("debug/boot/vmlinux-{release}"),
    ]
    .iter()
    .filter_map(|s| member(&dbg_files, s))
    .collect();
    if vmlinux_places.is_empty() {
        return Err(format!("no debug vmlinux in {}", dbg_deb.display()));
    }
    let dbg_loop = member(&dbg_files, &format!("modules/{release}/{MODULE}"))
        .ok_or_else(|| format!("no debug loop.ko in {}", dbg_deb.display()))?;
    extract(&image_deb, &x, std::slice::from_ref(&vmlinuz))?;
    extract(&mods_deb, &x, std::slice::from_ref(&loop_packed))?;
    let fw_cfg_packed = [".ko", ".ko.xz", ".ko.zst"].iter().find_map(|z| {
        member(
            &mod_files,
            &format!("modules/{release}/{}{}", FW_CFG.trim_end_matches(".ko"), z),
        )
    });
    if let Some(f) = &fw_cfg_packed {
        extract(&mods_deb, &x, std::slice::from_ref(f))?;
    }
    let mut dbg_members = vmlinux_places.clone();
    dbg_members.push(dbg_loop.clone());
    extract(&dbg_deb, &x, &dbg_members)?;
    let vmlinux = vmlinux_places
        .into_iter()
        .find(|m| std::fs::symlink_metadata(x.join(m)).is_ok_and(|md| md.is_file()))
        .ok_or_else(|| format!("the debug vmlinux in {} is only links", dbg_deb.display()))?;
    // the -dbg .deb (250-360 MB) is no longer needed: free it before the
    // copies below
    let _ = std::fs::remove_dir_all(&debs);
    let loop_ko = x.join("loop.ko");
    decompress(&x.join(&loop_packed), &loop_ko)?;
    let fw_cfg_ko = x.join("qemu_fw_cfg.ko");
    if let Some(f) = &fw_cfg_packed {
        decompress(&x.join(f), &fw_cfg_ko)?;
    }
    let modules = x.join("modules");
    std::fs::create_dir_all(modules.join(MODULE).parent().unwrap()).map_err(|e| e.to_string())?;
    std::fs::rename(x.join(&dbg_loop), modules.join(MODULE)).map_err(|e| e.to_string())?;
    // Each piece goes in by a rename: never a half-written file, and what
    // an older run (or another run) put there is kept.
    let dir = cache.join(&release);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (from, to) in [
        (x.join(&vmlinuz), "vmlinuz"),
        (x.join(&vmlinux), "vmlinux"),
        (loop_ko, "loop.ko"),
        (modules, "modules"),
        (fw_cfg_ko, "qemu_fw_cfg.ko"),
    ] {
        if !from.exists() {
            continue; // qemu_fw_cfg.ko: optional
        }
        let to = dir.join(to);
        if !to.exists()
            && let Err(e) = std::fs::rename(&from, &to)
            && !to.exists()
        {
            return Err(format!("{} → {}: {e}", from.display(), to.display()));
        }
    }
    Kernel::at(dir.clone(), series)
        .ok_or_else(|| format!("no complete kernel in {} after the fetch", dir.display()))
}

/// An ELF executable's e_machine (little-endian ELF64).
fn elf_machine(b: &[u8]) -> Option<u16> {
    (b.len() > 20 && b.starts_with(b"\x7fELF")).then(|| u16::from_le_bytes([b[18], b[19]]))
}

/// A static busybox for the guest: the host's /bin/busybox when `host`,
/// else `apt-get download busybox-static:DEB` from `suite` of the machine's
/// Debian mirror, through a private apt configuration (so that a foreign
/// architecture the machine's dpkg does not know, i386 or armhf, works
/// too), cached as `cached`. Checked to be an `elf_machine` executable.
pub fn guest_busybox(
    host: bool,
    cached: &Path,
    deb: &str,
    suite: &str,
    elf_machine_want: u16,
) -> Result<Vec<u8>, String> {
    let bb = if host {
        static_busybox(Path::new("/bin/busybox"))
            .ok_or("no static /bin/busybox (apt-get install busybox-static)")?
    } else {
        match static_busybox(cached) {
            Some(bb) => bb,
            None => download_busybox(cached, deb, suite)?,
        }
    };
    match elf_machine(&bb) {
        Some(m) if m == elf_machine_want => Ok(bb),
        m => Err(format!(
            "the busybox is not an {deb} executable (e_machine {m:?})"
        )),
    }
}

fn download_busybox(to: &Path, deb: &str, suite: &str) -> Result<Vec<u8>, String> {
    for tool in ["apt-get", "dpkg-deb", "tar"] {
        if !have(tool, "--version") {
            return Err(format!("{tool} is missing (to fetch busybox-static:{deb})"));
        }
    }
    let cache = to.parent().unwrap();
    std::fs::create_dir_all(cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    remove_stale(cache, "busybox-work-");
    let work = cache.join(format!("busybox-work-{}", std::process::id()));
    let _work = TempDir(work.clone());
    std::fs::create_dir_all(work.join("x")).map_err(|e| format!("{}: {e}", work.display()))?;
    let opts = private_apt(&work.join("apt"), suite, deb)?;
    cmd_ok(
        Command::new("apt-get").args(&opts).args(["-q", "update"]),
        &format!("apt-get update ({suite})"),
    )?;
    let pkg = "busybox-static";
    cmd_ok(
        Command::new("apt-get")
            .args(&opts)
            .args(["-q", "download", &format!("{pkg}:{deb}")])
            .current_dir(&work),
        &format!("apt-get download {pkg}:{deb}"),
    )?;
    let d = downloaded(&work, pkg)?;
    extract(&d, &work.join("x"), &["./bin/busybox".into()])?;
    let bin = work.join("x/bin/busybox");
    let bb =
        static_busybox(&bin).ok_or_else(|| format!("{} has no static bin/busybox", d.display()))?;
    std::fs::rename(&bin, to).map_err(|e| format!("{}: {e}", to.display()))?;
    eprintln!("{pkg}:{deb} cached as {}", to.display());
    Ok(bb)
}
