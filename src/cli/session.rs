//! Opening a dump into a shared serving [`Session`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use corestub::dump;
use corestub::kernel::Kernel;
use corestub::target::Session;

use super::DumpArgs;
use super::vmlinux;

pub struct Opened {
    pub session: Arc<Session>,
    pub vmlinux: Option<PathBuf>,
}

pub fn open(args: &DumpArgs) -> Result<Opened, Box<dyn std::error::Error>> {
    let t0 = std::time::Instant::now();
    let dump = dump::open(&args.dump)?;
    log::debug!("dump opened in {:?}", t0.elapsed());
    let mut kernel = Kernel::new(dump)?;
    log::debug!("kernel ready at {:?}", t0.elapsed());
    let found = vmlinux::resolve(
        args.vmlinux.as_deref(),
        &args.dump,
        kernel.vmcoreinfo.osrelease(),
        kernel.vmcoreinfo.build_id(),
    )?;
    let vmlinux = found.map(|(path, v)| {
        kernel.vmlinux = Some(v);
        path
    });
    log::debug!("vmlinux resolved at {:?}", t0.elapsed());
    let session = Session::new(kernel, args.threads.into());
    log::debug!("session ready at {:?}", t0.elapsed());
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
    if k.vmlinux.as_ref().is_some_and(|v| v.percpu_zero_based()) {
        cmd.push_str(" -s .data..percpu 0");
    }
    vec![cmd]
}
