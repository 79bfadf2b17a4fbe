//! Fuzzing the kernel layer and the whole server over a *real* dump without
//! committing one: the fuzz input is a small description of damage applied
//! to a real fixture (mapped read-only, never written) through an in-memory
//! overlay, followed by target-specific text (RSP packets, monitor lines).
//!
//! Where the damage lands: the fixture is first served once, intact, through
//! a recorder that notes every physical page the server reads (page tables,
//! task_structs, stacks, the printk ring, mm_structs, ...). A patch names one
//! of those "hot" pages by index, so a few bytes of input reach the data the
//! readers actually walk, and the same input means the same damage in every
//! run on the same fixture.
//!
//! Input layout (all little-endian):
//! ```text
//! byte 0      bit 0: fixture (0 = x86_64-6.1, 1 = arm64-6.1)
//! byte 1      number of patch records (mod 33)
//! records     14 bytes each: page u16, offset u16, kind u8, len u8, value u64
//! rest        the tail: what the target does (packets, command lines)
//! ```
//! Record kinds (kind % 7): 0 write the u64, 1 the low u32, 2 the low byte,
//! 3 add `value as i16` to the u64 there (pointer nudge), 4 copy the u64 at
//! another hot location (page = value bits 0..16, offset = bits 16..28)
//! (pointer redirect: loops, cross-links), 5 fill `len` bytes with the low
//! byte, 6 set register (`offset` % count) of CPU note `len` to the value
//! (offset 0xffff: the note's pid).

use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use crate::addr::{Arch, PhysAddr};
use crate::dump::notes::Notes;
use crate::dump::{self, Dump, MemError, PhysRange, PhysicalMemory};
use crate::kernel::symbols::Vmlinux;
use crate::kernel::tasks::TaskReader;
use crate::kernel::{Kernel, printk};
use crate::target::conn::{BufConn, serve_connection};
use crate::target::{ArchSupport, Session, ThreadMode, monitor};

const PAGE: u64 = 4096;
const RECORD: usize = 14;
const MAX_PATCHES: usize = 32;

/// The real fixtures the overlay targets run on (set, dump file).
pub const FIXTURES: [(&str, &str); 2] = [
    ("x86_64-6.1", "elf-d31.vmcore"),
    ("arm64-6.1", "elf-d31.vmcore"),
];

/// One real fixture, opened once per process.
pub struct Fixture {
    pub name: String,
    /// Leaked once per process: overlays borrow its memory for `'static`.
    dump: &'static Dump,
    vmlinux: Option<Vmlinux>,
    /// Page-aligned physical addresses an intact session reads, sorted.
    pub hot: Vec<u64>,
}

/// Fixture `i % 2`, or `None` when it is not on this machine (the targets
/// then return at once; `tests/fuzz_smoke.rs` skips loudly).
pub fn fixture(i: usize) -> Option<&'static Fixture> {
    static CELLS: [OnceLock<Option<Fixture>>; 2] = [OnceLock::new(), OnceLock::new()];
    let i = i % FIXTURES.len();
    CELLS[i].get_or_init(|| open_fixture(i)).as_ref()
}

fn open_fixture(i: usize) -> Option<Fixture> {
    let (set, file) = FIXTURES[i];
    let dir = crate::fixtures::root().join(set);
    let path = dir.join(file);
    let dump: &'static Dump = Box::leak(Box::new(dump::open(&path).ok()?));
    let vmlinux = Vmlinux::open(dir.join("vmlinux")).ok();
    let recorder = Recorder {
        base: dump.memory.as_ref(),
        pages: Mutex::new(BTreeSet::new()),
    };
    let recorded = Arc::new(recorder);
    let kernel = Kernel::with_vmlinux(
        Dump {
            path: dump.path.clone(),
            arch: dump.arch,
            format: dump.format.clone(),
            memory: Box::new(SharedRecorder(recorded.clone())),
            notes: dump.notes.clone(),
        },
        vmlinux.clone(),
    )
    .ok()?;
    let session = Arc::new(Session::new(kernel, ThreadMode::All));
    // What a debugger session reads: threads and their registers, then the
    // crash-style commands.
    let mut tail = b"qXfer:threads:read::0,fff".to_vec();
    for (tid, _) in session.threads().order.iter().take(4096) {
        tail.extend_from_slice(format!("\nHg{tid:x}\ng").as_bytes());
    }
    serve_tail(&session, &tail, true);
    for cmd in ["ps", "sys", "log", "vtop -c 0 0", "kmem -p 1000"] {
        let _ = monitor::run(&session, cmd);
    }
    let hot: Vec<u64> = recorded
        .pages
        .lock()
        .map(|p| p.iter().copied().collect())
        .unwrap_or_default();
    Some(Fixture {
        name: format!("{set}/{file}"),
        dump,
        vmlinux,
        hot,
    })
}

