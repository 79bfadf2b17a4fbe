//! The running kernel: /proc/kcore, read-only.
//!
//! /proc/kcore is an ELF core file that the kernel builds as it is read.
//! Its PT_LOADs are kernel *virtual* ranges (direct map, kernel text,
//! vmalloc, modules, vmemmap). Since Linux 4.11 the direct-map RAM segments
//! and the kernel-text segment carry their physical address in `p_paddr`;
//! every other segment has `p_paddr` = -1. Physical memory here is exactly
//! the segments with a physical address: everything above this layer walks
//! page tables itself, as for a dump. Before 4.11 every `p_paddr` was 0:
//! such a kcore has no physical view and is refused with a message.
//!
//! Its notes: an all-zero NT_PRSTATUS placeholder (no CPU registers: the
//! CPUs are running), NT_PRPSINFO, NT_TASKSTRUCT (the reader's own task)
//! and, since 4.19, VMCOREINFO. The placeholder is dropped; CPU threads get
//! no registers (the target layer shows each CPU's current task by its last
//! switch frame instead).
//!
//! kcore cannot be mmapped: every read is a `pread` into the caller's
//! buffer (no allocation per read). The kernel fills pages it cannot read
//! (not RAM, offline) with zeros, so here, unlike in a dump, a zero page may
//! mean "unreadable". Memory changes while it is read: nothing is cached in
//! this layer, and a [`Kcore::snapshot`] per GDB stop gives the layers above
//! fresh caches. The file is opened read-only and never written.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use object::{Endianness, FileKind};

use super::elf::{Piece, Segment, merge_ranges, merge_segments};
use super::{CpuNote, Dump, DumpError, FormatInfo, MemError, Notes, PhysRange, PhysicalMemory};
use crate::addr::{Arch, PhysAddr};

/// The running kernel's core file.
pub const PROC_KCORE: &str = "/proc/kcore";

/// `statfs.f_type` of procfs (PROC_SUPER_MAGIC, linux/magic.h).
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// Largest program-header table or note segment copied at open: kcore's
/// are a few KiB; a bigger one is a lie, not a reason to allocate.
const MAX_HEADER_BYTES: u64 = 16 << 20;

/// The running kernel's physical memory, read from kcore with pread.
pub struct KcoreMemory {
    file: File,
    /// Disjoint, sorted by `start`.
    pieces: Vec<Piece>,
    ranges: Vec<PhysRange>,
}

impl KcoreMemory {
    fn find(&self, pa: u64) -> Option<&Piece> {
        let i = self.pieces.partition_point(|s| s.start <= pa);
        let s = self.pieces.get(i.checked_sub(1)?)?;
        (pa - s.start < s.len).then_some(s)
    }
}

impl PhysicalMemory for KcoreMemory {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        let mut done = 0usize;
        while done < buf.len() {
            let cur = pa.0.wrapping_add(done as u64);
            let piece = self.find(cur).ok_or(MemError::NotInDump(PhysAddr(cur)))?;
            let in_piece = cur - piece.start;
            let n = usize::try_from(piece.len - in_piece)
                .unwrap_or(usize::MAX)
                .min(buf.len() - done);
            let out = &mut buf[done..done + n];
            match piece.offset {
                Some(base) => {
                    let off = base.saturating_add(in_piece);
                    self.file
                        .read_exact_at(out, off)
                        .map_err(|e| MemError::Unreadable {
                            pa: PhysAddr(cur),
                            offset: off,
                            reason: e.to_string(),
                        })?;
                }
                None => out.fill(0),
            }
            done += n;
        }
        Ok(())
    }

    fn ranges(&self) -> &[PhysRange] {
        &self.ranges
    }
}

/// [`KcoreMemory`] shared by every snapshot of one open kcore.
#[derive(Clone)]
pub struct SharedKcore(pub Arc<KcoreMemory>);

impl PhysicalMemory for SharedKcore {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        self.0.read_phys(pa, buf)
    }

    fn ranges(&self) -> &[PhysRange] {
        self.0.ranges()
    }
}

/// An open kcore: its physical memory, VMCOREINFO and CPU count, from
/// which [`Kcore::snapshot`] makes a [`Dump`] per stop.
pub struct Kcore {
    pub path: PathBuf,
    pub arch: Arch,
    pub memory: Arc<KcoreMemory>,
    pub vmcoreinfo: Option<String>,
    /// CPU threads to show (CPU numbers 0..cpus).
    pub cpus: usize,
    /// Problems found in the notes (not fatal).
    pub warnings: Vec<String>,
    /// How many PT_LOADs carried a physical address, of how many.
    segments: (usize, usize),
}

