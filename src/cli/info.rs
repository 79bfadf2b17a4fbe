//! `corestub info`: a crash-like summary of a dump.

use std::process::ExitCode;

use super::{CliResult, DumpArgs, session};

#[derive(clap::Args)]
pub struct InfoArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    dump: DumpArgs,
}

pub fn run(a: InfoArgs) -> CliResult {
    let opened = session::open(&a.dump)?;
    let k = &opened.session.kernel;
    let f = &k.dump.format;
    let mut rows: Vec<(&str, serde_json::Value)> = vec![
        ("dumpfile", k.dump.path.display().to_string().into()),
        ("format", f.name.clone().into()),
        (
            "compression",
            f.codec.clone().unwrap_or_else(|| "none".into()).into(),
        ),
        ("dump_level", f.dump_level.into()),
        ("release", k.vmcoreinfo.osrelease().into()),
        ("machine", k.arch.name().into()),
        ("cpus", k.cpus.len().into()),
        ("panic_cpu", opened.session.panic_cpu.into()),
        ("kaslr_offset", format!("{:#x}", k.kaslr_offset).into()),
        ("page_size", k.paging.page_size().into()),
    ];
    if let Some(v) = &opened.vmlinux {
        rows.push(("vmlinux", v.display().to_string().into()));
    }
    if a.json {
        let obj: serde_json::Map<String, serde_json::Value> =
            rows.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        println!("{}", serde_json::to_string_pretty(&obj)?);
    } else {
        for (key, v) in rows {
            let v = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => "-".into(),
                v => v.to_string(),
            };
            println!("{:>14}: {v}", key.to_uppercase());
        }
    }
    Ok(ExitCode::SUCCESS)
}
