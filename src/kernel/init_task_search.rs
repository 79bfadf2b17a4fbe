//! `init_task` found by its structure, for kernels whose symbols do not
//! name it (no debug vmlinux, and a kallsyms table of functions only:
//! Debian's arm64 cloud kernels lack CONFIG_KALLSYMS_ALL; VMCOREINFO never
//! exports it).
//!
//! `init_task` is a static `task_struct` in the kernel image's data, and
//! the boot CPU's idle task: `init_idle()` (kernel/sched/core.c) names it
//! `INIT_TASK_COMM "/" cpu`, i.e. `swapper/0` on SMP kernels (`swapper`
//! on UP ones). The image is scanned from `_stext` for that name in the
//! `comm` member, skipping pages it cannot read (arm64 unmaps the freed
//! init sections between text and data; dumps leave out zero pages), and
//! a candidate is accepted only if the layout (DWARF, or the BTF-made
//! DWARF) makes it the kernel's own idle task: PID and TGID 0, its
//! `real_parent`, `parent` and `group_leader` all itself, and its `tasks`
//! list well formed (`next->prev` pointing back) and walking back to it.
//! Only the task on `init_task.tasks` with PID 0 passes: other CPUs' idle
//! tasks are on no list, and a copy elsewhere points to the original.

use super::kallsyms::KernelMemory;
use super::objects::task::MAX_LIST;
use super::objects::{Result, member};
use super::{Kernel, KernelError};
use crate::addr::VirtAddr;

/// The name the kernel gives its idle tasks (`INIT_TASK_COMM`).
const IDLE_COMM: &[u8] = b"swapper";
/// Image bytes scanned from `_stext` (text, read-only data, data).
pub const SEARCHED: u64 = 256 << 20;
/// Bytes read at a time (a chunk that fails is read page by page).
const CHUNK: u64 = 1 << 20;

/// The `task_struct` members the check reads (offsets).
#[derive(Clone, Copy, Debug)]
pub struct IdleTaskLayout {
    pub comm: u64,
    pub pid: u64,
    pub tgid: u64,
    pub real_parent: u64,
    pub parent: u64,
    pub group_leader: u64,
    pub tasks: u64,
}

impl IdleTaskLayout {
    pub fn resolve(k: &Kernel) -> Result<IdleTaskLayout> {
        Self::from_offsets(|path| member(k, "task_struct", path).map(|m| m.offset))
    }

    /// The members from the kernel's BTF, for the symbol file built from
    /// the dump (its DWARF is made from this BTF): `None` when
    /// `task_struct` or a member is missing or not byte-aligned.
    pub fn from_btf(btf: &super::btf::Btf) -> Option<IdleTaskLayout> {
        let members = btf.struct_members("task_struct")?;
        Self::from_offsets(|name| {
            members
                .iter()
                .find(|(n, off, bits)| *n == name && *bits == 0 && off % 8 == 0)
                .map(|(_, off, _)| u64::from(off / 8))
                .ok_or(())
        })
        .ok()
    }

    /// Each member's offset as `offset(name)` gives it.
    fn from_offsets<E>(
        offset: impl Fn(&'static str) -> std::result::Result<u64, E>,
    ) -> std::result::Result<IdleTaskLayout, E> {
        Ok(IdleTaskLayout {
            comm: offset("comm")?,
            pid: offset("pid")?,
            tgid: offset("tgid")?,
            real_parent: offset("real_parent")?,
            parent: offset("parent")?,
            group_leader: offset("group_leader")?,
            tasks: offset("tasks")?,
        })
    }
}

/// Where the search found `init_task`, and how many bytes it read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub addr: u64,
    pub comm_len: usize,
    pub scanned: u64,
}

/// True if `b` starts with an idle task's name: `swapper`, then NUL or
/// `/` and a CPU number and NUL.
fn idle_comm(b: &[u8]) -> Option<usize> {
    let rest = b.strip_prefix(IDLE_COMM)?;
    match rest.first()? {
        0 => Some(IDLE_COMM.len()),
        b'/' => {
            let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            (digits > 0 && rest.get(1 + digits) == Some(&0)).then_some(IDLE_COMM.len() + 1 + digits)
        }
        _ => None,
    }
}