/// Notes every page read from `base`.
struct Recorder {
    base: &'static dyn PhysicalMemory,
    pages: Mutex<BTreeSet<u64>>,
}

struct SharedRecorder(Arc<Recorder>);

impl PhysicalMemory for SharedRecorder {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        let r = &self.0;
        r.base.read_phys(pa, buf)?;
        if let Ok(mut p) = r.pages.lock() {
            let end = pa.0.saturating_add(buf.len() as u64);
            let mut page = pa.0 & !(PAGE - 1);
            while page < end && p.len() < 1 << 16 {
                p.insert(page);
                page = match page.checked_add(PAGE) {
                    Some(n) => n,
                    None => break,
                };
            }
        }
        Ok(())
    }

    fn ranges(&self) -> &[PhysRange] {
        self.0.base.ranges()
    }
}

/// The fixture's memory with byte patches on top.
struct Overlay {
    base: &'static dyn PhysicalMemory,
    patches: Vec<(u64, Vec<u8>)>,
}

impl PhysicalMemory for Overlay {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        self.base.read_phys(pa, buf)?;
        let start = pa.0;
        let end = start.saturating_add(buf.len() as u64);
        for (at, bytes) in &self.patches {
            let p_end = at.saturating_add(bytes.len() as u64);
            let (lo, hi) = ((*at).max(start), p_end.min(end));
            if lo < hi {
                let dst = (lo - start) as usize..(hi - start) as usize;
                let src = (lo - at) as usize..(hi - at) as usize;
                buf[dst].copy_from_slice(&bytes[src]);
            }
        }
        Ok(())
    }

    fn ranges(&self) -> &[PhysRange] {
        self.base.ranges()
    }
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

/// A damaged copy of the fixture as the input describes it, and the tail.
pub fn damaged(bytes: &[u8]) -> Option<(&'static Fixture, Dump, &[u8])> {
    let (&sel, rest) = bytes.split_first()?;
    let f = fixture(usize::from(sel & 1))?;
    let (&n, mut rest) = rest.split_first().unwrap_or((&0, &[]));
    let mut overlay = Overlay {
        base: f.dump.memory.as_ref(),
        patches: Vec::new(),
    };
    let mut notes = f.dump.notes.clone();
    for _ in 0..usize::from(n) % (MAX_PATCHES + 1) {
        let Some((rec, tail)) = rest.split_first_chunk::<RECORD>() else {
            break;
        };
        rest = tail;
        apply(f, &mut overlay, &mut notes, rec);
    }
    let dump = Dump {
        path: PathBuf::from(format!("{}~fuzz", f.name)),
        arch: f.dump.arch,
        format: f.dump.format.clone(),
        memory: Box::new(overlay),
        notes,
    };
    Some((f, dump, rest))
}

