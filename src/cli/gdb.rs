//! `corestub gdb`: start GDB wired to the dump over a stdio pipe, with the
//! vmlinux loaded at the KASLR offset and corestub's gdb-scripts sourced.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use corestub::addr::Arch;
use corestub::target::Session;

use super::{CliResult, DumpArgs, gdb_index, handoff, scripts, serve, session};

#[derive(clap::Args)]
pub struct GdbArgs {
    /// GDB program to run (default: gdb, or gdb-multiarch when gdb lacks the dump's architecture).
    #[arg(long)]
    gdb: Option<String>,
    #[command(flatten)]
    dump: DumpArgs,
    /// Arguments passed to GDB after corestub's own (e.g. -batch -ex 'bt').
    #[arg(last = true)]
    gdb_args: Vec<String>,
}

/// Quotes a word for /bin/sh (GDB runs `target remote | CMD` through it).
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn gdb_supports(gdb: &str, arch: &str) -> bool {
    Command::new(gdb)
        .args(["-nx", "-batch", "-ex", &format!("set architecture {arch}")])
        .output()
        .map(|o| o.status.success() && o.stderr.is_empty())
        .unwrap_or(false)
}

fn pick_gdb(arch: Arch) -> String {
    match arch {
        Arch::X86_64 => "gdb".into(),
        Arch::Aarch64 if gdb_supports("gdb", "aarch64") => "gdb".into(),
        Arch::Aarch64 => "gdb-multiarch".into(),
        Arch::I386 if gdb_supports("gdb", "i386") => "gdb".into(),
        Arch::Arm if gdb_supports("gdb", "arm") => "gdb".into(),
        Arch::I386 | Arch::Arm => "gdb-multiarch".into(),
    }
}

