//! A symbol file built from the dump alone, laid out like the kernel's
//! vmlinux so that GDB, LLDB and [`super::symbols::Vmlinux`] load it the
//! same way: kallsyms symbols at their link-time addresses (runtime minus
//! the KASLR offset; absolute per-CPU offsets as they are, in a
//! `.data..percpu` section at 0 as x86_64 SMP kernels link it), section
//! headers that place them (NOBITS: there is no code or data in the file),
//! the kernel's build-id note, and whatever debug sections the caller
//! generated (DWARF types from BTF, CFI from ORC). An empty
//! `.corestub.kallsyms` section says that symbol sizes, which kallsyms
//! does not give, run to the next symbol.
//!
//! Written with `object`'s low-level ELF writer: its `Object` builder makes
//! relocatable files, whose sections have no addresses.

use object::elf;
use object::write::StringId;
use object::write::elf::{FileHeader, ProgramHeader, SectionHeader, SectionIndex, Sym, Writer};

use super::kallsyms::{KSym, Kallsyms};
use super::symbols::KALLSYMS_MARKER;
use crate::addr::Arch;

/// What goes into the file besides the symbols.
pub struct SymbolFileParts<'a> {
    pub arch: Arch,
    /// The kernel's GNU build-id, raw bytes.
    pub build_id: Option<Vec<u8>>,
    pub kaslr_offset: u64,
    /// Extra non-allocated sections by name (`.debug_info`, ...).
    pub debug_sections: Vec<(&'static str, Vec<u8>)>,
    pub kallsyms: &'a Kallsyms,
}

/// A section of the image: link-time range, executable or not.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Region {
    name: &'static str,
    start: u64,
    end: u64,
    exec: bool,
}

/// Where a symbol goes: its link-time address and region (`None`: SHN_ABS).
struct Placed<'a> {
    sym: &'a KSym,
    addr: u64,
    region: Option<usize>,
    size: u64,
}

/// Link-time address of a kallsyms symbol (None: below the KASLR offset,
/// not part of the image).
fn link_addr(k: &Kallsyms, s: &KSym, kaslr: u64, percpu_end: Option<u64>) -> Option<u64> {
    if k.percpu_absolute && percpu_end.is_some_and(|e| s.addr <= e) {
        return Some(s.addr);
    }
    s.addr.checked_sub(kaslr)
}

/// The link-time address of kallsyms symbol `name` (what the generated
/// file's symbol and DWARF say for it).
pub fn link_address(k: &Kallsyms, name: &str, kaslr: u64) -> Option<u64> {
    let addr = k.addr(name)?;
    let percpu_end = k.addr("__per_cpu_end");
    if k.percpu_absolute && percpu_end.is_some_and(|e| addr <= e) {
        return Some(addr);
    }
    addr.checked_sub(kaslr)
}

/// The image's sections from the kernel's own section markers: text
/// `[_text, _etext)`, init text `[_sinittext, _einittext)`, and the data
/// around them up to `_end`; all one executable range when the markers are
/// missing or out of order.
fn regions(k: &Kallsyms, kaslr: u64, percpu_end: Option<u64>) -> Vec<Region> {
    let at = |n: &str| k.addr(n).and_then(|a| a.checked_sub(kaslr));
    let mut v = Vec::new();
    if let Some(end) = percpu_end.filter(|_| k.percpu_absolute) {
        v.push(Region {
            name: ".data..percpu",
            start: 0,
            end,
            exec: false,
        });
    }
    let marks = (
        at("_text").or(at("_stext")),
        at("_etext"),
        at("_sinittext"),
        at("_einittext"),
        at("_end"),
    );
    if let (Some(text), Some(etext), Some(sinit), Some(einit), Some(end)) = marks
        && text < etext
        && etext <= sinit
        && sinit < einit
        && einit <= end
    {
        for (name, start, end, exec) in [
            (".text", text, etext, true),
            (".data", etext, sinit, false),
            (".init.text", sinit, einit, true),
            (".init.data", einit, end, false),
        ] {
            if start < end {
                v.push(Region {
                    name,
                    start,
                    end,
                    exec,
                });
            }
        }
        return v;
    }
    let image = k
        .syms
        .iter()
        .filter(|s| !(k.percpu_absolute && percpu_end.is_some_and(|e| s.addr <= e)))
        .filter_map(|s| s.addr.checked_sub(kaslr));
    if let (Some(lo), Some(hi)) = (image.clone().min(), image.max()) {
        v.push(Region {
            name: ".text",
            start: lo,
            end: hi.saturating_add(1),
            exec: true,
        });
    }
    v
}

