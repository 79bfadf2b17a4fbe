//! The debug vmlinux: ELF symbols, sections, build-id, and (through
//! [`Vmlinux::debug_info`]) its DWARF.
//!
//! The file is mapped read-only and parsed lazily and zero-copy: opening
//! reads the ELF and section headers and the notes; the symbol indexes are
//! built on first use (~20 ms for 120k symbols), the DWARF reader on first
//! use of [`Vmlinux::debug_info`].
//!
//! Addresses are link-time (unrelocated). Relocating by the KASLR offset is
//! the caller's job, with one trap that [`Vmlinux::relocate`] handles: on
//! x86_64 SMP kernels `.data..percpu` is linked at address 0 and per-CPU
//! symbols (`current_task`, `runqueues`, ...) are offsets into each CPU's
//! area, never KASLR-shifted.
//!
//! Distribution vmlinux files may carry `.rela.debug_*` sections (Debian's
//! do); in an ET_EXEC file the debug sections are already final, so the
//! relocations are ignored.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader, Sym};
use object::{Endianness, FileKind};

use super::dwarf::{DebugInfo, DwarfError, SectionBytes};
use crate::addr::Arch;

/// Why a vmlinux could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum VmlinuxError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a usable vmlinux: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Dwarf {
        path: PathBuf,
        #[source]
        source: DwarfError,
    },
}

/// An ELF section of the vmlinux (link-time address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub addr: u64,
    pub size: u64,
    /// SHF_ALLOC: part of the loaded image.
    pub alloc: bool,
}

impl Section {
    pub fn range(&self) -> Range<u64> {
        self.addr..self.addr.saturating_add(self.size)
    }
    pub fn contains(&self, addr: u64) -> bool {
        self.range().contains(&addr)
    }
}

/// What kind of thing a symbol names (from its ELF type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymKind {
    Func,
    Object,
    /// STT_NOTYPE: linker-script and assembler labels (`_stext`, `_text`, ...).
    Label,
    Other,
}

/// One ELF symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Symbol<'a> {
    pub name: &'a str,
    /// Link-time address.
    pub addr: u64,
    pub size: u64,
    pub kind: SymKind,
    pub global: bool,
    /// SHN_ABS: an absolute value, not an address in the image.
    pub absolute: bool,
}

/// Compact symbol record; the name is a range of the string table.
#[derive(Clone, Copy, Debug)]
struct Sym64 {
    name_start: u32,
    name_len: u32,
    addr: u64,
    size: u64,
    kind: SymKind,
    global: bool,
    absolute: bool,
}

struct SymIndex {
    syms: Vec<Sym64>,
    /// name → index into `syms` (a global symbol wins over a local one of
    /// the same name; among equals the first in the table). The table holds
    /// only indexes: names are hashed and compared where they lie, in the
    /// mapped string table (no copy of 10^5 names).
    by_name: hashbrown::HashTable<u32>,
    /// Indexes of address-like symbols (functions, objects, labels; no
    /// absolute, section, file or `$x`/`$d` mapping symbols), sorted by
    /// address; built on first [`Vmlinux::symbolize`].
    by_addr: OnceLock<Vec<u32>>,
}

