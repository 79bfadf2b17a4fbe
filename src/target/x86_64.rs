//! x86_64 registers: GDB's amd64 features (core, sse, segments) plus
//! corestub's own feature with orig_rax and the control registers, so
//! `info registers` shows CR3 for QEMU dumps.

use std::sync::OnceLock;

use super::regs::{RegDef, RegTable, Regs, Role, build_xml, reg as r};
use crate::kernel::CpuContext;

#[derive(Debug)]
pub struct X86_64;

const CORE: &str = "org.gnu.gdb.i386.core";
const SSE: &str = "org.gnu.gdb.i386.sse";
const SEGS: &str = "org.gnu.gdb.i386.segments";
const SYS: &str = "org.corestub.x86_64.system";

const fn g(name: &'static str, dwarf: usize) -> RegDef {
    r(name, 64, "int64", CORE, Some(dwarf), None)
}

const fn seg(name: &'static str, dwarf: usize) -> RegDef {
    r(name, 32, "int32", CORE, Some(dwarf), None)
}

const fn st(name: &'static str, dwarf: usize) -> RegDef {
    r(name, 80, "i387_ext", CORE, Some(dwarf), None)
}

const fn fp(name: &'static str) -> RegDef {
    r(name, 32, "int", CORE, None, None)
}

const fn xmm(name: &'static str, dwarf: usize) -> RegDef {
    r(name, 128, "vec128", SSE, Some(dwarf), None)
}

const fn sys(name: &'static str) -> RegDef {
    r(name, 64, "int64", SYS, None, None)
}

static REGS: &[RegDef] = &[
    g("rax", 0),
    g("rbx", 3),
    g("rcx", 2),
    g("rdx", 1),
    g("rsi", 4),
    g("rdi", 5),
    r("rbp", 64, "data_ptr", CORE, Some(6), Some(Role::Fp)),
    r("rsp", 64, "data_ptr", CORE, Some(7), Some(Role::Sp)),
    g("r8", 8),
    g("r9", 9),
    g("r10", 10),
    g("r11", 11),
    g("r12", 12),
    g("r13", 13),
    g("r14", 14),
    g("r15", 15),
    r("rip", 64, "code_ptr", CORE, Some(16), Some(Role::Pc)),
    r(
        "eflags",
        32,
        "i386_eflags",
        CORE,
        Some(49),
        Some(Role::Flags),
    ),
    seg("cs", 51),
    seg("ss", 52),
    seg("ds", 53),
    seg("es", 50),
    seg("fs", 54),
    seg("gs", 55),
    st("st0", 33),
    st("st1", 34),
    st("st2", 35),
    st("st3", 36),
    st("st4", 37),
    st("st5", 38),
    st("st6", 39),
    st("st7", 40),
    fp("fctrl"),
    fp("fstat"),
    fp("ftag"),
    fp("fiseg"),
    fp("fioff"),
    fp("foseg"),
    fp("fooff"),
    fp("fop"),
    xmm("xmm0", 17),
    xmm("xmm1", 18),
    xmm("xmm2", 19),
    xmm("xmm3", 20),
    xmm("xmm4", 21),
    xmm("xmm5", 22),
    xmm("xmm6", 23),
    xmm("xmm7", 24),
    xmm("xmm8", 25),
    xmm("xmm9", 26),
    xmm("xmm10", 27),
    xmm("xmm11", 28),
    xmm("xmm12", 29),
    xmm("xmm13", 30),
    xmm("xmm14", 31),
    xmm("xmm15", 32),
    r("mxcsr", 32, "i386_mxcsr", SSE, None, None),
    r("fs_base", 64, "int", SEGS, Some(58), None),
    r("gs_base", 64, "int", SEGS, Some(59), None),
    sys("orig_rax"),
    sys("cr0"),
    sys("cr2"),
    sys("cr3"),
    sys("cr4"),
    sys("k_gs_base"),
];