/// Every symbol placed in a region, with a size running to the next
/// symbol (or the region's end).
fn place<'a>(k: &'a Kallsyms, kaslr: u64, regions: &[Region]) -> Vec<Placed<'a>> {
    let percpu_end = k.addr("__per_cpu_end");
    let mut placed: Vec<Placed> = k
        .syms
        .iter()
        .map(|s| {
            let addr = link_addr(k, s, kaslr, percpu_end);
            let region = addr.and_then(|a| {
                regions
                    .iter()
                    .position(|r| r.start <= a && a < r.end)
                    .or_else(|| regions.iter().position(|r| r.end == a))
            });
            Placed {
                sym: s,
                addr: addr.unwrap_or(s.addr),
                region,
                size: 0,
            }
        })
        .collect();
    placed.sort_by_key(|p| p.addr);
    for i in 0..placed.len() {
        let Some(r) = placed[i].region else { continue };
        let next = placed[i + 1..]
            .iter()
            .find(|p| p.region == Some(r) && p.addr > placed[i].addr)
            .map_or(regions[r].end, |p| p.addr);
        placed[i].size = next.saturating_sub(placed[i].addr);
    }
    placed
}

fn build_id_note(id: &[u8]) -> Vec<u8> {
    let mut n = Vec::with_capacity(16 + id.len() + 3);
    n.extend_from_slice(&4u32.to_le_bytes());
    n.extend_from_slice(&(id.len() as u32).to_le_bytes());
    n.extend_from_slice(&elf::NT_GNU_BUILD_ID.to_le_bytes());
    n.extend_from_slice(b"GNU\0");
    n.extend_from_slice(id);
    n.resize(n.len().next_multiple_of(4), 0);
    n
}