/// FxHash (rustc's): the symbol and type-name indexes hash ~10^5..10^6
/// short strings at start-up, where SipHash costs tens of milliseconds.
#[derive(Clone, Copy, Default)]
pub(crate) struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        let mut tail = 0u64;
        for (i, &b) in chunks.remainder().iter().enumerate() {
            tail |= u64::from(b) << (8 * i);
        }
        self.0 = (self.0.rotate_left(5) ^ tail ^ bytes.len() as u64).wrapping_mul(K);
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(i)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.0 = (self.0.rotate_left(5) ^ i as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// [`FxHasher`]'s hash of a name, for tables keyed by names that live
/// elsewhere (the mapped string table, the DWARF string sections).
pub(crate) fn fx_hash(bytes: &[u8]) -> u64 {
    use std::hash::Hasher as _;
    let mut h = FxHasher::default();
    h.write(bytes);
    h.finish()
}

/// A debug vmlinux, mapped read-only. Cheap to clone: clones share the
/// mapping and the symbol/DWARF caches (a live target builds a new kernel
/// view at every stop and keeps the parsed DWARF).
#[derive(Clone)]
pub struct Vmlinux(Arc<VmlinuxFile>);

impl std::ops::Deref for Vmlinux {
    type Target = VmlinuxFile;
    fn deref(&self) -> &VmlinuxFile {
        &self.0
    }
}

impl std::fmt::Debug for Vmlinux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Vmlinux {
    /// Maps and parses the ELF headers of `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, VmlinuxError> {
        VmlinuxFile::open(path).map(|f| Vmlinux(Arc::new(f)))
    }
}

/// An empty section that marks a symbol file built from kallsyms, whose
/// symbol sizes are only bounds ([`Vmlinux::sizes_are_bounds`]).
pub const KALLSYMS_MARKER: &str = ".corestub.kallsyms";

/// The parsed file behind a [`Vmlinux`].
pub struct VmlinuxFile {
    path: PathBuf,
    arch: Arch,
    build_id: Option<String>,
    sections: Vec<Section>,
    /// `.symtab` and its string table (or `.dynsym`): byte ranges of `map`.
    symtab: Option<(Range<usize>, Range<usize>)>,
    endian: Endianness,
    /// ELFCLASS32 (i386, arm): 16-byte `Elf32_Sym` entries.
    class32: bool,
    /// The first PT_LOAD's p_vaddr − p_paddr: `PAGE_OFFSET` of an i386
    /// kernel (its image is linked at PAGE_OFFSET + physical address).
    load_offset: Option<u64>,
    percpu: Option<Range<u64>>,
    syms: OnceLock<SymIndex>,
    dwarf: OnceLock<Result<DebugInfo, DwarfError>>,
    /// Debug sections by name: a range of the mapping, or the decompressed
    /// bytes of an SHF_COMPRESSED one (shared with the DWARF reader, which
    /// keeps them alive as long as it needs them).
    debug_sections: HashMap<String, SectionBytes>,
    map: Arc<memmap2::Mmap>,
}

impl std::fmt::Debug for VmlinuxFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vmlinux")
            .field("path", &self.path)
            .field("arch", &self.arch)
            .field("build_id", &self.build_id)
            .finish_non_exhaustive()
    }
}

/// The range of `part` inside `whole` (`part` is a subslice of it, as
/// `object` returns section data).
fn range_in(whole: &[u8], part: &[u8]) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len()).then_some(start..end)
}