fn apply(f: &Fixture, overlay: &mut Overlay, notes: &mut Notes, rec: &[u8; RECORD]) {
    if f.hot.is_empty() {
        return;
    }
    let hot = |i: u16| f.hot[usize::from(i) % f.hot.len()];
    let off = u64::from(u16_at(rec, 2)) % PAGE;
    let pa = hot(u16_at(rec, 0)) + off;
    let (kind, len) = (rec[4] % 7, rec[5]);
    let val = u64::from_le_bytes(rec[6..14].try_into().unwrap_or_default());
    let room = (PAGE - off) as usize;
    let cur = |o: &Overlay, pa: u64| {
        let mut w = [0u8; 8];
        o.read_phys(PhysAddr(pa), &mut w)
            .ok()
            .map(|_| u64::from_le_bytes(w))
    };
    let bytes = match kind {
        0 => val.to_le_bytes().to_vec(),
        1 => (val as u32).to_le_bytes().to_vec(),
        2 => vec![val as u8],
        3 => match cur(overlay, pa) {
            Some(v) => v.wrapping_add(val as i16 as u64).to_le_bytes().to_vec(),
            None => return,
        },
        4 => {
            let from = hot(val as u16) + (((val >> 16) % PAGE) & !7);
            match cur(overlay, from) {
                Some(v) => v.to_le_bytes().to_vec(),
                None => return,
            }
        }
        5 => vec![val as u8; usize::from(len)],
        _ => {
            let ncpus = notes.cpus.len().max(1);
            if let Some(cpu) = notes.cpus.get_mut(usize::from(len) % ncpus) {
                let r = u16_at(rec, 2);
                if r == 0xffff {
                    cpu.pid = val as u32;
                } else if !cpu.regs.is_empty() {
                    let i = usize::from(r) % cpu.regs.len();
                    cpu.regs[i] = val;
                }
            }
            return;
        }
    };
    let mut bytes = bytes;
    bytes.truncate(room);
    overlay.patches.push((pa, bytes));
}

/// The damaged dump as a kernel (with the fixture's vmlinux).
fn kernel(f: &Fixture, dump: Dump) -> Option<Kernel> {
    Kernel::with_vmlinux(dump, f.vmlinux.clone()).ok()
}

fn session(bytes: &[u8]) -> Option<(Arc<Session>, &[u8])> {
    let (f, dump, tail) = damaged(bytes)?;
    let k = kernel(f, dump)?;
    Some((Arc::new(Session::new(k, ThreadMode::All)), tail))
}

/// Fixture `i` with bytes written at physical addresses and its CPU notes
/// edited (for tests/mutations.rs, which aims at known structures).
pub fn patched_session(
    i: usize,
    patches: Vec<(PhysAddr, Vec<u8>)>,
    edit: impl FnOnce(&mut Notes),
) -> Option<Arc<Session>> {
    let f = fixture(i)?;
    let mut notes = f.dump.notes.clone();
    edit(&mut notes);
    let dump = Dump {
        path: PathBuf::from(format!("{}~patched", f.name)),
        arch: f.dump.arch,
        format: f.dump.format.clone(),
        memory: Box::new(Overlay {
            base: f.dump.memory.as_ref(),
            patches: patches.into_iter().map(|(pa, b)| (pa.0, b)).collect(),
        }),
        notes,
    };
    Some(Arc::new(Session::new(kernel(f, dump)?, ThreadMode::All)))
}

/// What a debugger does with a session: the thread list, every thread's
/// registers (`g`, at most 4096 threads), a memory read, and the monitor
/// commands; returns the monitor outputs.
pub fn exercise(s: &Arc<Session>) -> Vec<String> {
    let mut tail = b"qXfer:threads:read::0,fff".to_vec();
    for (tid, _) in s.threads().order.iter().take(4096) {
        tail.extend_from_slice(format!("\nHg{tid:x}\ng\nqThreadExtraInfo,{tid:x}").as_bytes());
    }
    serve_tail(s, &tail, true);
    ["ps", "sys", "log -l", "vtop -c 0 0", "rd -64 init_task 4"]
        .iter()
        .map(|c| monitor::run(s, c))
        .collect()
}

/// A session on fixture `i` with no damage (what the seeds start from).
pub fn intact_session(i: u8) -> Option<Arc<Session>> {
    session(&[i, 0]).map(|(s, _)| s)
}

