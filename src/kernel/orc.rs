//! x86_64 ORC unwind tables (CONFIG_UNWINDER_ORC) read from the dump and
//! written as `.debug_frame` CFI, so GDB unwinds a kernel with no debug
//! vmlinux as the kernel's own unwinder does.
//!
//! `__start_orc_unwind_ip` holds one 32-bit offset per entry, relative to
//! its own address, to the instruction from which `__start_orc_unwind[i]`
//! applies (sorted). An entry says how to find the caller's stack pointer
//! (`sp_reg` + `sp_offset`), where the caller's frame pointer was saved
//! (`bp_reg` + `bp_offset`) and the frame's type: a call frame (return
//! address just below the caller's stack pointer), a full `pt_regs`, or
//! the hardware iret frame only, or the end of the stack.
//!
//! The entry's bitfields changed over time (a 2-bit type plus an `end` bit,
//! then a 3-bit type with an UNDEFINED and an END_OF_STACK type and a
//! `signal` bit): their offsets and widths come from BTF's `struct
//! orc_entry`, and the type numbering from whether it has an `end` member.
//! The `pt_regs` slots come from BTF's `struct pt_regs`.

use gimli::write::{
    Address, CallFrameInstruction, CommonInformationEntry, EndianVec, Expression,
    FrameDescriptionEntry, FrameTable,
};
use gimli::{Encoding, Format, LittleEndian, Register, X86_64};

use super::btf::Btf;

/// More entries than any kernel has.
const MAX_ENTRIES: usize = 4_000_000;
/// Size of one `struct orc_entry` (packed).
const ENTRY_SIZE: usize = 6;

/// A bitfield of the 6-byte entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bits {
    off: u32,
    len: u32,
}

impl Bits {
    fn get(self, e: u64) -> u64 {
        (e >> self.off) & ((1u64 << self.len) - 1)
    }
}

/// Where the fields of `struct orc_entry` are, and how types are numbered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryLayout {
    sp_offset: Bits,
    bp_offset: Bits,
    sp_reg: Bits,
    bp_reg: Bits,
    ty: Bits,
    /// Before 6.4 (an `end` member): CALL=0, REGS=1, REGS_PARTIAL=2 and an
    /// `end` bit; after: UNDEFINED=0, END_OF_STACK=1, CALL=2, REGS=3,
    /// REGS_PARTIAL=4.
    end: Option<Bits>,
}

impl EntryLayout {
    /// From BTF's `struct orc_entry`.
    pub fn from_btf(btf: &Btf) -> Result<EntryLayout, String> {
        let m = btf
            .struct_members("orc_entry")
            .ok_or("BTF has no struct orc_entry")?;
        let field = |name: &str, whole: u32| {
            m.iter()
                .find(|(n, ..)| *n == name)
                .map(|&(_, off, bits)| Bits {
                    off,
                    len: if bits == 0 { whole } else { bits },
                })
                .filter(|b| b.len > 0 && b.off + b.len <= 8 * ENTRY_SIZE as u32)
                .ok_or_else(|| format!("struct orc_entry has no usable member {name}"))
        };
        Ok(EntryLayout {
            sp_offset: field("sp_offset", 16)?,
            bp_offset: field("bp_offset", 16)?,
            sp_reg: field("sp_reg", 4)?,
            bp_reg: field("bp_reg", 4)?,
            ty: field("type", 2)?,
            end: field("end", 1).ok(),
        })
    }
}

/// One decoded entry, in the newer type numbering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub sp_offset: i16,
    pub bp_offset: i16,
    pub sp_reg: u8,
    pub bp_reg: u8,
    pub ty: FrameType,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameType {
    /// No unwind information, or the end of the stack: stop.
    End,
    Call,
    Regs,
    RegsPartial,
}

/// What an `ORC_REG_*` number names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OrcReg {
    Undefined,
    PrevSp,
    Ax,
    Dx,
    Di,
    Bp,
    Sp,
    R10,
    R13,
    SpIndirect,
    BpIndirect,
}

