//! Options and set-up for a live QEMU/KVM guest (`--qemu-ram FILE --qmp
//! SOCKET`), and the signal handling that keeps corestub from leaving a
//! guest paused when it exits.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use corestub::addr::Arch;
use corestub::dump::live::{LiveRam, parse_mtree};
use corestub::dump::raw::{Machine, default_map, find_vmcoreinfo};
use corestub::kernel::VmcoreInfo;
use corestub::qmp::Qmp;
use corestub::target::ThreadMode;
use corestub::target::live::{Live, LiveOptions};
use serde_json::{Value, json};

use super::vmlinux;

#[derive(clap::Args, Clone, Debug)]
pub struct LiveArgs {
    /// A running QEMU/KVM guest's RAM: its memory-backend-file
    /// (`-object memory-backend-file,id=mem,share=on,mem-path=FILE,size=…`
    /// `-machine memory-backend=mem`; a /dev/shm path works). Needs --qmp.
    #[arg(long, value_name = "FILE", requires = "qmp", conflicts_with_all = ["dump", "raw_ram"])]
    pub qemu_ram: Option<PathBuf>,
    /// The guest's QMP unix socket (`-qmp unix:PATH,server=on,wait=off`).
    /// It serves one client at a time: give QEMU a second one for corestub
    /// if something else uses the first.
    #[arg(long, value_name = "SOCKET", requires = "qemu_ram")]
    pub qmp: Option<PathBuf>,
    /// Read the guest while it runs instead of pausing it while GDB is
    /// attached (reads can be torn: see README).
    #[arg(long, requires = "qemu_ram")]
    pub no_pause: bool,
}

impl LiveArgs {
    /// The same options as command-line words (for `corestub gdb` to pass
    /// on to `corestub serve`), paths made absolute.
    pub fn to_args(&self) -> std::io::Result<Vec<String>> {
        let mut v = Vec::new();
        let (Some(ram), Some(qmp)) = (&self.qemu_ram, &self.qmp) else {
            return Ok(v);
        };
        let abs = |p: &PathBuf| std::fs::canonicalize(p).map(|p| p.display().to_string());
        v.extend(["--qemu-ram".into(), abs(ram)?, "--qmp".into(), abs(qmp)?]);
        if self.no_pause {
            v.push("--no-pause".into());
        }
        Ok(v)
    }
}

