//! i386 registers: GDB's i386 core feature (32bit-core.xml: the general
//! registers, segments and the x87 state GDB requires with them), and
//! corestub's own feature with orig_eax and the control registers.

use std::sync::OnceLock;

use super::regs::{RegDef, RegTable, Regs, Role, build_xml, reg as r};
use crate::kernel::CpuContext;

#[derive(Debug)]
pub struct I386;

const CORE: &str = "org.gnu.gdb.i386.core";
const SYS: &str = "org.corestub.i386.system";

const fn g(name: &'static str, dwarf: usize) -> RegDef {
    r(name, 32, "int32", CORE, Some(dwarf), None)
}

const fn st(name: &'static str, dwarf: usize) -> RegDef {
    r(name, 80, "i387_ext", CORE, Some(dwarf), None)
}

const fn fp(name: &'static str) -> RegDef {
    r(name, 32, "int", CORE, None, None)
}

const fn sys(name: &'static str) -> RegDef {
    r(name, 32, "int32", SYS, None, None)
}

// DWARF numbers: the i386 SysV psABI (eax 0, ecx 1, edx 2, ebx 3, esp 4,
// ebp 5, esi 6, edi 7, eip 8, eflags 9, st0..7 11..18, es cs ss ds fs gs
// 40..45).
static REGS: &[RegDef] = &[
    g("eax", 0),
    g("ecx", 1),
    g("edx", 2),
    g("ebx", 3),
    r("esp", 32, "data_ptr", CORE, Some(4), Some(Role::Sp)),
    r("ebp", 32, "data_ptr", CORE, Some(5), Some(Role::Fp)),
    g("esi", 6),
    g("edi", 7),
    r("eip", 32, "code_ptr", CORE, Some(8), Some(Role::Pc)),
    r(
        "eflags",
        32,
        "i386_eflags",
        CORE,
        Some(9),
        Some(Role::Flags),
    ),
    g("cs", 41),
    g("ss", 42),
    g("ds", 43),
    g("es", 40),
    g("fs", 44),
    g("gs", 45),
    st("st0", 11),
    st("st1", 12),
    st("st2", 13),
    st("st3", 14),
    st("st4", 15),
    st("st5", 16),
    st("st6", 17),
    st("st7", 18),
    fp("fctrl"),
    fp("fstat"),
    fp("ftag"),
    fp("fiseg"),
    fp("fioff"),
    fp("foseg"),
    fp("fooff"),
    fp("fop"),
    sys("orig_eax"),
    sys("cr0"),
    sys("cr2"),
    sys("cr3"),
    sys("cr4"),
];

impl RegTable for I386 {
    const REGS: &'static [RegDef] = REGS;
    const GDB_ARCH: &'static str = "i386";
    const PC: usize = 8;

    fn feature_types(feature: &str) -> &'static str {
        if feature == CORE {
            super::x86_64::EFLAGS
        } else {
            ""
        }
    }

    fn xml() -> &'static str {
        static XML: OnceLock<String> = OnceLock::new();
        XML.get_or_init(build_xml::<I386>)
    }
}

/// `elf_gregset_t` (i386 `user_regs_struct`) order of NT_PRSTATUS.
const PRSTATUS_ORDER: [&str; 17] = [
    "ebx", "ecx", "edx", "esi", "edi", "ebp", "eax", "ds", "es", "fs", "gs", "orig_eax", "eip",
    "cs", "eflags", "esp", "ss",
];

/// Registers of a CPU as its dump note saved them.
pub fn cpu_registers(cpu: &CpuContext) -> Regs<I386> {
    let mut regs = Regs::<I386>::default();
    regs.set_in_order(&PRSTATUS_ORDER, &cpu.regs);
    super::x86_64::set_control_registers(&mut regs, cpu, 0xffff_ffff);
    regs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_and_prstatus_order() {
        let xml = I386::xml();
        assert!(xml.contains("<architecture>i386</architecture>"));
        assert_eq!(REGS[I386::PC].name, "eip");
        let cpu = crate::target::numbered_cpu(17);
        let regs = cpu_registers(&cpu);
        assert_eq!(regs.get("ebx"), Some(0x100));
        assert_eq!(regs.get("eip"), Some(0x10c));
        assert_eq!(regs.get("esp"), Some(0x10f));
        assert_eq!(regs.get("ss"), Some(0x110));
        assert_eq!(regs.get("cr3"), None);
    }
}