/// One numbering of the `ORC_REG_*` registers (index = the 4-bit field).
/// The numbers are not in BTF, and Linux 7.x renumbered them; the one a
/// kernel uses is the one whose stack pointer its function entries name
/// (see [`register_numbering`]).
struct Numbering {
    name: &'static str,
    regs: [OrcReg; 16],
}

use OrcReg::Undefined as U;

/// arch/x86/include/asm/orc_types.h from 4.14 through 6.x.
const ORIGINAL: Numbering = Numbering {
    name: "4.14-6.x",
    regs: [
        U,
        OrcReg::PrevSp,
        OrcReg::Dx,
        OrcReg::Di,
        OrcReg::Bp,
        OrcReg::Sp,
        OrcReg::R10,
        OrcReg::R13,
        OrcReg::BpIndirect,
        OrcReg::SpIndirect,
        U,
        U,
        U,
        U,
        U,
        U,
    ],
};

/// arch/x86/include/asm/orc_types.h of 7.x (AX added, PREV_SP moved to 8).
const RENUMBERED: Numbering = Numbering {
    name: "7.x",
    regs: [
        U,
        OrcReg::Ax,
        OrcReg::Dx,
        OrcReg::Sp,
        OrcReg::Bp,
        OrcReg::Di,
        OrcReg::R10,
        OrcReg::R13,
        OrcReg::PrevSp,
        OrcReg::SpIndirect,
        OrcReg::BpIndirect,
        U,
        U,
        U,
        U,
        U,
    ],
};

impl Numbering {
    fn get(&self, r: u8) -> OrcReg {
        self.regs[usize::from(r & 0xf)]
    }
}

impl EntryLayout {
    pub fn decode(&self, raw: &[u8; ENTRY_SIZE]) -> Entry {
        let mut b = [0u8; 8];
        b[..ENTRY_SIZE].copy_from_slice(raw);
        let e = u64::from_le_bytes(b);
        let t = self.ty.get(e);
        let ty = match self.end {
            Some(end) if end.get(e) != 0 => FrameType::End,
            Some(_) => match t {
                0 => FrameType::Call,
                1 => FrameType::Regs,
                2 => FrameType::RegsPartial,
                _ => FrameType::End,
            },
            None => match t {
                2 => FrameType::Call,
                3 => FrameType::Regs,
                4 => FrameType::RegsPartial,
                _ => FrameType::End,
            },
        };
        let sp_reg = self.sp_reg.get(e) as u8;
        Entry {
            sp_offset: self.sp_offset.get(e) as u16 as i16,
            bp_offset: self.bp_offset.get(e) as u16 as i16,
            sp_reg,
            bp_reg: self.bp_reg.get(e) as u8,
            // an undefined stack pointer ends the stack whatever the type
            ty: if sp_reg == 0 { FrameType::End } else { ty },
        }
    }
}

/// The ORC table: (link-time instruction address, entry), sorted.
pub type OrcTable = Vec<(u64, Entry)>;

/// Decodes the raw tables: `ips` (32-bit self-relative offsets, the first
/// at runtime address `ip_base`) and `entries`; `kaslr` turns runtime into
/// link-time addresses.
pub fn decode(
    layout: &EntryLayout,
    ips: &[u8],
    ip_base: u64,
    entries: &[u8],
    kaslr: u64,
) -> Result<OrcTable, String> {
    let n = ips.len() / 4;
    if n > MAX_ENTRIES || entries.len() < n * ENTRY_SIZE {
        return Err(format!(
            "ORC at {ip_base:#x}: {n} instruction offsets but {} bytes of entries",
            entries.len()
        ));
    }
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        let rel = i32::from_le_bytes([ips[4 * i], ips[4 * i + 1], ips[4 * i + 2], ips[4 * i + 3]]);
        let ip = ip_base
            .checked_add(4 * i as u64)
            .and_then(|a| a.checked_add_signed(i64::from(rel)))
            .and_then(|a| a.checked_sub(kaslr))
            .ok_or_else(|| {
                format!(
                    "ORC ip entry {i} at {:#x}: overflows",
                    ip_base + 4 * i as u64
                )
            })?;
        let mut raw = [0u8; ENTRY_SIZE];
        raw.copy_from_slice(&entries[ENTRY_SIZE * i..ENTRY_SIZE * (i + 1)]);
        v.push((ip, layout.decode(&raw)));
    }
    // the kernel sorts the table at build time; a module-less vmlinux
    // table out of order means a wrong reading
    if let Some(i) = v.windows(2).position(|w| w[1].0 < w[0].0) {
        return Err(format!(
            "ORC at {ip_base:#x}: entry {} is out of order",
            i + 1
        ));
    }
    Ok(v)
}

