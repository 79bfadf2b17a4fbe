//! Opening a dump into a shared serving [`Session`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use corestub::dump;
use corestub::kernel::Kernel;
use corestub::kernel::symbols::Vmlinux;
use corestub::target::Session;

use super::DumpArgs;
use super::vmlinux;

pub struct Opened {
    pub session: Arc<Session>,
    pub vmlinux: Option<PathBuf>,
}

pub fn open(args: &DumpArgs) -> Result<Opened, Box<dyn std::error::Error>> {
    let path = args.path();
    let dump = match &args.raw.raw_ram {
        Some(ram) => dump::raw::open(ram, &args.raw.options()?)?,
        None => dump::open(path)?,
    };
    // Without VMCOREINFO the kernel layer needs the vmlinux to find KASLR.
    let early = match dump.notes.vmcoreinfo {
        None => vmlinux::resolve(args.vmlinux.as_deref(), path, None, None)?,
        Some(_) => None,
    };
    let early_vmlinux = early.as_ref().map(Vmlinux::open).transpose()?;
    let mut kernel = Kernel::with_vmlinux(dump, early_vmlinux)?;
    let vmlinux = match early {
        Some(v) => Some(v),
        None => vmlinux::resolve(
            args.vmlinux.as_deref(),
            path,
            kernel.vmcoreinfo.osrelease(),
            kernel.vmcoreinfo.build_id(),
        )?,
    };
    if kernel.vmlinux.is_none()
        && let Some(v) = &vmlinux
    {
        kernel.vmlinux = Some(Vmlinux::open(v)?);
    }
    let panic_cpu = kernel.panic_cpu();
    let labels = kernel
        .cpus
        .iter()
        .map(|c| {
            let mut s = format!("CPU {}", c.index);
            if kernel.dump.notes.vcpu_numbered {
                // QEMU numbers notes by vCPU (pr_pid = CPU + 1): not a PID
            } else if c.note_pid != 0 {
                s.push_str(&format!(" pid {}", c.note_pid));
            } else {
                s.push_str(" idle");
            }
            if Some(c.index) == panic_cpu {
                s.push_str(" [panic]");
            }
            s
        })
        .collect();
    Ok(Opened {
        session: Arc::new(Session::new(kernel, panic_cpu, labels)),
        vmlinux,
    })
}

/// GDB commands that load `vmlinux` at the dump's KASLR offset. Per-CPU
/// symbols on x86_64 are offsets into each CPU's area (section address 0)
/// and must not be shifted, hence `-s .data..percpu 0`.
pub fn gdb_symbol_commands(session: &Session, vmlinux: &Path) -> Vec<String> {
    let k = &session.kernel;
    let mut cmd = format!(
        "add-symbol-file {} -o {:#x}",
        vmlinux.display(),
        k.kaslr_offset
    );
    if k.arch == corestub::addr::Arch::X86_64 {
        cmd.push_str(" -s .data..percpu 0");
    }
    vec![cmd]
}