/// True when `path` is the running kernel's kcore: a file named `kcore`
/// on procfs (statfs, as drgn tells kcore from a copy; statfs needs no
/// read permission, so a user without it still gets kcore's own error).
/// Other procfs files, /proc/vmcore in a kdump kernel above all, are
/// ordinary dumps.
pub fn is_proc_kcore(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if real.file_name() != Some(std::ffi::OsStr::new("kcore")) {
        return false;
    }
    let Ok(c) = std::ffi::CString::new(real.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs fills a zeroed statfs for a NUL-terminated path.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == PROC_SUPER_MAGIC
    }
}

/// The CPUs of the machine this runs on: highest online CPU number + 1
/// (`/sys/devices/system/cpu/online`, e.g. "0-3,6"), so thread N+1 is CPU N
/// even with holes; 1 when sysfs cannot say.
pub fn host_cpus() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| parse_cpu_list(&s))
        .unwrap_or(1)
}

/// The running kernel's GNU build-id from `/sys/kernel/notes` (its
/// `.notes` section), for kernels whose VMCOREINFO has no BUILD-ID.
pub fn sys_kernel_build_id() -> Option<String> {
    build_id_of_notes(&std::fs::read("/sys/kernel/notes").ok()?)
}

/// NT_GNU_BUILD_ID (type 3, name "GNU") of a note blob, as hex.
fn build_id_of_notes(blob: &[u8]) -> Option<String> {
    super::notes::NoteIter::new(blob)
        .find(|n| n.name == b"GNU" && n.ntype == 3 && !n.desc.is_empty())
        .map(|n| n.desc.iter().map(|b| format!("{b:02x}")).collect())
}

/// Highest CPU of a sysfs CPU list ("0-3,6") + 1.
fn parse_cpu_list(s: &str) -> Option<usize> {
    s.trim()
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| p.rsplit('-').next()?.trim().parse::<usize>().ok())
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .max()
        .and_then(|m| m.checked_add(1))
}

fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> DumpError {
    DumpError::Corrupt {
        path: path.to_path_buf(),
        format: "kcore",
        offset,
        reason: reason.into(),
    }
}

/// Opens `path` read-only; EACCES/EPERM get a message naming what is needed.
fn open_file(path: &Path) -> Result<File, DumpError> {
    File::open(path).map_err(|e| {
        let why = match e.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => format!(
                "{e}: reading the running kernel needs root (CAP_SYS_RAWIO): run corestub with sudo \
                 (with kernel lockdown in confidentiality mode, e.g. Secure Boot, even root cannot)"
            ),
            Some(libc::ENOENT) => format!(
                "{e}: this system has no /proc/kcore (a kernel without CONFIG_PROC_KCORE, or a \
                 container that hides it)"
            ),
            _ => e.to_string(),
        };
        DumpError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(e.kind(), why),
        }
    })
}

/// `len` bytes at `off`, for headers and notes.
fn read_vec(
    path: &Path,
    file: &File,
    off: u64,
    len: u64,
    what: &str,
) -> Result<Vec<u8>, DumpError> {
    if len > MAX_HEADER_BYTES {
        return Err(corrupt(
            path,
            off,
            format!("{what} of {len:#x} bytes is implausibly large"),
        ));
    }
    let mut v = vec![0u8; len as usize];
    file.read_exact_at(&mut v, off)
        .map_err(|e| corrupt(path, off, format!("cannot read the {what}: {e}")))?;
    Ok(v)
}

