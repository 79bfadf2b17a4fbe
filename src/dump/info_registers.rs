//! Registers from QEMU's HMP `info registers -a` text (what a live QEMU gives
//! through QMP `human-monitor-command`), turned into the same notes an ELF
//! dump carries: NT_PRSTATUS-order registers per CPU plus, on x86_64, a
//! [`QemuCpuState`] (control registers, segment bases, IDT) so the rest of the
//! program treats them exactly like a QEMU ELF's notes.
//!
//! x86_64 sections look like
//! `CPU#0` / `RAX=… RBX=…` / `R8 =…` / `RIP=… RFL=… CPL=0 …` /
//! `CS =0010 0000000000000000 ffffffff 00af9b00 …` / `GDT=     base limit` /
//! `CR0=… CR2=… CR3=… CR4=…`; aarch64 sections carry `PC=`, `X00=`…`X30=`,
//! `SP=`, `PSTATE=`.

use std::collections::HashMap;

use super::notes::{CpuNote, QemuCpuState, prstatus_reg_count};
use crate::addr::Arch;

/// One CPU section: `KEY=value` words, segment/table lines split in parts.
#[derive(Debug, Default)]
struct Section {
    /// Upper-case key → the word(s) after `=`.
    vals: HashMap<String, Vec<String>>,
}

impl Section {
    fn hex(&self, key: &str) -> Option<u64> {
        let v = self.vals.get(key)?.first()?;
        u64::from_str_radix(v, 16).ok()
    }

    fn part(&self, key: &str, i: usize) -> Option<u64> {
        let v = self.vals.get(key)?.get(i)?;
        u64::from_str_radix(v, 16).ok()
    }
}

/// Keys whose value is several words: segment registers (selector, base,
/// limit, flags) and descriptor tables (base, limit).
const MULTI: &[&str] = &[
    "ES", "CS", "SS", "DS", "FS", "GS", "LDT", "TR", "GDT", "IDT",
];

fn split_sections(text: &str) -> Result<Vec<Section>, String> {
    let mut out: Vec<Section> = Vec::new();
    for (lineno, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("CPU#") {
            let n: usize = rest
                .trim()
                .parse()
                .map_err(|_| format!("line {}: bad CPU header {line:?}", lineno + 1))?;
            if n != out.len() {
                return Err(format!(
                    "line {}: CPU#{n} where CPU#{} was expected (sections must be in CPU order)",
                    lineno + 1,
                    out.len()
                ));
            }
            out.push(Section::default());
            continue;
        }
        if line.is_empty() {
            continue;
        }
        // A file holding one CPU without a header (`info registers`).
        if out.is_empty() {
            out.push(Section::default());
        }
        let sec = out.last_mut().expect("one section");
        // "R8 =…" and "ES =…": glue the name to its '='.
        let glued = line.replace(" =", "=");
        let words: Vec<&str> = glued.split_whitespace().collect();
        let mut i = 0;
        while i < words.len() {
            let w = words[i];
            i += 1;
            let Some((k, v)) = w.split_once('=') else {
                continue;
            };
            let key = k.to_ascii_uppercase();
            let mut vals = Vec::new();
            if !v.is_empty() {
                vals.push(v.to_string());
            }
            if MULTI.contains(&key.as_str()) {
                let want = if key == "GDT" || key == "IDT" { 2 } else { 4 };
                while vals.len() < want && i < words.len() && !words[i].contains('=') {
                    vals.push(words[i].to_string());
                    i += 1;
                }
            }
            sec.vals.insert(key, vals);
        }
    }
    Ok(out)
}

/// Per-CPU registers parsed from `info registers -a` text.
#[derive(Clone, Debug, Default)]
pub struct ParsedRegisters {
    pub cpus: Vec<CpuNote>,
    /// x86_64 only: control registers, segment bases, tables.
    pub qemu_cpus: Vec<QemuCpuState>,
    /// x86_64 EFER per CPU (not in NT_PRSTATUS; kept for `info`).
    pub efer: Vec<Option<u64>>,
}