/// The id of the memory backend whose file is `ram`: `qom-list /objects`,
/// then each backend's `mem-path`. With one backend and no match (a path
/// given differently, e.g. through a symlink QEMU did not see), that one.
fn backend_id(qmp: &Qmp, ram: &Path) -> Result<String, String> {
    let list = qmp.execute("qom-list", Some(json!({ "path": "/objects" })))?;
    let want = std::fs::canonicalize(ram).map_err(|e| format!("{}: {e}", ram.display()))?;
    let mut backends = Vec::new();
    for o in list.as_array().into_iter().flatten() {
        let (Some(name), Some(ty)) = (
            o.get("name").and_then(Value::as_str),
            o.get("type").and_then(Value::as_str),
        ) else {
            continue;
        };
        if !ty.starts_with("child<memory-backend") {
            continue;
        }
        let path = qmp
            .execute(
                "qom-get",
                Some(json!({ "path": format!("/objects/{name}"), "property": "mem-path" })),
            )
            .ok()
            .and_then(|v| v.as_str().map(PathBuf::from));
        if let Some(p) = &path
            && std::fs::canonicalize(p).is_ok_and(|p| p == want)
        {
            return Ok(name.to_string());
        }
        backends.push((name.to_string(), path));
    }
    match &backends[..] {
        [(name, _)] => {
            log::warn!(
                "{} is not the mem-path QEMU reports; using its only memory backend {name:?}",
                ram.display()
            );
            Ok(name.clone())
        }
        [] => Err("QEMU has no memory backend object: start it with -object memory-backend-file,id=mem,share=on,mem-path=FILE,size=SIZE -machine memory-backend=mem".into()),
        _ => Err(format!(
            "{} is the mem-path of none of QEMU's memory backends ({})",
            ram.display(),
            backends
                .iter()
                .map(|(n, p)| format!("{n}: {}", p.as_deref().map(|p| p.display().to_string()).unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Connects to QEMU, maps the RAM file with QEMU's layout, finds the
/// vmlinux. Nothing is paused here.
pub fn open(
    args: &LiveArgs,
    mode: ThreadMode,
    given_vmlinux: Option<&Path>,
) -> Result<(Arc<Live>, Option<PathBuf>), String> {
    let (Some(ram_path), Some(qmp_path)) = (&args.qemu_ram, &args.qmp) else {
        return Err("--qemu-ram needs --qmp".into());
    };
    let qmp = Qmp::connect(qmp_path)?;
    let arch = match qmp
        .execute("query-target", None)?
        .get("arch")
        .and_then(Value::as_str)
    {
        Some("x86_64") => Arch::X86_64,
        Some("aarch64") => Arch::Aarch64,
        other => return Err(format!("unsupported QEMU target architecture {other:?}")),
    };
    let id = backend_id(&qmp, ram_path);
    let chunks = match &id {
        Ok(id) => parse_mtree(&qmp.hmp("info mtree -f")?, id),
        Err(e) => {
            log::warn!("{e}");
            Vec::new()
        }
    };
    let ram = if chunks.is_empty() {
        let size = std::fs::metadata(ram_path)
            .map_err(|e| format!("{}: {e}", ram_path.display()))?
            .len();
        let machine = match arch {
            Arch::X86_64 | Arch::I386 => Machine::Pc,
            Arch::Aarch64 | Arch::Arm => Machine::Virt,
        };
        log::warn!("no RAM layout from QMP `info mtree -f`: assuming QEMU's {machine:?} layout");
        LiveRam::open(
            ram_path,
            arch,
            default_map(machine, size),
            &format!("{machine:?} default layout"),
        )?
    } else {
        LiveRam::open(
            ram_path,
            arch,
            chunks,
            &format!("backend {:?} per info mtree", id.unwrap_or_default()),
        )?
    };
    let info = find_vmcoreinfo(&ram.memory).map(|(t, _)| VmcoreInfo::parse(&t));
    let found = vmlinux::resolve(
        given_vmlinux,
        ram_path,
        info.as_ref().and_then(|i| i.osrelease()),
        info.as_ref().and_then(|i| i.build_id()),
    )?;
    let (path, vm) = match found {
        Some((p, v)) => (Some(p), Some(v)),
        None => (None, None),
    };
    let opts = LiveOptions {
        no_pause: args.no_pause,
        mode,
    };
    Ok((Arc::new(Live::new(qmp, ram, vm, opts)), path))
}

/// Resumes the guest (if corestub paused it) when dropped.
pub struct ReleaseOnDrop(pub Arc<Live>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill a local sigset_t.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in SIGNALS {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Blocks SIGINT/SIGTERM/SIGHUP in the calling thread and every thread it
/// starts afterwards. Call before any thread is spawned.
pub fn block_signals() {
    let set = signal_set();
    // SAFETY: changes only this thread's signal mask.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// A thread that waits for SIGINT/SIGTERM/SIGHUP, resumes the guest if
/// corestub paused it, and exits.
pub fn spawn_signal_thread(live: Arc<Live>) {
    std::thread::spawn(move || {
        let set = signal_set();
        let mut sig: libc::c_int = 0;
        // SAFETY: sigwait on a valid set; the signals are blocked in every thread.
        let rc = unsafe { libc::sigwait(&set, &mut sig) };
        if rc != 0 {
            return;
        }
        live.shutdown();
        // process::exit runs no destructors: hang up on QEMU explicitly.
        live.qmp.close();
        // Not eprintln!: with stderr a closed pipe it panics, this thread
        // dies, and the process (signals blocked) never exits.
        let _ = writeln!(
            std::io::stderr(),
            "corestub: signal {sig}: guest released, exiting"
        );
        std::process::exit(128 + sig);
    });
}
