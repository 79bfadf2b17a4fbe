//! A `.gdb_index` for a vmlinux, built from its DWARF so GDB need not index
//! the DWARF itself on its first start (its index cache reads this format:
//! `BUILD-ID.gdb-index`).
//!
//! The format is GDB's documented "Index Section Format", version 8 (GDB
//! 13 reads versions 7 and 8 only; later GDBs read 8 too): a header of six
//! little-endian 32-bit offsets, the CU list, an empty type-unit list, the
//! address area (CU address ranges, for pc lookups), an open-addressing
//! symbol hash table, and the constant pool (CU vectors, then names).
//!
//! What is indexed, as GDB's own index of C: every named top-level
//! definition (no `DW_AT_declaration`) of a unit (functions, variables,
//! struct/union/enum tags, typedefs, base types) and the enumerators of
//! top-level enums. Functions and variables are static unless
//! `DW_AT_external`; types and enumerators are always static and, as GDB
//! does for C, listed with the first unit defining the name only (GDB
//! finds the others after expanding that unit). Compilation units are
//! scanned in parallel.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use gimli::{AttributeValue, UnitOffset, constants as dw};

use super::dwarf::{
    DebugInfo, DwarfError, Header, NameAt, TopLevel, malformed, skip_children, top_level,
};
use super::symbols::{FxHasher, fx_hash};

/// The `.gdb_index` version written.
const VERSION: u32 = 8;

/// GDB's symbol kinds (bits 28–30 of a CU vector entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum SymbolKind {
    Type = 1,
    Variable = 2,
    Function = 3,
}

/// A name: in the DWARF's strings, or GDB's canonical spelling of a C
/// base type ([`canonical_base_type`]).
#[derive(Clone, Copy, Debug)]
enum Name {
    At(NameAt),
    Canonical(&'static str),
}

impl Name {
    fn bytes<'a>(&self, di: &'a DebugInfo) -> &'a [u8] {
        match self {
            Name::At(at) => di.name_bytes(*at),
            Name::Canonical(s) => s.as_bytes(),
        }
    }
}

/// One name a unit defines.
#[derive(Clone, Copy, Debug)]
struct Entry {
    name: Name,
    kind: SymbolKind,
    is_static: bool,
    /// Types and enumerators: one unit per name is enough (GDB's own
    /// index of C lists the first).
    first_unit_only: bool,
    /// `fx_hash` of the name (computed on the scanning threads).
    hash: u64,
    /// An external variable only declared here: listed (first unit only)
    /// when no unit defines it, as for the linker's symbols (`__bss_start`);
    /// GDB then resolves it through the ELF symbol.
    declaration: bool,
}

/// What one compilation unit contributes: its entries, by shard of their
/// name's hash ([`SHARDS`]).
struct UnitNames {
    shards: Vec<Vec<Entry>>,
}

impl UnitNames {
    fn new() -> Self {
        UnitNames {
            shards: (0..SHARDS).map(|_| Vec::new()).collect(),
        }
    }

    fn push(&mut self, e: Entry) {
        self.shards[shard_of(e.hash)].push(e);
    }
}

/// The types and enumerators one scanning thread has listed already, by
/// where their name lies in `.debug_str` / `.debug_line_str` (the linker
/// merges equal strings there). A thread takes units in increasing order,
/// so a later unit's copy of a name it listed can never be the first unit's
/// and is dropped before it costs anything; the first units of the other
/// threads' copies are compared when names are tabled.
#[derive(Default)]
struct Listed(std::collections::HashSet<u64, std::hash::BuildHasherDefault<FxHasher>>);

impl Listed {
    /// Is this the first `name` (of an enumerator, or a type) this thread
    /// meets? Names elsewhere than in the string sections always are.
    fn first(&mut self, name: &AttributeValue<super::dwarf::R>, enumerator: bool) -> bool {
        let at = match name {
            AttributeValue::DebugStrRef(o) => o.0 as u64 * 4,
            AttributeValue::DebugLineStrRef(o) => o.0 as u64 * 4 + 2,
            _ => return true,
        };
        self.0.insert(at + u64::from(enumerator))
    }
}

/// The shard of a name with this `fx_hash`.
fn shard_of(hash: u64) -> usize {
    ((hash >> 32) % SHARDS as u64) as usize
}

