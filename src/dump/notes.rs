//! ELF note parsing shared by every format: ELF vmcores carry notes in
//! PT_NOTE, kdump-compressed files copy the same note blob into their
//! sub-header. What the notes mean (register order) is decided above, per
//! architecture; here they are only split and bounds-checked.

use crate::addr::Arch;

pub const NT_PRSTATUS: u32 = 1;
pub const NT_FPREGSET: u32 = 2;

/// Offset of `pr_reg` inside a 64-bit `struct elf_prstatus`.
const PRSTATUS_REG_OFFSET: usize = 112;
/// Offset of `pr_pid` inside a 64-bit `struct elf_prstatus`.
const PRSTATUS_PID_OFFSET: usize = 32;

/// One NT_PRSTATUS note: a CPU's saved registers, in the kernel's `pt_regs`
/// (`elf_gregset_t`) order for the architecture.
#[derive(Clone, Debug, Default)]
pub struct CpuNote {
    /// `pr_pid`: a Linux PID for kdump (0 for idle CPUs, so not unique),
    /// the vCPU index + 1 for QEMU dumps. Threads are numbered by note order.
    pub pid: u32,
    pub regs: Vec<u64>,
}

/// QEMU's per-vCPU "QEMU" note (QEMUCPUState, x86_64): control registers and
/// segment bases that NT_PRSTATUS lacks.
#[derive(Clone, Debug, Default)]
pub struct QemuCpuState {
    pub gprs: [u64; 16],
    pub rip: u64,
    pub rflags: u64,
    /// cs, ds, es, fs, gs, ss: (selector, base)
    pub segments: [(u32, u64); 6],
    pub gdt_base: u64,
    pub idt_base: u64,
    pub idt_limit: u32,
    pub cr: [u64; 5],
    pub kernel_gs_base: Option<u64>,
}

/// Everything the dump's notes said.
#[derive(Clone, Debug, Default)]
pub struct Notes {
    pub cpus: Vec<CpuNote>,
    pub qemu_cpus: Vec<QemuCpuState>,
    /// The VMCOREINFO text (KEY=VALUE lines).
    pub vmcoreinfo: Option<String>,
    /// Number of NT_FPREGSET notes seen (register contents not used yet).
    pub fpregsets: usize,
    /// The NT_PRSTATUS notes are numbered by vCPU (QEMU: pr_pid is the CPU
    /// index plus one), so `CpuNote::pid` is not a Linux PID and must not be
    /// shown as one. Set by each opener (it knows who wrote the file); the
    /// one place every layer above asks (`Kernel::notes_carry_pids`).
    pub vcpu_numbered: bool,
    /// Problems found while parsing (truncated note, odd sizes); not fatal.
    pub warnings: Vec<String>,
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// Number of `pr_reg` words per architecture (x86_64 `user_regs_struct`,
/// arm64 `user_pt_regs`).
pub fn prstatus_reg_count(arch: Arch) -> usize {
    match arch {
        Arch::X86_64 => 27,
        Arch::Aarch64 => 34,
    }
}

/// One ELF note of a blob.
#[derive(Clone, Copy, Debug)]
pub struct Note<'a> {
    /// The name without its NUL terminator.
    pub name: &'a [u8],
    pub ntype: u32,
    pub desc: &'a [u8],
    /// The note's offset in the blob.
    pub offset: usize,
}

/// The notes of a blob (64-bit layout, 4-byte padding), in order: the one
/// walk over note blobs that every format uses. Stops at zero padding;
/// a note that runs past the blob ends the walk and is reported by
/// [`NoteIter::overrun`].
pub struct NoteIter<'a> {
    blob: &'a [u8],
    off: usize,
    overrun: Option<usize>,
}

impl<'a> NoteIter<'a> {
    pub fn new(blob: &'a [u8]) -> Self {
        NoteIter {
            blob,
            off: 0,
            overrun: None,
        }
    }

    /// Offset of a note that ran past the end of the blob, if the walk met one.
    pub fn overrun(&self) -> Option<usize> {
        self.overrun
    }
}

impl<'a> Iterator for NoteIter<'a> {
    type Item = Note<'a>;