/// DWARF register numbers of the `pt_regs` slots, by member name.
const PT_REGS: [(&str, Register); 17] = [
    ("r15", X86_64::R15),
    ("r14", X86_64::R14),
    ("r13", X86_64::R13),
    ("r12", X86_64::R12),
    ("bp", X86_64::RBP),
    ("bx", X86_64::RBX),
    ("r11", X86_64::R11),
    ("r10", X86_64::R10),
    ("r9", X86_64::R9),
    ("r8", X86_64::R8),
    ("ax", X86_64::RAX),
    ("cx", X86_64::RCX),
    ("dx", X86_64::RDX),
    ("si", X86_64::RSI),
    ("di", X86_64::RDI),
    ("ip", X86_64::RA),
    ("sp", X86_64::RSP),
];

/// Byte offsets of the registers in `struct pt_regs` (from BTF).
pub fn pt_regs_slots(btf: &Btf) -> Vec<(Register, i32)> {
    let Some(m) = btf.struct_members("pt_regs") else {
        return Vec::new();
    };
    PT_REGS
        .iter()
        .filter_map(|&(name, reg)| {
            let &(_, off, _) = m.iter().find(|(n, ..)| *n == name)?;
            Some((reg, (off / 8) as i32))
        })
        .collect()
}

fn orc_reg(r: OrcReg) -> Option<Register> {
    Some(match r {
        OrcReg::Ax => X86_64::RAX,
        OrcReg::Dx => X86_64::RDX,
        OrcReg::Di => X86_64::RDI,
        OrcReg::Bp => X86_64::RBP,
        OrcReg::Sp => X86_64::RSP,
        OrcReg::R10 => X86_64::R10,
        OrcReg::R13 => X86_64::R13,
        _ => return None,
    })
}

/// The CFI rows for one entry; `set` lists the registers the previous row
/// gave rules to, so that rules not repeated are dropped.
fn rows(
    e: &Entry,
    n: &Numbering,
    regs: &[(Register, i32)],
    set: &mut Vec<Register>,
) -> Vec<CallFrameInstruction> {
    let mut out = Vec::new();
    let mut now = Vec::new();
    let mut rule = |out: &mut Vec<_>, r: Register, i: CallFrameInstruction| {
        out.push(i);
        now.push(r);
    };
    let cfa = match (e.ty, n.get(e.sp_reg)) {
        (FrameType::End, _) => None,
        (_, OrcReg::SpIndirect) => {
            let mut x = Expression::new();
            x.op_breg(X86_64::RSP, 0);
            x.op_deref();
            x.op_plus_uconst(e.sp_offset as u64);
            Some(CallFrameInstruction::CfaExpression(x))
        }
        (_, OrcReg::BpIndirect) => {
            let mut x = Expression::new();
            x.op_breg(X86_64::RBP, e.sp_offset.into());
            x.op_deref();
            Some(CallFrameInstruction::CfaExpression(x))
        }
        (_, r) => orc_reg(r).map(|r| CallFrameInstruction::Cfa(r, e.sp_offset.into())),
    };
    match cfa {
        None => {
            // the outermost frame: no caller
            out.push(CallFrameInstruction::Cfa(X86_64::RSP, 0));
            rule(
                &mut out,
                X86_64::RA,
                CallFrameInstruction::Undefined(X86_64::RA),
            );
        }
        Some(cfa) => {
            out.push(cfa);
            match e.ty {
                FrameType::Call => {
                    rule(
                        &mut out,
                        X86_64::RA,
                        CallFrameInstruction::Offset(X86_64::RA, -8),
                    );
                }
                FrameType::Regs => {
                    for &(r, off) in regs {
                        rule(&mut out, r, CallFrameInstruction::Offset(r, off));
                    }
                }
                FrameType::RegsPartial => {
                    // the stack pointer is at the iret frame: its ip, sp
                    let ip = regs.iter().find(|(r, _)| *r == X86_64::RA).map(|x| x.1);
                    for &(r, off) in regs {
                        if let (true, Some(ip)) = (r == X86_64::RA || r == X86_64::RSP, ip) {
                            rule(&mut out, r, CallFrameInstruction::Offset(r, off - ip));
                        }
                    }
                }
                FrameType::End => {}
            }
            if e.ty != FrameType::Regs {
                match n.get(e.bp_reg) {
                    OrcReg::PrevSp => rule(
                        &mut out,
                        X86_64::RBP,
                        CallFrameInstruction::Offset(X86_64::RBP, e.bp_offset.into()),
                    ),
                    OrcReg::Bp => {
                        let mut x = Expression::new();
                        x.op_breg(X86_64::RBP, e.bp_offset.into());
                        rule(
                            &mut out,
                            X86_64::RBP,
                            CallFrameInstruction::Expression(X86_64::RBP, x),
                        );
                    }
                    _ => {}
                }
            }
        }
    }
    for r in set.iter().filter(|r| !now.contains(r)) {
        out.push(CallFrameInstruction::SameValue(*r));
    }
    *set = now;
    out
}