/// Builds the `.gdb_index` of `di`'s DWARF on `threads` threads.
pub fn build(di: &DebugInfo, threads: usize) -> Result<Vec<u8>, DwarfError> {
    let t = std::time::Instant::now();
    let headers = unit_headers(di)?;
    let names = scan_units(di, &headers, threads.max(1))?;
    let scanned = t.elapsed();
    let ranges = unit_ranges(di, &headers)?;
    let symbols = symbol_table(di, &names, threads.max(1));
    let tabled = t.elapsed();
    let index = write(&headers, &ranges, &symbols);
    let entries: usize = names.iter().flat_map(|u| &u.shards).map(Vec::len).sum();
    let once: usize = names
        .iter()
        .flat_map(|u| &u.shards)
        .flatten()
        .filter(|e| e.first_unit_only)
        .count();
    log::debug!(
        "gdb index: {} units scanned on {threads} threads in {scanned:?} ({entries} entries, \
         {once} of types and enumerators), {} names tabled at {tabled:?}, written at {:?}",
        headers.len(),
        symbols.len(),
        t.elapsed()
    );
    Ok(index)
}

/// Every unit header, in `.debug_info` order.
fn unit_headers(di: &DebugInfo) -> Result<Vec<Header>, DwarfError> {
    let mut units = di.sections().debug_info.units();
    let mut v = Vec::new();
    loop {
        match units.next() {
            Ok(Some(h)) => v.push(h),
            Ok(None) => return Ok(v),
            Err(e) => {
                let at = v.last().map_or(0, |h: &Header| unit_end(h));
                return Err(malformed(at, format!("unit header: {e}")));
            }
        }
    }
}

/// `.debug_info` offset of the unit's start.
fn unit_offset(h: &Header) -> u64 {
    h.offset().as_debug_info_offset().map_or(0, |o| o.0 as u64)
}

/// `.debug_info` offset just past the unit.
fn unit_end(h: &Header) -> u64 {
    unit_offset(h).saturating_add(h.length_including_self() as u64)
}