fn u64_at(mem: &dyn KernelMemory, va: u64) -> Option<u64> {
    let mut b = [0u8; 8];
    mem.read(va, &mut b).ok()?;
    Some(u64::from_le_bytes(b))
}

fn u32_at(mem: &dyn KernelMemory, va: u64) -> Option<u32> {
    let mut b = [0u8; 4];
    mem.read(va, &mut b).ok()?;
    Some(u32::from_le_bytes(b))
}

/// True if the `task_struct` at `task` is the kernel's own idle task on
/// the task list (see the module documentation); 64-bit kernels.
pub fn is_init_task(mem: &dyn KernelMemory, l: &IdleTaskLayout, task: u64) -> bool {
    let at = |off: u64| task.checked_add(off);
    let ptr = |off: u64| at(off).and_then(|va| u64_at(mem, va));
    let id = |off: u64| at(off).and_then(|va| u32_at(mem, va));
    if id(l.pid) != Some(0) || id(l.tgid) != Some(0) {
        return false;
    }
    if [l.real_parent, l.parent, l.group_leader]
        .iter()
        .any(|&off| ptr(off) != Some(task))
    {
        return false;
    }
    let Some(head) = at(l.tasks) else {
        return false;
    };
    list_closes(mem, head)
}

/// True if following `next` from `head` comes back to it, each element's
/// `prev` pointing to the one before, no element twice.
fn list_closes(mem: &dyn KernelMemory, head: u64) -> bool {
    let mut seen = std::collections::HashSet::new();
    let mut cur = head;
    for _ in 0..=MAX_LIST {
        let Some(next) = u64_at(mem, cur) else {
            return false;
        };
        let prev = next.checked_add(8).and_then(|p| u64_at(mem, p));
        if prev != Some(cur) {
            return false;
        }
        if next == head {
            return true;
        }
        if !seen.insert(next) {
            return false;
        }
        cur = next;
    }
    false
}

/// Scans `lo..hi` (pages of `page` bytes) for the first `task_struct`
/// named like an idle task that [`is_init_task`] accepts.
pub fn search(
    mem: &dyn KernelMemory,
    l: &IdleTaskLayout,
    lo: u64,
    hi: u64,
    page: u64,
) -> Option<Found> {
    let found = scan_image(mem, lo, hi, page, IDLE_COMM, |va, bytes| {
        let len = idle_comm(bytes)?;
        let task = va.checked_sub(l.comm)?;
        is_init_task(mem, l, task).then_some((task, len))
    })?;
    let ((addr, comm_len), scanned) = found;
    Some(Found {
        addr,
        comm_len,
        scanned,
    })
}

/// The first occurrence of `needle` in `lo..hi` that `accept` turns into a
/// value (given its address and the bytes read from there on), and the
/// bytes scanned up to it. Unreadable pages (unmapped, left out of the
/// dump) are skipped; an occurrence is seen whole unless it touches one.
pub fn scan_image<T>(
    mem: &dyn KernelMemory,
    lo: u64,
    hi: u64,
    page: u64,
    needle: &[u8],
    mut accept: impl FnMut(u64, &[u8]) -> Option<T>,
) -> Option<(T, u64)> {
    let mut scanned = 0u64;
    let mut check = |base: u64, bytes: &[u8]| -> Option<T> {
        scanned += bytes.len() as u64;
        memchr::memmem::find_iter(bytes, needle)
            .find_map(|hit| accept(base.checked_add(hit as u64)?, &bytes[hit..]))
    };
    let mut at = lo - lo % page;
    while at < hi {
        let len = CHUNK.min(hi - at);
        let mut buf = vec![0u8; len as usize];
        if mem.read(at, &mut buf).is_ok() {
            if let Some(v) = check(at, &buf) {
                return Some((v, scanned));
            }
        } else {
            for (i, p) in buf.chunks_mut(page as usize).enumerate() {
                let va = at + i as u64 * page;
                if mem.read(va, p).is_ok()
                    && let Some(v) = check(va, p)
                {
                    return Some((v, scanned));
                }
            }
        }
        // overlap by a needle and a name, so none is cut in two
        let overlap = (needle.len() as u64 + 32).min(len / 2);
        at = match at.checked_add(len - overlap) {
            Some(a) => a,
            None => break,
        };
    }
    None
}