/// The register numbering (`ORC_REG_*` is not in BTF): the known one whose
/// stack pointer every function's first instruction names (CFA = SP + 8,
/// a call frame). A kernel that numbers them otherwise gets no CFI (GDB's
/// own heuristics) rather than a wrong one.
fn register_numbering(
    table: &OrcTable,
    funcs: &[(u64, u64)],
) -> Result<&'static Numbering, String> {
    let mut counts = [0usize; 16];
    let mut j = 0usize;
    for &(start, _) in funcs {
        while j < table.len() && table[j].0 < start {
            j += 1;
        }
        if let Some((ip, e)) = table.get(j)
            && *ip == start
            && e.ty == FrameType::Call
            && e.sp_offset == 8
        {
            counts[usize::from(e.sp_reg & 0xf)] += 1;
        }
    }
    let (most, n) = counts
        .iter()
        .enumerate()
        .max_by_key(|&(_, n)| *n)
        .unwrap_or((0, &0));
    let most = most as u8;
    if *n == 0 {
        return Ok(&ORIGINAL);
    }
    [&ORIGINAL, &RENUMBERED]
        .into_iter()
        .find(|k| k.get(most) == OrcReg::Sp)
        .ok_or_else(|| {
            format!(
                "ORC says CFA = register {most} + 8 at {n} function entries: the stack pointer in no register numbering this reader knows"
            )
        })
}

const SCAN_SLOTS: u64 = 512;