/// Scans every unit, `threads` at a time, each taking the next unscanned
/// unit; the results in unit order.
fn scan_units(
    di: &DebugInfo,
    headers: &[Header],
    threads: usize,
) -> Result<Vec<UnitNames>, DwarfError> {
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        let mut listed = Listed::default();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(h) = headers.get(i) else {
                return done;
            };
            let scanned = scan_unit(di, h, &mut listed)
                .map_err(|e| malformed(unit_offset(h), format!("scanning unit: {e}")));
            done.push((i, scanned));
        }
    };
    let mut all: Vec<(usize, Result<UnitNames, DwarfError>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    if all.len() != headers.len() {
        return Err(malformed(0, "a unit scanner stopped"));
    }
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

/// The index kind of a top-level DIE's tag (`None`: not indexed).
fn kind_of(tag: gimli::DwTag) -> Option<SymbolKind> {
    match tag {
        dw::DW_TAG_subprogram => Some(SymbolKind::Function),
        dw::DW_TAG_variable => Some(SymbolKind::Variable),
        dw::DW_TAG_structure_type
        | dw::DW_TAG_union_type
        | dw::DW_TAG_enumeration_type
        | dw::DW_TAG_class_type
        | dw::DW_TAG_typedef
        | dw::DW_TAG_base_type => Some(SymbolKind::Type),
        _ => None,
    }
}

/// The attributes of a top-level DIE the index needs.
#[derive(Default)]
struct TopDie {
    name: Option<AttributeValue<super::dwarf::R>>,
    declaration: bool,
    external: bool,
    specification: Option<UnitOffset>,
    sibling: Option<UnitOffset>,
}

/// Reads the attributes [`TopDie`] holds, skipping the others unparsed.
fn read_top_die(
    raw: &mut gimli::EntriesRaw<'_, '_, super::dwarf::R>,
    ab: &gimli::Abbreviation,
) -> gimli::Result<TopDie> {
    let mut d = TopDie::default();
    for spec in ab.attributes() {
        match spec.name() {
            dw::DW_AT_name
            | dw::DW_AT_declaration
            | dw::DW_AT_external
            | dw::DW_AT_specification
            | dw::DW_AT_sibling => {}
            _ => {
                raw.skip_attributes(std::slice::from_ref(spec))?;
                continue;
            }
        }
        let a = raw.read_attribute(*spec)?;
        match (a.name(), a.value()) {
            (dw::DW_AT_name, v) => d.name = Some(v),
            (dw::DW_AT_declaration, v) => d.declaration = v != AttributeValue::Flag(false),
            (dw::DW_AT_external, v) => d.external = v != AttributeValue::Flag(false),
            (dw::DW_AT_specification, AttributeValue::UnitRef(r)) => d.specification = Some(r),
            (dw::DW_AT_sibling, AttributeValue::UnitRef(r)) => d.sibling = Some(r),
            _ => {}
        }
    }
    Ok(d)
}

/// A definition completing an earlier declaration (`DW_AT_specification`)
/// carries neither name nor `DW_AT_external`: the declaration has them.
fn complete_from_specification(header: &Header, abbrevs: &gimli::Abbreviations, d: &mut TopDie) {
    let Some(spec) = d.specification else {
        return;
    };
    let Ok(e) = header.entry(abbrevs, spec) else {
        return;
    };
    if d.name.is_none() {
        d.name = e.attr_value(dw::DW_AT_name).ok().flatten();
    }
    if let Ok(Some(v)) = e.attr_value(dw::DW_AT_external) {
        d.external |= v != AttributeValue::Flag(false);
    }
}

/// The named top-level definitions of one unit, and its enumerators.
fn scan_unit(di: &DebugInfo, header: &Header, listed: &mut Listed) -> gimli::Result<UnitNames> {
    let abbrevs = Arc::new(header.abbreviations(&di.sections().debug_abbrev)?);
    let mut names = UnitNames::new();
    let Some(top) = top_level(header, &abbrevs)? else {
        return Ok(names);
    };
    let TopLevel {
        mut raw,
        ctx,
        unit_end,
    } = top;
    while !raw.is_empty() {
        let off = raw.next_offset();
        let Some(ab) = raw.read_abbreviation()? else {
            break; // end of the unit's children
        };
        let kind = kind_of(ab.tag());
        if kind.is_none() && !ab.has_children() {
            raw.skip_attributes(ab.attributes())?;
            continue;
        }
        let mut d = read_top_die(&mut raw, ab)?;
        if let Some(kind) = kind {
            complete_from_specification(header, &abbrevs, &mut d);
            if let Some(e) = top_entry(di, &ctx, ab.tag(), kind, &d, listed) {
                names.push(e);
            }
        }
        if !ab.has_children() {
            continue;
        }
        let more = if ab.tag() == dw::DW_TAG_enumeration_type && !d.declaration {
            read_enumerators(di, &ctx, &mut raw, &mut names, listed)?
        } else {
            skip_children(&mut raw, header, &abbrevs, off, d.sibling, unit_end)?
        };
        if !more {
            break;
        }
    }
    Ok(names)
}

/// The index entry of a top-level DIE of `kind`, if GDB would list it:
/// definitions (variables also without a location or value, optimized out:
/// GDB 16 lists them, GDB 13 not) and external variable declarations (see
/// [`Entry::declaration`]).
fn top_entry(
    di: &DebugInfo,
    ctx: &gimli::Unit<super::dwarf::R>,
    tag: gimli::DwTag,
    kind: SymbolKind,
    d: &TopDie,
    listed: &mut Listed,
) -> Option<Entry> {
    let variable = kind == SymbolKind::Variable;
    let declaration = variable && d.declaration && d.external;
    let wanted = match kind {
        SymbolKind::Variable => declaration || !d.declaration,
        _ => !d.declaration,
    };
    let raw_name = d.name.clone()?;
    if !wanted || kind == SymbolKind::Type && !listed.first(&raw_name, false) {
        return None;
    }
    let mut name = Name::At(di.name_at(ctx, raw_name)?);
    if tag == dw::DW_TAG_base_type
        && let Some(c) = canonical_base_type(name.bytes(di))
    {
        name = Name::Canonical(c);
    }
    Some(Entry {
        name,
        hash: fx_hash(name.bytes(di)),
        kind,
        is_static: kind == SymbolKind::Type || !d.external,
        first_unit_only: kind == SymbolKind::Type,
        declaration,
    })
}

/// GDB's spellings of C's integer types (what its C name canonicalizer
/// makes of GCC's `long unsigned int`).
const CANONICAL_INTEGERS: &[&str] = &[
    "char",
    "signed char",
    "unsigned char",
    "short",
    "unsigned short",
    "int",
    "unsigned int",
    "long",
    "unsigned long",
    "long long",
    "unsigned long long",
];

/// GDB's spelling of a base type named with C's integer keywords in any
/// order (`long unsigned int` → `unsigned long`); `None`: another name,
/// or already GDB's.
fn canonical_base_type(name: &[u8]) -> Option<&'static str> {
    let name = std::str::from_utf8(name).ok()?;
    let words: Vec<&str> = name.split(' ').collect();
    let count = |w: &str| words.iter().filter(|&&x| x == w).count();
    let known = ["signed", "unsigned", "short", "long", "int", "char"];
    if words.iter().any(|w| !known.contains(w)) {
        return None;
    }
    let (char_, short, longs) = (count("char") > 0, count("short") > 0, count("long"));
    let mut parts = Vec::new();
    if count("unsigned") > 0 {
        parts.push("unsigned");
    } else if count("signed") > 0 && char_ {
        parts.push("signed");
    }
    if short {
        parts.push("short");
    }
    parts.extend(std::iter::repeat_n("long", longs));
    if char_ {
        parts.push("char");
    } else if !short && longs == 0 {
        parts.push("int");
    }
    let canonical = parts.join(" ");
    CANONICAL_INTEGERS
        .iter()
        .find(|&&c| c == canonical && c != name)
        .copied()
}

