//! Options for raw guest RAM (`--raw-ram FILE`), shared by every command
//! that opens a dump.

use std::path::PathBuf;

use corestub::addr::Arch;
use corestub::dump::raw::{Machine, RamChunk, RawOptions};

fn parse_arch(s: &str) -> Result<Arch, String> {
    match s {
        "x86_64" | "x86-64" | "amd64" => Ok(Arch::X86_64),
        "aarch64" | "arm64" => Ok(Arch::Aarch64),
        _ => Err(format!("unknown architecture {s:?} (x86_64, aarch64)")),
    }
}

#[derive(clap::Args, Clone, Debug)]
pub struct RawArgs {
    /// Raw guest RAM instead of a dump (a QEMU memory-backend-file or a copy of one).
    #[arg(long, value_name = "FILE", conflicts_with = "dump")]
    pub raw_ram: Option<PathBuf>,
    /// Architecture of the raw RAM's guest.
    #[arg(long, value_parser = parse_arch, default_value = "x86_64", requires = "raw_ram")]
    pub arch: Arch,
    /// QEMU machine whose RAM layout the file follows (default: pc on x86_64, virt on aarch64).
    #[arg(long, requires = "raw_ram")]
    pub machine: Option<Machine>,
    /// Guest-physical layout instead of the machine's: GPA:FILE_OFFSET:LENGTH (repeatable; hex with 0x, or K/M/G).
    #[arg(long, value_name = "GPA:OFFSET:LEN", requires = "raw_ram")]
    pub ram_map: Vec<RamChunk>,
    /// CPU registers: QEMU `info registers -a` output saved to a file.
    #[arg(long, value_name = "FILE", requires = "raw_ram")]
    pub regs: Option<PathBuf>,
    /// Number of CPUs when no registers file is given (default 1).
    #[arg(long, requires = "raw_ram")]
    pub cpus: Option<usize>,
}

impl RawArgs {
    pub fn options(&self) -> Result<RawOptions, String> {
        let registers = match &self.regs {
            Some(p) => {
                Some(std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?)
            }
            None => None,
        };
        Ok(RawOptions {
            arch: self.arch,
            ram_map: self.ram_map.clone(),
            machine: self.machine,
            registers,
            cpus: self.cpus,
        })
    }

    /// The same options as command-line words (for `corestub gdb` to pass
    /// on to `corestub serve`), paths made absolute.
    pub fn to_args(&self) -> std::io::Result<Vec<String>> {
        let mut v = Vec::new();
        let Some(ram) = &self.raw_ram else {
            return Ok(v);
        };
        let abs = |p: &PathBuf| std::fs::canonicalize(p).map(|p| p.display().to_string());
        v.extend(["--raw-ram".into(), abs(ram)?]);
        v.extend(["--arch".into(), self.arch.name().into()]);
        if let Some(m) = self.machine {
            v.extend(["--machine".into(), format!("{m:?}").to_lowercase()]);
        }
        for c in &self.ram_map {
            v.extend([
                "--ram-map".into(),
                format!("{:#x}:{:#x}:{:#x}", c.gpa, c.offset, c.len),
            ]);
        }
        if let Some(r) = &self.regs {
            v.extend(["--regs".into(), abs(r)?]);
        }
        if let Some(n) = self.cpus {
            v.extend(["--cpus".into(), n.to_string()]);
        }
        Ok(v)
    }
}