impl Kernel {
    /// The image bytes [`scan_image`] searches for what no symbol names:
    /// [`SEARCHED`] bytes from `_stext` (VMCOREINFO's, else the symbol's).
    pub fn image_scan_range(&self) -> Option<(u64, u64)> {
        let stext = self
            .vmcoreinfo
            .symbol("_stext")
            .or_else(|| self.symbol("_stext").map(|a| a.0))?;
        Some((stext, stext.saturating_add(SEARCHED)))
    }

    /// `init_task`: by its symbol, else found by its structure from
    /// VMCOREINFO's `_stext` on ([`search`]) and logged.
    pub fn init_task(&self) -> Result<VirtAddr> {
        if let Some(a) = self.symbol("init_task") {
            return Ok(a);
        }
        self.init_task_found()
    }

    /// `init_task` found by its structure ([`search`], members at `l`)
    /// in [`Kernel::image_scan_range`], logged; no symbol consulted.
    pub fn search_init_task(&self, l: &IdleTaskLayout) -> Option<Found> {
        if self.arch.pointer_size() != 8 {
            return None;
        }
        let (stext, hi) = self.image_scan_range()?;
        let t0 = std::time::Instant::now();
        let f = search(self, l, stext, hi, self.paging.page_size())?;
        log::info!(
            "init_task not among the symbols: found by its structure at {:#x} \
             (idle task named swapper, its own parent and leader, its task list \
             closing) after {} KiB of the image from _stext, in {:?}",
            f.addr,
            f.scanned >> 10,
            t0.elapsed()
        );
        Some(f)
    }