/// Reads an enum's children (just after its attributes) up to their end,
/// recording each named enumerator. `false`: the unit ended.
fn read_enumerators(
    di: &DebugInfo,
    ctx: &gimli::Unit<super::dwarf::R>,
    raw: &mut gimli::EntriesRaw<'_, '_, super::dwarf::R>,
    names: &mut UnitNames,
    listed: &mut Listed,
) -> gimli::Result<bool> {
    let mut depth = 1usize;
    while depth > 0 {
        if raw.is_empty() {
            return Ok(false);
        }
        let Some(ab) = raw.read_abbreviation()? else {
            depth -= 1;
            continue;
        };
        let enumerator = depth == 1 && ab.tag() == dw::DW_TAG_enumerator;
        for spec in ab.attributes() {
            let a = raw.read_attribute(*spec)?;
            if enumerator
                && a.name() == dw::DW_AT_name
                && listed.first(&a.value(), true)
                && let Some(name) = di.name_at(ctx, a.value())
            {
                let name = Name::At(name);
                names.push(Entry {
                    name,
                    hash: fx_hash(name.bytes(di)),
                    kind: SymbolKind::Variable,
                    is_static: true,
                    first_unit_only: true,
                    declaration: false,
                });
            }
        }
        if ab.has_children() {
            depth += 1;
        }
    }
    Ok(true)
}

/// Each unit's address ranges from `.debug_aranges` (what GDB itself
/// reads first); units it does not cover get none (GDB then finds their
/// code through the other units' ranges and the minimal symbols).
fn unit_ranges(di: &DebugInfo, headers: &[Header]) -> Result<Vec<Vec<Range<u64>>>, DwarfError> {
    let starts: Vec<u64> = headers.iter().map(unit_offset).collect();
    let mut ranges = vec![Vec::new(); headers.len()];
    let mut sets = di.sections().debug_aranges.headers();
    while let Some(set) = sets
        .next()
        .map_err(|e| malformed(0, format!(".debug_aranges: {e}")))?
    {
        let Ok(i) = starts.binary_search(&(set.debug_info_offset().0 as u64)) else {
            continue;
        };
        let mut entries = set.entries();
        while let Some(e) = entries
            .next()
            .map_err(|e| malformed(starts[i], format!(".debug_aranges: {e}")))?
        {
            let r = e.range();
            if r.begin != 0 && r.begin < r.end {
                ranges[i].push(r.begin..r.end);
            }
        }
    }
    for unit in &mut ranges {
        merge_ranges(unit);
    }
    Ok(ranges)
}

/// Sorts `ranges` and joins those that touch or overlap (as GDB's own
/// index lists them).
fn merge_ranges(ranges: &mut Vec<Range<u64>>) {
    ranges.sort_unstable_by_key(|r| r.start);
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
    for r in ranges.drain(..) {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    *ranges = merged;
}

/// One name of the index and its CU vector (entries: unit index | kind
/// << 28 | static << 31).
struct Symbol<'a> {
    name: &'a [u8],
    vector: Vec<u32>,
}

/// The names and their CU vectors, in order of first appearance.
struct Symbols<'a> {
    list: Vec<Symbol<'a>>,
    /// Indices into `list`, by `fx_hash` of the name.
    by_name: hashbrown::HashTable<usize>,
}

impl<'a> Symbols<'a> {
    fn vector(&mut self, name: &'a [u8], hash: u64) -> &mut Vec<u32> {
        let list = &mut self.list;
        let found = self.by_name.find(hash, |&i| list[i].name == name).copied();
        let i = found.unwrap_or_else(|| {
            list.push(Symbol {
                name,
                vector: Vec::new(),
            });
            let i = list.len() - 1;
            self.by_name
                .insert_unique(hash, i, |&j| fx_hash(list[j].name));
            i
        });
        &mut self.list[i].vector
    }
}

/// Does `vector` already list a unit for `value`'s kind and staticness?
fn lists_kind(vector: &[u32], value: u32) -> bool {
    vector.iter().any(|&v| v >> 28 == value >> 28)
}

/// Names are tabled in this many shards (by hash), whatever the number of
/// threads, so the file does not depend on it.
const SHARDS: usize = 16;

