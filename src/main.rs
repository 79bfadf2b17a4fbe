//! corestub command line: `serve`, `gdb`, `lldb`, `info` (see `cli`).

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("warn,gdbstub=error"),
    )
    .target(env_logger::Target::Stderr)
    .init();
    match cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("corestub: {e}");
            ExitCode::from(2)
        }
    }
}
