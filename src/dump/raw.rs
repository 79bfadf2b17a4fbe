//! Raw guest RAM: a QEMU `memory-backend-file` (or any byte-for-byte copy of
//! guest RAM) plus a map from guest-physical addresses to file offsets.
//!
//! The file has no notes. CPU registers come from a QEMU `info registers -a`
//! text file ([`super::info_registers`]); without one, the CPUs exist but
//! have no registers. VMCOREINFO is looked for in RAM itself (the kernel
//! keeps its `vmcoreinfo_note` in memory); without it the kernel layer
//! detects KASLR (see `kernel::kaslr`).
//!
//! Default maps follow QEMU's boards (hw/i386/pc_piix.c, pc_q35.c,
//! hw/arm/virt.c): RAM below the 4 GiB split is identity-mapped and the rest
//! continues at 4 GiB (file offset = split + GPA − 4 GiB).
//! - `pc` (i440fx): split at 3.5 GiB (0xe0000000); RAM of 3.5 GiB or more is
//!   split at 3 GiB (gigabyte alignment of current machine types).
//! - `q35`: RAM of 2.75 GiB (0xb0000000) or more is split at 2 GiB, else
//!   all of it sits below 2.75 GiB.
//! - `virt` (arm64): one block at 0x40000000.

use std::path::Path;

use super::{Dump, DumpError, FormatInfo, MemError, Notes, PhysRange, PhysicalMemory};
use crate::addr::{Arch, PhysAddr};

/// One piece of guest RAM: `len` bytes at guest-physical `gpa`, stored at
/// file offset `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RamChunk {
    pub gpa: u64,
    pub offset: u64,
    pub len: u64,
}

impl std::str::FromStr for RamChunk {
    type Err = String;

    /// `GPA:OFFSET:LEN`, each hex (0x optional) or decimal with a K/M/G suffix.
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let [gpa, offset, len] = parts[..] else {
            return Err(format!("{s:?}: expected GPA:OFFSET:LEN"));
        };
        Ok(RamChunk {
            gpa: parse_size(gpa)?,
            offset: parse_size(offset)?,
            len: parse_size(len)?,
        })
    }
}

/// `0x1000`, `4096`, `512M`, `4G`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let bad = || format!("{s:?} is not a number (hex with 0x, or decimal with K/M/G)");
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(h, 16).map_err(|_| bad());
    }
    let (num, mul) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&t[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .ok_or_else(bad)
}

/// QEMU machine types with known RAM layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    Pc,
    Q35,
    Virt,
}

impl std::str::FromStr for Machine {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pc" | "i440fx" => Ok(Machine::Pc),
            "q35" => Ok(Machine::Q35),
            "virt" => Ok(Machine::Virt),
            _ => Err(format!("unknown machine {s:?} (pc, q35, virt)")),
        }
    }
}

const GIB: u64 = 1 << 30;

/// The RAM map QEMU uses for `machine` with `ram` bytes of RAM.
pub fn default_map(machine: Machine, ram: u64) -> Vec<RamChunk> {
    let split = |lowmem: u64| {
        if ram > lowmem {
            vec![
                RamChunk {
                    gpa: 0,
                    offset: 0,
                    len: lowmem,
                },
                RamChunk {
                    gpa: 4 * GIB,
                    offset: lowmem,
                    len: ram - lowmem,
                },
            ]
        } else {
            vec![RamChunk {
                gpa: 0,
                offset: 0,
                len: ram,
            }]
        }
    };
    match machine {
        Machine::Pc => split(if ram >= 0xe000_0000 {
            0xc000_0000
        } else {
            0xe000_0000
        }),
        Machine::Q35 => split(if ram >= 0xb000_0000 {
            0x8000_0000
        } else {
            0xb000_0000
        }),
        Machine::Virt => vec![RamChunk {
            gpa: 0x4000_0000,
            offset: 0,
            len: ram,
        }],
    }
}

pub struct RawMemory {
    map: memmap2::Mmap,
    /// Sorted by gpa, non-overlapping, inside the file.
    chunks: Vec<RamChunk>,
    ranges: Vec<PhysRange>,
}