    fn next(&mut self) -> Option<Note<'a>> {
        let (blob, off) = (self.blob, self.off);
        let namesz = u32_at(blob, off)? as usize;
        let descsz = u32_at(blob, off.checked_add(4)?)? as usize;
        let ntype = u32_at(blob, off.checked_add(8)?)?;
        if namesz == 0 && descsz == 0 && ntype == 0 {
            return None; // padding after the last note
        }
        let name_start = off + 12;
        let desc_start = name_start.saturating_add(align4(namesz));
        let desc_end = desc_start.saturating_add(descsz);
        let (Some(name), Some(desc)) = (
            blob.get(name_start..name_start.saturating_add(namesz)),
            blob.get(desc_start..desc_end),
        ) else {
            self.overrun = Some(off);
            self.off = blob.len();
            return None;
        };
        self.off = align4(desc_end);
        Some(Note {
            name: name.strip_suffix(b"\0").unwrap_or(name),
            ntype,
            desc,
            offset: off,
        })
    }
}

impl Notes {
    /// Parses a blob of ELF notes (64-bit, little-endian). `base_offset` is
    /// the blob's offset in the file, used only in warnings.
    pub fn parse_into(&mut self, blob: &[u8], arch: Arch, base_offset: u64) {
        let mut notes = NoteIter::new(blob);
        for n in notes.by_ref() {
            let at = base_offset.saturating_add(n.offset as u64);
            match (n.name, n.ntype) {
                (b"CORE", NT_PRSTATUS) => self.push_prstatus(n.desc, arch, at),
                (b"CORE", NT_FPREGSET) => self.fpregsets += 1,
                (b"VMCOREINFO", _) => {
                    let text = n.desc.split(|&c| c == 0).next().unwrap_or(n.desc);
                    self.vmcoreinfo = Some(String::from_utf8_lossy(text).into_owned());
                }
                (b"QEMU", _) if arch == Arch::X86_64 => {
                    if let Some(s) = parse_qemu_x86_64(n.desc) {
                        self.qemu_cpus.push(s);
                    }
                }
                _ => {}
            }
        }
        if let Some(off) = notes.overrun() {
            self.warnings.push(format!(
                "note at file offset {:#x} runs past the end of its segment ({} bytes)",
                base_offset.saturating_add(off as u64),
                blob.len()
            ));
        }
    }

    /// The architecture a blob's NT_PRSTATUS size implies (for dumps that
    /// do not say, like QEMU's kdump files): x86_64 `elf_prstatus` is 336
    /// bytes, aarch64 392.
    pub fn arch_from_prstatus(blob: &[u8]) -> Option<Arch> {
        NoteIter::new(blob)
            .filter(|n| n.name == b"CORE" && n.ntype == NT_PRSTATUS)
            .find_map(|n| match n.desc.len() {
                336 => Some(Arch::X86_64),
                392 => Some(Arch::Aarch64),
                _ => None,
            })
    }

    fn push_prstatus(&mut self, desc: &[u8], arch: Arch, file_offset: u64) {
        let n = prstatus_reg_count(arch);
        let pid = u32_at(desc, PRSTATUS_PID_OFFSET).unwrap_or(0);
        let regs: Option<Vec<u64>> = (0..n)
            .map(|i| u64_at(desc, PRSTATUS_REG_OFFSET + 8 * i))
            .collect();
        match regs {
            Some(regs) => self.cpus.push(CpuNote { pid, regs }),
            None => self.warnings.push(format!(
                "NT_PRSTATUS at file offset {file_offset:#x} is too short ({} bytes) for {}",
                desc.len(),
                arch.name()
            )),
        }
    }
}

