//! `corestub man` and `corestub completions`: the man pages and shell
//! completions, generated from the clap definitions (so they cannot drift
//! from the options the program accepts).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::CommandFactory;

use super::{Cli, CliResult};

#[derive(clap::Args)]
pub struct ManArgs {
    /// The command whose page to write (corestub-COMMAND(1)); default: corestub(1).
    #[arg(value_name = "COMMAND")]
    command: Option<String>,
    /// Write every page (corestub.1, corestub-gdb.1, ...) into DIR instead,
    /// e.g. ~/.local/share/man/man1.
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    dir: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// The full command tree, built (so subcommands carry their
/// `corestub-NAME` display names) and without clap's `help` subcommand,
/// which needs no page of its own.
fn command_tree() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

pub fn man(a: ManArgs) -> CliResult {
    let cmd = command_tree();
    if let Some(dir) = a.dir {
        std::fs::create_dir_all(&dir)?;
        let pages = std::iter::once(cmd.clone()).chain(cmd.get_subcommands().cloned());
        for page in pages {
            page_of(page)
                .generate_to(&dir)
                .map_err(|e| format!("cannot write a man page to {}: {e}", dir.display()))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let page = match &a.command {
        None => cmd,
        Some(name) => cmd.find_subcommand(name).cloned().ok_or_else(|| {
            let names: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
            format!("no command {name:?}; one of: {}", names.join(", "))
        })?,
    };
    let mut roff = Vec::new();
    page_of(page).render(&mut roff)?;
    std::io::stdout().lock().write_all(&roff)?;
    Ok(ExitCode::SUCCESS)
}

/// One page; every page's footer names corestub and its version (clap_mangen
/// would name a subcommand's page after the subcommand alone: "gdb").
fn page_of(cmd: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd).source(format!("corestub {}", super::VERSION))
}

pub fn completions(a: CompletionsArgs) -> CliResult {
    let mut cmd = Cli::command();
    let name = cmd.get_name().to_string();
    clap_complete::generate(a.shell, &mut cmd, name, &mut std::io::stdout().lock());
    Ok(ExitCode::SUCCESS)
}
