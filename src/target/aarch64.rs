//! AArch64 registers: GDB's aarch64 core feature plus the pauth feature,
//! whose masks let GDB strip pointer-authentication codes from return
//! addresses (without it every PAC-signed frame shows as `?? ()`).

use std::sync::OnceLock;

use super::regs::{RegDef, RegTable, Regs, Role, build_xml, reg as r};
use crate::kernel::CpuContext;

#[derive(Debug)]
pub struct Aarch64;

const CORE: &str = "org.gnu.gdb.aarch64.core";
// GDB numbers its aarch64 pseudo registers as if the FPU feature were always
// there: without it, the pauth `ra_sign_state` pseudo register is taken for
// q0 and unwinding fails ("integers of more than 8 bytes"). So we describe
// the FPU registers, as unavailable.
const FPU: &str = "org.gnu.gdb.aarch64.fpu";
const PAUTH: &str = "org.gnu.gdb.aarch64.pauth";
// System registers, named as QEMU's stub names them: the kernel's
// scripts/gdb read `$SP_EL0` for `$lx_current()` (arm64 keeps `current` there).
const SYSREGS: &str = "org.qemu.gdb.aarch64.sysregs";

const fn x(name: &'static str, n: usize) -> RegDef {
    r(name, 64, "int", CORE, Some(n), None)
}

const fn v(name: &'static str, n: usize) -> RegDef {
    RegDef {
        set: "Floating Point Registers",
        ..r(name, 128, "uint128", FPU, Some(n), None)
    }
}

static REGS: &[RegDef] = &[
    x("x0", 0),
    x("x1", 1),
    x("x2", 2),
    x("x3", 3),
    x("x4", 4),
    x("x5", 5),
    x("x6", 6),
    x("x7", 7),
    x("x8", 8),
    x("x9", 9),
    x("x10", 10),
    x("x11", 11),
    x("x12", 12),
    x("x13", 13),
    x("x14", 14),
    x("x15", 15),
    x("x16", 16),
    x("x17", 17),
    x("x18", 18),
    x("x19", 19),
    x("x20", 20),
    x("x21", 21),
    x("x22", 22),
    x("x23", 23),
    x("x24", 24),
    x("x25", 25),
    x("x26", 26),
    x("x27", 27),
    x("x28", 28),
    r("x29", 64, "int", CORE, Some(29), Some(Role::Fp)),
    r("x30", 64, "int", CORE, Some(30), Some(Role::Ra)),
    r("sp", 64, "data_ptr", CORE, Some(31), Some(Role::Sp)),
    r("pc", 64, "code_ptr", CORE, Some(32), Some(Role::Pc)),
    r("cpsr", 32, "cpsr_flags", CORE, None, Some(Role::Flags)),
    v("v0", 64),
    v("v1", 65),
    v("v2", 66),
    v("v3", 67),
    v("v4", 68),
    v("v5", 69),
    v("v6", 70),
    v("v7", 71),
    v("v8", 72),
    v("v9", 73),
    v("v10", 74),
    v("v11", 75),
    v("v12", 76),
    v("v13", 77),
    v("v14", 78),
    v("v15", 79),
    v("v16", 80),
    v("v17", 81),
    v("v18", 82),
    v("v19", 83),
    v("v20", 84),
    v("v21", 85),
    v("v22", 86),
    v("v23", 87),
    v("v24", 88),
    v("v25", 89),
    v("v26", 90),
    v("v27", 91),
    v("v28", 92),
    v("v29", 93),
    v("v30", 94),
    v("v31", 95),
    RegDef {
        set: "Floating Point Registers",
        ..r("fpsr", 32, "int", FPU, None, None)
    },
    RegDef {
        set: "Floating Point Registers",
        ..r("fpcr", 32, "int", FPU, None, None)
    },
    // LLDB (on Linux) strips PAC bits with the registers it calls
    // data_mask/code_mask: the altnames let it find these.
    RegDef {
        alt: Some("data_mask"),
        ..r("pauth_dmask", 64, "int", PAUTH, None, None)
    },
    RegDef {
        alt: Some("code_mask"),
        ..r("pauth_cmask", 64, "int", PAUTH, None, None)
    },
    // GDB >= 14 picks these for addresses with bit 55 set (kernel space).
    r("pauth_dmask_high", 64, "int", PAUTH, None, None),
    r("pauth_cmask_high", 64, "int", PAUTH, None, None),
    RegDef {
        set: "System Registers",
        ..r("SP_EL0", 64, "uint64", SYSREGS, None, None)
    },
];

const CPSR: &str = r#"<flags id="cpsr_flags" size="4">
<field name="SP" start="0" end="0"/><field name="EL" start="2" end="3"/><field name="nRW" start="4" end="4"/>
<field name="F" start="6" end="6"/><field name="I" start="7" end="7"/><field name="A" start="8" end="8"/>
<field name="D" start="9" end="9"/><field name="SSBS" start="12" end="12"/><field name="BTYPE" start="10" end="11"/>
<field name="IL" start="20" end="20"/><field name="SS" start="21" end="21"/><field name="PAN" start="22" end="22"/>
<field name="UAO" start="23" end="23"/><field name="V" start="28" end="28"/><field name="C" start="29" end="29"/>
<field name="Z" start="30" end="30"/><field name="N" start="31" end="31"/>
</flags>
"#;

impl RegTable for Aarch64 {
    const REGS: &'static [RegDef] = REGS;
    const GDB_ARCH: &'static str = "aarch64";
    const PC: usize = 32;

    fn feature_types(feature: &str) -> &'static str {
        if feature == CORE { CPSR } else { "" }
    }

    fn xml() -> &'static str {
        static XML: OnceLock<String> = OnceLock::new();
        XML.get_or_init(build_xml::<Aarch64>)
    }
}

/// Registers of a CPU from its NT_PRSTATUS (`user_pt_regs`: x0..x30, sp, pc,
/// pstate). `pac_mask` is VMCOREINFO NUMBER(KERNELPACMASK): the bits a PAC
/// may occupy. GDB clears them and, for kernel addresses (bit 55 set),
/// sets them again, so one mask serves both halves.
pub fn cpu_registers(cpu: &CpuContext, pac_mask: Option<u64>) -> Regs<Aarch64> {
    let mut regs = Regs::<Aarch64>::default();
    regs.set_leading(cpu.regs.iter().take(34));
    set_pac_masks(&mut regs, pac_mask);
    regs
}

/// Sets SP_EL0 as the hardware had it: in the kernel (EL1) it holds the
/// running task (`current`); in user mode (EL0) it is the stack pointer the
/// note saved as `sp`.
pub fn set_sp_el0(regs: &mut Regs<Aarch64>, current_task: Option<u64>) {
    let el = regs.get("cpsr").map(|p| (p >> 2) & 3);
    let v = match el {
        Some(0) => regs.get("sp"),
        _ => current_task,
    };
    if let Some(v) = v {
        regs.set("SP_EL0", v);
    }
}

/// Sets the pauth mask registers (GDB strips these bits from code pointers).
pub fn set_pac_masks(regs: &mut Regs<Aarch64>, pac_mask: Option<u64>) {
    if let Some(m) = pac_mask {
        for name in [
            "pauth_dmask",
            "pauth_cmask",
            "pauth_dmask_high",
            "pauth_cmask_high",
        ] {
            regs.set(name, m);
        }
    }
}