/// A CFA expression for a function without ORC: the address just above
/// the first stack slot (from the stack pointer up, at most
/// [`SCAN_SLOTS`]) that holds a kernel text address (link-time `lo`,
/// `size` bytes; DW_OP_addr is relocated with the file) right after a call
/// instruction (`call rel32`, `call *reg`, `call *disp32(%rip)`). No such
/// slot: CFA 0, which ends the backtrace.
fn scan_cfa(lo: u64, size: u64) -> Expression {
    use gimli::constants as dw;
    let mut e = Expression::new();
    e.op_breg(X86_64::RSP, 0); // [slot]
    let top = e.next_index();
    e.op(dw::DW_OP_dup);
    e.op_breg(X86_64::RSP, 0);
    e.op(dw::DW_OP_minus);
    e.op_constu(8 * SCAN_SLOTS);
    e.op(dw::DW_OP_lt);
    let in_bounds = e.op_bra();
    e.op(dw::DW_OP_drop);
    e.op_constu(0);
    let give_up = e.op_skip();
    e.set_target(in_bounds, e.next_index());
    e.op(dw::DW_OP_dup);
    e.op_deref(); // [slot, value]
    // value - lo in [0, size), true whether GDB compares signed or not
    e.op(dw::DW_OP_dup);
    e.op_addr(Address::Constant(lo));
    e.op(dw::DW_OP_minus);
    e.op(dw::DW_OP_dup);
    e.op_constu(0);
    e.op(dw::DW_OP_ge);
    e.op(dw::DW_OP_swap);
    e.op_constu(size);
    e.op(dw::DW_OP_lt);
    e.op(dw::DW_OP_and);
    let in_text = e.op_bra();
    let next = e.next_index();
    e.op(dw::DW_OP_drop);
    e.op_plus_uconst(8);
    let again = e.op_skip();
    e.set_target(again, top);
    e.set_target(in_text, e.next_index());
    // [slot, value]: is value the return address of a call?
    let mut found = Vec::new();
    for (back, bytes, mask, want) in [
        (5u64, 1u8, 0xffu64, 0xe8u64), // call rel32
        (2, 2, 0xf8ff, 0xd0ff),        // call *%reg
        (6, 2, 0xffff, 0x15ff),        // call *disp32(%rip)
    ] {
        e.op(dw::DW_OP_dup);
        e.op_constu(back);
        e.op(dw::DW_OP_minus);
        e.op_deref_size(bytes);
        e.op_constu(mask);
        e.op(dw::DW_OP_and);
        e.op_constu(want);
        e.op(dw::DW_OP_eq);
        found.push(e.op_bra());
    }
    let not_call = e.op_skip();
    e.set_target(not_call, next);
    for f in found {
        e.set_target(f, e.next_index());
    }
    e.op(dw::DW_OP_drop);
    e.op_plus_uconst(8);
    e.set_target(give_up, e.next_index());
    e
}