/// Parses `info registers -a` output for `arch`. CPU N becomes note N with
/// pr_pid N+1, like QEMU's own ELF notes.
pub fn parse(text: &str, arch: Arch) -> Result<ParsedRegisters, String> {
    let sections = split_sections(text)?;
    if sections.is_empty() {
        return Err("no CPU registers found (expected QEMU `info registers -a` output)".into());
    }
    let mut out = ParsedRegisters::default();
    for (cpu, s) in sections.iter().enumerate() {
        let need = |key: &str| {
            s.hex(key)
                .ok_or_else(|| format!("CPU#{cpu}: {key}= missing or not hex"))
        };
        match arch {
            Arch::X86_64 => {
                let gpr_names = [
                    "RAX", "RCX", "RDX", "RBX", "RSP", "RBP", "RSI", "RDI", "R8", "R9", "R10",
                    "R11", "R12", "R13", "R14", "R15",
                ];
                let mut q = QemuCpuState::default();
                for (i, n) in gpr_names.iter().enumerate() {
                    q.gprs[i] = need(n)?;
                }
                q.rip = need("RIP")?;
                q.rflags = need("RFL")?;
                // QemuCpuState order: cs, ds, es, fs, gs, ss
                for (i, n) in ["CS", "DS", "ES", "FS", "GS", "SS"].iter().enumerate() {
                    let sel = s
                        .part(n, 0)
                        .ok_or_else(|| format!("CPU#{cpu}: segment {n} missing"))?;
                    let base = s.part(n, 1).unwrap_or(0);
                    q.segments[i] = (sel as u32, base);
                }
                q.gdt_base = s.part("GDT", 0).unwrap_or(0);
                q.idt_base = s.part("IDT", 0).unwrap_or(0);
                q.idt_limit = s.part("IDT", 1).unwrap_or(0) as u32;
                for (i, n) in [(0, "CR0"), (2, "CR2"), (3, "CR3"), (4, "CR4")] {
                    q.cr[i] = need(n)?;
                }
                let g = &q.gprs;
                let seg = |i: usize| q.segments[i];
                // elf_gregset_t order (see target::x86_64::PRSTATUS_ORDER);
                // orig_rax is not in `info registers`: 0, as QEMU's ELF writes.
                let regs = vec![
                    g[15],
                    g[14],
                    g[13],
                    g[12],
                    g[5],
                    g[3],
                    g[11],
                    g[10],
                    g[9],
                    g[8],
                    g[0],
                    g[1],
                    g[2],
                    g[6],
                    g[7],
                    0,
                    q.rip,
                    seg(0).0 as u64,
                    q.rflags,
                    g[4],
                    seg(5).0 as u64,
                    seg(3).1,
                    seg(4).1,
                    seg(1).0 as u64,
                    seg(2).0 as u64,
                    seg(3).0 as u64,
                    seg(4).0 as u64,
                ];
                debug_assert_eq!(regs.len(), prstatus_reg_count(arch));
                out.cpus.push(CpuNote {
                    pid: cpu as u32 + 1,
                    regs,
                });
                out.qemu_cpus.push(q);
                out.efer.push(s.hex("EFER"));
            }
            Arch::I386 | Arch::Arm => {
                return Err(format!(
                    "QEMU `info registers` of a 32-bit {} guest is not supported: use an ELF or kdump dump",
                    arch.name()
                ));
            }
            Arch::Aarch64 => {
                let mut regs = Vec::with_capacity(34);
                for i in 0..31 {
                    regs.push(need(&format!("X{i:02}"))?);
                }
                regs.push(need("SP")?);
                regs.push(need("PC")?);
                regs.push(need("PSTATE")?);
                out.cpus.push(CpuNote {
                    pid: cpu as u32 + 1,
                    regs,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86: &str = "
CPU#0
RAX=ffffffffbaa6ab00 RBX=0000000000000000 RCX=00000000c0000080 RDX=0000000000000000
RSI=00000000000000ff RDI=00000000000000f0 RBP=ffff8d471f219040 RSP=ffffce0c40003fc0
R8 =ffffffffff8aafca R9 =000000003cf3b682 R10=0000000000000000 R11=ffffce0c40003ff8
R12=0000000000000000 R13=0000000000000000 R14=0000000000000000 R15=0000000000000007
RIP=ffffffffbaa3d023 RFL=00000093 [--S-A-C] CPL=0 II=0 A20=1 SMM=0 HLT=1
ES =0000 0000000000000000 00000000 00000000
CS =0010 0000000000000000 ffffffff 00af9b00 DPL=0 CS64 [-RA]
SS =0018 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]
DS =0000 0000000000000000 00000000 00000000
FS =0000 000000001b7a03c0 00000000 00000000
GS =0000 ffff8d471f200000 00000000 00000000
LDT=0000 0000000000000000 00000000 00008200 DPL=0 LDT
TR =0040 fffffe0000003000 00004087 00008900 DPL=0 TSS64-avl
GDT=     fffffe0000001000 0000007f
IDT=     fffffe0000000000 00000fff
CR0=80050033 CR2=000000003b293730 CR3=000000001fd1e000 CR4=00750eb0
EFER=0000000000000d01
FCW=037f FSW=0000 [ST=0] FTW=00 MXCSR=00001f80
";

    #[test]
    fn parses_x86_64_section() {
        let p = parse(X86, Arch::X86_64).unwrap();
        assert_eq!(p.cpus.len(), 1);
        let r = &p.cpus[0].regs;
        assert_eq!(r[0], 7); // r15
        assert_eq!(r[9], 0xffff_ffff_ff8a_afca); // r8
        assert_eq!(r[16], 0xffff_ffff_baa3_d023); // rip
        assert_eq!(r[17], 0x10); // cs
        assert_eq!(r[18], 0x93); // eflags
        assert_eq!(r[20], 0x18); // ss
        assert_eq!(r[21], 0x1b7a03c0); // fs_base
        assert_eq!(r[22], 0xffff_8d47_1f20_0000); // gs_base
        let q = &p.qemu_cpus[0];
        assert_eq!(q.cr[3], 0x1fd1e000);
        assert_eq!(q.idt_base, 0xffff_fe00_0000_0000);
        assert_eq!(q.idt_limit, 0xfff);
        assert_eq!(q.gdt_base, 0xffff_fe00_0000_1000);
        assert_eq!(p.efer[0], Some(0xd01));
    }

    #[test]
    fn rejects_garbage_and_out_of_order_cpus() {
        assert!(parse("hello", Arch::X86_64).is_err());
        assert!(parse("", Arch::X86_64).is_err());
        let two = format!("{X86}\nCPU#2\n");
        assert!(parse(&two, Arch::X86_64).unwrap_err().contains("CPU#2"));
    }

    #[test]
    fn parses_aarch64() {
        let mut t = String::from("CPU#0\n PC=ffff800008012340 ");
        for i in 0..31 {
            t.push_str(&format!("X{i:02}={i:016x} "));
            if i % 4 == 3 {
                t.push('\n');
            }
        }
        t.push_str(" SP=ffff80000a003e40\nPSTATE=600003c5 -ZC- EL1h\n");
        let p = parse(&t, Arch::Aarch64).unwrap();
        let r = &p.cpus[0].regs;
        assert_eq!(r.len(), 34);
        assert_eq!(r[30], 30);
        assert_eq!(r[31], 0xffff_8000_0a00_3e40);
        assert_eq!(r[32], 0xffff_8000_0801_2340);
        assert_eq!(r[33], 0x600003c5);
    }
}
