//! No debug vmlinux anywhere: a symbol file built from the dump alone
//! (kallsyms symbols; see [`corestub::kernel::symfile`]), cached by the
//! kernel's build-id under `$XDG_CACHE_HOME/corestub/nodebug/` (else
//! `~/.cache/corestub/nodebug/`), so a second session on the same kernel
//! (any boot: the file holds link-time addresses) starts at once.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use corestub::kernel::Kernel;
use corestub::kernel::btf::Btf;
use corestub::kernel::btf_dwarf::{self, DebugSections, FoundVariable};
use corestub::kernel::init_task_search::IdleTaskLayout;
use corestub::kernel::kallsyms::{KSym, Kallsyms, KernelMemory as _};
use corestub::kernel::orc;
use corestub::kernel::symbols::Vmlinux;
use corestub::kernel::symfile::{self, SymbolFileParts};

/// Bumped whenever the generated file's content changes, so that older
/// cached files are not reused.
const FORMAT: &str = "v7";

fn cache_root() -> Option<PathBuf> {
    let env = |k| std::env::var_os(k).filter(|v| !v.is_empty());
    let base = env("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("corestub/nodebug").join(FORMAT))
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    s.len()
        .is_multiple_of(2)
        .then(|| {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
                .collect()
        })
        .flatten()
}

/// What a running host offers beside the kernel's memory (see
/// cli/running.rs); nothing for a dump.
#[derive(Default)]
pub struct HostFiles {
    /// The kernel's BTF file (`/sys/kernel/btf/vmlinux`, the same bytes as
    /// `__start_BTF`..`__stop_BTF`), preferred to the copy in memory; read
    /// only when the symbol file is built (not on a cache hit).
    pub btf: Option<PathBuf>,
    /// `/proc/kallsyms`, for a kernel whose table in memory cannot be
    /// decoded (before 6.0 VMCOREINFO does not locate it).
    pub kallsyms: Option<Kallsyms>,
    /// The build-id of `/sys/kernel/notes`, for a VMCOREINFO without
    /// BUILD-ID (before 5.13).
    pub build_id: Option<String>,
}

/// The kernel's symbol table: from memory, else the host's.
fn symbol_table<'a>(k: &'a Kernel, host: &'a HostFiles) -> Result<&'a Kallsyms, String> {
    k.kallsyms().or_else(|e| {
        host.kallsyms
            .as_ref()
            .ok_or_else(|| format!("no kallsyms: {e}"))
    })
}

/// The generated symbol file for `k`'s kernel: the cached one, else built
/// now. Errors say why none could be made (no kallsyms, cache unwritable).
pub fn symbol_file(k: &Kernel, host: &HostFiles) -> Result<(PathBuf, Vmlinux), String> {
    let build_id = k
        .vmcoreinfo
        .build_id()
        .or(host.build_id.as_deref())
        .map(str::to_ascii_lowercase);
    let root = cache_root().ok_or("no cache directory ($XDG_CACHE_HOME and $HOME unset)")?;
    let path = match &build_id {
        Some(id) => root.join(id).join("vmlinux"),
        // no build-id: keyed by the symbol table itself (link-time, so the
        // same for every boot of one kernel)
        None => {
            let kallsyms = symbol_table(k, host)?;
            root.join(format!(
                "no-build-id-{:016x}",
                table_hash(kallsyms, k.kaslr_offset)
            ))
            .join("vmlinux")
        }
    };
    if path.is_file()
        && let Ok(v) = Vmlinux::open(&path)
        && v.build_id() == build_id.as_deref()
    {
        log::info!("symbols built from the dump, cached: {}", path.display());
        return Ok((path, v));
    }
    let t0 = std::time::Instant::now();
    let kallsyms = symbol_table(k, host)?;
    let t_syms = t0.elapsed();
    let (debug_sections, found) = match types_from_btf(k, kallsyms, host.btf.as_ref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("corestub: no types for the symbol file: {e}");
            (Vec::new(), Vec::new())
        }
    };
    let t_types = t0.elapsed();
    let with_found = with_found_symbols(kallsyms, &found, k.kaslr_offset);
    let bytes = symfile::write(&SymbolFileParts {
        arch: k.arch,
        build_id: build_id.as_deref().and_then(hex_bytes),
        kaslr_offset: k.kaslr_offset,
        debug_sections,
        kallsyms: with_found.as_ref().unwrap_or(kallsyms),
    })?;
    log::info!("kallsyms read in {t_syms:?}, BTF to DWARF by {t_types:?}");
    write_atomically(&path, &bytes)?;
    log::info!(
        "symbol file built from the dump in {:?}: {} ({} symbols)",
        t0.elapsed(),
        path.display(),
        kallsyms.syms.len()
    );
    let v = Vmlinux::open(&path).map_err(|e| e.to_string())?;
    Ok((path, v))
}

/// Largest table read (a distribution kernel's BTF is ~5 MiB, ORC ~3 MiB).
const MAX_TABLE: u64 = 256 << 20;