/// Serves `tail` (bodies split at newlines and framed as packets when
/// `framed`, else raw bytes) to a stub for the session's architecture.
fn serve_tail(session: &Arc<Session>, tail: &[u8], framed: bool) {
    let input = if framed {
        let mut v = Vec::new();
        for body in tail.split(|&c| c == b'\n') {
            v.extend_from_slice(&super::packet(body));
        }
        v
    } else {
        tail.to_vec()
    };
    let conn = BufConn::new(Box::new(Cursor::new(input)), Box::new(super::Sink(0)));
    let _ = match session.kernel.arch {
        Arch::X86_64 => serve_connection::<crate::target::x86_64::X86_64>(session.clone(), conn),
        Arch::Aarch64 => serve_connection::<crate::target::aarch64::Aarch64>(session.clone(), conn),
        Arch::I386 => serve_connection::<crate::target::i386::I386>(session.clone(), conn),
        Arch::Arm => serve_connection::<crate::target::arm::Arm>(session.clone(), conn),
    };
}

/// The whole server: a session on the damaged fixture, fed the tail as RSP
/// packets (framed with a right checksum if its first byte is odd; raw
/// otherwise).
pub fn session_target(bytes: &[u8]) {
    let Some((s, tail)) = session(bytes) else {
        return;
    };
    match tail.split_first() {
        Some((&b, rest)) => serve_tail(&s, rest, b & 1 == 1),
        None => serve_tail(&s, b"qXfer:threads:read::0,fff\ng", true),
    }
}

/// The task list: every task, what each CPU ran, address spaces, and the
/// registers saved at each task's last switch.
pub fn tasks_target(bytes: &[u8]) {
    let Some((f, dump, _)) = damaged(bytes) else {
        return;
    };
    let Some(k) = kernel(f, dump) else {
        return;
    };
    let Ok(r) = TaskReader::new(&k) else {
        return;
    };
    let _ = r.cpu_current();
    if let Ok(tasks) = r.all_tasks() {
        for t in tasks.iter().take(4096) {
            let _ = r.address_space(t);
            let _ = r.switch_registers(t);
        }
    }
}

/// The kernel log: every record, formatted, and the panic line.
pub fn printk_target(bytes: &[u8]) {
    let Some((f, dump, _)) = damaged(bytes) else {
        return;
    };
    let Some(k) = kernel(f, dump) else {
        return;
    };
    if let Ok(log) = printk::read_log(&k) {
        let _ = printk::panic_message(&log);
        for r in log.iter().take(64) {
            let _ = r.format(true);
        }
    }
}

/// Monitor commands: the tail's lines (at most 8), each run as `monitor LINE`.
pub fn monitor_target(bytes: &[u8]) {
    let Some((s, tail)) = session(bytes) else {
        return;
    };
    let text = String::from_utf8_lossy(tail);
    for line in text.lines().take(8) {
        let _ = monitor::run(&s, line);
    }
}

/// Thread registers: every thread's register file as `g` and `p` return
/// it, and each CPU's from its (damaged) note directly.
pub fn regs_target(bytes: &[u8]) {
    let Some((s, tail)) = session(bytes) else {
        return;
    };
    let k = &s.kernel;
    for cpu in &k.cpus {
        match k.arch {
            Arch::X86_64 => {
                let _ = crate::target::x86_64::X86_64::cpu_registers(k, cpu);
            }
            Arch::Aarch64 => {
                let _ = crate::target::aarch64::Aarch64::cpu_registers(k, cpu);
            }
            Arch::I386 => {
                let _ = crate::target::i386::I386::cpu_registers(k, cpu);
            }
            Arch::Arm => {
                let _ = crate::target::arm::Arm::cpu_registers(k, cpu);
            }
        }
    }
    // register numbers to read one by one: the tail's bytes
    let regs: Vec<u8> = tail.iter().take(8).copied().collect();
    let mut packets = Vec::new();
    for (tid, _) in s.threads().order.iter().take(512) {
        packets.extend_from_slice(format!("Hg{tid:x}\ng\n").as_bytes());
        for r in &regs {
            packets.extend_from_slice(format!("p{r:x}\n").as_bytes());
        }
    }
    serve_tail(&s, &packets, true);
}