    fn init_task_found(&self) -> Result<VirtAddr> {
        self.layouts
            .init_task
            .get_or_init(|| {
                if self.arch.pointer_size() != 8 {
                    return Err(KernelError::NoSymbol("init_task"));
                }
                let (stext, hi) = self
                    .image_scan_range()
                    .ok_or(KernelError::NoSymbol("init_task"))?;
                let l = IdleTaskLayout::resolve(self)?;
                match self.search_init_task(&l) {
                    Some(f) => Ok(VirtAddr(f.addr)),
                    None => Err(KernelError::Layout {
                        what: "init_task".into(),
                        reason: format!(
                            "not among the symbols, and no task_struct in {stext:#x}..{hi:#x} \
                             is the kernel's idle task on its task list"
                        ),
                    }),
                }
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Flat {
        base: u64,
        bytes: Vec<u8>,
        /// Pages (by index) that cannot be read.
        holes: Vec<usize>,
    }

    const PAGE: u64 = 0x1000;

    impl KernelMemory for Flat {
        fn read(&self, va: u64, buf: &mut [u8]) -> std::result::Result<(), String> {
            let start = va.checked_sub(self.base).ok_or("below")? as usize;
            let end = start + buf.len();
            let first = start / PAGE as usize;
            let last = (end - 1) / PAGE as usize;
            if (first..=last).any(|p| self.holes.contains(&p)) {
                return Err("hole".into());
            }
            buf.copy_from_slice(self.bytes.get(start..end).ok_or("past")?);
            Ok(())
        }
    }

    const L: IdleTaskLayout = IdleTaskLayout {
        comm: 0x100,
        pid: 0x20,
        tgid: 0x24,
        real_parent: 0x30,
        parent: 0x38,
        group_leader: 0x40,
        tasks: 0x50,
    };
    const BASE: u64 = 0xffff_8000_0800_0000;

    impl Flat {
        fn put(&mut self, va: u64, b: &[u8]) {
            let o = (va - self.base) as usize;
            self.bytes[o..o + b.len()].copy_from_slice(b);
        }
        fn ptr(&mut self, va: u64, v: u64) {
            self.put(va, &v.to_le_bytes());
        }
        /// A task at `t` named `comm`, with the given ids and family, its
        /// `tasks` linked to `next` and `prev`.
        fn task(&mut self, t: u64, comm: &[u8], pid: u32, family: u64, links: (u64, u64)) {
            self.put(t + L.comm, comm);
            self.put(t + L.pid, &pid.to_le_bytes());
            self.put(t + L.tgid, &pid.to_le_bytes());
            for off in [L.real_parent, L.parent, L.group_leader] {
                self.ptr(t + off, family);
            }
            self.ptr(t + L.tasks, links.0);
            self.ptr(t + L.tasks + 8, links.1);
        }
    }

    /// init at +0x5000, one process at +0x9000 on its list; a decoy named
    /// swapper/1 (pid 0, its own leader, but its list is only itself
    /// pointing to init's) at +0x3000.
    fn image() -> (Flat, u64) {
        let mut m = Flat {
            base: BASE,
            bytes: vec![0; 0x10000],
            holes: Vec::new(),
        };
        let (init, p1) = (BASE + 0x5000, BASE + 0x9000);
        let (ih, ph) = (init + L.tasks, p1 + L.tasks);
        m.task(init, b"swapper/0\0", 0, init, (ph, ph));
        m.task(p1, b"init\0", 1, p1, (ih, ih));
        let decoy = BASE + 0x3000;
        m.task(decoy, b"swapper/1\0", 0, decoy, (ih, ih));
        (m, init)
    }

    #[test]
    fn finds_the_idle_task_whose_list_closes() {
        let (m, init) = image();
        let f = search(&m, &L, BASE, BASE + 0x10000, PAGE).unwrap();
        assert_eq!((f.addr, f.comm_len), (init, 9));
    }

    #[test]
    fn skips_unreadable_pages() {
        let (mut m, init) = image();
        m.holes = vec![0, 1, 7];
        assert_eq!(
            search(&m, &L, BASE, BASE + 0x10000, PAGE).map(|f| f.addr),
            Some(init)
        );
    }

    #[test]
    fn rejects_a_task_that_is_not_its_own_leader_or_has_a_pid() {
        let (mut m, init) = image();
        m.ptr(init + L.group_leader, BASE + 0x9000);
        assert_eq!(search(&m, &L, BASE, BASE + 0x10000, PAGE), None);
        let (mut m, init) = image();
        m.put(init + L.pid, &1u32.to_le_bytes());
        assert_eq!(search(&m, &L, BASE, BASE + 0x10000, PAGE), None);
    }

    #[test]
    fn rejects_a_list_whose_prev_does_not_point_back() {
        let (mut m, _) = image();
        m.ptr(BASE + 0x9000 + L.tasks + 8, BASE + 0x100);
        assert_eq!(search(&m, &L, BASE, BASE + 0x10000, PAGE), None);
    }

    #[test]
    fn scan_sees_a_needle_across_chunks_and_skips_holes() {
        let mut m = Flat {
            base: BASE,
            bytes: vec![0; 3 * CHUNK as usize],
            holes: vec![3],
        };
        let across = BASE + CHUNK - 3;
        m.put(across, b"needle");
        m.put(BASE + 3 * PAGE + 8, b"needle");
        let hits = |m: &Flat| {
            let mut v = Vec::new();
            scan_image(m, BASE, BASE + 3 * CHUNK, PAGE, b"needle", |va, b| {
                assert!(b.starts_with(b"needle"));
                v.push(va);
                None::<()>
            });
            v.dedup();
            v
        };
        assert_eq!(hits(&m), [across]);
        m.holes.clear();
        assert_eq!(hits(&m), [BASE + 3 * PAGE + 8, across]);
    }

    #[test]
    fn idle_names() {
        assert_eq!(idle_comm(b"swapper/12\0"), Some(10));
        assert_eq!(idle_comm(b"swapper\0"), Some(7));
        assert_eq!(idle_comm(b"swapper/\0"), None);
        assert_eq!(idle_comm(b"swapper/1x"), None);
        assert_eq!(idle_comm(b"swapperx"), None);
    }
}
