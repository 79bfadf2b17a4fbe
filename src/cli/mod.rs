//! The command line (clap). Names are fixed by the project's docs:
//! `corestub serve`, `corestub gdb`, `corestub lldb`, `corestub info`, and
//! for installing: `corestub man`, `corestub completions`.

mod debuginfod;
mod gdb;
mod gdb_index;
mod handoff;
mod info;
mod live;
mod lldb;
mod manual;
mod nodebug;
mod raw;
mod running;
mod scripts;
mod serve;
mod session;
mod vmlinux;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `corestub --version`: ours, and the vendored gdbstub's with its patch
/// level (build.rs counts vendor/gdbstub/PATCHES.md's entries).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (gdbstub ",
    env!("CORESTUB_GDBSTUB_VERSION"),
    " + corestub patches 1-",
    env!("CORESTUB_GDBSTUB_PATCHES"),
    ")"
);

#[derive(Parser)]
#[command(
    name = "corestub",
    version = VERSION,
    about = "Serve a Linux crash dump to GDB/LLDB as a stopped remote target"
)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve DUMP over the GDB remote protocol (TCP or stdio).
    Serve(serve::ServeArgs),
    /// Start GDB connected to DUMP, with vmlinux loaded for KASLR and scripts sourced.
    #[command(after_long_help = scripts::LOOKUP_HELP)]
    Gdb(gdb::GdbArgs),
    /// Start LLDB connected to DUMP, with vmlinux loaded for KASLR.
    Lldb(lldb::LldbArgs),
    /// Print a crash-like summary of DUMP.
    Info(info::InfoArgs),
    /// Write a man page (roff) for corestub or one of its commands to stdout.
    Man(manual::ManArgs),
    /// Write a shell completion script to stdout.
    Completions(manual::CompletionsArgs),
}

pub type CliResult = Result<ExitCode, Box<dyn std::error::Error>>;

pub fn run() -> CliResult {
    match Cli::parse().cmd {
        Cmd::Serve(a) => serve::run(a),
        Cmd::Gdb(a) => gdb::run(a),
        Cmd::Lldb(a) => lldb::run(a),
        Cmd::Info(a) => info::run(a),
        Cmd::Man(a) => manual::man(a),
        Cmd::Completions(a) => manual::completions(a),
    }
}

/// Options shared by commands that open a dump.
#[derive(clap::Args, Clone)]
pub struct DumpArgs {
    /// Debug vmlinux matching the dump (found by build-id if omitted).
    #[arg(long)]
    pub vmlinux: Option<PathBuf>,
    /// Threads the debugger sees: `cpus` (one per CPU) or `all` (CPUs, then
    /// every task). Default: all, except for `corestub lldb` (cpus: LLDB 14
    /// symbolises every thread's frame and becomes very slow with hundreds).
    #[arg(long, value_enum)]
    pub threads: Option<Threads>,
    /// The dump file (ELF vmcore, kdump-compressed, flattened); for a
    /// `makedumpfile --split` dump, every part (any order). Without DUMP
    /// (and without --raw-ram/--qemu-ram): the running kernel, read-only
    /// through /proc/kcore (needs root).
    #[arg(value_name = "DUMP")]
    pub dump: Vec<PathBuf>,
    #[command(flatten)]
    pub raw: raw::RawArgs,
    #[command(flatten)]
    pub live: live::LiveArgs,
}

impl DumpArgs {
    /// The dump file, the raw RAM file, a live guest's RAM file, or
    /// /proc/kcore.
    pub fn path(&self) -> &std::path::Path {
        self.dump
            .first()
            .map(PathBuf::as_path)
            .or(self.raw.raw_ram.as_deref())
            .or(self.live.qemu_ram.as_deref())
            .unwrap_or(std::path::Path::new(corestub::dump::kcore::PROC_KCORE))
    }

    /// The running kernel's kcore when that is what is served: no DUMP
    /// given (nor --raw-ram/--qemu-ram), or DUMP is /proc/kcore itself.
    pub fn running_kernel(&self) -> Option<&std::path::Path> {
        if self.raw.raw_ram.is_some() || self.live.qemu_ram.is_some() {
            return None;
        }
        match self.dump.as_slice() {
            [] => Some(self.path()),
            [one] if corestub::dump::kcore::is_proc_kcore(one) => Some(one),
            _ => None,
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Threads {
    Cpus,
    All,
}

impl DumpArgs {
    /// The thread mode asked for, or `all`.
    pub fn thread_mode(&self) -> Threads {
        self.threads.unwrap_or(Threads::All)
    }
}

impl Threads {
    /// The flag's value as typed on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Threads::Cpus => "cpus",
            Threads::All => "all",
        }
    }
}

impl From<Threads> for corestub::target::ThreadMode {
    fn from(t: Threads) -> Self {
        match t {
            Threads::Cpus => Self::Cpus,
            Threads::All => Self::All,
        }
    }
}