impl Kcore {
    /// Opens a kcore (the running kernel's, or any file in its format)
    /// and shows `cpus` CPU threads.
    pub fn open(path: &Path, cpus: usize) -> Result<Kcore, DumpError> {
        let file = open_file(path)?;
        let ehdr = read_vec(path, &file, 0, 64, "ELF header")?;
        let phoff = u64::from_le_bytes(ehdr[0x20..0x28].try_into().expect("8 bytes"));
        let phnum = u16::from_le_bytes([ehdr[0x38], ehdr[0x39]]) as u64;
        let phentsize = u16::from_le_bytes([ehdr[0x36], ehdr[0x37]]) as u64;
        let table_end = phoff
            .checked_add(phnum * phentsize)
            .ok_or_else(|| corrupt(path, 0x20, format!("e_phoff {phoff:#x} overflows")))?;
        let head = read_vec(path, &file, 0, table_end.max(64), "program headers")?;
        match FileKind::parse(&head[..]) {
            Ok(FileKind::Elf64) => {}
            Ok(k) => return Err(corrupt(path, 0, format!("{k:?} is not a 64-bit kcore"))),
            Err(e) => return Err(corrupt(path, 0, e.to_string())),
        }
        let hdr = elf::FileHeader64::<Endianness>::parse(&head[..])
            .map_err(|e| corrupt(path, 0, e.to_string()))?;
        let endian = hdr.endian().map_err(|e| corrupt(path, 0, e.to_string()))?;
        if endian != Endianness::Little {
            return Err(corrupt(path, 5, "big-endian kernels are not supported"));
        }
        let arch = match hdr.e_machine(endian) {
            elf::EM_X86_64 => Arch::X86_64,
            elf::EM_AARCH64 => Arch::Aarch64,
            m => return Err(corrupt(path, 18, format!("unsupported e_machine {m}"))),
        };
        let phdrs = hdr
            .program_headers(endian, &head[..])
            .map_err(|e| corrupt(path, phoff, e.to_string()))?;
        let mut notes = Notes::default();
        let mut segments = Vec::new();
        let mut loads = 0usize;
        let mut any_paddr = false;
        for ph in phdrs {
            match ph.p_type(endian) {
                elf::PT_NOTE => {
                    let off = ph.p_offset(endian);
                    let blob = read_vec(path, &file, off, ph.p_filesz(endian), "PT_NOTE")?;
                    notes.parse_into(&blob, arch, off);
                }
                elf::PT_LOAD => {
                    loads += 1;
                    let paddr = ph.p_paddr(endian);
                    any_paddr |= paddr != 0 && paddr != u64::MAX;
                    // no physical address (vmalloc, modules, vmemmap)
                    if paddr == u64::MAX {
                        continue;
                    }
                    let memsz = ph.p_memsz(endian).min(u64::MAX - paddr);
                    if memsz == 0 {
                        continue;
                    }
                    segments.push(Segment {
                        start: paddr,
                        memsz,
                        filesz: ph.p_filesz(endian).min(memsz),
                        offset: ph.p_offset(endian),
                    });
                }
                _ => {}
            }
        }
        if !any_paddr {
            return Err(corrupt(
                path,
                phoff,
                "no PT_LOAD carries a physical address (p_paddr): kernels before 4.11 do not \
                 give one, and corestub reads kernel memory through the physical view",
            ));
        }
        let physical = segments.len();
        let pieces = merge_segments(&segments);
        let ranges = merge_ranges(&pieces);
        let mut warnings = std::mem::take(&mut notes.warnings);
        if notes.vmcoreinfo.is_none() {
            warnings.push("no VMCOREINFO note (kernels before 4.19 have none)".into());
        }
        Ok(Kcore {
            path: path.to_path_buf(),
            arch,
            memory: Arc::new(KcoreMemory {
                file,
                pieces,
                ranges,
            }),
            vmcoreinfo: notes.vmcoreinfo,
            cpus: cpus.max(1),
            warnings,
            segments: (physical, loads),
        })
    }

    /// The kernel as of now: the shared memory, one CPU per CPU number
    /// with no registers (kcore has none), VMCOREINFO from the note.
    pub fn snapshot(&self, generation: u64) -> Dump {
        let notes = Notes {
            cpus: (0..self.cpus)
                .map(|i| CpuNote {
                    pid: i as u32 + 1,
                    regs: Vec::new(),
                })
                .collect(),
            vmcoreinfo: self.vmcoreinfo.clone(),
            // numbered by CPU, not a PID: nothing is guessed from them
            vcpu_numbered: true,
            ..Default::default()
        };
        let mut quirks = self.warnings.clone();
        quirks.push(
            "running kernel: no CPU registers; CPUs and running tasks show their last switch frame"
                .into(),
        );
        Dump {
            path: self.path.clone(),
            arch: self.arch,
            format: FormatInfo {
                name: format!(
                    "running kernel (kcore, snapshot {generation}; {} of {} PT_LOADs physical)",
                    self.segments.0, self.segments.1
                ),
                quirks,
                ..Default::default()
            },
            memory: Box::new(SharedKcore(self.memory.clone())),
            notes,
        }
    }
}