impl RawMemory {
    /// Guest RAM from `map` laid out by `chunks` (checked: sorted by GPA,
    /// non-overlapping, inside the file).
    pub fn new(map: memmap2::Mmap, mut chunks: Vec<RamChunk>) -> Result<Self, String> {
        chunks.retain(|c| c.len > 0);
        chunks.sort_by_key(|c| c.gpa);
        for c in &chunks {
            let end = c.offset.checked_add(c.len);
            if end.is_none_or(|e| e > map.len() as u64) || c.gpa.checked_add(c.len).is_none() {
                return Err(format!(
                    "RAM chunk GPA {:#x} at file offset {:#x} length {:#x} runs past the end of the file ({:#x} bytes)",
                    c.gpa,
                    c.offset,
                    c.len,
                    map.len()
                ));
            }
        }
        for w in chunks.windows(2) {
            if w[0].gpa + w[0].len > w[1].gpa {
                return Err(format!(
                    "RAM chunks at GPA {:#x} and {:#x} overlap",
                    w[0].gpa, w[1].gpa
                ));
            }
        }
        let mut ranges: Vec<PhysRange> = Vec::new();
        for c in &chunks {
            match ranges.last_mut() {
                Some(r) if r.end() == c.gpa => r.len += c.len,
                _ => ranges.push(PhysRange {
                    start: PhysAddr(c.gpa),
                    len: c.len,
                }),
            }
        }
        Ok(RawMemory {
            map,
            chunks,
            ranges,
        })
    }

    fn find(&self, pa: u64) -> Option<&RamChunk> {
        let i = self.chunks.partition_point(|c| c.gpa <= pa);
        let c = self.chunks.get(i.checked_sub(1)?)?;
        (pa - c.gpa < c.len).then_some(c)
    }

    /// The file bytes for the whole map, chunk by chunk (for scanning).
    pub fn chunks(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.chunks.iter().map(|c| {
            let o = c.offset as usize;
            (c.gpa, &self.map[o..o + c.len as usize])
        })
    }
}

impl PhysicalMemory for RawMemory {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        let mut done = 0usize;
        while done < buf.len() {
            let cur = super::read_cursor(pa, done, buf.len())?.0;
            let c = self.find(cur).ok_or(MemError::NotInDump(PhysAddr(cur)))?;
            let in_chunk = cur - c.gpa;
            let n = ((c.len - in_chunk) as usize).min(buf.len() - done);
            let off = (c.offset + in_chunk) as usize;
            buf[done..done + n].copy_from_slice(&self.map[off..off + n]);
            done += n;
        }
        Ok(())
    }

    fn ranges(&self) -> &[PhysRange] {
        &self.ranges
    }
}

/// What the user told us about a raw RAM file.
#[derive(Clone, Debug)]
pub struct RawOptions {
    pub arch: Arch,
    /// Explicit map; else the default for `machine`.
    pub ram_map: Vec<RamChunk>,
    /// Default: `pc` on x86_64, `virt` on aarch64.
    pub machine: Option<Machine>,
    /// `info registers -a` text.
    pub registers: Option<String>,
    /// CPU count when there are no registers (default 1).
    pub cpus: Option<usize>,
}

/// Finds the kernel's VMCOREINFO note in RAM: the ELF note header
/// ("VMCOREINFO\0" padded) followed by the text, which starts with
/// `OSRELEASE=`. Returns the text and its physical address. The note lives in
/// `vmcoreinfo_note` (a page of kernel data); the first copy whose text names
/// the kernel page tables wins.
pub fn find_vmcoreinfo(mem: &RawMemory) -> Option<(String, u64)> {
    const PAT: &[u8] = b"VMCOREINFO\0\0OSRELEASE=";
    let finder = memchr::memmem::Finder::new(PAT);
    for (gpa, bytes) in mem.chunks() {
        let mut at = 0usize;
        while let Some(i) = finder.find(&bytes[at..]) {
            let start = at + i + 12;
            at = start;
            // descsz sits 8 bytes before the name (namesz, descsz, type).
            let hdr = start - 12;
            let descsz = hdr
                .checked_sub(8)
                .and_then(|h| bytes.get(h..h + 4))
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
                .filter(|&d| d > 0 && d <= 1 << 16)
                .unwrap_or(4096);
            let end = (start + descsz).min(bytes.len());
            let text = &bytes[start..end];
            let text = text.split(|&c| c == 0).next().unwrap_or(text);
            let text = String::from_utf8_lossy(text).into_owned();
            let info = super::vmcoreinfo::VmcoreInfo::parse(&text);
            if info.symbol("init_top_pgt").is_some() || info.symbol("swapper_pg_dir").is_some() {
                return Some((text, gpa + start as u64));
            }
        }
    }
    None
}

