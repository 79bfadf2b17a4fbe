//! The running kernel without a debug vmlinux: what the host itself
//! offers beside kcore for the symbol file built by [`super::nodebug`]:
//! the kernel's BTF file (`/sys/kernel/btf/vmlinux`, since 5.4) and, for a
//! kernel whose symbol table in memory cannot be decoded, `/proc/kallsyms`;
//! `/sys/kernel/notes`' build-id names the cached file when VMCOREINFO
//! has none.

use std::path::{Path, PathBuf};

use corestub::kernel::Kernel;
use corestub::kernel::kallsyms::{KSym, Kallsyms};

use super::nodebug::HostFiles;

/// The kernel's own BTF, exported by sysfs.
const SYS_BTF: &str = "/sys/kernel/btf/vmlinux";
/// The kernel's symbols as text (addresses need root: kptr_restrict).
const PROC_KALLSYMS: &str = "/proc/kallsyms";

/// The host's BTF file, and /proc/kallsyms when memory's table cannot be
/// read; what is missing is said in the log.
pub fn host_files(k: &Kernel) -> HostFiles {
    let btf = Path::new(SYS_BTF).exists().then(|| PathBuf::from(SYS_BTF));
    if btf.is_none() {
        log::info!("no {SYS_BTF}: the BTF in memory is used");
    }
    let kallsyms = match k.kallsyms() {
        Ok(_) => None,
        Err(e) => {
            log::info!("kallsyms in memory: {e}; trying {PROC_KALLSYMS}");
            read_proc_kallsyms(Path::new(PROC_KALLSYMS))
                .map_err(|e| log::warn!("{PROC_KALLSYMS}: {e}"))
                .ok()
        }
    };
    HostFiles {
        btf,
        kallsyms,
        build_id: corestub::dump::kcore::sys_kernel_build_id(),
    }
}

fn read_proc_kallsyms(path: &Path) -> Result<Kallsyms, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    parse_kallsyms(&text)
}

/// The kernel's own symbols of a `/proc/kallsyms` text (`ADDR TYPE NAME`,
/// module symbols with a `[module]` tag left out), in its address order.
/// All-zero addresses (kptr_restrict, no CAP_SYSLOG) are an error. Per-CPU
/// symbols are offsets (absolute per-CPU, x86_64 SMP) when the per-CPU
/// area ends below the kernel text.
fn parse_kallsyms(text: &str) -> Result<Kallsyms, String> {
    let mut syms = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace();
        let (Some(addr), Some(kind), Some(name), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            // a fourth word is a module's tag: not the kernel image
            continue;
        };
        let addr = u64::from_str_radix(addr, 16)
            .map_err(|e| format!("line {}: address {addr:?}: {e}", i + 1))?;
        let kind = match kind.as_bytes() {
            [k] => *k,
            _ => return Err(format!("line {}: type {kind:?}", i + 1)),
        };
        syms.push(KSym {
            name: name.to_string(),
            addr,
            kind,
        });
    }
    if syms.is_empty() {
        return Err("no symbols".into());
    }
    if syms.iter().all(|s| s.addr == 0) {
        return Err("every address is 0 (kptr_restrict: run as root)".into());
    }
    let by = |n: &str| syms.iter().find(|s| s.name == n).map(|s| s.addr);
    let percpu_absolute = matches!(
        (by("__per_cpu_end"), by("_stext")),
        (Some(end), Some(text)) if end < text
    );
    Ok(Kallsyms::from_symbols(syms, percpu_absolute))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_kallsyms_text() {
        let text = "0000000000000000 A fixed_percpu_data\n\
                    000000000002d000 A __per_cpu_end\n\
                    ffffffffa3000000 T _stext\n\
                    ffffffffa3001000 t do_one_initcall\n\
                    ffffffffc0100000 t virtnet_probe\t[virtio_net]\n";
        let k = parse_kallsyms(text).unwrap();
        assert_eq!(k.syms.len(), 4);
        assert!(k.percpu_absolute);
        assert_eq!(k.addr("do_one_initcall"), Some(0xffffffffa3001000));
        assert_eq!(k.addr("virtnet_probe"), None);
        assert!(k.syms[3].is_text());
    }

    #[test]
    fn proc_kallsyms_hidden_or_per_cpu_in_the_image() {
        let hidden = "0000000000000000 T _stext\n0000000000000000 t f\n";
        assert!(
            parse_kallsyms(hidden)
                .unwrap_err()
                .contains("kptr_restrict")
        );
        let arm64 = "ffff800008000000 T _stext\nffff800009a00000 D __per_cpu_end\n";
        assert!(!parse_kallsyms(arm64).unwrap().percpu_absolute);
        assert!(parse_kallsyms("zz T f\n").is_err());
    }
}
