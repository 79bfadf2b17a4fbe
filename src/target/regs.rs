//! Table-driven register files. Each architecture is one static table of
//! registers (name, width, GDB feature, DWARF number, LLDB role); from it we
//! derive the target description XML GDB reads, the `g`/`p` packet layout
//! and LLDB's qRegisterInfo answers, so the three can never disagree.

use std::fmt::{self, Write as _};
use std::marker::PhantomData;
use std::num::NonZeroUsize;

use gdbstub::arch::lldb::{Encoding, Format, Generic, Register, RegisterInfo};
use gdbstub::arch::{Arch, RegId, Registers};

/// LLDB's generic register roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Pc,
    Sp,
    Fp,
    Ra,
    Flags,
}

/// One register of an architecture's table.
#[derive(Clone, Copy, Debug)]
pub struct RegDef {
    pub name: &'static str,
    pub bits: usize,
    /// Type name in the target description ("int", "code_ptr", ...).
    pub ty: &'static str,
    /// Target-description feature the register belongs to.
    pub feature: &'static str,
    pub dwarf: Option<usize>,
    pub role: Option<Role>,
    /// LLDB register set name.
    pub set: &'static str,
    /// Second name, for LLDB (`altname` in the XML, `alt-name` in
    /// qRegisterInfo); GDB ignores it.
    pub alt: Option<&'static str>,
}

/// A register in the "General Purpose Registers" set, or "Floating Point
/// Registers" when wider than 64 bits (vectors, x87); no altname.
pub const fn reg(
    name: &'static str,
    bits: usize,
    ty: &'static str,
    feature: &'static str,
    dwarf: Option<usize>,
    role: Option<Role>,
) -> RegDef {
    let set = if bits > 64 {
        "Floating Point Registers"
    } else {
        "General Purpose Registers"
    };
    RegDef {
        name,
        bits,
        ty,
        feature,
        dwarf,
        role,
        set,
        alt: None,
    }
}

/// An architecture's static facts.
pub trait RegTable: 'static + Send + Sync {
    const REGS: &'static [RegDef];
    /// GDB architecture name for `<architecture>`.
    const GDB_ARCH: &'static str;
    /// Index of the program counter in `REGS`.
    const PC: usize;
    /// Extra `<flags>`/type definitions per feature, emitted before its registers.
    fn feature_types(feature: &str) -> &'static str;
    /// The generated XML, cached in a per-architecture static.
    fn xml() -> &'static str;
}

/// Builds the target description XML for a table (called once per arch).
pub fn build_xml<T: RegTable>() -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n<target version=\"1.0\">\n<architecture>{}</architecture>\n",
        T::GDB_ARCH
    );
    let mut feature = "";
    for (i, r) in T::REGS.iter().enumerate() {
        if r.feature != feature {
            if !feature.is_empty() {
                s.push_str("</feature>\n");
            }
            feature = r.feature;
            let _ = writeln!(s, "<feature name=\"{feature}\">");
            s.push_str(T::feature_types(feature));
        }
        let alt = r
            .alt
            .map(|a| format!(" altname=\"{a}\""))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "<reg name=\"{}\" bitsize=\"{}\" type=\"{}\" regnum=\"{i}\"{alt}/>",
            r.name, r.bits, r.ty
        );
    }
    s.push_str("</feature>\n</target>\n");
    s
}

/// Register values; `None` is "unavailable" (sent as `xx..` so GDB shows
/// `<unavailable>` rather than a made-up zero).
pub struct Regs<T> {
    pub vals: Vec<Option<u64>>,
    _t: PhantomData<T>,
}

impl<T: RegTable> Regs<T> {
    pub fn set(&mut self, name: &str, v: u64) {
        if let Some(i) = T::REGS.iter().position(|r| r.name == name) {
            self.vals[i] = Some(v);
        }
    }

    /// Sets `names[i]` to `vals[i]`: a note saved in its own order.
    pub fn set_in_order(&mut self, names: &[&str], vals: &[u64]) {
        for (name, v) in names.iter().zip(vals) {
            self.set(name, *v);
        }
    }

