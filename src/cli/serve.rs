//! `corestub serve`: TCP (loopback by default), unix socket, or stdio.

use std::fs::OpenOptions;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use corestub::addr::Arch;
use corestub::target::Session;
use corestub::target::aarch64::Aarch64;
use corestub::target::arm::Arm;
use corestub::target::colocate::Colocated;
use corestub::target::conn::{BufConn, serve_connection};
use corestub::target::i386::I386;
use corestub::target::kcore::{RunningKernel, serve_kcore_connection};
use corestub::target::live::{Live, serve_live_connection};
use corestub::target::x86_64::X86_64;

use super::{CliResult, DumpArgs, live, scripts, session};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:1234", conflicts_with_all = ["stdio", "unix"])]
    listen: SocketAddr,
    /// Allow listening on a non-loopback address (dumps hold secrets).
    #[arg(long)]
    allow_remote: bool,
    /// Speak the protocol on stdin/stdout (for `target remote | corestub serve --stdio DUMP`).
    #[arg(long)]
    stdio: bool,
    /// With --stdio: where log messages go once start-up is done (default:
    /// nowhere; see `detach_stderr`).
    #[arg(long)]
    log: Option<PathBuf>,
    /// With --stdio: first try to pass stdin/stdout to the `corestub gdb`
    /// that started this GDB, over this inherited socket (see handoff.rs).
    #[arg(long, hide = true, requires = "stdio")]
    handoff_fd: Option<i32>,
    /// Listen on a unix socket (created with mode 0600).
    #[arg(long)]
    unix: Option<PathBuf>,
    #[command(flatten)]
    dump: DumpArgs,
}

type Reader = Box<dyn io::Read + Send>;
type Writer = Box<dyn io::Write + Send>;

/// The reader of a connection whose other end is the debugger that started
/// us (stdio, or the pipes `corestub gdb` is handed): packets are then
/// served on the debugger's CPU (target/colocate.rs), unless
/// CORESTUB_NO_PIN is set.
pub(super) fn debugger_reader(f: std::fs::File) -> Reader {
    if std::env::var_os("CORESTUB_NO_PIN").is_some() {
        return Box::new(f);
    }
    match Colocated::wrap(f) {
        Ok(c) => Box::new(c),
        Err(f) => Box::new(f),
    }
}

/// What a connection is served from: a dump's shared session, a live
/// guest, or the running kernel (first snapshot `session`).
#[derive(Clone)]
pub(super) enum Served {
    Dump,
    Live(Arc<Live>),
    Running(Arc<RunningKernel>),
}

impl Served {
    pub(super) fn of(opened: &session::Opened) -> Served {
        match (&opened.live, &opened.running) {
            (Some(l), _) => Served::Live(l.clone()),
            (None, Some(k)) => Served::Running(k.clone()),
            (None, None) => Served::Dump,
        }
    }
}

/// Serves one client.
pub(super) fn serve_one(session: Arc<Session>, served: Served, r: Reader, w: Writer) {
    let arch = session.kernel.arch;
    let r = match (served, arch) {
        (Served::Live(l), Arch::X86_64) => serve_live_connection::<X86_64>(l, r, w),
        (Served::Live(l), Arch::Aarch64) => serve_live_connection::<Aarch64>(l, r, w),
        (Served::Running(k), Arch::X86_64) => {
            serve_kcore_connection::<X86_64>(k, session, BufConn::new(r, w))
        }
        (Served::Running(k), Arch::Aarch64) => {
            serve_kcore_connection::<Aarch64>(k, session, BufConn::new(r, w))
        }
        (Served::Dump, Arch::X86_64) => serve_connection::<X86_64>(session, BufConn::new(r, w)),
        (Served::Dump, Arch::Aarch64) => serve_connection::<Aarch64>(session, BufConn::new(r, w)),
        (Served::Live(l), Arch::I386) => serve_live_connection::<I386>(l, r, w),
        (Served::Live(l), Arch::Arm) => serve_live_connection::<Arm>(l, r, w),
        (Served::Running(k), Arch::I386) => {
            serve_kcore_connection::<I386>(k, session, BufConn::new(r, w))
        }
        (Served::Running(k), Arch::Arm) => {
            serve_kcore_connection::<Arm>(k, session, BufConn::new(r, w))
        }
        (Served::Dump, Arch::I386) => serve_connection::<I386>(session, BufConn::new(r, w)),
        (Served::Dump, Arch::Arm) => serve_connection::<Arm>(session, BufConn::new(r, w)),
    };
    match r {
        Ok(reason) => log::info!("client finished: {reason:?}"),
        Err(e) => log::warn!("client connection ended: {e}"),
    }
}

