//! Opening a dump into a shared serving [`Session`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use corestub::dump;
use corestub::dump::kcore::Kcore;
use corestub::kernel::symbols::Vmlinux;
use corestub::kernel::{Kernel, VmcoreInfo};
use corestub::target::Session;
use corestub::target::kcore::RunningKernel;

use super::DumpArgs;
use super::nodebug;
use super::running;
use super::vmlinux;

pub struct Opened {
    pub session: Arc<Session>,
    pub vmlinux: Option<PathBuf>,
    /// A live guest (`--qemu-ram`): `session` is a first snapshot, taken
    /// without pausing it.
    pub live: Option<Arc<corestub::target::live::Live>>,
    /// The running kernel (/proc/kcore): `session` is a first snapshot.
    pub running: Option<Arc<RunningKernel>>,
}

pub fn open(args: &DumpArgs) -> Result<Opened, Box<dyn std::error::Error>> {
    let t0 = std::time::Instant::now();
    if args.live.qemu_ram.is_some() {
        let (live, vmlinux) = super::live::open(
            &args.live,
            args.thread_mode().into(),
            args.vmlinux.as_deref(),
        )?;
        let session = Arc::new(live.snapshot()?);
        log::debug!("live guest opened in {:?}", t0.elapsed());
        return Ok(Opened {
            session,
            vmlinux,
            live: Some(live),
            running: None,
        });
    }
    if let Some(kcore) = args.running_kernel() {
        let (running, vmlinux) = open_running_kernel(kcore, args)?;
        let session = Arc::new(running.snapshot()?);
        log::debug!("running kernel opened in {:?}", t0.elapsed());
        return Ok(Opened {
            session,
            vmlinux,
            live: None,
            running: Some(running),
        });
    }
    let (kernel, vmlinux) = open_kernel(args)?;
    let session = Session::new(kernel, args.thread_mode().into());
    log::debug!("session ready at {:?}", t0.elapsed());
    Ok(Opened {
        session: Arc::new(session),
        vmlinux,
        live: None,
        running: None,
    })
}

/// Opens the running kernel's kcore and finds its vmlinux (by VMCOREINFO's
/// build-id, else /sys/kernel/notes', and release).
fn open_running_kernel(
    path: &Path,
    args: &DumpArgs,
) -> Result<(Arc<RunningKernel>, Option<PathBuf>), Box<dyn std::error::Error>> {
    let kcore = Kcore::open(path, dump::kcore::host_cpus())?;
    let info = kcore.vmcoreinfo.as_deref().map(VmcoreInfo::parse);
    let notes_id = dump::kcore::sys_kernel_build_id();
    let build_id = info
        .as_ref()
        .and_then(|i| i.build_id())
        .or(notes_id.as_deref());
    let release = info.as_ref().and_then(|i| i.osrelease());
    let found = vmlinux::resolve(args.vmlinux.as_deref(), path, release, build_id)?;
    let (vmlinux_path, vm) = match found {
        Some((p, v)) => (Some(p), Some(v)),
        None => running_kernel_alone(&kcore),
    };
    let running = RunningKernel::new(kcore, vm, args.thread_mode().into());
    Ok((Arc::new(running), vmlinux_path))
}

/// No vmlinux for the running kernel: symbols built from it
/// ([`nodebug`], with the host's BTF file and /proc/kallsyms), as for a
/// dump; the snapshots then take their layouts from its BTF types.
fn running_kernel_alone(kcore: &Kcore) -> (Option<PathBuf>, Option<Vmlinux>) {
    // a look before the first snapshot (numbered 0), for the symbol file
    let kernel = match Kernel::new(kcore.snapshot(0)) {
        Ok(k) => k,
        Err(e) => {
            log::warn!("no symbols from the running kernel: {e}");
            return (None, None);
        }
    };
    match nodebug::symbol_file(&kernel, &running::host_files(&kernel)) {
        Ok((p, v)) => {
            eprintln!(
                "corestub: no debug vmlinux for the running kernel: using symbols built from the kernel itself ({})",
                p.display()
            );
            (Some(p), Some(v))
        }
        Err(e) => {
            log::warn!("no symbols from the running kernel either: {e}");
            (None, None)
        }
    }
}

