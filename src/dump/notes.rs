//! ELF note parsing shared by every format: ELF vmcores carry notes in
//! PT_NOTE, kdump-compressed files copy the same note blob into their
//! sub-header. What the notes mean (register order) is decided above, per
//! architecture; here they are only split and bounds-checked.

use crate::addr::Arch;

pub const NT_PRSTATUS: u32 = 1;
pub const NT_FPREGSET: u32 = 2;

/// Offsets of `pr_pid` and `pr_reg` inside `struct elf_prstatus`: after
/// `elf_siginfo` (3 ints), `pr_cursig` (short, padded), `pr_sigpend` and
/// `pr_sighold` (unsigned long), four pid_t and four `struct timeval` (two
/// longs each): 32 and 112 with 64-bit longs, 24 and 72 with 32-bit ones.
fn prstatus_offsets(arch: Arch) -> (usize, usize) {
    match arch.pointer_size() {
        4 => (24, 72),
        _ => (32, 112),
    }
}

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
/// arm64 `user_pt_regs`, i386 `user_regs_struct`: ebx ecx edx esi edi ebp
/// eax ds es fs gs orig_eax eip cs eflags esp ss; arm `pt_regs`: r0..r15,
/// cpsr, orig_r0). Each word is an `unsigned long`.
pub fn prstatus_reg_count(arch: Arch) -> usize {
    match arch {
        Arch::X86_64 => 27,
        Arch::Aarch64 => 34,
        Arch::I386 => 17,
        Arch::Arm => 18,
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
                // the same QEMUCPUState (64-bit fields) for 32-bit guests
                (b"QEMU", _) if matches!(arch, Arch::X86_64 | Arch::I386) => {
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
    /// bytes, aarch64 392, i386 144, arm 148.
    pub fn arch_from_prstatus(blob: &[u8]) -> Option<Arch> {
        NoteIter::new(blob)
            .filter(|n| n.name == b"CORE" && n.ntype == NT_PRSTATUS)
            .find_map(|n| match n.desc.len() {
                336 => Some(Arch::X86_64),
                392 => Some(Arch::Aarch64),
                144 => Some(Arch::I386),
                148 => Some(Arch::Arm),
                _ => None,
            })
    }

    fn push_prstatus(&mut self, desc: &[u8], arch: Arch, file_offset: u64) {
        let n = prstatus_reg_count(arch);
        let (pid_offset, reg_offset) = prstatus_offsets(arch);
        let pid = u32_at(desc, pid_offset).unwrap_or(0);
        let regs: Option<Vec<u64>> = (0..n)
            .map(|i| match arch.pointer_size() {
                4 => u32_at(desc, reg_offset + 4 * i).map(u64::from),
                _ => u64_at(desc, reg_offset + 8 * i),
            })
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

    // 32-bit elf_prstatus: pr_pid at 24, pr_reg (u32 words) at 72; i386
    // eip is word 12 of 17 (144 bytes in all), arm pc word 15 of 18 (148).
    #[test]
    fn parses_32_bit_prstatus() {
        for (arch, size, pc_word, pc) in [
            (Arch::I386, 144usize, 12usize, 0xc15c_5700u32),
            (Arch::Arm, 148, 15, 0xc030_1234),
        ] {
            let mut desc = vec![0u8; size];
            desc[24..28].copy_from_slice(&102u32.to_le_bytes());
            desc[72 + 4 * pc_word..76 + 4 * pc_word].copy_from_slice(&pc.to_le_bytes());
            // pr_fpvalid, after the registers: not a register
            desc[size - 4..].copy_from_slice(&1u32.to_le_bytes());
            let blob = note(b"CORE", NT_PRSTATUS, &desc);
            assert_eq!(Notes::arch_from_prstatus(&blob), Some(arch));
            let mut n = Notes::default();
            n.parse_into(&blob, arch, 0);
            assert_eq!(n.cpus[0].pid, 102);
            assert_eq!(n.cpus[0].regs.len(), prstatus_reg_count(arch));
            assert_eq!(n.cpus[0].regs[pc_word], pc as u64);
            assert!(n.cpus[0].regs.iter().all(|&r| r <= u32::MAX as u64));
        }
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