impl VmlinuxFile {
    /// Maps and parses the ELF headers of `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, VmlinuxError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| VmlinuxError::Io {
            path: path.clone(),
            source,
        };
        let file = File::open(&path).map_err(io)?;
        // SAFETY: read-only mapping; the vmlinux is not modified while we run.
        let map = unsafe { memmap2::MmapOptions::new().map(&file) }.map_err(io)?;
        Self::from_map(path, Arc::new(map))
    }

    fn from_map(path: PathBuf, map: Arc<memmap2::Mmap>) -> Result<Self, VmlinuxError> {
        let bad = |reason: String| VmlinuxError::Format {
            path: path.clone(),
            reason,
        };
        let data: &[u8] = &map[..];
        match FileKind::parse(data) {
            Ok(FileKind::Elf64) => {
                Self::from_class::<elf::FileHeader64<Endianness>>(path.clone(), map.clone())
            }
            Ok(FileKind::Elf32) => {
                Self::from_class::<elf::FileHeader32<Endianness>>(path.clone(), map.clone())
            }
            Ok(k) => Err(bad(format!("not an ELF executable ({k:?})"))),
            Err(e) => Err(bad(format!("not an ELF file ({e})"))),
        }
    }

    fn from_class<H: FileHeader<Endian = Endianness>>(
        path: PathBuf,
        map: Arc<memmap2::Mmap>,
    ) -> Result<Self, VmlinuxError> {
        let bad = |reason: String| VmlinuxError::Format {
            path: path.clone(),
            reason,
        };
        let data: &[u8] = &map[..];
        let hdr = H::parse(data).map_err(|e| bad(format!("bad ELF header: {e}")))?;
        let endian = hdr
            .endian()
            .map_err(|e| bad(format!("bad ELF header: {e}")))?;
        let arch = match hdr.e_machine(endian) {
            elf::EM_X86_64 => Arch::X86_64,
            elf::EM_AARCH64 => Arch::Aarch64,
            elf::EM_386 => Arch::I386,
            elf::EM_ARM => Arch::Arm,
            m => return Err(bad(format!("unsupported ELF machine {m}"))),
        };
        let class32 = !hdr.is_type_64();
        let load_offset = hdr.program_headers(endian, data).ok().and_then(|phs| {
            phs.iter()
                .find(|ph| ph.p_type(endian) == elf::PT_LOAD)
                .map(|ph| {
                    let (v, p): (u64, u64) = (ph.p_vaddr(endian).into(), ph.p_paddr(endian).into());
                    v.wrapping_sub(p)
                })
        });
        let table = hdr
            .sections(endian, data)
            .map_err(|e| bad(format!("bad section headers: {e}")))?;

        let mut sections = Vec::new();
        let mut build_id = None;
        let mut debug_sections = HashMap::new();
        for (i, sh) in table.iter().enumerate() {
            let name = table
                .section_name(endian, sh)
                .map_err(|e| bad(format!("section {i}: bad name: {e}")))?;
            let name = String::from_utf8_lossy(name).into_owned();
            let flags: u64 = sh.sh_flags(endian).into();
            if build_id.is_none()
                && sh.sh_type(endian) == elf::SHT_NOTE
                && let Ok(Some(mut notes)) = sh.notes(endian, data)
            {
                while let Ok(Some(note)) = notes.next() {
                    if note.name() == b"GNU" && note.n_type(endian) == elf::NT_GNU_BUILD_ID {
                        build_id = Some(hex(note.desc()));
                        break;
                    }
                }
            }
            if name.starts_with(".debug_") && sh.sh_type(endian) == elf::SHT_PROGBITS {
                let compressed = flags & u64::from(elf::SHF_COMPRESSED) != 0;
                let raw = sh
                    .data(endian, data)
                    .map_err(|e| bad(format!("section {name}: {e}")))?;
                let bytes = if compressed {
                    let buf = decompress(endian, class32, raw)
                        .map_err(|e| bad(format!("section {name}: {e}")))?;
                    SectionBytes::Owned(buf.into())
                } else {
                    let range = range_in(data, raw)
                        .ok_or_else(|| bad(format!("section {name} lies outside the file")))?;
                    SectionBytes::Mapped(map.clone(), range)
                };
                debug_sections.insert(name.clone(), bytes);
            }
            sections.push(Section {
                name,
                addr: sh.sh_addr(endian).into(),
                size: sh.sh_size(endian).into(),
                alloc: flags & u64::from(elf::SHF_ALLOC) != 0,
            });
        }

        let symtab = [elf::SHT_SYMTAB, elf::SHT_DYNSYM].iter().find_map(|&ty| {
            let (_, sh) = table
                .iter()
                .enumerate()
                .find(|(_, sh)| sh.sh_type(endian) == ty)?;
            let syms = sh.data(endian, data).ok()?;
            let strs = table
                .section(object::SectionIndex(sh.sh_link(endian) as usize))
                .ok()?
                .data(endian, data)
                .ok()?;
            (!syms.is_empty()).then_some((range_in(data, syms)?, range_in(data, strs)?))
        });

        let percpu = sections
            .iter()
            .find(|s| s.name == ".data..percpu")
            .map(|s| s.range());

        Ok(VmlinuxFile {
            path,
            arch,
            build_id,
            sections,
            symtab,
            endian,
            class32,
            load_offset,
            percpu,
            syms: OnceLock::new(),
            dwarf: OnceLock::new(),
            debug_sections,
            map,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The first PT_LOAD's p_vaddr − p_paddr (i386: PAGE_OFFSET; x86_64:
    /// __START_KERNEL_map; 0 where the linker script sets no load address).
    pub fn load_offset(&self) -> Option<u64> {
        self.load_offset
    }

    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// NT_GNU_BUILD_ID as lowercase hex, if the file has one.
    pub fn build_id(&self) -> Option<&str> {
        self.build_id.as_deref()
    }

    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// The first section called `name`.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// Was this file built from the kernel's kallsyms (see
    /// [`super::symfile`])? Then a symbol's size runs to the next symbol:
    /// an upper bound of the object's size, not its size.
    pub fn sizes_are_bounds(&self) -> bool {
        self.section(KALLSYMS_MARKER).is_some()
    }

    /// `.data..percpu`'s link-time range, if the kernel has one.
    pub fn percpu_range(&self) -> Option<Range<u64>> {
        self.percpu.clone()
    }

    /// Is `addr` (link-time) inside `.data..percpu`? Per-CPU symbols are
    /// offsets into each CPU's area (add `__per_cpu_offset[cpu]`).
    pub fn is_percpu(&self, addr: u64) -> bool {
        self.percpu.as_ref().is_some_and(|r| r.contains(&addr))
    }

    /// Is `.data..percpu` linked at address 0 (x86_64 SMP)? Then per-CPU
    /// symbols are plain offsets and must not be KASLR-relocated; elsewhere
    /// (arm64) the per-CPU section is a normal part of the image.
    pub fn percpu_zero_based(&self) -> bool {
        self.percpu.as_ref().is_some_and(|r| r.start == 0)
    }

    /// The run-time address of link-time `addr` given the KASLR offset
    /// (`KERNELOFFSET` in VMCOREINFO): unchanged for zero-based per-CPU
    /// offsets, else shifted; `None` if the shift leaves the address space
    /// (the offset came from a damaged dump).
    pub fn relocate(&self, addr: u64, kaslr_offset: u64) -> Option<u64> {
        if self.percpu_zero_based() && self.is_percpu(addr) {
            Some(addr)
        } else {
            addr.checked_add(kaslr_offset)
        }
    }

    fn index(&self) -> &SymIndex {
        self.syms.get_or_init(|| {
            let (syms, strs) = self.tables();
            if self.class32 {
                build_index::<elf::Sym32<Endianness>>(syms, strs, self.endian)
            } else {
                build_index::<elf::Sym64<Endianness>>(syms, strs, self.endian)
            }
        })
    }

    /// The symbol table and its string table (empty without one).
    fn tables(&self) -> (&[u8], &[u8]) {
        let part = |r: &Range<usize>| self.map.get(r.clone()).unwrap_or(&[]);
        match &self.symtab {
            Some((syms, strs)) => (part(syms), part(strs)),
            None => (&[], &[]),
        }
    }

    fn strtab(&self) -> &[u8] {
        self.tables().1
    }

    /// Number of symbols in the symbol table.
    pub fn symbol_count(&self) -> usize {
        self.index().syms.len()
    }

    /// The symbol called `name` (a global one if there are several).
    pub fn symbol(&self, name: &str) -> Option<Symbol<'_>> {
        let idx = self.index();
        let strtab = self.strtab();
        let name = name.as_bytes();
        let &i = idx.by_name.find(fx_hash(name), |&i| {
            idx.syms[i as usize].name(strtab) == name
        })?;
        Some(idx.syms[i as usize].public(strtab))
    }

    /// Link-time (unrelocated) address of symbol `name`.
    pub fn addr(&self, name: &str) -> Option<u64> {
        self.symbol(name).map(|s| s.addr)
    }

    /// Every symbol called `name` (static functions and variables repeat).
    pub fn symbols_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = Symbol<'a>> + 'a {
        let strtab = self.strtab();
        self.index()
            .syms
            .iter()
            .filter(move |s| s.name(strtab) == name.as_bytes())
            .map(move |s| s.public(strtab))
    }

    /// The symbol covering link-time `addr` and the offset into it
    /// (`panic+0x12`): the closest function/object/label at or below
    /// `addr`; when it has a size, `addr` must be within it.
    pub fn symbolize(&self, addr: u64) -> Option<(Symbol<'_>, u64)> {
        let idx = self.index();
        let strtab = self.strtab();
        let by_addr = idx.by_addr.get_or_init(|| {
            let syms = &idx.syms;
            let mut v: Vec<u32> = (0..syms.len() as u32)
                .filter(|&i| {
                    let s = &syms[i as usize];
                    !s.absolute && s.kind != SymKind::Other && !s.name(strtab).starts_with(b"$")
                })
                .collect();
            v.sort_unstable_by_key(|&i| (syms[i as usize].addr, i));
            v
        });
        let n = by_addr.partition_point(|&i| idx.syms[i as usize].addr <= addr);
        let first = by_addr.get(..n)?;
        let top = idx.syms[*first.last()? as usize].addr;
        // Several symbols may share the address: prefer a sized global function.
        let best = first
            .iter()
            .rev()
            .take_while(|&&i| idx.syms[i as usize].addr == top)
            .map(|&i| &idx.syms[i as usize])
            .max_by_key(|s| (s.kind == SymKind::Func, s.size > 0, s.global))?;
        let off = addr - best.addr;
        if best.size > 0 && off >= best.size {
            return None;
        }
        Some((best.public(strtab), off))
    }

    /// The DWARF reader, created on first call.
    pub fn debug_info(&self) -> Result<&DebugInfo, VmlinuxError> {
        self.dwarf
            .get_or_init(|| {
                DebugInfo::new(
                    self.endian == Endianness::Little,
                    |name| self.debug_sections.get(name).cloned(),
                    self.build_id.clone(),
                )
            })
            .as_ref()
            .map_err(|e| VmlinuxError::Dwarf {
                path: self.path.clone(),
                source: e.clone(),
            })
    }
}

impl Sym64 {
    /// The name's bytes in the string table `strtab` it was read from.
    fn name<'a>(&self, strtab: &'a [u8]) -> &'a [u8] {
        let start = self.name_start as usize;
        strtab
            .get(start..start + self.name_len as usize)
            .unwrap_or(&[])
    }

    fn public<'a>(&self, strtab: &'a [u8]) -> Symbol<'a> {
        Symbol {
            name: std::str::from_utf8(self.name(strtab)).unwrap_or("?"),
            addr: self.addr,
            size: self.size,
            kind: self.kind,
            global: self.global,
            absolute: self.absolute,
        }
    }
}