/// Every name with its CU vector (sorted, without duplicates), tabled on
/// `threads` threads, each taking the next shard of names.
fn symbol_table<'a>(di: &'a DebugInfo, units: &[UnitNames], threads: usize) -> Vec<Symbol<'a>> {
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let shard = next.fetch_add(1, Ordering::Relaxed);
            if shard >= SHARDS {
                return done;
            }
            let table = shard_table(di, units, shard);
            done.push((shard, table));
        }
    };
    let mut shards: Vec<(usize, Vec<Symbol>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    shards.sort_by_key(|(shard, _)| *shard);
    shards.into_iter().flat_map(|(_, t)| t).collect()
}

/// The symbols of the names in `shard`, in order of first appearance.
fn shard_table<'a>(di: &'a DebugInfo, units: &[UnitNames], shard: usize) -> Vec<Symbol<'a>> {
    // About two entries a name (functions and variables of header files
    // repeat across units): sized once instead of regrown.
    let entries: usize = units.iter().map(|u| u.shards[shard].len()).sum();
    let mut symbols = Symbols {
        list: Vec::with_capacity(entries / 2),
        by_name: hashbrown::HashTable::with_capacity(entries / 2),
    };
    let mut declared = Vec::new();
    for (cu, unit) in units.iter().enumerate() {
        for e in &unit.shards[shard] {
            let value = cu_vector_entry(cu as u32, e.kind, e.is_static);
            if e.declaration {
                declared.push((e, value));
                continue;
            }
            let vector = symbols.vector(e.name.bytes(di), e.hash);
            if !(e.first_unit_only && lists_kind(vector, value)) {
                vector.push(value);
            }
        }
    }
    for (e, value) in declared {
        let vector = symbols.vector(e.name.bytes(di), e.hash);
        if !lists_kind(vector, value) {
            vector.push(value);
        }
    }
    let mut list = symbols.list;
    for s in &mut list {
        s.vector.sort_unstable();
        s.vector.dedup();
    }
    list
}

fn cu_vector_entry(cu: u32, kind: SymbolKind, is_static: bool) -> u32 {
    (cu & 0x00ff_ffff) | (kind as u32) << 28 | u32::from(is_static) << 31
}

/// GDB's name hash for index versions ≥ 5 (`mapped_index_string_hash`):
/// ASCII case folded.
fn name_hash(name: &[u8]) -> u32 {
    name.iter().fold(0u32, |r, &c| {
        r.wrapping_mul(67)
            .wrapping_add(u32::from(c.to_ascii_lowercase()))
            .wrapping_sub(113)
    })
}