/// QEMUCPUState from QEMU's target/i386/arch_dump.c (version 1).
fn parse_qemu_x86_64(d: &[u8]) -> Option<QemuCpuState> {
    let size = u32_at(d, 4)? as usize;
    let mut s = QemuCpuState::default();
    // rax rbx rcx rdx rsi rdi rsp rbp r8..r15 in QEMU's order; store in
    // x86 encoding order (rax rcx rdx rbx rsp rbp rsi rdi r8..r15).
    let q: Vec<u64> = (0..18)
        .map(|i| u64_at(d, 8 + 8 * i))
        .collect::<Option<_>>()?;
    let order = [0usize, 2, 3, 1, 6, 7, 4, 5];
    for (enc, &qi) in order.iter().enumerate() {
        s.gprs[enc] = q[qi];
    }
    s.gprs[8..16].copy_from_slice(&q[8..16]);
    s.rip = q[16];
    s.rflags = q[17];
    let seg = |i: usize| -> Option<(u32, u32, u64)> {
        let o = 8 + 18 * 8 + 24 * i;
        Some((u32_at(d, o)?, u32_at(d, o + 4)?, u64_at(d, o + 16)?))
    };
    for i in 0..6 {
        let (sel, _, base) = seg(i)?;
        s.segments[i] = (sel, base);
    }
    s.gdt_base = seg(8)?.2;
    let (_, idt_limit, idt_base) = seg(9)?;
    s.idt_base = idt_base;
    s.idt_limit = idt_limit;
    let cr_off = 8 + 18 * 8 + 24 * 10;
    for i in 0..5 {
        s.cr[i] = u64_at(d, cr_off + 8 * i)?;
    }
    let kgs_off = cr_off + 40;
    if size >= kgs_off + 8 {
        s.kernel_gs_base = u64_at(d, kgs_off);
    }
    Some(s)
}

/// Appends one ELF note (64-bit layout, 4-byte padding) to `out`: the
/// inverse of [`Notes::parse_into`], for tests and synthetic dumps.
pub fn encode_note(out: &mut Vec<u8>, name: &[u8], ntype: u32, desc: &[u8]) {
    out.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&ntype.to_le_bytes());
    out.extend_from_slice(name);
    out.push(0);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
    out.extend_from_slice(desc);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(name: &[u8], ntype: u32, desc: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode_note(&mut v, name, ntype, desc);
        v
    }

    #[test]
    fn parses_prstatus_and_vmcoreinfo() {
        let mut desc = vec![0u8; 336];
        desc[32..36].copy_from_slice(&161u32.to_le_bytes());
        desc[112 + 16 * 8..112 + 17 * 8].copy_from_slice(&0xffff_ffff_8100_0000_u64.to_le_bytes());
        let mut blob = note(b"CORE", NT_PRSTATUS, &desc);
        blob.extend(note(b"VMCOREINFO", 0, b"OSRELEASE=6.1\nPAGESIZE=4096\n\0"));
        let mut n = Notes::default();
        n.parse_into(&blob, Arch::X86_64, 0);
        assert_eq!(n.cpus.len(), 1);
        assert_eq!(n.cpus[0].pid, 161);
        assert_eq!(n.cpus[0].regs[16], 0xffff_ffff_8100_0000);
        assert_eq!(
            n.vmcoreinfo.as_deref(),
            Some("OSRELEASE=6.1\nPAGESIZE=4096\n")
        );
    }

    #[test]
    fn arch_from_prstatus_size() {
        let mut blob = note(b"VMCOREINFO", 0, b"OSRELEASE=6.1\0");
        blob.extend(note(b"CORE", NT_PRSTATUS, &[0u8; 392]));
        assert_eq!(Notes::arch_from_prstatus(&blob), Some(Arch::Aarch64));
        let blob = note(b"CORE", NT_PRSTATUS, &[0u8; 336]);
        assert_eq!(Notes::arch_from_prstatus(&blob), Some(Arch::X86_64));
        assert_eq!(
            Notes::arch_from_prstatus(&note(b"CORE", NT_PRSTATUS, &[0; 8])),
            None
        );
        assert_eq!(Notes::arch_from_prstatus(&[0xff; 40]), None);
    }

    #[test]
    fn truncated_note_is_a_warning_not_a_panic() {
        let mut blob = note(b"CORE", NT_PRSTATUS, &[0u8; 336]);
        blob.truncate(200);
        let mut n = Notes::default();
        n.parse_into(&blob, Arch::X86_64, 0x1000);
        assert!(n.cpus.is_empty());
        assert!(n.warnings[0].contains("0x1000"));
        // garbage sizes
        let mut n = Notes::default();
        n.parse_into(&[0xff; 64], Arch::Aarch64, 0);
        assert!(n.cpus.is_empty());
    }
}