/// With CORESTUB_STATS=FILE, writes the server's own CPU time and peak RSS
/// (for benchmarks: GDB's time and ours are otherwise hard to separate).
pub(super) fn report_stats() {
    let Some(out) = std::env::var_os("CORESTUB_STATS") else {
        return;
    };
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // fields after the command name: utime and stime are the 12th/13th
    let rest = stat.rsplit(") ").next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap_or("")
        .trim()
        .to_string();
    let _ = std::fs::write(
        out,
        format!("corestub-stats: cpu_s={cpu:.3} peak_rss={hwm}\n"),
    );
}

/// GDB reads the stderr of a `target remote | CMD` child with one read()
/// per received protocol byte until that pipe reaches EOF: a 64 MiB `dump
/// memory` took 5-7x longer. So once the start-up notices are out, stdio
/// mode points stderr at `--log FILE` (or /dev/null) and GDB stops polling.
fn detach_stderr(log: Option<&Path>) {
    use std::os::fd::AsRawFd;
    let file = match log {
        Some(p) => OpenOptions::new().create(true).append(true).open(p),
        None => OpenOptions::new().write(true).open("/dev/null"),
    };
    match file {
        // SAFETY: dup2 onto fd 2 only replaces what stderr refers to.
        Ok(f) => unsafe {
            libc::dup2(f.as_raw_fd(), 2);
        },
        Err(e) => eprintln!("corestub: cannot open the log file: {e}"),
    }
}

/// Builds what the first packets need (DWARF layouts, the task list) so
/// that it is ready when the client connects; says on stderr when task
/// threads are unavailable.
pub(super) fn warm_up(s: &Session) {
    let _ = s.threads();
    if s.mode == corestub::target::ThreadMode::All
        && let Some(e) = &s.cpu_state().error
    {
        // stderr is GDB's terminal here: the user sees this.
        eprintln!("corestub: only CPU threads are shown: {e}");
    }
}