fn build_index<S: Sym<Endian = Endianness>>(
    bytes: &[u8],
    strtab: &[u8],
    endian: Endianness,
) -> SymIndex {
    let mut syms = Vec::new();
    {
        let n = bytes.len() / std::mem::size_of::<S>();
        let table: &[S] = match object::pod::slice_from_bytes(bytes, n).map(|(t, _)| t) {
            Ok(t) => t,
            Err(()) => &[],
        };
        syms.reserve(n);
        for s in table.iter().skip(1) {
            let st_type = s.st_type();
            let kind = match st_type {
                elf::STT_FUNC => SymKind::Func,
                elf::STT_OBJECT | elf::STT_TLS => SymKind::Object,
                elf::STT_NOTYPE => SymKind::Label,
                elf::STT_SECTION | elf::STT_FILE => continue,
                _ => SymKind::Other,
            };
            let off = s.st_name(endian);
            let Some(rest) = strtab.get(off as usize..) else {
                continue;
            };
            let end = memchr(rest).unwrap_or(rest.len());
            let Ok(name_len) = u32::try_from(end) else {
                continue;
            };
            if name_len == 0 {
                continue;
            }
            syms.push(Sym64 {
                name_start: off,
                name_len,
                addr: s.st_value(endian).into(),
                size: s.st_size(endian).into(),
                kind,
                global: matches!(s.st_bind(), elf::STB_GLOBAL | elf::STB_WEAK),
                absolute: s.st_shndx(endian) == elf::SHN_ABS,
            });
        }
    }
    let mut by_name = hashbrown::HashTable::<u32>::with_capacity(syms.len());
    let hash_of = |j: &u32| fx_hash(syms[*j as usize].name(strtab));
    for (i, s) in syms.iter().enumerate() {
        let name = s.name(strtab);
        let same = |j: &u32| syms[*j as usize].name(strtab) == name;
        match by_name.entry(fx_hash(name), same, hash_of) {
            hashbrown::hash_table::Entry::Occupied(mut o) => {
                if s.global && !syms[*o.get() as usize].global {
                    *o.get_mut() = i as u32;
                }
            }
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(i as u32);
            }
        }
    }
    SymIndex {
        syms,
        by_name,
        by_addr: OnceLock::new(),
    }
}