pub(super) const EFLAGS: &str = r#"<flags id="i386_eflags" size="4">
<field name="CF" start="0" end="0"/><field name="" start="1" end="1"/><field name="PF" start="2" end="2"/>
<field name="AF" start="4" end="4"/><field name="ZF" start="6" end="6"/><field name="SF" start="7" end="7"/>
<field name="TF" start="8" end="8"/><field name="IF" start="9" end="9"/><field name="DF" start="10" end="10"/>
<field name="OF" start="11" end="11"/><field name="NT" start="14" end="14"/><field name="RF" start="16" end="16"/>
<field name="VM" start="17" end="17"/><field name="AC" start="18" end="18"/><field name="VIF" start="19" end="19"/>
<field name="VIP" start="20" end="20"/><field name="ID" start="21" end="21"/>
</flags>
"#;

const SSE_TYPES: &str = r#"<vector id="v4f" type="ieee_single" count="4"/><vector id="v2d" type="ieee_double" count="2"/>
<vector id="v16i8" type="int8" count="16"/><vector id="v8i16" type="int16" count="8"/>
<vector id="v4i32" type="int32" count="4"/><vector id="v2i64" type="int64" count="2"/>
<union id="vec128"><field name="v4_float" type="v4f"/><field name="v2_double" type="v2d"/>
<field name="v16_int8" type="v16i8"/><field name="v8_int16" type="v8i16"/><field name="v4_int32" type="v4i32"/>
<field name="v2_int64" type="v2i64"/><field name="uint128" type="uint128"/></union>
<flags id="i386_mxcsr" size="4"><field name="IE" start="0" end="0"/><field name="DE" start="1" end="1"/>
<field name="ZE" start="2" end="2"/><field name="OE" start="3" end="3"/><field name="UE" start="4" end="4"/>
<field name="PE" start="5" end="5"/><field name="DAZ" start="6" end="6"/><field name="IM" start="7" end="7"/>
<field name="DM" start="8" end="8"/><field name="ZM" start="9" end="9"/><field name="OM" start="10" end="10"/>
<field name="UM" start="11" end="11"/><field name="PM" start="12" end="12"/><field name="FZ" start="15" end="15"/></flags>
"#;

impl RegTable for X86_64 {
    const REGS: &'static [RegDef] = REGS;
    const GDB_ARCH: &'static str = "i386:x86-64";
    const PC: usize = 16;

    fn feature_types(feature: &str) -> &'static str {
        match feature {
            CORE => EFLAGS,
            SSE => SSE_TYPES,
            _ => "",
        }
    }

    fn xml() -> &'static str {
        static XML: OnceLock<String> = OnceLock::new();
        XML.get_or_init(build_xml::<X86_64>)
    }
}

/// `elf_gregset_t` (user_regs_struct) order of NT_PRSTATUS.
const PRSTATUS_ORDER: [&str; 27] = [
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi",
    "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs",
    "gs",
];

/// Registers of a CPU as its dump note saved them.
pub fn cpu_registers(cpu: &CpuContext) -> Regs<X86_64> {
    let mut regs = Regs::<X86_64>::default();
    regs.set_in_order(&PRSTATUS_ORDER, &cpu.regs);
    set_control_registers(&mut regs, cpu, u64::MAX);
    if let Some((fs, gs, kgs)) = cpu.seg_bases {
        regs.set("fs_base", fs);
        regs.set("gs_base", gs);
        if let Some(k) = kgs {
            regs.set("k_gs_base", k);
        }
    }
    regs
}

/// CR0, CR2, CR3 and CR4 from a QEMU note, cut to `mask` (the register
/// width), for x86_64 and i386.
pub(super) fn set_control_registers<T: RegTable>(regs: &mut Regs<T>, cpu: &CpuContext, mask: u64) {
    if let Some(cr) = cpu.control {
        for (i, name) in [(0, "cr0"), (2, "cr2"), (3, "cr3"), (4, "cr4")] {
            regs.set(name, cr[i] & mask);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_features_and_pc() {
        let xml = X86_64::xml();
        assert!(xml.contains("org.gnu.gdb.i386.core"));
        assert_eq!(REGS[X86_64::PC].name, "rip");
    }
}
