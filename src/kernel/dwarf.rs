//! Kernel type layouts from the vmlinux DWARF: struct/union sizes, member
//! offsets, member type names, nested member paths.
//!
//! Nothing is parsed up front. A lookup scans compilation units in order,
//! reading only their top-level DIEs (subtrees are skipped through
//! `DW_AT_sibling`), and stops at the first CU that holds a complete
//! (non-declaration) definition of the requested name. Every top-level
//! definition met on the way is remembered, so later lookups of types
//! defined in the already-scanned CUs cost nothing, and a batch
//! ([`DebugInfo::preload`]) costs one scan up to the furthest name. Built
//! layouts are cached.
//!
//! Names: `"task_struct"` means a struct, union, or typedef of that name
//! (the first definition found, a struct preferred); `"struct x"`,
//! `"union x"`, `"enum x"` pick the kind. Anonymous struct/union members are
//! flattened into their parent, with offsets relative to the parent, so
//! `task_struct.__state` is a direct member as in C.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::symbols::fx_hash;
use gimli::{
    AttributeValue, Reader as _, RunTimeEndian, Section as _, UnitOffset, constants as dw,
};

/// The memory a DWARF reader reads: the mapped vmlinux, or the
/// decompressed copy of an SHF_COMPRESSED section. Readers hold a clone, so
/// the bytes live as long as any reader (or name found through one) does.
#[derive(Clone, Debug)]
pub(crate) enum Buffer {
    Mapped(Arc<memmap2::Mmap>),
    Owned(Arc<[u8]>),
}

impl std::ops::Deref for Buffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Buffer::Mapped(m) => m,
            Buffer::Owned(b) => b,
        }
    }
}

// SAFETY: what gimli's EndianReader requires of its buffer (it keeps a
// pointer into the bytes while it holds the buffer): both variants are
// `Arc`s, whose pointee never moves, and every clone derefs to the same
// bytes. A read-only mapping is never remapped while mapped; its bytes stay
// until the last `Arc` drops. This is gimli's own documented pattern for an
// mmap'ed file (gimli::EndianReader docs).
unsafe impl gimli::StableDeref for Buffer {}
// SAFETY: as above; cloning an `Arc` shares the same allocation/mapping.
unsafe impl gimli::CloneStableDeref for Buffer {}

/// The bytes of one `.debug_*` section (cheap to clone: shared).
#[derive(Clone, Debug)]
pub enum SectionBytes {
    /// `range` of the mapped file.
    Mapped(Arc<memmap2::Mmap>, std::ops::Range<usize>),
    /// A decompressed section.
    Owned(Arc<[u8]>),
}

impl SectionBytes {
    fn is_empty(&self) -> bool {
        match self {
            SectionBytes::Mapped(_, r) => r.is_empty(),
            SectionBytes::Owned(b) => b.is_empty(),
        }
    }

    fn reader(self, endian: RunTimeEndian) -> Result<R> {
        Ok(match self {
            SectionBytes::Mapped(m, range) => {
                if range.end > m.len() || range.start > range.end {
                    return Err(malformed(0, "section lies outside the file"));
                }
                R::new(Buffer::Mapped(m), endian).range(range)
            }
            SectionBytes::Owned(b) => R::new(Buffer::Owned(b), endian),
        })
    }
}

pub(crate) type R = gimli::EndianReader<RunTimeEndian, Buffer>;
pub(crate) type Header = gimli::UnitHeader<R>;
type Unit = gimli::Unit<R>;

/// Why a type or member could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DwarfError {
    #[error("the vmlinux has no DWARF (.debug_info is missing; is it the -dbg vmlinux?)")]
    NoDebugInfo,
    #[error("type `{0}` is not defined in the DWARF")]
    TypeNotFound(String),
    #[error("`{name}` is not a struct or union (it is a {tag})")]
    NotComposite { name: String, tag: String },
    #[error("`{ty}` has no member `{path}`")]
    NoMember { ty: String, path: String },
    #[error("`{ty}.{path}`: {reason}")]
    BadPath {
        ty: String,
        path: String,
        reason: String,
    },
    #[error("malformed DWARF at .debug_info+{offset:#x}: {reason}")]
    Malformed { offset: u64, reason: String },
}

impl DwarfError {
    /// The member (or type) does not exist: the caller may try another name
    /// (`__state` vs `state` across kernel versions).
    pub fn is_absent(&self) -> bool {
        matches!(
            self,
            DwarfError::NoMember { .. } | DwarfError::TypeNotFound(_)
        )
    }
}

type Result<T> = std::result::Result<T, DwarfError>;

/// A DIE: its unit's `.debug_info` offset and its offset inside the unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct DieRef {
    unit: usize,
    die: usize,
}

impl DieRef {
    fn global(self) -> u64 {
        (self.unit + self.die) as u64
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Struct,
    Union,
    Enum,
    Typedef,
    Variable,
}

/// Struct or union.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompositeKind {
    Struct,
    Union,
}

/// A bitfield's position, in bits from the start of the outermost layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BitField {
    pub bit_offset: u64,
    pub bit_size: u64,
}

/// One member of a [`Layout`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// Bytes from the start of the layout (for a bitfield: of the storage
    /// unit's first byte, `bits.bit_offset / 8`).
    pub offset: u64,
    /// Bytes; `None` for incomplete types (flexible arrays, `void`).
    pub size: Option<u64>,
    /// C spelling: `struct list_head`, `char [16]`, `struct mm_struct *`.
    pub type_name: String,
    pub bits: Option<BitField>,
    /// The member's type when it is (after typedefs and qualifiers) a
    /// struct or union: lets paths go deeper.
    composite: Option<DieRef>,
    array: Option<ArrayInfo>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ArrayInfo {
    elem_size: Option<u64>,
    elem_composite: Option<DieRef>,
}

/// A struct or union: size and members in declaration order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// As written in C: `struct task_struct`, `union thread_union`, or the
    /// typedef name for anonymous ones (`atomic_t` → `struct {...}`).
    pub name: String,
    pub kind: CompositeKind,
    pub size: u64,
    /// Anonymous struct/union members are flattened (see module docs).
    pub members: Vec<Member>,
    die: DieRef,
}

impl Layout {
    /// The direct (or flattened-anonymous) member `name`.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }
    /// `.debug_info` offset of the defining DIE.
    pub fn die_offset(&self) -> u64 {
        self.die.global()
    }
}

/// What a path like `thread.sp` resolves to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// Bytes from the start of the outer struct.
    pub offset: u64,
    pub size: Option<u64>,
    pub type_name: String,
    /// For a bitfield, in bits from the start of the outer struct.
    pub bits: Option<BitField>,
}

/// Which section a name found by the scan lies in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NameSection {
    Info,
    Str,
    LineStr,
}

/// Where a name lies, so the index needs no copy of it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NameAt {
    section: NameSection,
    start: usize,
    len: usize,
}

/// One definition the scan found.
#[derive(Clone, Copy, Debug)]
struct Definition {
    kind: Kind,
    name: NameAt,
    die: DieRef,
}

/// Scanning state: what the in-order CU scan has found so far.
struct ScanState {
    /// The first definition of each (kind, name), hashed by name.
    index: hashbrown::HashTable<Definition>,
    /// The next unit to scan; `None` once all are done.
    next: Option<usize>,
    units_scanned: usize,
}