/// Opens a dump file (or raw RAM) up to the kernel layer: enough for the
/// KASLR offset and the vmlinux, without a [`Session`]'s panic-CPU search.
pub fn open_kernel(
    args: &DumpArgs,
) -> Result<(Kernel, Option<PathBuf>), Box<dyn std::error::Error>> {
    let t0 = std::time::Instant::now();
    let path = args.path();
    let dump = match &args.raw.raw_ram {
        Some(ram) => dump::raw::open(ram, &args.raw.options()?)?,
        None => dump::open_parts(&args.dump)?,
    };
    log::debug!("dump opened in {:?}", t0.elapsed());
    // Without VMCOREINFO the kernel layer needs the vmlinux to find KASLR.
    let early = match dump.notes.vmcoreinfo {
        None => {
            // no VMCOREINFO, no build-id: the release in the banner names
            // the vmlinux (/usr/lib/debug/boot/vmlinux-RELEASE, ...)
            let release = match args.vmlinux {
                None => corestub::kernel::kaslr::banner_release(dump.memory.as_ref()),
                Some(_) => None,
            };
            log::debug!("no VMCOREINFO; release from the banner: {release:?}");
            vmlinux::resolve(args.vmlinux.as_deref(), path, release.as_deref(), None)?
        }
        Some(_) => None,
    };
    let (early_path, early_vmlinux) = match early {
        Some((p, v)) => (Some(p), Some(v)),
        None => (None, None),
    };
    let mut kernel = Kernel::with_vmlinux(dump, early_vmlinux)?;
    log::debug!("kernel ready at {:?}", t0.elapsed());
    let vmlinux = match early_path {
        Some(p) => Some(p),
        None => vmlinux::resolve(
            args.vmlinux.as_deref(),
            path,
            kernel.vmcoreinfo.osrelease(),
            kernel.vmcoreinfo.build_id(),
        )?
        .map(|(p, v)| {
            kernel.attach_vmlinux(v);
            p
        }),
    };
    let vmlinux = match vmlinux {
        Some(p) => Some(p),
        None => from_dump_alone(&mut kernel),
    };
    log::debug!("vmlinux resolved at {:?}", t0.elapsed());
    Ok((kernel, vmlinux))
}

/// No vmlinux anywhere: symbols built from the dump ([`nodebug`]), said
/// on stderr since the session then has no line numbers, inlined frames or
/// locals.
fn from_dump_alone(kernel: &mut Kernel) -> Option<PathBuf> {
    match nodebug::symbol_file(kernel, &nodebug::HostFiles::default()) {
        Ok((p, v)) => {
            eprintln!(
                "corestub: no debug vmlinux for this dump: using symbols built from the dump itself ({})",
                p.display()
            );
            kernel.vmlinux = Some(v);
            Some(p)
        }
        Err(e) => {
            log::warn!("no symbols from the dump either: {e}");
            None
        }
    }
}

/// Is `.data..percpu` linked at address 0, so per-CPU symbols are offsets
/// that a KASLR slide must not move? The loaded vmlinux's section table
/// says; without one (a command printed for the user to complete) x86_64 SMP
/// kernels always link it there and arm64 never does.
pub fn percpu_at_zero(k: &Kernel) -> bool {
    match &k.vmlinux {
        Some(v) => v.percpu_zero_based(),
        None => k.arch == corestub::addr::Arch::X86_64,
    }
}

/// GDB commands that load `vmlinux` at the dump's KASLR offset. Per-CPU
/// symbols on x86_64 are offsets into each CPU's area (section address 0)
/// and must not be shifted, hence `-s .data..percpu 0`.
pub fn gdb_symbol_commands(k: &Kernel, vmlinux: &Path) -> Vec<String> {
    let mut cmd = format!(
        "add-symbol-file {} -o {:#x}",
        vmlinux.display(),
        k.kaslr_offset
    );
    if percpu_at_zero(k) {
        cmd.push_str(" -s .data..percpu 0");
    }
    vec![cmd]
}
