//! BTF types written as DWARF (`gimli::write`): one compile unit whose
//! top-level DIEs are the BTF types in ID order, so GDB (`ptype struct
//! task_struct`, `p init_task.comm`) and the kernel layer's own DWARF
//! reader ([`super::dwarf`]) see the kernel's types as a debug vmlinux
//! would give them, without line numbers, inlined frames or locals.
//!
//! Variables: BTF VARs (per-CPU ones always; all globals when pahole was
//! asked for them) become DW_TAG_variable with DW_OP_addr of the symbol's
//! link-time address, given by the caller (from kallsyms). Variables BTF
//! does not list (5.10 and 6.1's pahole writes per-CPU ones only) but the
//! kernel layer found by their structure (`init_task` without
//! CONFIG_KALLSYMS_ALL) are added as [`FoundVariable`]s, typed by name.

use std::collections::HashMap;

use gimli::write::{
    Address, AttributeValue, DwarfUnit, EndianVec, Expression, Sections, UnitEntryId,
};
use gimli::{Encoding, Format, LittleEndian, constants as dw};

use super::btf::{Btf, Type, kind};

/// Sections named as in an ELF file (`.debug_info`, ...), with their bytes.
pub type DebugSections = Vec<(&'static str, Vec<u8>)>;

/// A variable BTF does not list, found in memory by its structure: its
/// name, link-time address, and the name of its struct type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundVariable {
    pub name: String,
    pub link_addr: u64,
    pub struct_name: &'static str,
}

/// Converts `btf` to DWARF; `addr_of(name)` gives a variable's link-time
/// address (variables without one are left out: GDB could not place them).
/// `found` adds variables BTF lacks, each typed by its struct when BTF
/// has that struct (left out otherwise).
pub fn write(
    btf: &Btf,
    addr_of: &dyn Fn(&str) -> Option<u64>,
    found: &[FoundVariable],
) -> Result<DebugSections, String> {
    let encoding = Encoding {
        format: Format::Dwarf32,
        version: 4,
        address_size: 8,
    };
    let mut dwarf = DwarfUnit::new(encoding);
    let root = dwarf.unit.root();
    let cu = dwarf.unit.get_mut(root);
    cu.set(
        dw::DW_AT_producer,
        AttributeValue::String(b"corestub (from BTF)".to_vec()),
    );
    cu.set(
        dw::DW_AT_language,
        AttributeValue::Language(dw::DW_LANG_C89),
    );
    cu.set(
        dw::DW_AT_name,
        AttributeValue::String(b"vmlinux-btf".to_vec()),
    );

    let mut w = Writer {
        btf,
        dwarf: &mut dwarf,
        ids: HashMap::new(),
        root,
    };
    w.declare_all();
    w.fill_all(addr_of);
    for v in found {
        w.add_found(v);
    }

    let mut sections = Sections::new(EndianVec::new(LittleEndian));
    dwarf
        .write(&mut sections)
        .map_err(|e| format!("writing DWARF: {e}"))?;
    let mut out = Vec::new();
    sections
        .for_each(|id, data| {
            if !data.slice().is_empty() {
                out.push((id.name(), data.slice().to_vec()));
            }
            Ok::<_, ()>(())
        })
        .ok();
    Ok(out)
}

struct Writer<'a, 'b> {
    btf: &'a Btf<'b>,
    dwarf: &'a mut DwarfUnit,
    /// BTF type ID → its DIE.
    ids: HashMap<u32, UnitEntryId>,
    root: UnitEntryId,
}