pub fn run(a: GdbArgs) -> CliResult {
    // A live guest: its QMP socket serves one client, so the `corestub
    // serve` that GDB starts owns it (no hand-off; nothing paused here).
    // Everything else: open the kernel now, start GDB at once, and warm the
    // session here while GDB loads symbols (handoff.rs).
    // The running kernel likewise: the pipe child opens /proc/kcore itself
    // and re-reads it on refresh.
    let live = a.dump.live.qemu_ram.is_some() || a.dump.running_kernel().is_some();
    let (live_session, mut kernel, vmlinux) = if live {
        let opened = session::open(&a.dump)?;
        (Some(opened.session), None, opened.vmlinux)
    } else {
        let (k, v) = session::open_kernel(&a.dump)?;
        (None, Some(k), v)
    };
    let k = match (&live_session, &kernel) {
        (Some(s), _) => &s.kernel,
        (None, Some(k)) => k,
        (None, None) => unreachable!("a kernel or a live session"),
    };
    let gdb = a.gdb.clone().unwrap_or_else(|| pick_gdb(k.arch));
    let exe = std::env::current_exe()?;
    let handoff = if live {
        None
    } else {
        match handoff::socketpair() {
            Ok(pair) => Some(pair),
            Err(e) => {
                log::warn!("no hand-off socket ({e}): GDB's pipe child will open the dump itself");
                None
            }
        }
    };

    // `exec`: the shell must not keep the stderr pipe open (see serve.rs).
    let mut serve = format!(
        "exec {} serve --stdio --threads {}",
        sh_quote(&exe.to_string_lossy()),
        a.dump.thread_mode().name()
    );
    if let Some((_, child_end)) = &handoff {
        serve.push_str(&format!(" --handoff-fd {}", child_end.as_raw_fd()));
    }
    // A dump on a slow disk can take more than GDB's default 2 s to answer
    // the first thread-list query; GDB would then resend, which gdbstub
    // cannot handle.
    let mut args: Vec<String> = vec!["-q".into(), "-iex".into(), "set remotetimeout 30".into()];
    // GDB's own symbol reading dominates start-up; its index cache makes
    // the second start on the same vmlinux several times faster, and
    // corestub fills that cache for the vmlinux itself so that the first
    // start is as fast (gdb_index.rs).
    let loaded = vmlinux.as_ref().and(k.vmlinux.as_ref());
    let mut index = gdb_index::start(loaded);
    if let Some(p) = &index {
        args.extend([
            "-iex".into(),
            format!("set index-cache directory {}", p.dir.display()),
        ]);
    }
    if gdb_index::wanted(loaded) {
        args.extend(["-iex".into(), "set index-cache enabled on".into()]);
    }
    let mut ex = |cmd: String| {
        args.push("-ex".into());
        args.push(cmd);
    };
    ex("set confirm off".into());
    if let Some(wait) = index.as_ref().and_then(|p| p.wait_command(sh_quote)) {
        ex(wait);
    }
    match &vmlinux {
        Some(v) => {
            let v = std::fs::canonicalize(v)?;
            for c in session::gdb_symbol_commands(k, &v) {
                ex(c);
            }
            serve.push_str(&format!(" --vmlinux {}", sh_quote(&v.to_string_lossy())));
        }
        None => eprintln!(
            "corestub: no vmlinux matching the dump (build-id {}); GDB will have no symbols. Pass --vmlinux FILE.",
            k.vmcoreinfo.build_id().unwrap_or("unknown")
        ),
    }
    if a.dump.live.qemu_ram.is_some() {
        for w in a.dump.live.to_args()? {
            serve.push(' ');
            serve.push_str(&sh_quote(&w));
        }
    } else if a.dump.raw.raw_ram.is_some() {
        for w in a.dump.raw.to_args()? {
            serve.push(' ');
            serve.push_str(&sh_quote(&w));
        }
    } else {
        for part in &a.dump.dump {
            serve.push(' ');
            serve.push_str(&sh_quote(&std::fs::canonicalize(part)?.to_string_lossy()));
        }
    }
    ex(format!("target remote | {serve}"));
    match scripts::dir() {
        Ok((dir, origin)) => {
            log::info!("GDB scripts from {} ({origin:?})", dir.display());
            ex(format!("source {}", dir.join(scripts::MAIN).display()));
        }
        Err(e) => eprintln!(
            "corestub: no GDB scripts ({e}): dmesg, ps, sys, lsmod, modsyms, trapinfo and task are unavailable"
        ),
    }
    ex("set confirm on".into());
    args.extend(a.gdb_args.iter().cloned());
    log::info!("running {gdb} {args:?}");
    let mut cmd = Command::new(&gdb);
    cmd.args(&args);
    if let Some((_, child_end)) = &handoff {
        let fd = child_end.as_raw_fd();
        // SAFETY: only fcntl (async-signal-safe) between fork and exec.
        unsafe {
            cmd.pre_exec(move || handoff::keep_across_exec(fd));
        }
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot run {gdb}: {e}"))?;
    // Ctrl-C in GDB's terminal is GDB's (it interrupts a running live
    // guest): this waiting parent must not die of it.
    // SAFETY: sets this process's SIGINT disposition; GDB, already
    // started, keeps its own.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
    end_gdb_with_us(child.id());
    if let (Some((ours, child_end)), Some(kernel)) = (handoff, kernel.take()) {
        // Only GDB and its children hold the other end now: when they are
        // all gone, recv_fds sees EOF.
        drop(child_end);
        let session = Arc::new(Session::new(kernel, a.dump.thread_mode().into()));
        let built = index.as_mut().and_then(|p| p.take_built());
        std::thread::spawn(move || serve_handoffs(session, ours, built));
    }
    let status = child.wait()?;
    if let Some(p) = &index {
        p.finish();
    }
    serve::report_stats();
    let code = match FORWARDED.load(Ordering::SeqCst) {
        0 => status.code().unwrap_or(1),
        sig => 128 + sig,
    };
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// GDB's PID, for [`forward_to_gdb`].
static GDB_PID: AtomicI32 = AtomicI32::new(0);
/// The termination signal forwarded to GDB, if any (our exit status).
static FORWARDED: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward_to_gdb(sig: libc::c_int) {
    FORWARDED.store(sig, Ordering::SeqCst);
    let pid = GDB_PID.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe; `pid` is our child GDB.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}

/// SIGTERM or SIGHUP to `corestub gdb` ends GDB too (we then exit with its
/// status), instead of killing only this waiting parent: an orphaned GDB
/// keeps its `target remote |` child, and for a live guest that child
/// keeps the QMP connection (QEMU greets no other client: the next
/// corestub gets "no greeting") and the guest paused. GDB ends on SIGTERM
/// like on `quit`: it detaches and SIGTERMs its pipe child, which resumes
/// the guest and exits.
fn end_gdb_with_us(gdb: u32) {
    let Ok(pid) = i32::try_from(gdb) else {
        return;
    };
    GDB_PID.store(pid, Ordering::SeqCst);
    let handler = forward_to_gdb as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for sig in [libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: installs a handler that only calls kill(2); GDB, already
        // started, keeps its own dispositions.
        unsafe {
            libc::signal(sig, handler);
        }
    }
}

/// Warms the session, then serves every pair of pipes GDB's `target remote
/// | corestub serve --stdio --handoff-fd N` children pass over `sock`
/// (one per `target remote`), each on its own thread.
fn serve_handoffs(
    session: Arc<Session>,
    sock: OwnedFd,
    index_built: Option<std::sync::mpsc::Receiver<()>>,
) {
    // GDB waits for the index before it loads the vmlinux, and connects
    // only after that: the index has the CPUs first, the warm-up (the task
    // list: 0.13 s on the 6.1 fixture) runs while GDB loads symbols. Bounded,
    // so that a stuck build never keeps GDB's connection waiting.
    if let Some(heard) = index_built {
        let _ = heard.recv_timeout(std::time::Duration::from_secs(10));
    }
    let t = std::time::Instant::now();
    serve::warm_up(&session);
    log::debug!("session warmed up in {:?}", t.elapsed());
    loop {
        match handoff::recv_fds(&sock) {
            Ok(Some(fds)) if fds.len() == 2 => {
                let mut fds = fds.into_iter();
                let (r, w) = (fds.next().unwrap(), fds.next().unwrap());
                log::info!("serving GDB's pipes handed over by its `target remote |` child");
                let s = session.clone();
                std::thread::spawn(move || {
                    serve::serve_one(
                        s,
                        serve::Served::Dump,
                        serve::debugger_reader(r.into()),
                        Box::new(std::fs::File::from(w)),
                    )
                });
            }
            Ok(Some(fds)) => log::warn!("hand-off with {} descriptors ignored", fds.len()),
            Ok(None) => return,
            Err(e) => {
                log::warn!("hand-off socket: {e}");
                return;
            }
        }
    }
}