pub fn run(a: ServeArgs) -> CliResult {
    if let Some(fd) = a.handoff_fd {
        match super::handoff::send_stdio(fd) {
            Ok(()) => return Ok(ExitCode::SUCCESS),
            // e.g. `target remote | ...` replayed after `corestub gdb` ended
            Err(e) => log::debug!("hand-off on fd {fd} failed ({e}): serving by myself"),
        }
    }
    if a.dump.live.qemu_ram.is_some() {
        // Before any thread starts: SIGINT/SIGTERM go to the thread that
        // resumes the guest before exiting.
        live::block_signals();
    }
    let opened = session::open(&a.dump)?;
    let served = Served::of(&opened);
    let session = opened.session.clone();
    let live = opened.live.clone();
    if let Some(l) = &live {
        live::spawn_signal_thread(l.clone());
    }
    // However `run` ends (an accept error, a panic unwinding), a guest that
    // a connection thread paused is resumed before the process exits.
    let _release = live.clone().map(live::ReleaseOnDrop);
    // Warm up what the first packets need (DWARF layouts, the task list)
    // while the client is still connecting.
    {
        let s = session.clone();
        let detach = a.stdio.then(|| a.log.clone());
        std::thread::spawn(move || {
            warm_up(&s);
            if let Some(log) = detach {
                detach_stderr(log.as_deref());
            }
        });
    }
    if a.stdio {
        // stdout belongs to the protocol; everything else goes to stderr.
        use std::os::fd::AsFd as _;
        let stdin = io::stdin().as_fd().try_clone_to_owned()?;
        serve_one(
            session,
            served,
            debugger_reader(stdin.into()),
            Box::new(io::stdout()),
        );
        report_stats();
        return Ok(ExitCode::SUCCESS);
    }
    let banner = |addr: &str| {
        let k = &session.kernel;
        eprintln!(
            "corestub: serving {}{} ({}, {} CPUs{}) on {addr}",
            match &served {
                Served::Live(_) => "live guest RAM ",
                Served::Running(_) => "the running kernel, read-only, ",
                Served::Dump => "",
            },
            k.dump.path.display(),
            k.arch.name(),
            k.cpus.len(),
            session
                .panic_cpu
                .map(|c| format!(", panic on CPU {c}"))
                .unwrap_or_default()
        );
        match &opened.vmlinux {
            Some(v) => {
                for c in session::gdb_symbol_commands(&session.kernel, v) {
                    eprintln!("corestub: in GDB: {c}");
                }
            }
            None => eprintln!(
                "corestub: no matching vmlinux found; in GDB: add-symbol-file VMLINUX -o {:#x}{}",
                session.kernel.kaslr_offset,
                if session::percpu_at_zero(&session.kernel) {
                    " -s .data..percpu 0"
                } else {
                    ""
                }
            ),
        }
    };
    if let Some(path) = a.unix {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::remove_file(&path);
        // Created 0600 from the start: a umask around bind leaves no window
        // in which another user could connect (chmod after bind would).
        // SAFETY: umask only changes this process's file-creation mask; no
        // other thread creates files during start-up.
        let old = unsafe { libc::umask(0o177) };
        let bound = std::os::unix::net::UnixListener::bind(&path);
        // SAFETY: restores the mask saved above.
        unsafe { libc::umask(old) };
        let listener = bound?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        banner(&format!("unix socket {}", path.display()));
        print_scripts_hint();
        eprintln!("corestub:         target remote {}", path.display());
        for stream in listener.incoming() {
            let stream = stream?;
            let session = session.clone();
            let served = served.clone();
            let w = stream.try_clone()?;
            std::thread::spawn(move || serve_one(session, served, Box::new(stream), Box::new(w)));
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !a.listen.ip().is_loopback() {
        if !a.allow_remote {
            return Err(format!(
                "refusing to listen on {}: not a loopback address, and the dump may hold secrets (keys, passwords). Use --allow-remote to do it anyway.",
                a.listen
            )
            .into());
        }
        eprintln!(
            "corestub: WARNING: listening on {} — anyone who can reach it can read all of the dump's memory",
            a.listen
        );
    }
    let listener = TcpListener::bind(a.listen)?;
    let addr = listener.local_addr()?;
    banner(&addr.to_string());
    print_scripts_hint();
    eprintln!("corestub:         target remote {addr}");
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                log::warn!("accept failed: {e}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let session = session.clone();
        let served = served.clone();
        let w = stream.try_clone()?;
        std::thread::spawn(move || serve_one(session, served, Box::new(stream), Box::new(w)));
    }
    Ok(ExitCode::SUCCESS)
}

/// A line of the banner's GDB commands: corestub's scripts (dmesg, ps,
/// sys, ...), from wherever `corestub gdb` would take them. Printed before
/// the `target remote` line, which stays last: a wrapper that reads the
/// banner up to it and then closes the pipe must not make a later line
/// fail (and an ignored write error: never a panic on a closed stderr).
fn print_scripts_hint() {
    use std::io::Write;
    let line = match scripts::dir() {
        Ok((dir, _)) => format!(
            "corestub:         source {}",
            dir.join(scripts::MAIN).display()
        ),
        Err(e) => format!("corestub: no GDB scripts: {e}"),
    };
    let _ = writeln!(std::io::stderr(), "{line}");
}
