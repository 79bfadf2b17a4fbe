//! Entry points for fuzzing hostile input (used by `fuzz/` cargo-fuzz targets
//! and by the bounded random-input test `tests/fuzz_smoke.rs`). Not part of
//! the program. Every function takes arbitrary bytes and must return without
//! panicking, in bounded time and memory, whatever the bytes are.
//!
//! [`real`] holds the targets over damaged copies of the real fixtures
//! (kernel layer and whole sessions); this file the format readers, the
//! page walkers, the DWARF reader and the synthetic RSP session.

pub mod real;

use std::io::{Cursor, Write};
use std::path::Path;
use std::sync::Arc;

use crate::addr::{PageTableRoot, PhysAddr, VirtAddr};
use crate::dump::notes::Notes;
use crate::dump::{self, MemError, PhysRange, PhysicalMemory};
use crate::kernel::{Kernel, VmcoreInfo};
use crate::mmu::aarch64::Arm64Paging;
use crate::mmu::x86_64::X86Paging;
use crate::mmu::{AddressSpace, Paging};
use crate::target::conn::{BufConn, serve_connection};
use crate::target::{Session, ThreadMode};

/// Opens `bytes` as a dump, then exercises what a server does with it:
/// VMCOREINFO, the kernel page tables, a few physical and virtual reads.
pub fn dump_bytes(bytes: &[u8]) {
    let Ok(dump) = dump::open_bytes(Path::new("fuzz-input"), bytes) else {
        return;
    };
    let mut buf = vec![0u8; 8192];
    // the first and last bytes of every range, and one 8 KiB read (bounded)
    for r in dump.memory.ranges().iter().take(64) {
        let _ = dump.memory.read_phys(r.start, &mut buf[..16]);
        let _ = dump
            .memory
            .read_phys(PhysAddr(r.end().saturating_sub(1)), &mut buf[..1]);
        let _ = dump
            .memory
            .read_phys(PhysAddr(r.end().saturating_sub(4096)), &mut buf);
    }
    let _ = dump.memory.read_phys(PhysAddr(u64::MAX - 3), &mut buf[..8]);
    let Ok(kernel) = Kernel::new(dump) else {
        return;
    };
    let space = kernel.kernel_space();
    for va in [
        0xffff_ffff_8100_0000u64,
        0xffff_8880_0000_0000,
        0xffff_8000_0800_0000,
        u64::MAX - 7,
    ] {
        let _ = kernel.read_virt_partial(&space, VirtAddr(va), &mut buf);
    }
    let _ = kernel.panic_cpu();
}

/// `bytes` forced to start with `magic` (so the fuzzer spends its time
/// inside one reader).
pub fn with_magic(magic: &[u8], bytes: &[u8]) -> Vec<u8> {
    let mut v = magic.to_vec();
    v.extend_from_slice(bytes.get(magic.len()..).unwrap_or(&[]));
    v
}

/// The ELF reader.
pub fn elf(bytes: &[u8]) {
    dump_bytes(&with_magic(b"\x7fELF\x02\x01\x01", bytes));
}

/// The kdump-compressed reader.
pub fn kdump(bytes: &[u8]) {
    dump_bytes(&with_magic(b"KDUMP   ", bytes));
}

/// The flattened indexer (and the kdump reader over its reassembled view).
pub fn flat(bytes: &[u8]) {
    let mut hdr = b"makedumpfile\0\0\0\0".to_vec();
    hdr.extend_from_slice(&1i64.to_be_bytes());
    dump_bytes(&with_magic(&hdr, bytes));
}

/// VMCOREINFO text and ELF note blobs.
pub fn vmcoreinfo(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let v = VmcoreInfo::parse(&text);
    let _ = (v.symbol("init_top_pgt"), v.number("phys_base"));
    let _ = (v.page_size(), v.kernel_offset(), v.crash_time());
    let _ = (v.offset("list_head.next"), v.size("page"), v.length("x"));
    for (k, _) in v.keys().take(4) {
        let _ = v.get(k);
    }
    use crate::addr::Arch;
    for arch in [Arch::X86_64, Arch::Aarch64, Arch::I386, Arch::Arm] {
        let mut n = Notes::default();
        n.parse_into(bytes, arch, 0);
    }
}