    /// Sets the table's first registers, in its order, to `vals`.
    pub fn set_leading<'a>(&mut self, vals: impl IntoIterator<Item = &'a u64>) {
        for (slot, v) in self.vals.iter_mut().zip(vals) {
            *slot = Some(*v);
        }
    }

    pub fn get(&self, name: &str) -> Option<u64> {
        let i = T::REGS.iter().position(|r| r.name == name)?;
        self.vals[i]
    }

    /// Serializes register `i` in target byte order (little-endian).
    pub fn write_reg(&self, i: usize, mut out: impl FnMut(Option<u8>)) {
        let bytes = T::REGS[i].bits / 8;
        match self.vals[i] {
            Some(v) if bytes <= 8 => {
                for b in &v.to_le_bytes()[..bytes] {
                    out(Some(*b));
                }
            }
            // Values wider than 64 bits (vector/x87) are never known here.
            _ => (0..bytes).for_each(|_| out(None)),
        }
    }
}

impl<T: RegTable> Default for Regs<T> {
    fn default() -> Self {
        Regs {
            vals: vec![None; T::REGS.len()],
            _t: PhantomData,
        }
    }
}

impl<T> Clone for Regs<T> {
    fn clone(&self) -> Self {
        Regs {
            vals: self.vals.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> PartialEq for Regs<T> {
    fn eq(&self, o: &Self) -> bool {
        self.vals == o.vals
    }
}

impl<T> fmt::Debug for Regs<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.vals.iter()).finish()
    }
}

impl<T: RegTable> Registers for Regs<T> {
    type ProgramCounter = u64;

    fn pc(&self) -> u64 {
        self.vals[T::PC].unwrap_or(0)
    }

    fn gdb_serialize(&self, mut write_byte: impl FnMut(Option<u8>)) {
        for i in 0..T::REGS.len() {
            self.write_reg(i, &mut write_byte);
        }
    }

    fn gdb_deserialize(&mut self, _bytes: &[u8]) -> Result<(), ()> {
        Err(()) // a dump is read-only
    }
}

/// A register number from a `p`/`P` packet.
pub struct RegNum<T>(pub usize, PhantomData<T>);

impl<T> fmt::Debug for RegNum<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegNum({})", self.0)
    }
}

impl<T: RegTable> RegId for RegNum<T> {
    fn from_raw_id(id: usize) -> Option<(Self, Option<NonZeroUsize>)> {
        let r = T::REGS.get(id)?;
        Some((RegNum(id, PhantomData), NonZeroUsize::new(r.bits / 8)))
    }

    fn to_raw_id(&self) -> Option<usize> {
        Some(self.0)
    }
}

/// gdbstub `Arch` for a register table.
pub struct TableArch<T>(PhantomData<T>);

impl<T: RegTable + fmt::Debug> Arch for TableArch<T> {
    type Usize = u64;
    type Registers = Regs<T>;
    type BreakpointKind = usize;
    type RegId = RegNum<T>;

    fn target_description_xml() -> Option<&'static str> {
        Some(T::xml())
    }

    fn lldb_register_info(reg_id: usize) -> Option<RegisterInfo<'static>> {
        let Some(r) = T::REGS.get(reg_id) else {
            return Some(RegisterInfo::Done);
        };
        let offset = T::REGS[..reg_id].iter().map(|r| r.bits / 8).sum();
        let vector = r.bits > 64 && r.ty != "i387_ext";
        Some(RegisterInfo::Register(Register {
            name: r.name,
            alt_name: r.alt,
            bitsize: r.bits,
            offset,
            encoding: if vector {
                Encoding::Vector
            } else if r.ty == "i387_ext" {
                Encoding::IEEE754
            } else {
                Encoding::Uint
            },
            format: if vector {
                Format::VectorUInt8
            } else if r.ty == "i387_ext" {
                Format::Float
            } else {
                Format::Hex
            },
            set: r.set,
            gcc: r.dwarf,
            dwarf: r.dwarf,
            generic: r.role.map(|role| match role {
                Role::Pc => Generic::Pc,
                Role::Sp => Generic::Sp,
                Role::Fp => Generic::Fp,
                Role::Ra => Generic::Ra,
                Role::Flags => Generic::Flags,
            }),
            container_regs: None,
            invalidate_regs: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{aarch64::Aarch64, arm::Arm, i386::I386, x86_64::X86_64};

    fn names_each_register_once<T: RegTable>() {
        let xml = T::xml();
        for r in T::REGS {
            let n = xml.matches(&format!("name=\"{}\" ", r.name)).count();
            assert_eq!(n, 1, "{}: {}", T::GDB_ARCH, r.name);
        }
    }

    #[test]
    fn every_table_names_each_register_once() {
        names_each_register_once::<X86_64>();
        names_each_register_once::<Aarch64>();
        names_each_register_once::<I386>();
        names_each_register_once::<Arm>();
    }
}
