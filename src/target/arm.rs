//! 32-bit ARM registers: GDB's arm core feature (arm-core.xml: r0..r12,
//! sp, lr, pc, cpsr) and corestub's own feature with orig_r0.

use std::sync::OnceLock;

use super::regs::{RegDef, RegTable, Regs, Role, build_xml, reg as r};
use crate::kernel::CpuContext;

#[derive(Debug)]
pub struct Arm;

const CORE: &str = "org.gnu.gdb.arm.core";
const SYS: &str = "org.corestub.arm.system";

const fn g(name: &'static str, n: usize) -> RegDef {
    r(name, 32, "uint32", CORE, Some(n), None)
}

// DWARF numbers: r0..r15 are 0..15 (AADWARF32).
static REGS: &[RegDef] = &[
    g("r0", 0),
    g("r1", 1),
    g("r2", 2),
    g("r3", 3),
    g("r4", 4),
    g("r5", 5),
    g("r6", 6),
    g("r7", 7),
    g("r8", 8),
    g("r9", 9),
    g("r10", 10),
    r("r11", 32, "uint32", CORE, Some(11), Some(Role::Fp)),
    g("r12", 12),
    r("sp", 32, "data_ptr", CORE, Some(13), Some(Role::Sp)),
    r("lr", 32, "uint32", CORE, Some(14), Some(Role::Ra)),
    r("pc", 32, "code_ptr", CORE, Some(15), Some(Role::Pc)),
    r("cpsr", 32, "uint32", CORE, None, Some(Role::Flags)),
    r("orig_r0", 32, "uint32", SYS, None, None),
];

impl RegTable for Arm {
    const REGS: &'static [RegDef] = REGS;
    const GDB_ARCH: &'static str = "arm";
    const PC: usize = 15;

    fn feature_types(_feature: &str) -> &'static str {
        ""
    }

    fn xml() -> &'static str {
        static XML: OnceLock<String> = OnceLock::new();
        XML.get_or_init(build_xml::<Arm>)
    }
}

/// Registers of a CPU from its NT_PRSTATUS (`pt_regs`: r0..r15, cpsr,
/// orig_r0: the table's order).
pub fn cpu_registers(cpu: &CpuContext) -> Regs<Arm> {
    let mut regs = Regs::<Arm>::default();
    regs.set_leading(&cpu.regs);
    regs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_and_prstatus_order() {
        let xml = Arm::xml();
        assert!(xml.contains("<feature name=\"org.gnu.gdb.arm.core\">"));
        assert!(xml.contains("<reg name=\"cpsr\" bitsize=\"32\" type=\"uint32\" regnum=\"16\"/>"));
        assert_eq!(REGS[Arm::PC].name, "pc");
        let cpu = crate::target::numbered_cpu(18);
        let regs = cpu_registers(&cpu);
        assert_eq!(regs.get("pc"), Some(0x10f));
        assert_eq!(regs.get("cpsr"), Some(0x110));
        assert_eq!(regs.get("orig_r0"), Some(0x111));
    }
}