/// The DWARF of a vmlinux. Cheap to create; see the module docs.
pub struct DebugInfo {
    dwarf: gimli::Dwarf<R>,
    /// Sorted `.debug_info` offsets of all unit headers, built on demand for
    /// cross-unit references.
    unit_starts: std::sync::OnceLock<Vec<usize>>,
    units: Mutex<HashMap<usize, Arc<Unit>>>,
    scan: Mutex<ScanState>,
    layouts: Mutex<HashMap<DieRef, Arc<Layout>>>,
    build_id: Option<String>,
}

impl std::fmt::Debug for DebugInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DebugInfo")
            .field("build_id", &self.build_id)
            .finish_non_exhaustive()
    }
}

pub(crate) fn malformed(offset: u64, reason: impl std::fmt::Display) -> DwarfError {
    DwarfError::Malformed {
        offset,
        reason: reason.to_string(),
    }
}

const MAX_DEPTH: usize = 24;

impl DebugInfo {
    /// `section(name)` returns the bytes of `.debug_*` sections.
    pub(crate) fn new(
        little_endian: bool,
        section: impl Fn(&str) -> Option<SectionBytes>,
        build_id: Option<String>,
    ) -> Result<Self> {
        let endian = if little_endian {
            RunTimeEndian::Little
        } else {
            RunTimeEndian::Big
        };
        if section(".debug_info").is_none_or(|s| s.is_empty()) {
            return Err(DwarfError::NoDebugInfo);
        }
        let dwarf = gimli::Dwarf::load(|id| match section(id.name()) {
            Some(bytes) => bytes.reader(endian),
            None => Ok(R::new(Buffer::Owned(Arc::from([])), endian)),
        })?;
        Ok(DebugInfo {
            dwarf,
            unit_starts: Default::default(),
            units: Default::default(),
            scan: Mutex::new(ScanState {
                index: hashbrown::HashTable::new(),
                next: Some(0),
                units_scanned: 0,
            }),
            layouts: Default::default(),
            build_id,
        })
    }

