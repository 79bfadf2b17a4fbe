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
    let dump = dump::open(&args.dump)?;
    let mut kernel = Kernel::new(dump)?;
    let vmlinux = vmlinux::resolve(
        args.vmlinux.as_deref(),
        &args.dump,
        kernel.vmcoreinfo.osrelease(),
        kernel.vmcoreinfo.build_id(),
    )?;
    if let Some(v) = &vmlinux {
        kernel.vmlinux = Some(Vmlinux::open(v)?);
    }
    let session = Session::new(kernel, args.threads.into());
    Ok(Opened {
        session: Arc::new(session),
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