/// Type names the server's DWARF readers look up.
const DWARF_TYPES: [&str; 12] = [
    "struct task_struct",
    "struct mm_struct",
    "struct inactive_task_frame",
    "struct cpu_context",
    "struct rq",
    "struct printk_ringbuffer",
    "struct prb_desc_ring",
    "struct printk_info",
    "struct page",
    "struct uts_namespace",
    "atomic_long_t",
    "enum pid_type",
];

/// Member paths looked up in [`DWARF_TYPES`] (nested, indexed, bit-fields).
const DWARF_FIELDS: [(&str, &str); 10] = [
    ("struct task_struct", "thread.sp"),
    ("struct task_struct", "thread.cpu_context.pc"),
    ("struct task_struct", "thread_info.cpu"),
    ("struct task_struct", "ids[1].pids[3]"),
    ("struct task_struct", "rcu.next"),
    ("struct task_struct", "sched_contributes_to_load"),
    ("struct mm_struct", "rss_stat[2].count"),
    ("struct printk_info", "level"),
    ("struct page", "index"),
    ("struct uts_namespace", "name.release[64]"),
];

/// A vmlinux made of the input bytes: ELF sections (compressed or not),
/// symbols, build-id, then the DWARF layouts every kernel reader resolves.
/// `Vmlinux` maps a file, so the input goes through a per-process file.
pub fn dwarf(bytes: &[u8]) {
    use crate::kernel::symbols::Vmlinux;
    static PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let path = PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("corestub-fuzz-vmlinux-{}", std::process::id()))
    });
    // a new inode each time: an old mapping never sees the new bytes
    let _ = std::fs::remove_file(path);
    if std::fs::write(path, bytes).is_err() {
        return;
    }
    let Ok(v) = Vmlinux::open(path) else {
        return;
    };
    let _ = (v.build_id(), v.percpu_range(), v.percpu_zero_based());
    let _ = (v.symbol_count(), v.addr("init_task"));
    let _ = v.symbolize(v.addr("_start").unwrap_or(0x40_1000));
    let _ = v.relocate(v.addr("runqueues").unwrap_or(0), 0x1000_0000);
    let Ok(d) = v.debug_info() else {
        return;
    };
    // the task view resolves its members through a Kernel (VMCOREINFO,
    // else these same DWARF lookups): the field lookups below cover it
    for name in DWARF_TYPES {
        let _ = (d.layout(name), d.size_of(name));
    }
    for (ty, path) in DWARF_FIELDS {
        let _ = (d.field(ty, path), d.try_offset_of(ty, path));
    }
    for var in ["init_task", "prb", "runqueues", "nothing"] {
        let _ = d.variable_type(var);
    }
    let _ = std::fs::remove_file(path);
}

/// Physical memory made of the fuzz input: byte `i` is at physical address
/// `i` (arbitrary page-table pages, loops, entries pointing anywhere).
pub struct BytesMemory<'a> {
    bytes: &'a [u8],
    ranges: [PhysRange; 1],
}

impl<'a> BytesMemory<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        BytesMemory {
            bytes,
            ranges: [PhysRange {
                start: PhysAddr(0),
                len: bytes.len() as u64,
            }],
        }
    }
}

impl PhysicalMemory for BytesMemory<'_> {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        let src = usize::try_from(pa.0)
            .ok()
            .and_then(|o| self.bytes.get(o..o.checked_add(buf.len())?))
            .ok_or(MemError::NotInDump(pa))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn ranges(&self) -> &[PhysRange] {
        &self.ranges
    }
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    if let Some(s) = b.get(i * 8..i * 8 + 8) {
        w.copy_from_slice(s);
    }
    u64::from_le_bytes(w)
}