/// `.debug_frame` for `table`, one FDE per function: `funcs` are the text
/// symbols' link-time (start, end), sorted.
pub fn debug_frame(
    table: &OrcTable,
    regs: &[(Register, i32)],
    funcs: &[(u64, u64)],
    text: Option<(u64, u64)>,
) -> Result<Vec<u8>, String> {
    let encoding = Encoding {
        format: Format::Dwarf32,
        version: 1,
        address_size: 8,
    };
    let numbering = register_numbering(table, funcs)?;
    log::debug!("ORC register numbering: {}", numbering.name);
    let mut frames = FrameTable::default();
    let mut cie = CommonInformationEntry::new(encoding, 1, 1, X86_64::RA);
    cie.add_instruction(CallFrameInstruction::Cfa(X86_64::RSP, 8));
    cie.add_instruction(CallFrameInstruction::Offset(X86_64::RA, -8));
    let cie = frames.add_cie(cie);
    let mut i = 0usize; // first table entry past the function's start
    for &(start, end) in funcs {
        while i < table.len() && table[i].0 <= start {
            i += 1;
        }
        let Some(first) = i.checked_sub(1).map(|j| table[j].1) else {
            continue;
        };
        let Ok(len) = u32::try_from(end.saturating_sub(start)) else {
            continue;
        };
        if len == 0 {
            continue;
        }
        let mut fde = FrameDescriptionEntry::new(Address::Constant(start), len);
        let inherited = table[i - 1].0 < start;
        let inside = table.get(i).is_some_and(|e| e.0 < end);
        if let (Some((lo, hi)), FrameType::End, true, false) = (text, first.ty, inherited, inside) {
            // objtool left this function out (STACK_FRAME_NON_STANDARD,
            // e.g. __crash_kexec, where kdump saves the panic CPU's
            // registers): find the return address as the kernel's own
            // fallback unwinder would
            fde.add_instruction(
                0,
                CallFrameInstruction::CfaExpression(scan_cfa(lo, hi - lo)),
            );
            frames.add_fde(cie, fde);
            continue;
        }
        let mut set = vec![X86_64::RA];
        for ins in rows(&first, numbering, regs, &mut set) {
            fde.add_instruction(0, ins);
        }
        let mut j = i;
        while j < table.len() && table[j].0 < end {
            let off = (table[j].0 - start) as u32;
            for ins in rows(&table[j].1, numbering, regs, &mut set) {
                fde.add_instruction(off, ins);
            }
            j += 1;
        }
        frames.add_fde(cie, fde);
    }
    let mut out = gimli::write::DebugFrame(EndianVec::new(LittleEndian));
    frames
        .write_debug_frame(&mut out)
        .map_err(|e| format!("writing .debug_frame: {e}"))?;
    Ok(out.0.into_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    // ORC_REG_SP and ORC_REG_PREV_SP before 7.x
    const REG_SP: u8 = 5;
    const REG_PREV_SP: u8 = 1;

    fn old_layout() -> EntryLayout {
        EntryLayout {
            sp_offset: Bits { off: 0, len: 16 },
            bp_offset: Bits { off: 16, len: 16 },
            sp_reg: Bits { off: 32, len: 4 },
            bp_reg: Bits { off: 36, len: 4 },
            ty: Bits { off: 40, len: 2 },
            end: Some(Bits { off: 42, len: 1 }),
        }
    }

    #[test]
    fn decodes_both_type_numberings() {
        // sp = SP + 16, bp at prev_sp - 16, call
        let raw = [16, 0, 0xf0, 0xff, REG_SP | (REG_PREV_SP << 4), 0];
        let e = old_layout().decode(&raw);
        assert_eq!((e.sp_offset, e.bp_offset, e.ty), (16, -16, FrameType::Call));
        let mut new = old_layout();
        new.ty.len = 3;
        new.end = None;
        assert_eq!(
            new.decode(&raw).ty,
            FrameType::End,
            "0 is UNDEFINED in the new numbering"
        );
        let raw = [8, 0, 0, 0, REG_SP, 2];
        assert_eq!(new.decode(&raw).ty, FrameType::Call);
        // the end bit
        let raw = [8, 0, 0, 0, REG_SP, 1 << 2];
        assert_eq!(old_layout().decode(&raw).ty, FrameType::End);
    }

    #[test]
    fn table_becomes_fdes_gimli_reads_back() {
        fdes_read_back(REG_SP, REG_PREV_SP);
    }

    #[test]
    fn renumbered_registers_of_7x_give_the_same_rows() {
        // 7.x: ORC_REG_SP 3, ORC_REG_PREV_SP 8
        fdes_read_back(3, 8);
    }

    fn fdes_read_back(sp: u8, prev_sp: u8) {
        let layout = old_layout();
        // two entries: at +0 (sp+8, call) and +4 (sp+16, call, bp at cfa-16)
        let ip_base = 0x1000u64;
        let mut ips = Vec::new();
        ips.extend_from_slice(&(0x8000i32 - 0x1000).to_le_bytes()); // -> 0x8000
        ips.extend_from_slice(&(0x8004i32 - 0x1004).to_le_bytes()); // -> 0x8004
        let entries = [8, 0, 0, 0, sp, 0, 16, 0, 0xf0, 0xff, sp | (prev_sp << 4), 0];
        let t = decode(&layout, &ips, ip_base, &entries, 0).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].0, 0x8004);
        let bytes = debug_frame(&t, &[], &[(0x8000, 0x8010)], None).unwrap();
        use gimli::{BaseAddresses, UnwindSection};
        let df = gimli::DebugFrame::new(&bytes, LittleEndian);
        let mut ctx = gimli::UnwindContext::new();
        let row = df
            .unwind_info_for_address(
                &BaseAddresses::default(),
                &mut ctx,
                0x8006,
                gimli::DebugFrame::cie_from_offset,
            )
            .unwrap();
        assert_eq!(
            *row.cfa(),
            gimli::CfaRule::RegisterAndOffset {
                register: X86_64::RSP,
                offset: 16
            }
        );
        assert_eq!(row.register(X86_64::RBP), gimli::RegisterRule::Offset(-16));
    }
}