/// The DWARF tag of a BTF kind (`None`: no DIE of its own).
fn tag(t: &Type) -> Option<dw::DwTag> {
    Some(match t.kind {
        kind::INT | kind::FLOAT => dw::DW_TAG_base_type,
        kind::PTR => dw::DW_TAG_pointer_type,
        kind::ARRAY => dw::DW_TAG_array_type,
        kind::STRUCT => dw::DW_TAG_structure_type,
        kind::UNION => dw::DW_TAG_union_type,
        kind::ENUM | kind::ENUM64 => dw::DW_TAG_enumeration_type,
        kind::FWD if t.kind_flag => dw::DW_TAG_union_type,
        kind::FWD => dw::DW_TAG_structure_type,
        kind::TYPEDEF => dw::DW_TAG_typedef,
        kind::VOLATILE => dw::DW_TAG_volatile_type,
        kind::CONST => dw::DW_TAG_const_type,
        kind::RESTRICT => dw::DW_TAG_restrict_type,
        kind::FUNC_PROTO => dw::DW_TAG_subroutine_type,
        kind::VAR => dw::DW_TAG_variable,
        // FUNC: kallsyms has the functions; DATASEC: only its VARs matter;
        // tags: annotations, transparent to C
        _ => return None,
    })
}

impl Writer<'_, '_> {
    /// One DIE per type, so that references can point anywhere.
    fn declare_all(&mut self) {
        for id in 1..self.btf.count() as u32 {
            let Some(t) = self.btf.get(id) else { continue };
            if let Some(tag) = tag(t) {
                let e = self.dwarf.unit.add(self.root, tag);
                self.ids.insert(id, e);
            }
        }
    }

    /// The DIE type `id` refers to: TYPE_TAG annotations skipped, `void`
    /// (and anything unknown) as `None`.
    fn target(&self, mut id: u32) -> Option<UnitEntryId> {
        for _ in 0..64 {
            let t = self.btf.get(id)?;
            if t.kind != kind::TYPE_TAG {
                return self.ids.get(&id).copied();
            }
            id = t.size_or_type;
        }
        None
    }

    fn set_type(&mut self, die: UnitEntryId, id: u32) {
        if let Some(t) = self.target(id) {
            self.dwarf
                .unit
                .get_mut(die)
                .set(dw::DW_AT_type, AttributeValue::UnitRef(t));
        }
    }

    fn set_name(&mut self, die: UnitEntryId, off: u32) {
        let name = self.btf.str(off);
        if !name.is_empty() {
            let s = self.dwarf.strings.add(name);
            self.dwarf
                .unit
                .get_mut(die)
                .set(dw::DW_AT_name, AttributeValue::StringRef(s));
        }
    }

    fn set(&mut self, die: UnitEntryId, at: dw::DwAt, v: AttributeValue) {
        self.dwarf.unit.get_mut(die).set(at, v);
    }

    /// A DW_TAG_variable for `v`, typed by its struct's DIE.
    fn add_found(&mut self, v: &FoundVariable) {
        let Some(ty) = self.struct_id(v.struct_name) else {
            return;
        };
        let die = self.dwarf.unit.add(self.root, dw::DW_TAG_variable);
        let name = self.dwarf.strings.add(v.name.as_bytes());
        self.set(die, dw::DW_AT_name, AttributeValue::StringRef(name));
        self.set_type(die, ty);
        self.set(die, dw::DW_AT_external, AttributeValue::Flag(true));
        let mut loc = Expression::new();
        loc.op_addr(Address::Constant(v.link_addr));
        self.set(die, dw::DW_AT_location, AttributeValue::Exprloc(loc));
    }

    /// The BTF ID of the struct named `name` (a full definition).
    fn struct_id(&self, name: &str) -> Option<u32> {
        (1..self.btf.count() as u32).find(|&id| {
            self.btf
                .get(id)
                .is_some_and(|t| t.kind == kind::STRUCT && self.btf.str(t.name_off) == name)
        })
    }

    fn fill_all(&mut self, addr_of: &dyn Fn(&str) -> Option<u64>) {
        for id in 1..self.btf.count() as u32 {
            let (Some(t), Some(&die)) = (self.btf.get(id).copied(), self.ids.get(&id)) else {
                continue;
            };
            self.fill(die, &t, addr_of);
        }
    }