/// The page walkers over arbitrary page-table pages: the first 32 bytes
/// choose the configuration, the roots and the virtual addresses.
pub fn walkers(bytes: &[u8]) {
    let mem = BytesMemory::new(bytes);
    let cfg = u64_at(bytes, 0);
    let root = PageTableRoot(PhysAddr(u64_at(bytes, 1)));
    let space = AddressSpace {
        kernel: root,
        user: (cfg & 1 != 0).then_some(root),
    };
    let vas = [u64_at(bytes, 2), u64_at(bytes, 3), !u64_at(bytes, 3)];
    let x86 = Paging::X86_64(X86Paging::new(cfg & 2 != 0));
    let pages = [4096u64, 16384, 65536];
    let page_size = pages[((cfg >> 2) % 3) as usize];
    let va_bits = 36 + (cfg >> 4) % 18;
    let pa_bits = [None, Some(48u64), Some(52)][((cfg >> 9) % 3) as usize];
    let t1sz = (cfg & (1 << 11) != 0).then_some(64 - va_bits);
    let arm = Arm64Paging::from_vmcoreinfo(page_size, va_bits, t1sz, pa_bits)
        .ok()
        .map(Paging::Aarch64);
    // 32-bit: i386 with and without PAE, arm short/LPAE with TTBCR's
    // size fields from the input
    let i386 = Paging::I386(crate::mmu::i386::I386Paging::new(cfg & 2 != 0, 0xc000_0000));
    let arm32 = Paging::Arm(crate::mmu::arm::ArmPaging::from_ttbcr(
        (cfg as u32).rotate_left(16),
        0xbf00_0000,
    ));
    for p in [&x86, &i386, &arm32].into_iter().chain(arm.as_ref()) {
        for &va in &vas {
            let mut trace = Vec::new();
            let _ = p.translate(&mem, &space, VirtAddr(va), Some(&mut trace));
            assert!(trace.len() <= 6, "walk longer than any table");
            let _ = p.is_user(VirtAddr(va));
        }
    }
    if let Some(Paging::Aarch64(p)) = &arm {
        let _ = p.kernel_root_from_swapper_pg_dir(PhysAddr(u64_at(bytes, 1)), va_bits);
    }
}