/// `kallsyms` plus the data symbols found by their structure (global
/// `D` symbols at their runtime addresses), or `None` when none were.
fn with_found_symbols(
    kallsyms: &Kallsyms,
    found: &[FoundVariable],
    kaslr: u64,
) -> Option<Kallsyms> {
    if found.is_empty() {
        return None;
    }
    let mut syms = kallsyms.syms.clone();
    syms.extend(found.iter().filter_map(|v| {
        Some(KSym {
            name: v.name.clone(),
            addr: v.link_addr.checked_add(kaslr)?,
            kind: b'D',
        })
    }));
    Some(Kallsyms::from_symbols(syms, kallsyms.percpu_absolute))
}

/// Variables the kernel layer finds by their structure when kallsyms
/// does not name them (no CONFIG_KALLSYMS_ALL): `init_task`, with the
/// member offsets of `btf`'s `task_struct`. Not `task_state_array`, whose
/// entry count the kernel layer would then take from the symbol's size,
/// which a symbol file without sizes cannot give.
fn found_variables(k: &Kernel, kallsyms: &Kallsyms, btf: &Btf) -> Vec<FoundVariable> {
    if kallsyms.addr("init_task").is_some() {
        return Vec::new();
    }
    let found = IdleTaskLayout::from_btf(btf).and_then(|l| k.search_init_task(&l));
    found
        .and_then(|f| f.addr.checked_sub(k.kaslr_offset))
        .map(|link_addr| FoundVariable {
            name: "init_task".into(),
            link_addr,
            struct_name: "task_struct",
        })
        .into_iter()
        .collect()
}

/// The kernel's BTF (the host's file, else `__start_BTF`..`__stop_BTF`)
/// as DWARF sections, plus (x86_64) its ORC tables as `.debug_frame`, and
/// the variables found by their structure that the DWARF types.
fn types_from_btf(
    k: &Kernel,
    kallsyms: &Kallsyms,
    file: Option<&PathBuf>,
) -> Result<(DebugSections, Vec<FoundVariable>), String> {
    let from_file = file.and_then(|path| read_btf_file(path).map(|b| (path, b)));
    let in_memory;
    let btf = match from_file
        .as_ref()
        .and_then(|(path, bytes)| btf_of_file(path, bytes))
    {
        Some(btf) => btf,
        None => {
            in_memory = btf_in_memory(k, kallsyms)?;
            let (start, blob) = &in_memory;
            Btf::parse(blob).map_err(|e| format!("{e} (BTF at {start:#x})"))?
        }
    };
    let kaslr = k.kaslr_offset;
    let found = found_variables(k, kallsyms, &btf);
    let mut sections = btf_dwarf::write(
        &btf,
        &|name| symfile::link_address(kallsyms, name, kaslr),
        &found,
    )?;
    if k.arch == corestub::addr::Arch::X86_64 {
        match frames_from_orc(k, kallsyms, &btf) {
            Ok(f) => sections.push((".debug_frame", f)),
            Err(e) => eprintln!("corestub: no unwind tables for the symbol file: {e}"),
        }
    }
    Ok((sections, found))
}

/// The host's BTF file's bytes, or None (said in the log) if unreadable.
fn read_btf_file(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| log::info!("{}: {e}; the BTF in memory is used", path.display()))
        .ok()
}

/// The BTF of the host's file, or None (said in the log) if it does not
/// parse: the copy in memory is then read instead.
fn btf_of_file<'a>(path: &Path, bytes: &'a [u8]) -> Option<Btf<'a>> {
    match Btf::parse(bytes) {
        Ok(btf) => {
            log::info!("BTF from {} ({} bytes)", path.display(), bytes.len());
            Some(btf)
        }
        Err(e) => {
            log::warn!("{}: {e}; reading the BTF in memory", path.display());
            None
        }
    }
}

/// The BTF blob in kernel memory and its address: between the kallsyms
/// markers, else found by its header.
fn btf_in_memory(k: &Kernel, kallsyms: &Kallsyms) -> Result<(u64, Vec<u8>), String> {
    match (kallsyms.addr("__start_BTF"), kallsyms.addr("__stop_BTF")) {
        (Some(start), Some(stop)) => Ok((start, read_range(k, start, stop, "BTF")?)),
        _ => find_btf(k, kallsyms),
    }
}

/// Bytes scanned at a time while looking for the BTF header.
const SCAN_CHUNK: u64 = 1 << 20;