pub fn open(path: &Path, opts: &RawOptions) -> Result<Dump, DumpError> {
    let map = super::map_readonly(path)?;
    let size = map.len() as u64;
    let bad = |reason: String| DumpError::Corrupt {
        path: path.to_path_buf(),
        format: "raw RAM",
        offset: 0,
        reason,
    };
    let machine = opts.machine.unwrap_or(match opts.arch {
        Arch::X86_64 | Arch::I386 => Machine::Pc,
        Arch::Aarch64 | Arch::Arm => Machine::Virt,
    });
    let explicit = !opts.ram_map.is_empty();
    let chunks = if explicit {
        opts.ram_map.clone()
    } else {
        default_map(machine, size)
    };
    let memory = RawMemory::new(map, chunks).map_err(bad)?;

    let mut notes = Notes {
        vcpu_numbered: true,
        ..Default::default()
    };
    let mut quirks = Vec::new();
    match &opts.registers {
        Some(text) => {
            let p = super::info_registers::parse(text, opts.arch)
                .map_err(|e| bad(format!("registers file: {e}")))?;
            if let Some(n) = opts.cpus
                && n != p.cpus.len()
            {
                return Err(bad(format!(
                    "--cpus {n} but the registers file holds {} CPUs",
                    p.cpus.len()
                )));
            }
            notes.cpus = p.cpus;
            notes.qemu_cpus = p.qemu_cpus;
        }
        None => {
            let n = opts.cpus.unwrap_or(1).max(1);
            notes.cpus = (0..n)
                .map(|i| super::CpuNote {
                    pid: i as u32 + 1,
                    regs: Vec::new(),
                })
                .collect();
            quirks.push(format!(
                "no registers file: {n} CPU thread(s) without registers"
            ));
        }
    }
    match find_vmcoreinfo(&memory) {
        Some((text, pa)) => {
            notes.vmcoreinfo = Some(text);
            quirks.push(format!(
                "VMCOREINFO found in RAM at physical address {pa:#x}"
            ));
        }
        None => quirks.push("no VMCOREINFO in RAM".into()),
    }
    let layout = memory
        .chunks
        .iter()
        .map(|c| format!("{:#x}+{:#x}@{:#x}", c.gpa, c.len, c.offset))
        .collect::<Vec<_>>()
        .join(" ");
    let name = if explicit {
        format!("raw guest RAM (map {layout})")
    } else {
        let m = format!("{machine:?}").to_lowercase();
        format!("raw guest RAM (QEMU {m} layout: {layout})")
    };
    Ok(Dump {
        path: path.to_path_buf(),
        arch: opts.arch,
        format: FormatInfo {
            name,
            quirks,
            ..Default::default()
        },
        memory: Box::new(memory),
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_layouts() {
        let one = |gpa, offset, len| RamChunk { gpa, offset, len };
        assert_eq!(
            default_map(Machine::Pc, 512 << 20),
            vec![one(0, 0, 512 << 20)]
        );
        // pc: 3.25 GiB fits below the 3.5 GiB split
        assert_eq!(
            default_map(Machine::Pc, 0xd000_0000),
            vec![one(0, 0, 0xd000_0000)]
        );
        // pc: 4 GiB → 3 GiB low, 1 GiB at 4 GiB
        assert_eq!(
            default_map(Machine::Pc, 4 * GIB),
            vec![one(0, 0, 3 * GIB), one(4 * GIB, 3 * GIB, GIB)]
        );
        // q35: 2.5 GiB below; 3 GiB → 2 GiB + 1 GiB
        assert_eq!(
            default_map(Machine::Q35, 0xa000_0000),
            vec![one(0, 0, 0xa000_0000)]
        );
        assert_eq!(
            default_map(Machine::Q35, 3 * GIB),
            vec![one(0, 0, 2 * GIB), one(4 * GIB, 2 * GIB, GIB)]
        );
        assert_eq!(
            default_map(Machine::Virt, GIB),
            vec![one(0x4000_0000, 0, GIB)]
        );
    }

    fn anon(len: usize) -> memmap2::Mmap {
        memmap2::MmapMut::map_anon(len)
            .unwrap()
            .make_read_only()
            .unwrap()
    }

    #[test]
    fn chunks_near_the_top_of_the_address_space() {
        let one = |gpa, len| RamChunk {
            gpa,
            offset: 0,
            len,
        };
        // a chunk whose end does not fit in 64 bits is refused
        assert!(RawMemory::new(anon(0x2000), vec![one(u64::MAX - 0xfff, 0x1000)]).is_err());
        // one ending just below the top reads up to there, and a read past
        // it names the first address missing, never wrapping to 0
        let top = u64::MAX - 0x1000;
        let m = RawMemory::new(anon(0x1000), vec![one(top, 0x1000)]).unwrap();
        let mut b = [0u8; 16];
        m.read_phys(PhysAddr(u64::MAX - 16), &mut b).unwrap();
        let e = m.read_phys(PhysAddr(u64::MAX - 8), &mut b).unwrap_err();
        assert_eq!(e, MemError::NotInDump(PhysAddr(u64::MAX)));
    }

    #[test]
    fn chunk_syntax() {
        assert_eq!(
            "0x100000000:3G:1G".parse::<RamChunk>().unwrap(),
            RamChunk {
                gpa: 4 * GIB,
                offset: 3 * GIB,
                len: GIB
            }
        );
        assert!("1:2".parse::<RamChunk>().is_err());
        assert!("x:0:1".parse::<RamChunk>().is_err());
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("2k").unwrap(), 2048);
    }
}