/// A tiny well-formed x86_64 ELF vmcore: one CPU, VMCOREINFO naming the
/// kernel page table, 4-level tables mapping the kernel text address
/// 0xffffffff81000000 to physical 0x5000, which holds "corestub".
pub fn synthetic_elf() -> Vec<u8> {
    let mut vmcoreinfo = b"OSRELEASE=6.1.0-fuzz\nPAGESIZE=4096\n\
        SYMBOL(init_top_pgt)=ffffffff80001000\nNUMBER(phys_base)=0\n\
        NUMBER(pgtable_l5_enabled)=0\nKERNELOFFSET=0\n"
        .to_vec();
    vmcoreinfo.push(0);
    let mut notes = Vec::new();
    let mut note = |name: &[u8], ty: u32, desc: &[u8]| {
        notes.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
        notes.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        notes.extend_from_slice(&ty.to_le_bytes());
        notes.extend_from_slice(name);
        notes.push(0);
        while notes.len() % 4 != 0 {
            notes.push(0);
        }
        notes.extend_from_slice(desc);
        while notes.len() % 4 != 0 {
            notes.push(0);
        }
    };
    let mut prstatus = vec![0u8; 336];
    prstatus[32..36].copy_from_slice(&1u32.to_le_bytes());
    // rip (pr_reg word 16) and cs (word 17, ring 0)
    prstatus[112 + 16 * 8..112 + 17 * 8].copy_from_slice(&0xffff_ffff_8100_0000u64.to_le_bytes());
    prstatus[112 + 17 * 8..112 + 18 * 8].copy_from_slice(&0x10u64.to_le_bytes());
    note(b"CORE", 1, &prstatus);
    note(b"VMCOREINFO", 0, &vmcoreinfo);

    let mut mem = vec![0u8; 0x6000];
    let mut set = |pa: usize, v: u64| mem[pa..pa + 8].copy_from_slice(&v.to_le_bytes());
    set(0x1000 + 511 * 8, 0x2000 | 0x63); // PGD
    set(0x2000 + 510 * 8, 0x3000 | 0x63); // PUD
    set(0x3000 + 8 * 8, 0x4000 | 0x63); // PMD
    set(0x4000, 0x5000 | 0x63); // PTE
    mem[0x5000..0x5008].copy_from_slice(b"corestub");

    let ehsize = 64usize;
    let phsize = 56usize;
    let notes_off = ehsize + 2 * phsize;
    let load_off = (notes_off + notes.len()).next_multiple_of(4096);
    let mut f = Vec::new();
    f.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    let w16 = |f: &mut Vec<u8>, v: u16| f.extend_from_slice(&v.to_le_bytes());
    let w32 = |f: &mut Vec<u8>, v: u32| f.extend_from_slice(&v.to_le_bytes());
    let w64 = |f: &mut Vec<u8>, v: u64| f.extend_from_slice(&v.to_le_bytes());
    w16(&mut f, 4); // ET_CORE
    w16(&mut f, 62); // EM_X86_64
    w32(&mut f, 1);
    w64(&mut f, 0); // entry
    w64(&mut f, ehsize as u64); // phoff
    w64(&mut f, 0); // shoff
    w32(&mut f, 0); // flags
    w16(&mut f, ehsize as u16);
    w16(&mut f, phsize as u16);
    w16(&mut f, 2); // phnum
    w16(&mut f, 0);
    w16(&mut f, 0);
    w16(&mut f, 0);
    // PT_NOTE
    w32(&mut f, 4);
    w32(&mut f, 0);
    w64(&mut f, notes_off as u64);
    w64(&mut f, 0);
    w64(&mut f, 0);
    w64(&mut f, notes.len() as u64);
    w64(&mut f, notes.len() as u64);
    w64(&mut f, 4);
    // PT_LOAD
    w32(&mut f, 1);
    w32(&mut f, 7);
    w64(&mut f, load_off as u64);
    w64(&mut f, 0xffff_8880_0000_0000);
    w64(&mut f, 0);
    w64(&mut f, mem.len() as u64);
    w64(&mut f, mem.len() as u64);
    w64(&mut f, 4096);
    f.extend_from_slice(&notes);
    f.resize(load_off, 0);
    f.extend_from_slice(&mem);
    f
}

/// A serving session over [`synthetic_elf`].
pub fn synthetic_session() -> Arc<Session> {
    let dump = dump::open_bytes(Path::new("synthetic.vmcore"), &synthetic_elf())
        .expect("synthetic ELF opens");
    let kernel = Kernel::new(dump).expect("synthetic kernel");
    Arc::new(Session::new(kernel, ThreadMode::All))
}

/// Frames `body` as an RSP packet `$body#cs`.
pub fn packet(body: &[u8]) -> Vec<u8> {
    let sum = body.iter().fold(0u8, |a, &b| a.wrapping_add(b));
    let mut v = Vec::with_capacity(body.len() + 4);
    v.push(b'$');
    v.extend_from_slice(body);
    v.extend_from_slice(format!("#{sum:02x}").as_bytes());
    v
}

/// Counts what the stub writes (and bounds it).
struct Sink(usize);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len();
        if self.0 > 64 << 20 {
            return Err(std::io::Error::other("stub wrote more than 64 MiB"));
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The RSP packet path: bytes → gdbstub → our target, over an in-memory
/// connection. If the first byte is odd, the rest is split at newlines and
/// each piece is framed as a packet with a correct checksum (so the fuzzer
/// reaches the command handlers); otherwise the bytes go in raw.
pub fn rsp(session: &Arc<Session>, bytes: &[u8]) {
    let input = match bytes.split_first() {
        Some((&b, rest)) if b & 1 == 1 => {
            let mut v = Vec::new();
            for body in rest.split(|&c| c == b'\n') {
                v.extend_from_slice(&packet(body));
            }
            v
        }
        Some((_, rest)) => rest.to_vec(),
        None => return,
    };
    let conn = BufConn::new(Box::new(Cursor::new(input)), Box::new(Sink(0)));
    let _ = serve_connection::<crate::target::x86_64::X86_64>(session.clone(), conn);
}
