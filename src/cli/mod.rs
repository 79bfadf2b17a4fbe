//! The command line (clap). Names are fixed by the project's docs:
//! `corestub serve`, `corestub gdb`, `corestub lldb`, `corestub info`.

mod gdb;
mod info;
mod lldb;
mod serve;
mod session;
mod vmlinux;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "corestub",
    version,
    about = "Serve a Linux crash dump to GDB/LLDB as a stopped remote target"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve DUMP over the GDB remote protocol (TCP or stdio).
    Serve(serve::ServeArgs),
    /// Start GDB connected to DUMP, with vmlinux loaded for KASLR and scripts sourced.
    Gdb(gdb::GdbArgs),
    /// Start LLDB connected to DUMP, with vmlinux loaded for KASLR.
    Lldb(lldb::LldbArgs),
    /// Print a crash-like summary of DUMP.
    Info(info::InfoArgs),
}

pub type CliResult = Result<ExitCode, Box<dyn std::error::Error>>;

pub fn run() -> CliResult {
    match Cli::parse().cmd {
        Cmd::Serve(a) => serve::run(a),
        Cmd::Gdb(a) => gdb::run(a),
        Cmd::Lldb(a) => lldb::run(a),
        Cmd::Info(a) => info::run(a),
    }
}

/// Options shared by commands that open a dump.
#[derive(clap::Args, Clone)]
pub struct DumpArgs {
    /// Debug vmlinux matching the dump (found by build-id if omitted).
    #[arg(long)]
    pub vmlinux: Option<PathBuf>,
    /// The dump file (ELF vmcore, kdump-compressed, flattened).
    pub dump: PathBuf,
}