    /// For tests on synthesized DWARF: sections leaked for `'static`.
    #[cfg(test)]
    pub(crate) fn from_static(sections: &[(&str, &'static [u8])]) -> Result<Self> {
        let map: HashMap<String, SectionBytes> = sections
            .iter()
            .map(|(n, d)| (n.to_string(), SectionBytes::Owned(Arc::from(*d))))
            .collect();
        Self::new(true, |n| map.get(n).cloned(), None)
    }

    /// The sections, for readers beside this one (the `.gdb_index` writer).
    pub(crate) fn sections(&self) -> &gimli::Dwarf<R> {
        &self.dwarf
    }

    /// How many compilation units the scan has read so far (diagnostics).
    pub fn units_scanned(&self) -> usize {
        self.scan.lock().map(|s| s.units_scanned).unwrap_or(0)
    }

    // ---- units -------------------------------------------------------

    fn unit(&self, offset: usize) -> Result<Arc<Unit>> {
        if let Some(u) = self.units.lock().ok().and_then(|m| m.get(&offset).cloned()) {
            return Ok(u);
        }
        let header = self
            .dwarf
            .debug_info
            .header_from_offset(gimli::DebugInfoOffset(offset))
            .map_err(|e| malformed(offset as u64, e))?;
        let unit = Arc::new(self.unit_from_header(header)?);
        if let Ok(mut m) = self.units.lock() {
            m.insert(offset, unit.clone());
        }
        Ok(unit)
    }

    /// What string attributes need of a unit: its abbreviations and
    /// `DW_AT_str_offsets_base`. Not `gimli::Unit::new`, which also parses
    /// the line program header: the scan makes one of these per CU.
    fn unit_from_header(&self, header: Header) -> Result<Unit> {
        let offset = header
            .offset()
            .as_debug_info_offset()
            .map_or(0, |o| o.0 as u64);
        let abbreviations = Arc::new(
            header
                .abbreviations(&self.dwarf.debug_abbrev)
                .map_err(|e| malformed(offset, format!("abbreviations: {e}")))?,
        );
        let mut str_offsets_base = gimli::DebugStrOffsetsBase(0);
        {
            let mut cur = header.entries(&abbreviations);
            if let Ok(Some((_, root))) = cur.next_dfs()
                && let Ok(Some(AttributeValue::DebugStrOffsetsBase(b))) =
                    root.attr_value(dw::DW_AT_str_offsets_base)
            {
                str_offsets_base = b;
            }
        }
        Ok(bare_unit(header, abbreviations, str_offsets_base))
    }

    /// The unit containing `.debug_info` offset `off`.
    fn unit_containing(&self, off: usize) -> Option<usize> {
        let starts = self.unit_starts.get_or_init(|| {
            let mut v = Vec::new();
            let mut it = self.dwarf.debug_info.units();
            while let Ok(Some(h)) = it.next() {
                if let Some(o) = h.offset().as_debug_info_offset() {
                    v.push(o.0);
                }
            }
            v
        });
        let i = starts.partition_point(|&s| s <= off);
        starts.get(i.checked_sub(1)?).copied()
    }

    fn string(&self, u: &Unit, v: AttributeValue<R>) -> Option<String> {
        let s = self.dwarf.attr_string(u, v).ok()?;
        std::str::from_utf8(s.bytes()).ok().map(str::to_owned)
    }

    /// Where a string attribute's text lies (for the scan's index).
    pub(crate) fn name_at(&self, u: &Unit, v: AttributeValue<R>) -> Option<NameAt> {
        // The common forms directly (memchr for the end: the index writer
        // reads a few hundred thousand names).
        let section = match v {
            AttributeValue::DebugStrRef(o) => Some((NameSection::Str, o.0)),
            AttributeValue::DebugLineStrRef(o) => Some((NameSection::LineStr, o.0)),
            _ => None,
        };
        if let Some((section, start)) = section {
            let base = match section {
                NameSection::Str => self.dwarf.debug_str.reader(),
                _ => self.dwarf.debug_line_str.reader(),
            };
            let len = memchr::memchr(0, base.bytes().get(start..)?)?;
            return Some(NameAt {
                section,
                start,
                len,
            });
        }
        let s = self.dwarf.attr_string(u, v).ok()?;
        [
            (NameSection::Str, self.dwarf.debug_str.reader()),
            (NameSection::LineStr, self.dwarf.debug_line_str.reader()),
            (NameSection::Info, self.dwarf.debug_info.reader()),
        ]
        .into_iter()
        .find_map(|(section, base)| {
            let start = (s.bytes().as_ptr() as usize).checked_sub(base.bytes().as_ptr() as usize)?;
            (start.checked_add(s.len())? <= base.len()).then_some(NameAt {
                section,
                start,
                len: s.len(),
            })
        })
    }

    pub(crate) fn name_bytes(&self, at: NameAt) -> &[u8] {
        let base = match at.section {
            NameSection::Info => self.dwarf.debug_info.reader(),
            NameSection::Str => self.dwarf.debug_str.reader(),
            NameSection::LineStr => self.dwarf.debug_line_str.reader(),
        };
        base.bytes()
            .get(at.start..at.start.saturating_add(at.len))
            .unwrap_or(&[])
    }

    // ---- the scan ----------------------------------------------------

    /// Where `(kind, name)` is defined, scanning further CUs if needed.
    fn find(&self, kinds: &[Kind], name: &str) -> Result<Option<(Kind, DieRef)>> {
        let mut st = self
            .scan
            .lock()
            .map_err(|_| malformed(0, "scan lock poisoned"))?;
        let hash = fx_hash(name.as_bytes());
        loop {
            for &k in kinds {
                if let Some(d) = st.index.find(hash, |d| {
                    d.kind == k && self.name_bytes(d.name) == name.as_bytes()
                }) {
                    return Ok(Some((k, d.die)));
                }
            }
            let Some(off) = st.next else {
                return Ok(None);
            };
            let header = match self
                .dwarf
                .debug_info
                .header_from_offset(gimli::DebugInfoOffset(off))
            {
                Ok(h) => h,
                Err(_) if off >= self.dwarf.debug_info.reader().len() => {
                    st.next = None;
                    continue;
                }
                Err(e) => {
                    st.next = None;
                    return Err(malformed(off as u64, e));
                }
            };
            let end = off + header.length_including_self();
            st.next = (end < self.dwarf.debug_info.reader().len()).then_some(end);
            st.units_scanned += 1;
            self.scan_unit(off, &header, &mut st.index)
                .map_err(|e| malformed(off as u64, format!("scanning unit: {e}")))?;
        }
    }

    /// Records every top-level named definition of `header`'s unit.
    fn scan_unit(
        &self,
        unit: usize,
        header: &Header,
        index: &mut hashbrown::HashTable<Definition>,
    ) -> gimli::Result<()> {
        let abbrevs = Arc::new(header.abbreviations(&self.dwarf.debug_abbrev)?);
        let Some(TopLevel {
            mut raw,
            ctx,
            unit_end,
        }) = top_level(header, &abbrevs)?
        else {
            return Ok(());
        };
        while !raw.is_empty() {
            let off = raw.next_offset();
            let Some(ab) = raw.read_abbreviation()? else {
                break; // end of the unit's children
            };
            let kind = match ab.tag() {
                dw::DW_TAG_structure_type => Some(Kind::Struct),
                dw::DW_TAG_union_type => Some(Kind::Union),
                dw::DW_TAG_enumeration_type => Some(Kind::Enum),
                dw::DW_TAG_typedef => Some(Kind::Typedef),
                dw::DW_TAG_variable => Some(Kind::Variable),
                _ => None,
            };
            let mut sibling = None;
            if kind.is_none() && !ab.has_children() {
                raw.skip_attributes(ab.attributes())?;
                continue;
            }
            let mut name = None;
            let mut decl = false;
            let mut located = false;
            let mut spec_of = None;
            for spec in ab.attributes() {
                let a = raw.read_attribute(*spec)?;
                match a.name() {
                    dw::DW_AT_name if kind.is_some() => name = Some(a.value()),
                    dw::DW_AT_declaration => decl = true,
                    dw::DW_AT_location => located = true,
                    dw::DW_AT_specification => {
                        if let AttributeValue::UnitRef(s) = a.value() {
                            spec_of = Some(s);
                        }
                    }
                    dw::DW_AT_sibling => {
                        if let AttributeValue::UnitRef(s) = a.value() {
                            sibling = Some(s);
                        }
                    }
                    _ => {}
                }
            }
            // A variable definition completing an earlier declaration: the
            // name is on the declaration.
            if kind == Some(Kind::Variable)
                && located
                && name.is_none()
                && let Some(s) = spec_of
                && let Ok(e) = header.entry(&abbrevs, s)
            {
                name = e.attr_value(dw::DW_AT_name).ok().flatten();
            }
            // Variables: only definitions (with a location).
            if let (Some(kind), Some(name), false) = (kind, name, decl)
                && (kind != Kind::Variable || located)
                && let Some(at) = self.name_at(&ctx, name)
            {
                let bytes = self.name_bytes(at);
                let found = |d: &Definition| d.kind == kind && self.name_bytes(d.name) == bytes;
                let rehash = |d: &Definition| fx_hash(self.name_bytes(d.name));
                if let hashbrown::hash_table::Entry::Vacant(v) =
                    index.entry(fx_hash(bytes), found, rehash)
                {
                    v.insert(Definition {
                        kind,
                        name: at,
                        die: DieRef { unit, die: off.0 },
                    });
                }
            }
            if ab.has_children()
                && !skip_children(&mut raw, header, &abbrevs, off, sibling, unit_end)?
            {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Scans once for all of `names` (type names as for
    /// [`DebugInfo::layout`]) so later lookups are free; returns the names
    /// not found.
    pub fn preload<'a>(&self, names: &[&'a str]) -> Result<Vec<&'a str>> {
        let mut missing = Vec::new();
        for n in names {
            let (kinds, bare) = parse_name(n);
            if self.find(kinds, bare)?.is_none() {
                missing.push(*n);
            }
        }
        Ok(missing)
    }

    // ---- DIEs and types ----------------------------------------------

    /// Resolves a reference attribute of a DIE of unit `u`.
    fn reference(&self, unit: usize, v: AttributeValue<R>) -> Option<DieRef> {
        match v {
            AttributeValue::UnitRef(o) => Some(DieRef { unit, die: o.0 }),
            AttributeValue::DebugInfoRef(o) => {
                let u = self.unit_containing(o.0)?;
                Some(DieRef {
                    unit: u,
                    die: o.0 - u,
                })
            }
            _ => None,
        }
    }

    fn die(&self, r: DieRef) -> Result<Die> {
        let u = self.unit(r.unit)?;
        let e = u
            .header
            .entry(&u.abbreviations, UnitOffset(r.die))
            .map_err(|e| malformed(r.global(), e))?;
        self.die_from_entry(&u, r.unit, &e)
            .map_err(|e| malformed(r.global(), e))
    }

    fn die_from_entry(
        &self,
        u: &Unit,
        unit: usize,
        e: &gimli::DebuggingInformationEntry<'_, '_, R>,
    ) -> gimli::Result<Die> {
        let mut d = Die {
            tag: e.tag(),
            at: DieRef {
                unit,
                die: e.offset().0,
            },
            name: None,
            ty: None,
            byte_size: None,
            bit_size: None,
            data_bit_offset: None,
            old_bit_offset: None,
            member_location: None,
            upper_bound: None,
            count: None,
            const_value: None,
            declaration: false,
            specification: None,
        };
        let mut attrs = e.attrs();
        while let Some(a) = attrs.next()? {
            let v = a.value();
            match a.name() {
                dw::DW_AT_name => d.name = self.string(u, v),
                dw::DW_AT_type => d.ty = self.reference(unit, v),
                dw::DW_AT_byte_size => d.byte_size = a.udata_value(),
                dw::DW_AT_bit_size => d.bit_size = a.udata_value(),
                dw::DW_AT_data_bit_offset => d.data_bit_offset = a.udata_value(),
                dw::DW_AT_bit_offset => d.old_bit_offset = a.udata_value(),
                dw::DW_AT_declaration => d.declaration = true,
                dw::DW_AT_specification => d.specification = self.reference(unit, v),
                dw::DW_AT_upper_bound => {
                    d.upper_bound = a.sdata_value().or(a.udata_value().map(|x| x as i64))
                }
                dw::DW_AT_count => d.count = a.udata_value(),
                dw::DW_AT_const_value => {
                    d.const_value = match v {
                        AttributeValue::Sdata(x) => Some(x),
                        _ => a.udata_value().map(|x| x as i64),
                    }
                }
                dw::DW_AT_data_member_location => {
                    d.member_location = match v {
                        AttributeValue::Exprloc(expr) => plus_uconst(expr),
                        _ => a.udata_value(),
                    }
                }
                _ => {}
            }
        }
        Ok(d)
    }

    /// The children of DIE `r`, each parsed.
    fn children(&self, r: DieRef) -> Result<Vec<Die>> {
        let u = self.unit(r.unit)?;
        let mut tree = u
            .header
            .entries_tree(&u.abbreviations, Some(UnitOffset(r.die)))
            .map_err(|e| malformed(r.global(), e))?;
        let root = tree.root().map_err(|e| malformed(r.global(), e))?;
        let mut it = root.children();
        let mut out = Vec::new();
        while let Some(child) = it.next().map_err(|e| malformed(r.global(), e))? {
            out.push(
                self.die_from_entry(&u, r.unit, child.entry())
                    .map_err(|e| malformed(r.global(), e))?,
            );
        }
        Ok(out)
    }

    /// Follows typedefs and cv-qualifiers.
    fn strip(&self, mut r: DieRef) -> Result<Die> {
        for _ in 0..MAX_DEPTH {
            let d = self.die(r)?;
            match d.tag {
                dw::DW_TAG_typedef
                | dw::DW_TAG_const_type
                | dw::DW_TAG_volatile_type
                | dw::DW_TAG_restrict_type
                | dw::DW_TAG_atomic_type => match d.ty {
                    Some(t) => r = t,
                    None => return Ok(d),
                },
                _ => return Ok(d),
            }
        }
        Err(malformed(r.global(), "type chain too deep (cycle?)"))
    }

    /// Size in bytes of type DIE `r`.
    fn type_size(&self, r: DieRef, depth: usize) -> Result<Option<u64>> {
        if depth > MAX_DEPTH {
            return Err(malformed(r.global(), "type chain too deep (cycle?)"));
        }
        let d = self.strip(r)?;
        if let Some(s) = d.byte_size {
            return Ok(Some(s));
        }
        match d.tag {
            dw::DW_TAG_pointer_type
            | dw::DW_TAG_reference_type
            | dw::DW_TAG_rvalue_reference_type => {
                Ok(Some(u64::from(self.unit(d.at.unit)?.header.address_size())))
            }
            dw::DW_TAG_array_type => {
                let Some(elem) = d.ty else { return Ok(None) };
                let Some(es) = self.type_size(elem, depth + 1)? else {
                    return Ok(None);
                };
                let mut n = 1u64;
                for c in self.children(d.at)? {
                    if c.tag == dw::DW_TAG_subrange_type {
                        match c.len() {
                            Some(l) => n = n.saturating_mul(l),
                            None => return Ok(None),
                        }
                    }
                }
                Ok(Some(es.saturating_mul(n)))
            }
            _ => Ok(None),
        }
    }

    /// C spelling of type DIE `r` (`None` = void).
    fn type_name(&self, r: Option<DieRef>, depth: usize) -> Result<String> {
        let Some(r) = r else {
            return Ok("void".into());
        };
        if depth > MAX_DEPTH {
            return Ok("...".into());
        }
        let d = self.die(r)?;
        let named = |prefix: &str| match &d.name {
            Some(n) => format!("{prefix}{n}"),
            None => format!("{prefix}{{...}}"),
        };
        Ok(match d.tag {
            dw::DW_TAG_base_type | dw::DW_TAG_typedef | dw::DW_TAG_unspecified_type => {
                d.name.as_deref().unwrap_or("?").to_string()
            }
            dw::DW_TAG_structure_type => named("struct "),
            dw::DW_TAG_union_type => named("union "),
            dw::DW_TAG_enumeration_type => named("enum "),
            dw::DW_TAG_const_type => format!("const {}", self.type_name(d.ty, depth + 1)?),
            dw::DW_TAG_volatile_type => format!("volatile {}", self.type_name(d.ty, depth + 1)?),
            dw::DW_TAG_atomic_type => format!("_Atomic {}", self.type_name(d.ty, depth + 1)?),
            dw::DW_TAG_restrict_type => format!("{} restrict", self.type_name(d.ty, depth + 1)?),
            dw::DW_TAG_pointer_type => {
                let target = d.ty.map(|t| self.die(t)).transpose()?;
                match target {
                    Some(t) if t.tag == dw::DW_TAG_subroutine_type => {
                        format!("{} (*)(...)", self.type_name(t.ty, depth + 1)?)
                    }
                    _ => {
                        let inner = self.type_name(d.ty, depth + 1)?;
                        if inner.ends_with('*') {
                            format!("{inner}*")
                        } else {
                            format!("{inner} *")
                        }
                    }
                }
            }
            dw::DW_TAG_subroutine_type => format!("{} (...)", self.type_name(d.ty, depth + 1)?),
            dw::DW_TAG_array_type => {
                let mut s = self.type_name(d.ty, depth + 1)?;
                s.push(' ');
                for c in self.children(d.at)? {
                    if c.tag == dw::DW_TAG_subrange_type {
                        match c.len() {
                            Some(n) => s.push_str(&format!("[{n}]")),
                            None => s.push_str("[]"),
                        }
                    }
                }
                s
            }
            _ => d.name.as_deref().unwrap_or("?").to_string(),
        })
    }

    // ---- layouts -----------------------------------------------------

    fn layout_at(&self, r: DieRef, outer: &mut Vec<DieRef>) -> Result<Arc<Layout>> {
        if let Some(l) = self.layouts.lock().ok().and_then(|m| m.get(&r).cloned()) {
            return Ok(l);
        }
        if outer.len() > MAX_DEPTH || outer.contains(&r) {
            return Err(malformed(
                r.global(),
                "anonymous members nested too deep (or containing themselves)",
            ));
        }
        let d = self.strip(r)?;
        let kind = match d.tag {
            dw::DW_TAG_structure_type => CompositeKind::Struct,
            dw::DW_TAG_union_type => CompositeKind::Union,
            _ => {
                return Err(DwarfError::NotComposite {
                    name: d.name.as_deref().unwrap_or("?").to_string(),
                    tag: d.tag.to_string(),
                });
            }
        };
        let prefix = match kind {
            CompositeKind::Struct => "struct ",
            CompositeKind::Union => "union ",
        };
        let name = match &d.name {
            Some(n) => format!("{prefix}{n}"),
            None => format!("{prefix}{{...}}"),
        };
        let mut members = Vec::new();
        for m in self.children(d.at)? {
            if m.tag != dw::DW_TAG_member {
                continue;
            }
            let offset = m.member_location.unwrap_or(0);
            let (composite, array) = match m.ty {
                Some(t) => {
                    let s = self.strip(t)?;
                    match s.tag {
                        dw::DW_TAG_structure_type | dw::DW_TAG_union_type => (Some(s.at), None),
                        dw::DW_TAG_array_type => {
                            let elem_size = match s.ty {
                                Some(e) => self.type_size(e, 0)?,
                                None => None,
                            };
                            let elem_composite = match s.ty {
                                Some(e) => {
                                    let es = self.strip(e)?;
                                    matches!(
                                        es.tag,
                                        dw::DW_TAG_structure_type | dw::DW_TAG_union_type
                                    )
                                    .then_some(es.at)
                                }
                                None => None,
                            };
                            (
                                None,
                                Some(ArrayInfo {
                                    elem_size,
                                    elem_composite,
                                }),
                            )
                        }
                        _ => (None, None),
                    }
                }
                None => (None, None),
            };
            let Some(mname) = m.name else {
                // Anonymous struct/union: flatten.
                if let Some(c) = composite {
                    outer.push(r);
                    let inner = self.layout_at(c, outer);
                    outer.pop();
                    let inner = inner?;
                    for im in &inner.members {
                        let mut im = im.clone();
                        im.offset += offset;
                        if let Some(b) = &mut im.bits {
                            b.bit_offset += offset * 8;
                        }
                        members.push(im);
                    }
                }
                continue;
            };
            let size = match m.ty {
                Some(t) => self.type_size(t, 0)?,
                None => None,
            };
            let bits = m.bit_size.map(|bit_size| {
                let bit_offset = match (m.data_bit_offset, m.old_bit_offset) {
                    (Some(b), _) => b,
                    // DWARF 2/3: counted from the storage unit's MSB.
                    (None, Some(ob)) => {
                        let unit_bits = m.byte_size.or(size).unwrap_or(0) * 8;
                        offset * 8 + unit_bits.saturating_sub(ob + bit_size)
                    }
                    (None, None) => offset * 8,
                };
                BitField {
                    bit_offset,
                    bit_size,
                }
            });
            members.push(Member {
                name: mname.to_string(),
                offset: bits.map_or(offset, |b| b.bit_offset / 8),
                size: if bits.is_some() { None } else { size },
                type_name: self.type_name(m.ty, 0)?,
                bits,
                composite,
                array,
            });
        }
        let layout = Arc::new(Layout {
            name,
            kind,
            size: d.byte_size.unwrap_or(0),
            members,
            die: d.at,
        });
        if let Ok(mut m) = self.layouts.lock() {
            m.insert(r, layout.clone());
        }
        Ok(layout)
    }

    /// The layout of struct/union/typedef `name` (see module docs for the
    /// spelling). Missing → [`DwarfError::TypeNotFound`] naming it.
    pub fn layout(&self, name: &str) -> Result<Arc<Layout>> {
        let (kinds, bare) = parse_name(name);
        let Some((_, r)) = self.find(kinds, bare)? else {
            return Err(DwarfError::TypeNotFound(name.to_string()));
        };
        self.layout_at(r, &mut Vec::new())
    }

    /// `sizeof(name)`.
    pub fn size_of(&self, name: &str) -> Result<u64> {
        let (kinds, bare) = parse_name(name);
        let kinds: Vec<Kind> = if kinds.contains(&Kind::Struct) {
            vec![Kind::Struct, Kind::Union, Kind::Enum, Kind::Typedef]
        } else {
            kinds.to_vec()
        };
        let Some((_, r)) = self.find(&kinds, bare)? else {
            return Err(DwarfError::TypeNotFound(name.to_string()));
        };
        self.type_size(r, 0)?
            .ok_or_else(|| malformed(r.global(), format!("`{name}` has no size")))
    }

    /// The member at dotted `path` of `ty` (`"thread.sp"`,
    /// `"thread.cpu_context.x19"`, `"pids[1]"`). A missing member is
    /// [`DwarfError::NoMember`] (see [`DwarfError::is_absent`]).
    pub fn field(&self, ty: &str, path: &str) -> Result<Field> {
        self.field_in(self.layout(ty)?, ty, path)
    }

    /// The member at dotted `path` of global variable `var`'s type, which
    /// may have no name (`tk_core`: `static struct { seqcount_raw_spinlock_t
    /// seq; struct timekeeper timekeeper; } tk_core`); an array variable's
    /// path starts at its first element (`timekeeper_data`).
    pub fn variable_field(&self, var: &str, path: &str) -> Result<Field> {
        let Some((_, r)) = self.find(&[Kind::Variable], var)? else {
            return Err(DwarfError::TypeNotFound(format!("variable {var}")));
        };
        let mut d = self.die(r)?;
        if d.ty.is_none()
            && let Some(s) = d.specification
        {
            d = self.die(s)?;
        }
        let no_type = || malformed(r.global(), format!("variable `{var}` has no type"));
        let mut ty = self.strip(d.ty.ok_or_else(no_type)?)?;
        if ty.tag == dw::DW_TAG_array_type {
            ty = self.strip(ty.ty.ok_or_else(no_type)?)?;
        }
        let label = format!("typeof({var})");
        self.field_in(self.layout_at(ty.at, &mut Vec::new())?, &label, path)
    }

    /// [`DebugInfo::field`] from `layout`, the type spelled `ty` in errors.
    fn field_in(&self, layout: Arc<Layout>, ty: &str, path: &str) -> Result<Field> {
        let mut layout = layout;
        let mut base = 0u64;
        let mut done = String::new();
        let no_member = || DwarfError::NoMember {
            ty: ty.to_string(),
            path: path.to_string(),
        };
        let bad = |reason: String| DwarfError::BadPath {
            ty: ty.to_string(),
            path: path.to_string(),
            reason,
        };
        let parts: Vec<&str> = path.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let (mname, index) = match part.split_once('[') {
                Some((n, rest)) => {
                    let idx = rest
                        .strip_suffix(']')
                        .and_then(|s| parse_u64(s.trim()))
                        .ok_or_else(|| bad(format!("bad index in `{part}`")))?;
                    (n, Some(idx))
                }
                None => (*part, None),
            };
            let m = layout.member(mname).ok_or_else(no_member)?.clone();
            if !done.is_empty() {
                done.push('.');
            }
            done.push_str(part);
            let last = i + 1 == parts.len();
            // offsets come from the vmlinux's DWARF: a sum past 64 bits is
            // a damaged member location, reported, never wrapped
            let too_far = || bad(format!("`{done}`: member offset past 64 bits"));
            let at = base.checked_add(m.offset).ok_or_else(too_far)?;
            let (offset, composite, field) = match index {
                None => (
                    at,
                    m.composite,
                    Field {
                        offset: at,
                        size: m.size,
                        type_name: m.type_name.clone(),
                        bits: match m.bits {
                            Some(b) => Some(BitField {
                                bit_offset: base
                                    .checked_mul(8)
                                    .and_then(|bits| bits.checked_add(b.bit_offset))
                                    .ok_or_else(too_far)?,
                                ..b
                            }),
                            None => None,
                        },
                    },
                ),
                Some(idx) => {
                    let a = m
                        .array
                        .ok_or_else(|| bad(format!("`{done}` is not an array")))?;
                    let es = a
                        .elem_size
                        .ok_or_else(|| bad(format!("`{done}`: element size unknown")))?;
                    let off = idx
                        .checked_mul(es)
                        .and_then(|o| at.checked_add(o))
                        .ok_or_else(too_far)?;
                    let tn = m
                        .type_name
                        .rsplit_once(" [")
                        .map_or(m.type_name.clone(), |(t, _)| t.to_string());
                    (
                        off,
                        a.elem_composite,
                        Field {
                            offset: off,
                            size: Some(es),
                            type_name: tn,
                            bits: None,
                        },
                    )
                }
            };
            if last {
                return Ok(field);
            }
            let c = composite.ok_or_else(|| {
                bad(format!(
                    "`{done}` ({}) is not a struct or union",
                    m.type_name
                ))
            })?;
            layout = self.layout_at(c, &mut Vec::new())?;
            base = offset;
        }
        Err(bad("empty path".into()))
    }

    /// `offsetof(ty, path)`; see [`DebugInfo::field`].
    pub fn offset_of(&self, ty: &str, path: &str) -> Result<u64> {
        self.field(ty, path).map(|f| f.offset)
    }

    /// Like [`DebugInfo::offset_of`], but an absent member is `Ok(None)`.
    pub fn try_offset_of(&self, ty: &str, path: &str) -> Result<Option<u64>> {
        match self.field(ty, path) {
            Ok(f) => Ok(Some(f.offset)),
            Err(DwarfError::NoMember { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The first of `paths` that exists in `ty`, with its offset
    /// (`&["__state", "state"]`).
    pub fn first_offset_of<'p>(&self, ty: &str, paths: &[&'p str]) -> Result<(&'p str, u64)> {
        for p in paths {
            if let Some(o) = self.try_offset_of(ty, p)? {
                return Ok((p, o));
            }
        }
        Err(DwarfError::NoMember {
            ty: ty.to_string(),
            path: paths.join("|"),
        })
    }

    /// The enumerators of `enum name` (`module_state`), each name with its
    /// value, in declaration order: constants from the kernel's own debug
    /// info rather than a table of one version.
    pub fn enumerators(&self, name: &str) -> Result<Vec<(String, i64)>> {
        let Some((_, r)) = self.find(&[Kind::Enum], name)? else {
            return Err(DwarfError::TypeNotFound(format!("enum {name}")));
        };
        let d = self.strip(r)?;
        Ok(self
            .children(d.at)?
            .into_iter()
            .filter(|c| c.tag == dw::DW_TAG_enumerator)
            .filter_map(|c| Some((c.name?, c.const_value?)))
            .collect())
    }

    /// The C type of global variable `name` (`struct task_struct` for
    /// `init_task`).
    pub fn variable_type(&self, name: &str) -> Result<String> {
        let Some((_, r)) = self.find(&[Kind::Variable], name)? else {
            return Err(DwarfError::TypeNotFound(format!("variable {name}")));
        };
        let mut d = self.die(r)?;
        if d.ty.is_none()
            && let Some(s) = d.specification
        {
            d = self.die(s)?;
        }
        self.type_name(d.ty, 0)
    }
}

/// A unit's entries positioned after its root DIE, with what string
/// attributes need and where the unit ends (unit offset).
pub(crate) struct TopLevel<'a> {
    pub raw: gimli::EntriesRaw<'a, 'a, R>,
    pub ctx: Unit,
    pub unit_end: usize,
}

/// Reads `header`'s root DIE; `None` when it has no children.
pub(crate) fn top_level<'a>(
    header: &'a Header,
    abbrevs: &'a Arc<gimli::Abbreviations>,
) -> gimli::Result<Option<TopLevel<'a>>> {
    let mut raw = header.entries_raw(abbrevs, None)?;
    let Some(root) = raw.read_abbreviation()? else {
        return Ok(None);
    };
    let mut str_offsets_base = gimli::DebugStrOffsetsBase(0);
    for spec in root.attributes() {
        let a = raw.read_attribute(*spec)?;
        if let AttributeValue::DebugStrOffsetsBase(b) = a.value() {
            str_offsets_base = b;
        }
    }
    if !root.has_children() {
        return Ok(None);
    }
    Ok(Some(TopLevel {
        raw,
        ctx: bare_unit(header.clone(), abbrevs.clone(), str_offsets_base),
        unit_end: header.unit_length() + header.size_of_header(),
    }))
}

/// Moves `raw` past the children of the DIE at `off` (just read, and
/// having children): to its `DW_AT_sibling` when that lies ahead inside
/// the unit, else by walking the subtree. `false`: the unit ended.
pub(crate) fn skip_children<'a>(
    raw: &mut gimli::EntriesRaw<'a, 'a, R>,
    header: &'a Header,
    abbrevs: &'a gimli::Abbreviations,
    off: UnitOffset,
    sibling: Option<UnitOffset>,
    unit_end: usize,
) -> gimli::Result<bool> {
    if let Some(s) = sibling.filter(|s| s.0 > off.0 && s.0 < unit_end) {
        *raw = header.entries_raw(abbrevs, Some(s))?;
        return Ok(true);
    }
    let mut depth = 1usize;
    while depth > 0 {
        match raw.read_abbreviation()? {
            None => depth -= 1,
            Some(a) => {
                raw.skip_attributes(a.attributes())?;
                if a.has_children() {
                    depth += 1;
                }
            }
        }
        if raw.is_empty() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A unit with only what string and reference attributes need.
fn bare_unit(
    header: Header,
    abbreviations: Arc<gimli::Abbreviations>,
    str_offsets_base: gimli::DebugStrOffsetsBase,
) -> Unit {
    Unit {
        header,
        abbreviations,
        name: None,
        comp_dir: None,
        low_pc: 0,
        str_offsets_base,
        addr_base: gimli::DebugAddrBase(0),
        loclists_base: gimli::DebugLocListsBase(0),
        rnglists_base: gimli::DebugRngListsBase(0),
        line_program: None,
        dwo_id: None,
    }
}

/// The attributes we use of one DIE.
#[derive(Clone, Debug)]
struct Die {
    tag: gimli::DwTag,
    at: DieRef,
    name: Option<String>,
    ty: Option<DieRef>,
    byte_size: Option<u64>,
    bit_size: Option<u64>,
    data_bit_offset: Option<u64>,
    old_bit_offset: Option<u64>,
    member_location: Option<u64>,
    upper_bound: Option<i64>,
    count: Option<u64>,
    /// An enumerator's value.
    const_value: Option<i64>,
    declaration: bool,
    specification: Option<DieRef>,
}

impl Die {
    /// Element count of a subrange (`None` for flexible arrays).
    fn len(&self) -> Option<u64> {
        if let Some(c) = self.count {
            return Some(c);
        }
        match self.upper_bound {
            Some(ub) if ub >= 0 => Some(ub as u64 + 1),
            Some(-1) => Some(0),
            _ => None,
        }
    }
}

/// `DW_OP_plus_uconst N` (DWARF 2 member locations).
fn plus_uconst(expr: gimli::Expression<R>) -> Option<u64> {
    let mut r = expr.0;
    let op = gimli::Reader::read_u8(&mut r).ok()?;
    if op == dw::DW_OP_plus_uconst.0 {
        gimli::Reader::read_uleb128(&mut r).ok()
    } else {
        None
    }
}

fn parse_u64(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn parse_name(name: &str) -> (&'static [Kind], &str) {
    let name = name.trim();
    if let Some(n) = name.strip_prefix("struct ") {
        (&[Kind::Struct], n.trim())
    } else if let Some(n) = name.strip_prefix("union ") {
        (&[Kind::Union], n.trim())
    } else if let Some(n) = name.strip_prefix("enum ") {
        (&[Kind::Enum], n.trim())
    } else {
        (&[Kind::Struct, Kind::Union, Kind::Typedef], name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DW_TAG_CU: u8 = 0x11;
    const DW_TAG_STRUCT: u8 = 0x13;
    const DW_TAG_UNION: u8 = 0x17;
    const DW_TAG_MEMBER: u8 = 0x0d;
    const DW_TAG_BASE: u8 = 0x24;
    const DW_TAG_POINTER: u8 = 0x0f;
    const DW_TAG_TYPEDEF: u8 = 0x16;
    const DW_TAG_ENUM: u8 = 0x04;
    const DW_TAG_ENUMERATOR: u8 = 0x28;
    const AT_CONST_VALUE: u8 = 0x1c;
    const AT_NAME: u8 = 0x03;
    const AT_BYTE_SIZE: u8 = 0x0b;
    const AT_ENCODING: u8 = 0x3e;
    const AT_TYPE: u8 = 0x49;
    const AT_LOC: u8 = 0x38;
    const AT_SIBLING: u8 = 0x01;
    const AT_DECL: u8 = 0x3c;
    const AT_BIT_SIZE: u8 = 0x0d;
    const AT_DATA_BIT_OFFSET: u8 = 0x6b;
    const FORM_STRING: u8 = 0x08;
    const FORM_DATA1: u8 = 0x0b;
    const FORM_REF4: u8 = 0x13;
    const FORM_FLAG_PRESENT: u8 = 0x19;

    /// Abbreviation codes used below.
    fn abbrevs() -> Vec<u8> {
        type Abbrev = (u8, u8, bool, &'static [(u8, u8)]);
        let table: &[Abbrev] = &[
            (1, DW_TAG_CU, true, &[]),
            (
                2,
                DW_TAG_STRUCT,
                true,
                &[
                    (AT_NAME, FORM_STRING),
                    (AT_BYTE_SIZE, FORM_DATA1),
                    (AT_SIBLING, FORM_REF4),
                ],
            ),
            (
                3,
                DW_TAG_MEMBER,
                false,
                &[
                    (AT_NAME, FORM_STRING),
                    (AT_TYPE, FORM_REF4),
                    (AT_LOC, FORM_DATA1),
                ],
            ),
            (
                4,
                DW_TAG_BASE,
                false,
                &[
                    (AT_NAME, FORM_STRING),
                    (AT_BYTE_SIZE, FORM_DATA1),
                    (AT_ENCODING, FORM_DATA1),
                ],
            ),
            (
                5,
                DW_TAG_MEMBER,
                false,
                &[(AT_TYPE, FORM_REF4), (AT_LOC, FORM_DATA1)],
            ),
            (6, DW_TAG_UNION, true, &[(AT_BYTE_SIZE, FORM_DATA1)]),
            (
                7,
                DW_TAG_STRUCT,
                false,
                &[(AT_NAME, FORM_STRING), (AT_DECL, FORM_FLAG_PRESENT)],
            ),
            (
                8,
                DW_TAG_POINTER,
                false,
                &[(AT_BYTE_SIZE, FORM_DATA1), (AT_TYPE, FORM_REF4)],
            ),
            (
                9,
                DW_TAG_STRUCT,
                false,
                &[(AT_NAME, FORM_STRING), (AT_BYTE_SIZE, FORM_DATA1)],
            ),
            (
                10,
                DW_TAG_MEMBER,
                false,
                &[
                    (AT_NAME, FORM_STRING),
                    (AT_TYPE, FORM_REF4),
                    (AT_BIT_SIZE, FORM_DATA1),
                    (AT_DATA_BIT_OFFSET, FORM_DATA1),
                ],
            ),
            (
                11,
                DW_TAG_TYPEDEF,
                false,
                &[(AT_NAME, FORM_STRING), (AT_TYPE, FORM_REF4)],
            ),
            (
                12,
                DW_TAG_ENUM,
                true,
                &[(AT_NAME, FORM_STRING), (AT_BYTE_SIZE, FORM_DATA1)],
            ),
            (
                13,
                DW_TAG_ENUMERATOR,
                false,
                &[(AT_NAME, FORM_STRING), (AT_CONST_VALUE, FORM_DATA1)],
            ),
        ];
        let mut v = Vec::new();
        for (code, tag, children, attrs) in table {
            v.extend([*code, *tag, u8::from(*children)]);
            for (a, f) in *attrs {
                v.extend([*a, *f]);
            }
            v.extend([0, 0]);
        }
        v.push(0);
        v
    }

    /// A DWARF 4 unit under construction; offsets are unit-relative.
    struct Unit {
        b: Vec<u8>,
        /// (position of a ref4 to patch, label)
        fixups: Vec<(usize, &'static str)>,
        labels: HashMap<&'static str, u32>,
    }

    impl Unit {
        fn new() -> Self {
            // unit_length (patched), version 4, abbrev offset 0, address size 8
            let mut b = vec![0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 8];
            b.push(1); // the CU root
            Unit {
                b,
                fixups: vec![],
                labels: HashMap::new(),
            }
        }
        fn label(&mut self, l: &'static str) -> &mut Self {
            self.labels.insert(l, self.b.len() as u32);
            self
        }
        fn u8(&mut self, x: u8) -> &mut Self {
            self.b.push(x);
            self
        }
        fn str(&mut self, s: &str) -> &mut Self {
            self.b.extend(s.as_bytes());
            self.b.push(0);
            self
        }
        fn r(&mut self, l: &'static str) -> &mut Self {
            self.fixups.push((self.b.len(), l));
            self.b.extend([0; 4]);
            self
        }
        fn finish(mut self) -> Vec<u8> {
            self.b.push(0); // end of the CU's children
            for (pos, l) in &self.fixups {
                let v = self.labels[l];
                self.b[*pos..pos + 4].copy_from_slice(&v.to_le_bytes());
            }
            let len = (self.b.len() - 4) as u32;
            self.b[..4].copy_from_slice(&len.to_le_bytes());
            self.b
        }
    }

    fn leak(v: Vec<u8>) -> &'static [u8] {
        Box::leak(v.into_boxed_slice())
    }

    /// CU 1: `int`, a declaration of `later`, `struct outer { int a;
    /// union { int x; int y; }; struct outer *p; unsigned int f:3, g:5 }`.
    /// CU 2: the definition of `later` (8 bytes, no members).
    fn sample() -> DebugInfo {
        let mut u = Unit::new();
        u.label("int").u8(4).str("int").u8(4).u8(5);
        u.u8(7).str("later");
        u.label("outer").u8(2).str("outer").u8(20).r("after_outer");
        u.u8(3).str("a").r("int").u8(0);
        u.u8(5).r("anon").u8(4);
        u.u8(3).str("p").r("ptr").u8(8);
        u.u8(10).str("f").r("int").u8(3).u8(16 * 8);
        u.u8(10).str("g").r("int").u8(5).u8(16 * 8 + 3);
        u.u8(0);
        u.label("after_outer");
        u.label("anon").u8(6).u8(4);
        u.u8(3).str("x").r("int").u8(0);
        u.u8(3).str("y").r("int").u8(0);
        u.u8(0);
        u.label("ptr").u8(8).u8(8).r("outer");
        u.u8(11).str("myint").r("int");
        u.u8(11).str("outer_t").r("outer");
        let mut info = u.finish();
        let mut u2 = Unit::new();
        u2.u8(9).str("later").u8(8);
        info.extend(u2.finish());
        DebugInfo::from_static(&[
            (".debug_info", leak(info)),
            (".debug_abbrev", leak(abbrevs())),
        ])
        .unwrap()
    }

    #[test]
    fn layout_flattens_anonymous_union_and_names_types() {
        let di = sample();
        let l = di.layout("outer").unwrap();
        assert_eq!(l.name, "struct outer");
        assert_eq!(l.size, 20);
        let got: Vec<(&str, u64, Option<u64>, &str)> = l
            .members
            .iter()
            .map(|m| (m.name.as_str(), m.offset, m.size, m.type_name.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("a", 0, Some(4), "int"),
                ("x", 4, Some(4), "int"),
                ("y", 4, Some(4), "int"),
                ("p", 8, Some(8), "struct outer *"),
                ("f", 16, None, "int"),
                ("g", 16, None, "int"),
            ]
        );
        assert_eq!(
            l.member("g").unwrap().bits,
            Some(BitField {
                bit_offset: 131,
                bit_size: 5
            })
        );
        assert_eq!(di.offset_of("outer", "y").unwrap(), 4);
        assert_eq!(di.offset_of("struct outer", "p").unwrap(), 8);
        assert_eq!(di.size_of("outer").unwrap(), 20);
        assert_eq!(
            di.size_of("int").unwrap_err(),
            DwarfError::TypeNotFound("int".into())
        );
    }

    #[test]
    fn enumerators_come_with_their_values() {
        let mut u = Unit::new();
        u.u8(12).str("module_state").u8(4);
        u.u8(13).str("MODULE_STATE_LIVE").u8(0);
        u.u8(13).str("MODULE_STATE_GOING").u8(2);
        u.u8(0);
        let di = DebugInfo::from_static(&[
            (".debug_info", leak(u.finish())),
            (".debug_abbrev", leak(abbrevs())),
        ])
        .unwrap();
        assert_eq!(
            di.enumerators("module_state").unwrap(),
            [
                ("MODULE_STATE_LIVE".to_string(), 0),
                ("MODULE_STATE_GOING".to_string(), 2)
            ]
        );
        assert_eq!(
            di.enumerators("nosuch").unwrap_err(),
            DwarfError::TypeNotFound("enum nosuch".into())
        );
    }

    #[test]
    fn typedefs() {
        let di = sample();
        assert_eq!(di.layout("outer_t").unwrap().name, "struct outer");
        assert_eq!(di.offset_of("outer_t", "p").unwrap(), 8);
        assert_eq!(di.size_of("myint").unwrap(), 4);
        let e = di.layout("myint").unwrap_err();
        assert_eq!(
            e,
            DwarfError::NotComposite {
                name: "int".into(),
                tag: "DW_TAG_base_type".into()
            }
        );
    }

    #[test]
    fn declarations_are_skipped_for_the_definition() {
        let di = sample();
        let l = di.layout("later").unwrap();
        assert_eq!((l.size, l.members.len()), (8, 0));
        assert_eq!(di.units_scanned(), 2);
    }

    #[test]
    fn errors_name_what_is_missing() {
        let di = sample();
        let e = di.layout("nosuch").unwrap_err();
        assert_eq!(e, DwarfError::TypeNotFound("nosuch".into()));
        assert!(e.to_string().contains("nosuch") && e.is_absent());
        assert!(di.layout("union outer").is_err());
        let e = di.offset_of("outer", "b").unwrap_err();
        assert_eq!(
            e,
            DwarfError::NoMember {
                ty: "outer".into(),
                path: "b".into()
            }
        );
        assert_eq!(di.try_offset_of("outer", "b").unwrap(), None);
        assert_eq!(di.first_offset_of("outer", &["b", "y"]).unwrap(), ("y", 4));
        // Through a pointer is not a path.
        let e = di.offset_of("outer", "p.a").unwrap_err();
        assert!(
            matches!(e, DwarfError::BadPath { .. }) && !e.is_absent(),
            "{e}"
        );
        let e = di.offset_of("outer", "a[1]").unwrap_err();
        assert!(e.to_string().contains("not an array"), "{e}");
        let e = di.offset_of("outer", "a[x]").unwrap_err();
        assert!(e.to_string().contains("bad index"), "{e}");
    }

    #[test]
    fn self_containing_struct_is_an_error() {
        let mut u = Unit::new();
        u.label("s").u8(2).str("s").u8(4).r("end");
        u.u8(5).r("s").u8(0);
        u.u8(5).r("s").u8(0);
        u.u8(0);
        u.label("end");
        let di = DebugInfo::from_static(&[
            (".debug_info", leak(u.finish())),
            (".debug_abbrev", leak(abbrevs())),
        ])
        .unwrap();
        let e = di.layout("s").unwrap_err();
        assert!(e.to_string().contains("containing themselves"), "{e}");
    }

    #[test]
    fn no_debug_info() {
        let e = DebugInfo::from_static(&[]).unwrap_err();
        assert_eq!(e, DwarfError::NoDebugInfo);
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let good = {
            let mut u = Unit::new();
            u.label("int").u8(4).str("int").u8(4).u8(5);
            u.label("s").u8(2).str("s").u8(4).r("end");
            u.u8(3).str("a").r("int").u8(0);
            u.u8(0);
            u.label("end");
            u.finish()
        };
        // Every truncation, and a byte flipped at every position: any
        // result but a panic or a hang is fine.
        for cut in 0..good.len() {
            let di = DebugInfo::from_static(&[
                (".debug_info", leak(good[..cut].to_vec())),
                (".debug_abbrev", leak(abbrevs())),
            ]);
            if let Ok(di) = di {
                let _ = di.layout("s");
            }
        }
        for pos in 0..good.len() {
            for flip in [0xff, 0x80, 0x01] {
                let mut bad = good.clone();
                bad[pos] ^= flip;
                let di = DebugInfo::from_static(&[
                    (".debug_info", leak(bad)),
                    (".debug_abbrev", leak(abbrevs())),
                ])
                .unwrap();
                if let Ok(l) = di.layout("s") {
                    let _ = di.offset_of("s", "a");
                    let _ = l.members.len();
                }
            }
        }
        // Unknown abbreviation code: an error naming the offset.
        let mut bad = good.clone();
        bad[11] = 99;
        let di = DebugInfo::from_static(&[
            (".debug_info", leak(bad)),
            (".debug_abbrev", leak(abbrevs())),
        ])
        .unwrap();
        let e = di.layout("s").unwrap_err();
        assert!(matches!(e, DwarfError::Malformed { offset: 0, .. }), "{e}");
    }
}