/// Opens the running kernel's kcore at `path` as a [`Dump`] (the first
/// snapshot), with the host's CPUs.
pub fn open(path: &Path) -> Result<Dump, DumpError> {
    Ok(Kcore::open(path, host_cpus())?.snapshot(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::notes::{NT_PRSTATUS, encode_note};

    const NO_PADDR: u64 = u64::MAX;

    /// A kcore-like x86_64 ELF: the notes kcore writes (a zero
    /// NT_PRSTATUS, VMCOREINFO), then `segs` as PT_LOADs of (p_vaddr,
    /// p_paddr, bytes).
    fn kcore(segs: &[(u64, u64, Vec<u8>)]) -> Vec<u8> {
        let mut notes = Vec::new();
        encode_note(&mut notes, b"CORE", NT_PRSTATUS, &[0u8; 336]);
        encode_note(&mut notes, b"CORE", 4, &[0u8; 64]); // NT_TASKSTRUCT
        encode_note(
            &mut notes,
            b"VMCOREINFO",
            0,
            b"OSRELEASE=6.1.0-kcore\nPAGESIZE=4096\n",
        );
        let phnum = 1 + segs.len() as u64;
        let mut f = Vec::new();
        f.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
        f.extend_from_slice(&4u16.to_le_bytes()); // ET_CORE
        f.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
        f.extend_from_slice(&1u32.to_le_bytes());
        f.extend_from_slice(&0u64.to_le_bytes()); // entry
        f.extend_from_slice(&64u64.to_le_bytes()); // phoff
        f.extend_from_slice(&0u64.to_le_bytes()); // shoff
        f.extend_from_slice(&0u32.to_le_bytes());
        for v in [64u16, 56, phnum as u16, 0, 0, 0] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        let mut data_off = 64 + 56 * phnum;
        let mut phdr = |f: &mut Vec<u8>, ty: u32, vaddr: u64, paddr: u64, size: u64| {
            f.extend_from_slice(&ty.to_le_bytes());
            f.extend_from_slice(&7u32.to_le_bytes());
            for v in [data_off, vaddr, paddr, size, size, 0] {
                f.extend_from_slice(&v.to_le_bytes());
            }
            data_off += size;
        };
        phdr(&mut f, 4, 0, 0, notes.len() as u64); // PT_NOTE
        for (vaddr, paddr, bytes) in segs {
            phdr(&mut f, 1, *vaddr, *paddr, bytes.len() as u64);
        }
        f.extend_from_slice(&notes);
        for (_, _, bytes) in segs {
            f.extend_from_slice(bytes);
        }
        f
    }

    struct Tmp(PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn write(name: &str, bytes: &[u8]) -> Tmp {
        let p = std::env::temp_dir().join(format!("corestub-{name}-{}.kcore", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        Tmp(p)
    }

    fn read(d: &Dump, pa: u64, n: usize) -> Result<Vec<u8>, MemError> {
        let mut b = vec![0u8; n];
        d.memory.read_phys(PhysAddr(pa), &mut b).map(|_| b)
    }

    #[test]
    fn physical_view_is_the_segments_with_a_paddr() {
        let dm = 0xffff_8880_0000_0000u64;
        let ram: Vec<u8> = (0..0x2000u32).map(|i| (i % 251) as u8).collect();
        let f = write(
            "phys",
            &kcore(&[
                // kernel text: same physical bytes as part of the RAM below
                (0xffff_ffff_8100_0000, 0x1000, ram[0..0x1000].to_vec()),
                (0xffff_c900_0000_0000, NO_PADDR, vec![0xee; 0x1000]), // vmalloc
                (dm + 0x1000, 0x1000, ram.clone()),
                (dm + 0x10_0000, 0x10_0000, vec![0xaa; 0x800]),
            ]),
        );
        let k = Kcore::open(&f.0, 3).unwrap();
        assert_eq!(k.arch, Arch::X86_64);
        assert_eq!(k.segments, (3, 4));
        assert_eq!(
            k.vmcoreinfo.as_deref(),
            Some("OSRELEASE=6.1.0-kcore\nPAGESIZE=4096\n")
        );
        let d = k.snapshot(7);
        // the placeholder NT_PRSTATUS is gone: one register-less CPU per CPU
        assert_eq!(d.notes.cpus.len(), 3);
        assert!(d.notes.cpus.iter().all(|c| c.regs.is_empty()));
        assert!(d.notes.vcpu_numbered);
        assert!(d.format.name.contains("snapshot 7"), "{}", d.format.name);
        assert_eq!(read(&d, 0x1000, 0x2000).unwrap(), ram);
        assert_eq!(read(&d, 0x10_07ff, 1).unwrap(), vec![0xaa]);
        // a read across the end of a segment names the first missing byte
        assert_eq!(
            read(&d, 0x2ff0, 0x20),
            Err(MemError::NotInDump(PhysAddr(0x3000)))
        );
        // the vmalloc segment's bytes are not physical memory anywhere
        assert_eq!(read(&d, 0, 1), Err(MemError::NotInDump(PhysAddr(0))));
        assert_eq!(
            d.memory.ranges(),
            &[
                PhysRange {
                    start: PhysAddr(0x1000),
                    len: 0x2000
                },
                PhysRange {
                    start: PhysAddr(0x10_0000),
                    len: 0x800
                }
            ]
        );
    }

    #[test]
    fn refuses_a_kcore_without_physical_addresses() {
        // before Linux 4.11 every p_paddr was 0
        let f = write("old", &kcore(&[(0xffff_8880_0000_1000, 0, vec![1; 16])]));
        let e = Kcore::open(&f.0, 1).err().unwrap().to_string();
        assert!(e.contains("4.11"), "{e}");
    }

    #[test]
    fn hostile_headers_are_errors() {
        let good = kcore(&[(0xffff_8880_0000_1000, 0x1000, vec![1; 16])]);
        // e_phnum large, table past the end of the file
        let mut bad = good.clone();
        bad[0x38..0x3a].copy_from_slice(&0xffffu16.to_le_bytes());
        let f = write("phnum", &bad);
        assert!(Kcore::open(&f.0, 1).is_err());
        // a PT_NOTE claiming 1 TiB
        let mut bad = good.clone();
        let note_filesz = 64 + 32;
        bad[note_filesz..note_filesz + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
        let f = write("note", &bad);
        let e = Kcore::open(&f.0, 1).err().unwrap().to_string();
        assert!(e.contains("implausibly large"), "{e}");
        // truncated segment data: the read fails naming the address
        let f = write("trunc", &good[..good.len() - 8]);
        let d = Kcore::open(&f.0, 1).unwrap().snapshot(1);
        let e = read(&d, 0x1000, 16).unwrap_err();
        assert_eq!(e.addr(), PhysAddr(0x1000));
        // not ELF at all
        let f = write("junk", &[0x55; 200]);
        assert!(Kcore::open(&f.0, 1).is_err());
    }

    #[test]
    fn permission_error_names_root() {
        let e = open_file(Path::new("/proc/kcore"));
        // as root the open works; as anyone else it must say what is needed
        if let Err(e) = e {
            let m = e.to_string();
            if m.contains("ermission") || m.contains("not permitted") {
                assert!(m.contains("CAP_SYS_RAWIO"), "{m}");
            }
        }
    }

    #[test]
    fn build_id_from_kernel_notes() {
        let mut blob = Vec::new();
        encode_note(&mut blob, b"Xen", 3, &[1, 2]);
        encode_note(&mut blob, b"GNU", 3, &[0xab, 0x01, 0xff]);
        assert_eq!(build_id_of_notes(&blob).as_deref(), Some("ab01ff"));
        assert_eq!(build_id_of_notes(&[0xff; 7]), None);
    }

    #[test]
    fn only_procfs_kcore_is_the_running_kernel() {
        // a kcore-format file elsewhere is a file, /proc/vmcore a dump
        let f = write(
            "named",
            &kcore(&[(0xffff_8880_0000_1000, 0x1000, vec![1; 16])]),
        );
        assert!(!is_proc_kcore(&f.0));
        assert!(!is_proc_kcore(Path::new("/proc/vmcore")));
        assert!(!is_proc_kcore(Path::new("/proc/self/status")));
        let dir = std::env::temp_dir().join(format!("corestub-kc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let named = dir.join("kcore");
        std::fs::write(&named, b"x").unwrap();
        assert!(!is_proc_kcore(&named), "not on procfs");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3\n"), Some(4));
        assert_eq!(parse_cpu_list("0,2-5,7"), Some(8));
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("x"), None);
    }
}