    fn fill(&mut self, die: UnitEntryId, t: &Type, addr_of: &dyn Fn(&str) -> Option<u64>) {
        let size = u64::from(t.size_or_type);
        match t.kind {
            kind::INT => {
                let enc = t.word(0) >> 24;
                let ate = match (enc & 4 != 0, enc & 2 != 0, enc & 1 != 0) {
                    (true, _, _) => dw::DW_ATE_boolean,
                    (_, true, true) => dw::DW_ATE_signed_char,
                    (_, true, false) => dw::DW_ATE_unsigned_char,
                    (_, false, true) => dw::DW_ATE_signed,
                    _ => dw::DW_ATE_unsigned,
                };
                self.set_name(die, t.name_off);
                self.set(die, dw::DW_AT_byte_size, AttributeValue::Udata(size));
                self.set(die, dw::DW_AT_encoding, AttributeValue::Encoding(ate));
            }
            kind::FLOAT => {
                self.set_name(die, t.name_off);
                self.set(die, dw::DW_AT_byte_size, AttributeValue::Udata(size));
                self.set(
                    die,
                    dw::DW_AT_encoding,
                    AttributeValue::Encoding(dw::DW_ATE_float),
                );
            }
            kind::PTR => {
                self.set(die, dw::DW_AT_byte_size, AttributeValue::Udata(8));
                self.set_type(die, t.size_or_type);
            }
            kind::ARRAY => {
                self.set_type(die, t.word(0));
                let sub = self.dwarf.unit.add(die, dw::DW_TAG_subrange_type);
                self.set_type(sub, t.word(1));
                let n = t.word(2);
                // a flexible array member has no bound, as GCC writes it
                if n > 0 {
                    self.set(sub, dw::DW_AT_count, AttributeValue::Udata(n.into()));
                }
            }
            kind::STRUCT | kind::UNION => {
                self.set_name(die, t.name_off);
                self.set(die, dw::DW_AT_byte_size, AttributeValue::Udata(size));
                for i in 0..usize::from(t.vlen) {
                    let m = t.record(i, 3);
                    let (bit_size, bit_off) = if t.kind_flag {
                        (m(2) >> 24, m(2) & 0x00ff_ffff)
                    } else {
                        (0, m(2))
                    };
                    let md = self.dwarf.unit.add(die, dw::DW_TAG_member);
                    self.set_name(md, m(0));
                    self.set_type(md, m(1));
                    if bit_size != 0 || bit_off % 8 != 0 {
                        let bits = if bit_size != 0 { bit_size } else { 1 };
                        self.set(
                            md,
                            dw::DW_AT_data_bit_offset,
                            AttributeValue::Udata(bit_off.into()),
                        );
                        self.set(md, dw::DW_AT_bit_size, AttributeValue::Udata(bits.into()));
                    } else {
                        self.set(
                            md,
                            dw::DW_AT_data_member_location,
                            AttributeValue::Udata((bit_off / 8).into()),
                        );
                    }
                }
            }
            kind::ENUM | kind::ENUM64 => {
                self.set_name(die, t.name_off);
                self.set(die, dw::DW_AT_byte_size, AttributeValue::Udata(size));
                let words = if t.kind == kind::ENUM { 2 } else { 3 };
                for i in 0..usize::from(t.vlen) {
                    let e = t.record(i, words);
                    let v = if words == 2 {
                        if t.kind_flag {
                            AttributeValue::Sdata(i64::from(e(1) as i32))
                        } else {
                            AttributeValue::Udata(u64::from(e(1)))
                        }
                    } else {
                        let raw = u64::from(e(1)) | (u64::from(e(2)) << 32);
                        if t.kind_flag {
                            AttributeValue::Sdata(raw as i64)
                        } else {
                            AttributeValue::Udata(raw)
                        }
                    };
                    let ed = self.dwarf.unit.add(die, dw::DW_TAG_enumerator);
                    self.set_name(ed, e(0));
                    self.set(ed, dw::DW_AT_const_value, v);
                }
            }
            kind::FWD => {
                self.set_name(die, t.name_off);
                self.set(die, dw::DW_AT_declaration, AttributeValue::Flag(true));
            }
            kind::TYPEDEF => {
                self.set_name(die, t.name_off);
                self.set_type(die, t.size_or_type);
            }
            kind::VOLATILE | kind::CONST | kind::RESTRICT => self.set_type(die, t.size_or_type),
            kind::FUNC_PROTO => {
                self.set(die, dw::DW_AT_prototyped, AttributeValue::Flag(true));
                self.set_type(die, t.size_or_type);
                for i in 0..usize::from(t.vlen) {
                    let p = t.record(i, 2);
                    // a last parameter of type void is C's `...`
                    if p(1) == 0 && i + 1 == usize::from(t.vlen) {
                        self.dwarf.unit.add(die, dw::DW_TAG_unspecified_parameters);
                        continue;
                    }
                    let pd = self.dwarf.unit.add(die, dw::DW_TAG_formal_parameter);
                    self.set_name(pd, p(0));
                    self.set_type(pd, p(1));
                }
            }
            kind::VAR => {
                let name = self.btf.str(t.name_off);
                self.set_name(die, t.name_off);
                self.set_type(die, t.size_or_type);
                self.set(die, dw::DW_AT_external, AttributeValue::Flag(true));
                if let Some(a) = addr_of(name) {
                    let mut loc = Expression::new();
                    loc.op_addr(Address::Constant(a));
                    self.set(die, dw::DW_AT_location, AttributeValue::Exprloc(loc));
                } else {
                    self.set(die, dw::DW_AT_declaration, AttributeValue::Flag(true));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::btf::tests::{blob, info};
    use crate::kernel::dwarf::{DebugInfo, SectionBytes};

    #[test]
    fn btf_struct_becomes_a_dwarf_layout() {
        // int; struct task { int pid; int flag:3 (bit 35); char comm[16]; }; var pid_max
        let strings = b"\0int\0task\0pid\0flag\0comm\0char\0pid_max\0";
        let b = blob(
            strings,
            &[
                (1, info(kind::INT, 0, false), 4, vec![(1 << 24) | 32]),
                (
                    5,
                    info(kind::STRUCT, 3, true),
                    24,
                    vec![10, 1, 0, 14, 1, (3 << 24) | 35, 19, 4, 64],
                ),
                (0, info(kind::ARRAY, 0, false), 0, vec![5, 1, 16]),
                (24, info(kind::INT, 0, false), 1, vec![(3 << 24) | 8]),
                (29, info(kind::VAR, 0, false), 1, vec![1]),
            ],
        );
        let btf = Btf::parse(&b).unwrap();
        let secs = write(
            &btf,
            &|n| (n == "pid_max").then_some(0xffff_ffff_8200_0000),
            &[
                FoundVariable {
                    name: "init_task".into(),
                    link_addr: 0xffff_ffff_8300_0000,
                    struct_name: "task",
                },
                // no such struct in BTF: left out
                FoundVariable {
                    name: "runqueues".into(),
                    link_addr: 0xffff_ffff_8400_0000,
                    struct_name: "rq",
                },
            ],
        )
        .unwrap();
        let map: HashMap<&str, Vec<u8>> = secs.into_iter().collect();
        let di = DebugInfo::new(
            true,
            |name| map.get(name).map(|b| SectionBytes::Owned(b.clone().into())),
            None,
        )
        .unwrap();
        assert_eq!(di.size_of("struct task").unwrap(), 24);
        assert_eq!(di.offset_of("struct task", "comm").unwrap(), 8);
        assert_eq!(di.offset_of("struct task", "pid").unwrap(), 0);
        assert_eq!(di.variable_type("pid_max").unwrap(), "int");
        assert_eq!(di.variable_type("init_task").unwrap(), "struct task");
        assert!(di.variable_type("runqueues").is_err());
    }
}