/// The BTF blob found by its header in the kernel's read-only data
/// (`_etext`..`_sinittext`): kallsyms without CONFIG_KALLSYMS_ALL lists
/// functions only, not `__start_BTF`. The header is recognised by its
/// magic, version, length and sections that follow each other and fit in
/// the range; the blob must then parse.
fn find_btf(k: &Kernel, kallsyms: &Kallsyms) -> Result<(u64, Vec<u8>), String> {
    let none = "kallsyms has no __start_BTF/__stop_BTF and no BTF header was found in the kernel's read-only data (a kernel without CONFIG_DEBUG_INFO_BTF?)";
    let (Some(lo), Some(hi)) = (kallsyms.addr("_etext"), kallsyms.addr("_sinittext")) else {
        return Err(none.into());
    };
    let mut at = lo & !3;
    while at < hi {
        let len = SCAN_CHUNK.min(hi - at) as usize;
        let mut chunk = vec![0u8; len];
        if k.read(at, &mut chunk).is_ok() {
            for off in (0..len.saturating_sub(24)).step_by(4) {
                let h = &chunk[off..off + 24];
                if h[..8] != [0x9f, 0xeb, 1, 0, 24, 0, 0, 0] {
                    continue;
                }
                let w =
                    |i: usize| u64::from(u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]));
                let (type_off, type_len, str_off, str_len) = (w(8), w(12), w(16), w(20));
                let total = 24 + str_off + str_len;
                let start = at + off as u64;
                if type_off != 0 || str_off != type_len || total > hi - start || total > MAX_TABLE {
                    continue;
                }
                let blob = read_range(k, start, start + total, "BTF")?;
                if Btf::parse(&blob).is_ok() {
                    log::info!("BTF found by its header at {start:#x} ({total} bytes)");
                    return Ok((start, blob));
                }
            }
        }
        at += SCAN_CHUNK.min(hi - at).saturating_sub(24) & !3;
        if len <= 24 {
            break;
        }
    }
    Err(none.into())
}

/// Bytes `start..stop` of kernel memory (a table kallsyms delimits).
fn read_range(k: &Kernel, start: u64, stop: u64, what: &str) -> Result<Vec<u8>, String> {
    let len = stop
        .checked_sub(start)
        .filter(|&l| l > 0 && l <= MAX_TABLE)
        .ok_or_else(|| format!("{what} {start:#x}..{stop:#x} is not a plausible range"))?;
    let mut blob = vec![0u8; len as usize];
    k.read(start, &mut blob)
        .map_err(|e| format!("{what} at {start:#x}: {e}"))?;
    Ok(blob)
}

/// The kernel's ORC unwind tables as `.debug_frame`.
fn frames_from_orc(k: &Kernel, kallsyms: &Kallsyms, btf: &Btf) -> Result<Vec<u8>, String> {
    let sym = |n: &str| {
        kallsyms
            .addr(n)
            .ok_or(format!("kallsyms has no {n} (no ORC unwinder)"))
    };
    let (ip0, ip1, e0) = (
        sym("__start_orc_unwind_ip")?,
        sym("__stop_orc_unwind_ip")?,
        sym("__start_orc_unwind")?,
    );
    let layout = orc::EntryLayout::from_btf(btf)?;
    let ips = read_range(k, ip0, ip1, "ORC ip table")?;
    let n = (ips.len() / 4) as u64;
    let e1 = n
        .checked_mul(6)
        .and_then(|l| e0.checked_add(l))
        .ok_or("ORC table size overflows")?;
    let entries = read_range(k, e0, e1, "ORC entries")?;
    let table = orc::decode(&layout, &ips, ip0, &entries, k.kaslr_offset)?;
    let link = |n: &str| kallsyms.addr(n)?.checked_sub(k.kaslr_offset);
    let text = match (link("_stext"), link("_etext")) {
        (Some(lo), Some(hi)) if lo < hi => Some((lo, hi)),
        _ => None,
    };
    orc::debug_frame(
        &table,
        &orc::pt_regs_slots(btf),
        &functions(kallsyms, k.kaslr_offset),
        text,
    )
}

/// Text symbols' link-time ranges, each up to the next symbol.
fn functions(kallsyms: &Kallsyms, kaslr: u64) -> Vec<(u64, u64)> {
    let mut starts: Vec<(u64, bool)> = kallsyms
        .syms
        .iter()
        .filter_map(|s| Some((s.addr.checked_sub(kaslr)?, s.is_text())))
        .collect();
    starts.sort_unstable();
    starts.dedup_by_key(|s| s.0);
    starts
        .windows(2)
        .filter(|w| w[0].1)
        .map(|w| (w[0].0, w[1].0))
        .collect()
}

/// A hash of the names and link-time addresses of `kallsyms`.
fn table_hash(kallsyms: &Kallsyms, kaslr: u64) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for s in &kallsyms.syms {
        s.name.hash(&mut h);
        s.addr.wrapping_sub(kaslr).hash(&mut h);
    }
    h.finish()
}

/// Writes `bytes` to a temporary file beside `path` and renames it into
/// place: a reader never sees a partial file, and two sessions building
/// the same file at once each rename a complete one.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path.parent().ok_or("cache path has no directory")?;
    let ctx = |what: &str, p: &Path, e: std::io::Error| format!("{what} {}: {e}", p.display());
    std::fs::create_dir_all(dir).map_err(|e| ctx("cannot create", dir, e))?;
    let tmp = dir.join(format!(".vmlinux.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        std::fs::remove_file(&tmp).ok();
        ctx("cannot write", path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_id_hex_to_bytes() {
        assert_eq!(hex_bytes("0aff"), Some(vec![0x0a, 0xff]));
        assert_eq!(hex_bytes("0af"), None);
        assert_eq!(hex_bytes("zz"), None);
    }
}