/// The symbol file's bytes.
pub fn write(parts: &SymbolFileParts) -> Result<Vec<u8>, String> {
    let k = parts.kallsyms;
    let percpu_end = k.addr("__per_cpu_end");
    let regions = regions(k, parts.kaslr_offset, percpu_end);
    let placed = place(k, parts.kaslr_offset, &regions);
    let note = parts.build_id.as_deref().map(build_id_note);

    let mut out = Vec::new();
    let mut w = Writer::new(object::Endianness::Little, true, &mut out);
    w.reserve_file_header();
    // LLDB places an image by its segments: one per region
    w.reserve_program_headers(regions.len() as u32);
    w.reserve_null_section_index();
    let region_ids: Vec<(SectionIndex, StringId)> = regions
        .iter()
        .map(|r| {
            (
                w.reserve_section_index(),
                w.add_section_name(r.name.as_bytes()),
            )
        })
        .collect();
    let note_id = note.as_ref().map(|n| {
        let name = w.add_section_name(b".note.gnu.build-id");
        (w.reserve_section_index(), name, w.reserve(n.len(), 4))
    });
    let marker_name = w.add_section_name(KALLSYMS_MARKER.as_bytes());
    w.reserve_section_index();
    let debug_ids: Vec<(StringId, usize)> = parts
        .debug_sections
        .iter()
        .map(|(name, bytes)| {
            let id = w.add_section_name(name.as_bytes());
            w.reserve_section_index();
            (id, w.reserve(bytes.len(), 8))
        })
        .collect();
    w.reserve_symtab_section_index();
    w.reserve_strtab_section_index();
    w.reserve_shstrtab_section_index();

    // locals first: the symbol table's sh_info is the first global
    let order: Vec<&Placed> = placed
        .iter()
        .filter(|p| !p.sym.is_global())
        .chain(placed.iter().filter(|p| p.sym.is_global()))
        .collect();
    let num_local = 1 + placed.iter().filter(|p| !p.sym.is_global()).count() as u32;
    w.reserve_null_symbol_index();
    let names: Vec<StringId> = order
        .iter()
        .map(|p| {
            w.reserve_symbol_index(p.region.map(|r| region_ids[r].0));
            w.add_string(p.sym.name.as_bytes())
        })
        .collect();
    w.reserve_symtab();
    if w.symtab_shndx_needed() {
        return Err("more sections than an ELF symbol table indexes directly".into());
    }
    w.reserve_strtab();
    w.reserve_shstrtab();
    w.reserve_section_headers();

    w.write_file_header(&FileHeader {
        os_abi: elf::ELFOSABI_NONE,
        abi_version: 0,
        e_type: elf::ET_EXEC,
        e_machine: match parts.arch {
            Arch::X86_64 => elf::EM_X86_64,
            Arch::Aarch64 => elf::EM_AARCH64,
            // the file is ELF64 with 64-bit DWARF and CFI
            Arch::I386 | Arch::Arm => {
                return Err("no symbol file is built for 32-bit kernels yet".into());
            }
        },
        e_entry: 0,
        e_flags: 0,
    })
    .map_err(|e| e.to_string())?;
    w.write_align_program_headers();
    for r in &regions {
        let flags = if r.exec {
            elf::PF_R | elf::PF_X
        } else {
            elf::PF_R | elf::PF_W
        };
        w.write_program_header(&ProgramHeader {
            p_type: elf::PT_LOAD,
            p_flags: flags,
            p_offset: 0,
            p_vaddr: r.start,
            p_paddr: r.start,
            p_filesz: 0,
            p_memsz: r.end - r.start,
            p_align: 1,
        });
    }
    if let Some(n) = &note {
        w.write_align(4);
        w.write(n);
    }
    for (_, bytes) in &parts.debug_sections {
        w.write_align(8);
        w.write(bytes);
    }
    w.write_null_symbol();
    for (p, name) in order.iter().zip(names) {
        let kind = match (p.region, p.sym.is_text()) {
            (None, _) => elf::STT_NOTYPE,
            (Some(_), true) => elf::STT_FUNC,
            (Some(_), false) => elf::STT_OBJECT,
        };
        let bind = if p.sym.is_global() {
            elf::STB_GLOBAL
        } else {
            elf::STB_LOCAL
        };
        w.write_symbol(&Sym {
            name: Some(name),
            section: p.region.map(|r| region_ids[r].0),
            st_info: (bind << 4) | kind,
            st_other: elf::STV_DEFAULT,
            st_shndx: if p.region.is_none() { elf::SHN_ABS } else { 0 },
            st_value: p.addr,
            st_size: p.size,
        });
    }
    w.write_strtab();
    w.write_shstrtab();
    w.write_null_section_header();
    for (r, (_, name)) in regions.iter().zip(&region_ids) {
        let exec = if r.exec {
            elf::SHF_EXECINSTR
        } else {
            elf::SHF_WRITE
        };
        w.write_section_header(&SectionHeader {
            name: Some(*name),
            sh_type: elf::SHT_NOBITS,
            sh_flags: u64::from(elf::SHF_ALLOC | exec),
            sh_addr: r.start,
            sh_offset: 0,
            sh_size: r.end - r.start,
            sh_link: 0,
            sh_info: 0,
            sh_addralign: 1,
            sh_entsize: 0,
        });
    }
    if let (Some((_, name, offset)), Some(n)) = (note_id, &note) {
        w.write_section_header(&SectionHeader {
            name: Some(name),
            sh_type: elf::SHT_NOTE,
            sh_flags: 0,
            sh_addr: 0,
            sh_offset: offset as u64,
            sh_size: n.len() as u64,
            sh_link: 0,
            sh_info: 0,
            sh_addralign: 4,
            sh_entsize: 0,
        });
    }
    w.write_section_header(&SectionHeader {
        name: Some(marker_name),
        sh_type: elf::SHT_PROGBITS,
        sh_flags: 0,
        sh_addr: 0,
        sh_offset: 0,
        sh_size: 0,
        sh_link: 0,
        sh_info: 0,
        sh_addralign: 1,
        sh_entsize: 0,
    });
    for ((name, offset), (_, bytes)) in debug_ids.iter().zip(&parts.debug_sections) {
        w.write_section_header(&SectionHeader {
            name: Some(*name),
            sh_type: elf::SHT_PROGBITS,
            sh_flags: 0,
            sh_addr: 0,
            sh_offset: *offset as u64,
            sh_size: bytes.len() as u64,
            sh_link: 0,
            sh_info: 0,
            sh_addralign: 1,
            sh_entsize: 0,
        });
    }
    w.write_symtab_section_header(num_local);
    w.write_strtab_section_header();
    w.write_shstrtab_section_header();
    debug_assert_eq!(w.reserved_len(), w.len());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::symbols::{SymKind, Vmlinux};

    fn ks(list: &[(&str, u64, u8)], percpu_absolute: bool) -> Kallsyms {
        Kallsyms::from_symbols(
            list.iter()
                .map(|&(n, a, kind)| KSym {
                    name: n.into(),
                    addr: a,
                    kind,
                })
                .collect(),
            percpu_absolute,
        )
    }

    #[test]
    fn written_file_reads_back_as_a_vmlinux() {
        let kaslr = 0x1000_0000;
        let base = 0xffff_ffff_8100_0000u64 + kaslr;
        let k = ks(
            &[
                ("__per_cpu_start", 0, b'D'),
                ("current_task", 0x40, b'D'),
                ("__per_cpu_end", 0x100, b'D'),
                ("_text", base, b'T'),
                ("start_kernel", base + 0x10, b'T'),
                ("helper", base + 0x30, b't'),
                ("_etext", base + 0x100, b'T'),
                ("init_task", base + 0x200, b'D'),
                ("_sinittext", base + 0x400, b'T'),
                ("_einittext", base + 0x500, b'T'),
                ("_end", base + 0x800, b'B'),
            ],
            true,
        );
        let bytes = write(&SymbolFileParts {
            arch: Arch::X86_64,
            build_id: Some(vec![0xab, 0xcd]),
            kaslr_offset: kaslr,
            debug_sections: vec![],
            kallsyms: &k,
        })
        .unwrap();
        let dir = std::env::temp_dir().join(format!("corestub-symfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vmlinux");
        std::fs::write(&path, &bytes).unwrap();
        let v = Vmlinux::open(&path).unwrap();
        assert_eq!(v.build_id(), Some("abcd"));
        assert!(v.sizes_are_bounds());
        assert!(v.percpu_zero_based());
        let f = v.symbol("start_kernel").unwrap();
        assert_eq!(
            (f.addr, f.size, f.kind),
            (base - kaslr + 0x10, 0x20, SymKind::Func)
        );
        let h = v.symbol("helper").unwrap();
        assert!(!h.global && h.size == 0xd0, "{h:?}");
        let d = v.symbol("init_task").unwrap();
        assert_eq!(d.kind, SymKind::Object);
        assert_eq!(
            v.relocate(v.addr("current_task").unwrap(), kaslr),
            Some(0x40)
        );
        assert_eq!(
            v.relocate(v.addr("init_task").unwrap(), kaslr),
            Some(base + 0x200)
        );
        assert!(!v.symbol("_end").unwrap().absolute);
        std::fs::remove_dir_all(&dir).ok();
    }
}