/// The hash table's slots: for each name, its index in `symbols`, placed
/// by GDB's probe sequence; a power-of-two size at most 3/4 full.
fn hash_slots(symbols: &[Symbol<'_>]) -> Vec<Option<usize>> {
    let size = (symbols.len() * 4 / 3 + 1).next_power_of_two().max(1024);
    let mask = size - 1;
    let mut slots = vec![None; size];
    for (i, symbol) in symbols.iter().enumerate() {
        let hash = name_hash(symbol.name) as usize;
        let step = ((hash.wrapping_mul(17)) & mask) | 1;
        let mut at = hash & mask;
        while slots[at].is_some() {
            at = (at + step) & mask;
        }
        slots[at] = Some(i);
    }
    slots
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Offsets are 32-bit: a larger index cannot be written (GDB's limit too).
fn offset32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The constant pool: every CU vector, then every name (NUL-terminated);
/// with each symbol's (name offset, vector offset) inside it.
fn constant_pool(symbols: &[Symbol<'_>]) -> (Vec<u8>, Vec<(u32, u32)>) {
    let mut pool = Vec::new();
    let mut vector_at = Vec::with_capacity(symbols.len());
    for symbol in symbols {
        vector_at.push(offset32(pool.len()));
        put_u32(&mut pool, offset32(symbol.vector.len()));
        for &v in &symbol.vector {
            put_u32(&mut pool, v);
        }
    }
    let mut at = Vec::with_capacity(symbols.len());
    for (symbol, vector) in symbols.iter().zip(vector_at) {
        at.push((offset32(pool.len()), vector));
        pool.extend_from_slice(symbol.name);
        pool.push(0);
    }
    (pool, at)
}

/// Lays out the whole index.
fn write(headers: &[Header], ranges: &[Vec<Range<u64>>], symbols: &[Symbol<'_>]) -> Vec<u8> {
    let mut out = vec![0u8; 6 * 4];
    let cu_list = out.len();
    for h in headers {
        put_u64(&mut out, unit_offset(h));
        put_u64(&mut out, h.length_including_self() as u64);
    }
    let types = out.len();
    let address_area = out.len();
    for (cu, unit) in ranges.iter().enumerate() {
        for r in unit {
            put_u64(&mut out, r.start);
            put_u64(&mut out, r.end);
            put_u32(&mut out, offset32(cu));
        }
    }
    let symbol_table = out.len();
    let (pool, at) = constant_pool(symbols);
    for slot in hash_slots(symbols) {
        let (name, vector) = slot.map_or((0, 0), |i| at[i]);
        put_u32(&mut out, name);
        put_u32(&mut out, vector);
    }
    let constant_pool = out.len();
    out.extend_from_slice(&pool);
    let header = [VERSION, 0, 0, 0, 0, 0];
    let offsets = [cu_list, types, address_area, symbol_table, constant_pool];
    for (i, v) in header.iter().enumerate() {
        let v = if i == 0 { *v } else { offset32(offsets[i - 1]) };
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::dwarf::SectionBytes;
    use gimli::write::{self, Address, Expression, LineProgram, Sections, UnitEntryId};
    use gimli::{Encoding, Format, LittleEndian};

    /// A test unit being built: DIEs under the root.
    struct TestUnit<'a>(&'a mut write::Unit);

    impl TestUnit<'_> {
        fn die(&mut self, tag: gimli::DwTag, name: &str) -> UnitEntryId {
            let root = self.0.root();
            self.child(root, tag, name)
        }

        fn child(&mut self, parent: UnitEntryId, tag: gimli::DwTag, name: &str) -> UnitEntryId {
            let id = self.0.add(parent, tag);
            if !name.is_empty() {
                self.set(
                    id,
                    dw::DW_AT_name,
                    write::AttributeValue::String(name.into()),
                );
            }
            id
        }

        fn set(&mut self, id: UnitEntryId, at: gimli::DwAt, v: write::AttributeValue) {
            self.0.get_mut(id).set(at, v);
        }

        fn flag(&mut self, id: UnitEntryId, at: gimli::DwAt) {
            self.set(id, at, write::AttributeValue::Flag(true));
        }

        fn located(&mut self, id: UnitEntryId) {
            let mut loc = Expression::new();
            loc.op_addr(Address::Constant(0xffff_ffff_8200_0000));
            self.set(id, dw::DW_AT_location, write::AttributeValue::Exprloc(loc));
        }

        /// `enum NAME { ENUMERATORS }`.
        fn enumeration(&mut self, name: &str, enumerators: &[&str]) {
            let e = self.die(dw::DW_TAG_enumeration_type, name);
            for (i, n) in enumerators.iter().enumerate() {
                let id = self.child(e, dw::DW_TAG_enumerator, n);
                self.set(
                    id,
                    dw::DW_AT_const_value,
                    write::AttributeValue::Udata(i as u64),
                );
            }
        }

        /// `struct NAME { int member; }`.
        fn structure(&mut self, name: &str) {
            let s = self.die(dw::DW_TAG_structure_type, name);
            self.child(s, dw::DW_TAG_member, "member");
        }
    }

    /// Unit 0: what GDB lists and what it leaves out.
    fn first_unit(u: &mut TestUnit) {
        let f = u.die(dw::DW_TAG_subprogram, "start_kernel");
        u.flag(f, dw::DW_AT_external);
        u.die(dw::DW_TAG_subprogram, "helper");
        let decl = u.die(dw::DW_TAG_subprogram, "declared_only");
        u.flag(decl, dw::DW_AT_declaration);
        let v = u.die(dw::DW_TAG_variable, "init_task");
        u.flag(v, dw::DW_AT_external);
        u.located(v);
        u.die(dw::DW_TAG_variable, "optimized_out");
        for name in ["__bss_start", "jiffies_64"] {
            let d = u.die(dw::DW_TAG_variable, name);
            u.flag(d, dw::DW_AT_external);
            u.flag(d, dw::DW_AT_declaration);
        }
        u.structure("task_struct");
        let fwd = u.die(dw::DW_TAG_structure_type, "forward");
        u.flag(fwd, dw::DW_AT_declaration);
        u.structure("");
        u.die(dw::DW_TAG_base_type, "long unsigned int");
        u.die(dw::DW_TAG_typedef, "pid_t");
        u.enumeration("pid_type", &["PIDTYPE_PID", "PIDTYPE_TGID"]);
    }

    /// Unit 1: repeats of unit 0's names, and a definition completing a
    /// declaration.
    fn second_unit(u: &mut TestUnit) {
        u.structure("task_struct");
        u.enumeration("pid_type", &["PIDTYPE_PID", "PIDTYPE_TGID"]);
        u.die(dw::DW_TAG_subprogram, "helper");
        let d = u.die(dw::DW_TAG_variable, "__bss_start");
        u.flag(d, dw::DW_AT_external);
        u.flag(d, dw::DW_AT_declaration);
        let decl = u.die(dw::DW_TAG_variable, "jiffies_64");
        u.flag(decl, dw::DW_AT_external);
        u.flag(decl, dw::DW_AT_declaration);
        let def = u.die(dw::DW_TAG_variable, "");
        u.set(
            def,
            dw::DW_AT_specification,
            write::AttributeValue::UnitRef(decl),
        );
        u.located(def);
    }

    /// `.debug_aranges` with one set per `(unit offset, ranges)`.
    fn aranges(sets: &[(u32, &[(u64, u64)])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (unit, ranges) in sets {
            let mut body = Vec::new();
            body.extend_from_slice(&2u16.to_le_bytes());
            body.extend_from_slice(&unit.to_le_bytes());
            body.extend([8, 0, 0, 0, 0, 0]); // address size, segment size, padding to 16
            for &(start, len) in ranges.iter().chain(&[(0, 0)]) {
                body.extend_from_slice(&start.to_le_bytes());
                body.extend_from_slice(&len.to_le_bytes());
            }
            out.extend_from_slice(&(body.len() as u32).to_le_bytes());
            out.extend_from_slice(&body);
        }
        out
    }

    fn test_dwarf() -> DebugInfo {
        let encoding = Encoding {
            format: Format::Dwarf32,
            version: 4,
            address_size: 8,
        };
        let mut dwarf = write::Dwarf::new();
        for fill in [first_unit, second_unit] {
            let id = dwarf
                .units
                .add(write::Unit::new(encoding, LineProgram::none()));
            fill(&mut TestUnit(dwarf.units.get_mut(id)));
        }
        let mut sections = Sections::new(write::EndianVec::new(LittleEndian));
        dwarf.write(&mut sections).unwrap();
        let mut map = std::collections::HashMap::new();
        sections
            .for_each(|id, data| {
                map.insert(id.name(), data.slice().to_vec());
                Ok::<(), ()>(())
            })
            .unwrap();
        let second = {
            let di = DebugInfo::new(true, |n| section(&map, n), None).unwrap();
            unit_offset(&unit_headers(&di).unwrap()[1]) as u32
        };
        let ranges: &[(u64, u64)] = &[(0x2000, 0x100), (0x1000, 0x100), (0x1100, 0x80)];
        map.insert(
            ".debug_aranges",
            aranges(&[(0, ranges), (second, &[(0x3000, 0x10)])]),
        );
        DebugInfo::new(true, |n| section(&map, n), None).unwrap()
    }

    fn section(map: &std::collections::HashMap<&str, Vec<u8>>, name: &str) -> Option<SectionBytes> {
        map.get(name).map(|b| SectionBytes::Owned(b.clone().into()))
    }

    fn u32_at(index: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(index[at..at + 4].try_into().unwrap())
    }

    fn u64_at(index: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(index[at..at + 8].try_into().unwrap())
    }

    /// GDB's reading of a name: probe the hash table, then the CU vector
    /// as (unit, kind, static).
    fn lookup(index: &[u8], name: &str) -> Vec<(u32, u32, bool)> {
        let (table, pool) = (u32_at(index, 16) as usize, u32_at(index, 20) as usize);
        let size = (pool - table) / 8;
        let hash = name_hash(name.as_bytes()) as usize;
        let step = (hash.wrapping_mul(17) & (size - 1)) | 1;
        let mut slot = hash & (size - 1);
        loop {
            let (n, v) = (
                u32_at(index, table + slot * 8),
                u32_at(index, table + slot * 8 + 4),
            );
            if n == 0 && v == 0 {
                return Vec::new();
            }
            let start = pool + n as usize;
            let end = start + index[start..].iter().position(|&b| b == 0).unwrap();
            if &index[start..end] == name.as_bytes() {
                let at = pool + v as usize;
                return (0..u32_at(index, at) as usize)
                    .map(|i| u32_at(index, at + 4 + 4 * i))
                    .map(|e| (e & 0xff_ffff, (e >> 28) & 7, e >> 31 == 1))
                    .collect();
            }
            slot = (slot + step) & (size - 1);
        }
    }

    const TYPE: u32 = SymbolKind::Type as u32;
    const VARIABLE: u32 = SymbolKind::Variable as u32;
    const FUNCTION: u32 = SymbolKind::Function as u32;

    #[test]
    fn lists_what_gdb_lists_of_c() {
        let di = test_dwarf();
        let index = build(&di, 2).unwrap();
        assert_eq!(u32_at(&index, 0), 8, "version");
        let found = |name| lookup(&index, name);
        assert_eq!(found("start_kernel"), [(0, FUNCTION, false)]);
        assert_eq!(found("helper"), [(0, FUNCTION, true), (1, FUNCTION, true)]);
        assert_eq!(found("init_task"), [(0, VARIABLE, false)]);
        assert_eq!(found("task_struct"), [(0, TYPE, true)], "types: first unit");
        assert_eq!(found("PIDTYPE_TGID"), [(0, VARIABLE, true)]);
        assert_eq!(found("pid_type"), [(0, TYPE, true)]);
        assert_eq!(found("pid_t"), [(0, TYPE, true)]);
        assert_eq!(found("unsigned long"), [(0, TYPE, true)], "GDB's spelling");
        assert_eq!(
            found("__bss_start"),
            [(0, VARIABLE, false)],
            "declared only"
        );
        assert_eq!(
            found("jiffies_64"),
            [(1, VARIABLE, false)],
            "the definition"
        );
        assert_eq!(found("optimized_out"), [(0, VARIABLE, true)], "as GDB 16");
        for absent in ["declared_only", "forward", "member", "long unsigned int"] {
            assert_eq!(found(absent), [], "{absent}");
        }
    }

    #[test]
    fn lists_every_unit_and_its_merged_ranges() {
        let di = test_dwarf();
        let headers = unit_headers(&di).unwrap();
        let index = build(&di, 1).unwrap();
        let at = |i: usize| u32_at(&index, 4 * i) as usize;
        let (cus, types, area, table) = (at(1), at(2), at(3), at(4));
        assert_eq!((cus, types), (24, 24 + 16 * headers.len()));
        assert_eq!(u64_at(&index, cus + 16), unit_offset(&headers[1]));
        assert_eq!(
            u64_at(&index, cus + 24),
            headers[1].length_including_self() as u64
        );
        assert_eq!(types, area, "no type units");
        let ranges: Vec<(u64, u64, u32)> = (area..table)
            .step_by(20)
            .map(|at| {
                (
                    u64_at(&index, at),
                    u64_at(&index, at + 8),
                    u32_at(&index, at + 16),
                )
            })
            .collect();
        assert_eq!(
            ranges,
            [
                (0x1000, 0x1180, 0),
                (0x2000, 0x2100, 0),
                (0x3000, 0x3010, 1)
            ]
        );
    }

    #[test]
    fn the_same_index_on_any_number_of_threads() {
        let di = test_dwarf();
        assert_eq!(build(&di, 1).unwrap(), build(&di, 3).unwrap());
    }

    #[test]
    fn name_hash_is_gdbs() {
        // r = r * 67 + c - 113 over the lower-cased bytes.
        assert_eq!(name_hash(b"a"), 97u32.wrapping_sub(113));
        assert_eq!(
            name_hash(b"ab"),
            (97u32.wrapping_sub(113))
                .wrapping_mul(67)
                .wrapping_add(98u32.wrapping_sub(113))
        );
        assert_eq!(name_hash(b"Task_Struct"), name_hash(b"task_struct"));
    }

    #[test]
    fn base_types_take_gdbs_spelling() {
        for (gcc, gdb) in [
            ("long unsigned int", Some("unsigned long")),
            ("long long int", Some("long long")),
            ("long long unsigned int", Some("unsigned long long")),
            ("short unsigned int", Some("unsigned short")),
            ("short int", Some("short")),
            ("long int", Some("long")),
            ("unsigned int", None),
            ("signed char", None),
            ("char", None),
            ("_Bool", None),
            ("__int128 unsigned", None),
        ] {
            assert_eq!(canonical_base_type(gcc.as_bytes()), gdb, "{gcc}");
        }
    }

    #[test]
    fn merge_joins_touching_and_overlapping_ranges() {
        let mut r = vec![10..20, 0..5, 20..25, 22..30, 40..41];
        merge_ranges(&mut r);
        assert_eq!(r, [0..5, 10..30, 40..41]);
    }

    #[test]
    fn hash_table_is_a_power_of_two_at_most_three_quarters_full() {
        let names: Vec<Vec<u8>> = (0..2000).map(|i| format!("n{i}").into_bytes()).collect();
        let symbols: Vec<Symbol> = names
            .iter()
            .map(|n| Symbol {
                name: n,
                vector: vec![0],
            })
            .collect();
        let slots = hash_slots(&symbols);
        assert!(slots.len().is_power_of_two());
        assert!(symbols.len() * 4 <= slots.len() * 3);
        assert_eq!(slots.iter().flatten().count(), symbols.len());
    }
}