fn memchr(s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| b == 0)
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Inflates an SHF_COMPRESSED section (zlib or zstd).
fn decompress(endian: Endianness, class32: bool, raw: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let truncated = |()| "truncated compression header".to_string();
    // Elf32_Chdr / Elf64_Chdr: type, (reserved,) size, alignment
    let (ch_type, size, rest) = if class32 {
        let (h, rest) = object::pod::from_bytes::<elf::CompressionHeader32<Endianness>>(raw)
            .map_err(truncated)?;
        (
            h.ch_type.get(endian),
            u64::from(h.ch_size.get(endian)),
            rest,
        )
    } else {
        let (h, rest) = object::pod::from_bytes::<elf::CompressionHeader64<Endianness>>(raw)
            .map_err(truncated)?;
        (h.ch_type.get(endian), h.ch_size.get(endian), rest)
    };
    let size = usize::try_from(size).map_err(|e| e.to_string())?;
    if size > 1 << 32 {
        return Err(format!("implausible uncompressed size {size}"));
    }
    // the header's size is only a claim: reserve what the compressed bytes
    // could plausibly give and let real output grow the buffer (a 4 GiB
    // claim on a few bytes was a fuzzer-found out-of-memory)
    let mut out = Vec::with_capacity(size.min(rest.len().saturating_mul(16)));
    match ch_type {
        elf::ELFCOMPRESS_ZLIB => {
            flate2::read::ZlibDecoder::new(rest)
                .take(size as u64)
                .read_to_end(&mut out)
                .map_err(|e| format!("zlib: {e}"))?;
        }
        elf::ELFCOMPRESS_ZSTD => {
            zstd::stream::read::Decoder::new(rest)
                .map_err(|e| format!("zstd: {e}"))?
                .take(size as u64)
                .read_to_end(&mut out)
                .map_err(|e| format!("zstd: {e}"))?;
        }
        t => return Err(format!("unknown compression type {t}")),
    }
    if out.len() != size {
        return Err(format!("decompressed {} bytes, expected {size}", out.len()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_elf_is_a_format_error_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("corestub-sym-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("vmlinux-bogus");
        std::fs::write(&p, b"this is not an ELF file at all").unwrap();
        let e = Vmlinux::open(&p).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("vmlinux-bogus") && msg.contains("not"),
            "{msg}"
        );
        std::fs::write(&p, b"\x7fELF\x02\x01\x01").unwrap();
        assert!(Vmlinux::open(&p).is_err());
        let e = Vmlinux::open(dir.join("missing")).unwrap_err();
        assert!(matches!(e, VmlinuxError::Io { .. }), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn vmlinux_is_shareable_between_threads() {
        fn check<T: Send + Sync>() {}
        check::<Vmlinux>();
        check::<DebugInfo>();
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x3b, 0x0a, 0xff]), "3b0aff");
    }
}
