//! `struct task_struct`: its layout (DWARF; VMCOREINFO exports none of
//! it), one task's fields, and the kernel's circular task lists walked with
//! a stop at the first repeated element.

use std::collections::HashSet;

use super::{KernelError, Member, Result, c_string, first_member, member, optional_member};
use crate::addr::{Arch, VirtAddr};
use crate::kernel::Kernel;

/// Upper bound on the elements of one list: even a list that never repeats
/// (fresh garbage at every step) must end.
pub const MAX_LIST: usize = 1 << 22;

/// `PF_KTHREAD` (include/linux/sched.h; unchanged since 2.6.27).
const PF_KTHREAD: u32 = 0x0020_0000;

const T: &str = "task_struct";

/// The members of `struct task_struct` the views read, resolved once.
#[derive(Clone, Debug)]
pub struct TaskLayout {
    pub tasks: Member,
    /// `signal->thread_head` / `thread_node` (3.14+; the only thread list
    /// since 6.7), else the older `thread_group`.
    pub threads: ThreadLinks,
    pub pid: Member,
    pub tgid: Member,
    pub comm: Member,
    pub comm_len: usize,
    pub mm: Member,
    pub active_mm: Member,
    pub stack: Member,
    pub state: Member,
    pub exit_state: Option<Member>,
    pub cpu: Option<Member>,
    /// `on_cpu` (SMP kernels): set from just before a task is switched in
    /// until its switch-out has finished saving its frame.
    pub on_cpu: Option<Member>,
    pub flags: Member,
    pub real_parent: Option<Member>,
    /// Before 6.2 (SPLIT_RSS_COUNTING): `rss_stat.count[]`, per-thread RSS
    /// not yet folded into the mm (int each).
    pub rss_stat_count: Option<Member>,
    /// x86_64, i386: `thread.sp`; arm64: `thread.cpu_context`; arm:
    /// `thread_info.cpu_context`.
    pub switch_ctx: Member,
    /// x86 `struct inactive_task_frame` / arm `struct cpu_context_save`
    /// members (name, offset) and size.
    pub frame: Vec<(String, u64)>,
    pub frame_size: u64,
}

/// How a process's threads are linked.
#[derive(Clone, Copy, Debug)]
pub enum ThreadLinks {
    /// `task->signal->thread_head`, elements linked by `task->thread_node`
    /// (the group leader is on it too).
    Signal {
        signal: Member,
        thread_head: Member,
        thread_node: Member,
    },
    /// `leader->thread_group`, the other threads linked by `thread_group`.
    ThreadGroup(Member),
    None,
}

impl TaskLayout {
    pub fn resolve(k: &Kernel) -> Result<TaskLayout> {
        let switch_type = match k.arch {
            Arch::X86_64 | Arch::I386 => "inactive_task_frame",
            Arch::Aarch64 => "cpu_context",
            Arch::Arm => "cpu_context_save",
        };
        // One scan of the DWARF for the whole set (absent names would each
        // cost a full pass).
        let d = super::debug_info(k, "struct task_struct")?;
        let _ = d.preload(&["task_struct", "mm_struct", "signal_struct", switch_type]);
        let frame_of = |ty: &str| -> Result<(Vec<(String, u64)>, u64)> {
            let f = d.layout(ty).map_err(|e| super::layout_error(ty, e))?;
            let members = f
                .members
                .iter()
                .map(|m| (m.name.clone(), m.offset))
                .collect();
            Ok((members, f.size))
        };
        let (switch_ctx, frame, frame_size) = match k.arch {
            Arch::X86_64 | Arch::I386 => {
                let (members, size) = frame_of("struct inactive_task_frame")?;
                (member(k, T, "thread.sp")?, members, size)
            }
            Arch::Aarch64 => (member(k, T, "thread.cpu_context")?, Vec::new(), 0),
            // THREAD_INFO_IN_TASK (5.18+ on SMP ARMv7): thread_info is the
            // task's first member, its cpu_context the switch frame
            Arch::Arm => {
                let (members, size) = frame_of("struct cpu_context_save")?;
                (member(k, T, "thread_info.cpu_context")?, members, size)
            }
        };
        let threads = match (
            optional_member(k, T, "signal")?,
            optional_member(k, "signal_struct", "thread_head")?,
            optional_member(k, T, "thread_node")?,
        ) {
            (Some(signal), Some(thread_head), Some(thread_node)) => ThreadLinks::Signal {
                signal,
                thread_head,
                thread_node,
            },
            _ => optional_member(k, T, "thread_group")?
                .map_or(ThreadLinks::None, ThreadLinks::ThreadGroup),
        };
        let comm = member(k, T, "comm")?;
        let comm_len = d
            .field(T, "comm")
            .ok()
            .and_then(|f| f.size)
            .unwrap_or(16)
            .min(64) as usize;
        Ok(TaskLayout {
            tasks: member(k, T, "tasks")?,
            threads,
            pid: member(k, T, "pid")?,
            tgid: member(k, T, "tgid")?,
            comm,
            comm_len,
            mm: member(k, T, "mm")?,
            active_mm: member(k, T, "active_mm")?,
            stack: member(k, T, "stack")?,
            state: first_member(k, T, &["__state", "state"])?,
            exit_state: optional_member(k, T, "exit_state")?,
            cpu: match optional_member(k, T, "cpu")? {
                Some(m) => Some(m),
                None => optional_member(k, T, "thread_info.cpu")?,
            },
            on_cpu: optional_member(k, T, "on_cpu")?,
            flags: member(k, T, "flags")?,
            real_parent: optional_member(k, T, "real_parent")?,
            rss_stat_count: optional_member(k, T, "rss_stat.count")?,
            switch_ctx,
            frame,
            frame_size,
        })
    }
}

/// One task as the dump recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    /// Address of the task_struct.
    pub addr: VirtAddr,
    pub pid: i32,
    pub tgid: i32,
    /// The parent's tgid (0 for idle tasks and when unreadable).
    pub ppid: i32,
    pub comm: String,
    /// `__state` (`state` before 5.14) and `exit_state`, raw.
    pub state_bits: u32,
    pub exit_state: u32,
    /// ps-style state letter from the kernel's own `task_state_array`.
    pub state: char,
    pub mm: VirtAddr,
    pub active_mm: VirtAddr,
    pub stack: VirtAddr,
    pub cpu: Option<u32>,
    /// `on_cpu != 0`: running, or in the middle of a context switch (its
    /// switch frame is not settled); false where the kernel has no on_cpu.
    pub on_cpu: bool,
    /// Kernel thread (PF_KTHREAD).
    pub kthread: bool,
}

/// Reads task_structs with a resolved layout.
#[derive(Clone, Copy)]
pub struct TaskView<'k> {
    pub kernel: &'k Kernel,
    pub layout: &'k TaskLayout,
}

impl<'k> TaskView<'k> {
    pub fn new(kernel: &'k Kernel) -> Result<Self> {
        Ok(TaskView {
            kernel,
            layout: kernel.task_layout()?,
        })
    }

    /// Reads one task_struct's interesting fields.
    pub fn read(&self, addr: VirtAddr) -> Result<Task> {
        let (k, l) = (self.kernel, self.layout);
        let comm_at = l.comm.at(addr)?;
        let mut comm = vec![0u8; l.comm_len];
        k.read_virt(&k.kernel_space(), comm_at, &mut comm)
            .map_err(|source| KernelError::Read {
                member: l.comm.to_string(),
                addr: comm_at,
                source,
            })?;
        let ppid = match l.real_parent {
            Some(m) => {
                let parent = m.ptr(k, addr)?;
                // a parent we cannot read is reported as 0, as crash does
                l.tgid.u32(k, parent).map(|v| v as i32).unwrap_or(0)
            }
            None => 0,
        };
        let exit_state = match l.exit_state {
            Some(m) => m.u32(k, addr)?,
            None => 0,
        };
        let state_bits = l.state.u32(k, addr)?;
        let state = match k.task_states() {
            Ok(s) => s.letter(state_bits, exit_state),
            Err(_) => '?',
        };
        Ok(Task {
            addr,
            pid: l.pid.u32(k, addr)? as i32,
            tgid: l.tgid.u32(k, addr)? as i32,
            ppid,
            comm: c_string(&comm),
            state_bits,
            exit_state,
            state,
            mm: l.mm.ptr(k, addr)?,
            active_mm: l.active_mm.ptr(k, addr)?,
            stack: l.stack.ptr(k, addr)?,
            cpu: l.cpu.map(|m| m.u32(k, addr)).transpose()?,
            on_cpu: l
                .on_cpu
                .map(|m| m.u32(k, addr))
                .transpose()?
                .is_some_and(|v| v != 0),
            kthread: l.flags.u32(k, addr)? & PF_KTHREAD != 0,
        })
    }

    /// The processes on `init_task.tasks`, each followed by its other
    /// threads; `init_task` itself first. Each task appears once: a list
    /// that repeats an element stops there (a corrupt list must not cost
    /// millions of reads), and the reason is in [`TaskList::problems`].
    pub fn list(&self, init: VirtAddr) -> Result<TaskList> {
        let l = self.layout;
        let k = self.kernel;
        let mut out = TaskList::default();
        let mut seen = HashSet::new();
        let next = |link: VirtAddr| -> Result<VirtAddr> {
            Member {
                ty: "list_head",
                path: "next",
                offset: 0,
            }
            .ptr(k, link)
        };
        let leaders = walk_list(l.tasks.at(init)?, next, "task_struct.tasks");
        if let Some(p) = leaders.stopped {
            out.problems.push(p);
        }
        let leaders =
            std::iter::once(Ok(init)).chain(leaders.links.iter().map(|&a| l.tasks.container_of(a)));
        for leader in leaders {
            let leader = match leader {
                Ok(a) => a,
                Err(e) => {
                    out.problems.push(e);
                    continue;
                }
            };
            self.push(leader, &mut seen, &mut out);
            let threads = match self.thread_links(leader) {
                Ok(t) => t,
                Err(e) => {
                    out.problems.push(e);
                    continue;
                }
            };
            for th in threads {
                self.push(th, &mut seen, &mut out);
            }
        }
        Ok(out)
    }

    fn push(&self, addr: VirtAddr, seen: &mut HashSet<VirtAddr>, out: &mut TaskList) {
        if !seen.insert(addr) {
            return;
        }
        match self.read(addr) {
            Ok(t) => out.tasks.push(t),
            Err(e) => out.problems.push(e),
        }
    }

    /// The other threads of the process `leader` leads.
    fn thread_links(&self, leader: VirtAddr) -> Result<Vec<VirtAddr>> {
        let k = self.kernel;
        let next = |link: VirtAddr| -> Result<VirtAddr> {
            Member {
                ty: "list_head",
                path: "next",
                offset: 0,
            }
            .ptr(k, link)
        };
        let (walk, link) = match self.layout.threads {
            ThreadLinks::Signal {
                signal,
                thread_head,
                thread_node,
            } => {
                let sig = signal.ptr(k, leader)?;
                if sig.0 == 0 {
                    return Ok(Vec::new());
                }
                (
                    walk_list(thread_head.at(sig)?, next, "signal_struct.thread_head"),
                    thread_node,
                )
            }
            ThreadLinks::ThreadGroup(m) => (
                walk_list(m.at(leader)?, next, "task_struct.thread_group"),
                m,
            ),
            ThreadLinks::None => return Ok(Vec::new()),
        };
        if let Some(p) = walk.stopped {
            log::warn!("threads of task {leader}: {p}");
        }
        walk.links
            .iter()
            .map(|&a| link.container_of(a))
            .filter(|a| a.as_ref().is_ok_and(|a| *a != leader) || a.is_err())
            .collect()
    }
}

/// Tasks read from the lists, and what stopped a walk or a read.
#[derive(Debug, Default)]
pub struct TaskList {
    pub tasks: Vec<Task>,
    pub problems: Vec<KernelError>,
}

/// The elements of a circular `list_head` list: the link addresses after
/// `head` until `head` comes back.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ListWalk {
    pub links: Vec<VirtAddr>,
    /// Why the walk ended before coming back to the head, if it did.
    pub stopped: Option<KernelError>,
}

/// Follows `next` from `head`. Stops at the head (a well-formed list), at
/// the first link seen twice (a cycle that skips the head: every element
/// would otherwise be read again and again), at a NULL, at a read error,
/// or after [`MAX_LIST`] links.
pub fn walk_list(
    head: VirtAddr,
    mut next: impl FnMut(VirtAddr) -> Result<VirtAddr>,
    what: &str,
) -> ListWalk {
    let mut out = ListWalk::default();
    let mut seen = HashSet::new();
    let mut cur = head;
    loop {
        let n = match next(cur) {
            Ok(n) => n,
            Err(e) => {
                out.stopped = Some(e);
                return out;
            }
        };
        let problem = if n == head {
            return out;
        } else if n.0 == 0 {
            "a NULL next pointer"
        } else if !seen.insert(n) {
            "an element repeats (the list loops without reaching its head)"
        } else if out.links.len() >= MAX_LIST {
            "no end after the most elements a kernel can have"
        } else {
            out.links.push(n);
            cur = n;
            continue;
        };
        out.stopped = Some(KernelError::Corrupt {
            what: format!("{what} list headed"),
            addr: head,
            reason: format!(
                "stopped after {} elements: {problem} at {cur}",
                out.links.len()
            ),
        });
        return out;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn walk(mem: &HashMap<u64, u64>, head: u64) -> (ListWalk, usize) {
        let mut reads = 0;
        let w = walk_list(
            VirtAddr(head),
            |a| {
                reads += 1;
                mem.get(&a.0)
                    .map(|&n| VirtAddr(n))
                    .ok_or(KernelError::Corrupt {
                        what: "test".into(),
                        addr: a,
                        reason: "unmapped".into(),
                    })
            },
            "test",
        );
        (w, reads)
    }

    #[test]
    fn a_closed_list_ends_at_its_head() {
        let mem = HashMap::from([(0x100, 0x200), (0x200, 0x300), (0x300, 0x100)]);
        let (w, reads) = walk(&mem, 0x100);
        assert_eq!(w.links, vec![VirtAddr(0x200), VirtAddr(0x300)]);
        assert!(w.stopped.is_none());
        assert_eq!(reads, 3);
    }

    #[test]
    fn a_loop_that_skips_the_head_stops_at_the_first_repeat() {
        // head -> a -> b -> c -> a -> ...: each element read once
        let mem = HashMap::from([(0x100, 0xa0), (0xa0, 0xb0), (0xb0, 0xc0), (0xc0, 0xa0)]);
        let (w, reads) = walk(&mem, 0x100);
        assert_eq!(
            w.links,
            vec![VirtAddr(0xa0), VirtAddr(0xb0), VirtAddr(0xc0)]
        );
        assert_eq!(reads, 4, "one read per element, then the repeat");
        let e = w.stopped.unwrap().to_string();
        assert!(e.contains("repeats") && e.contains("0x100"), "{e}");
    }

    #[test]
    fn null_and_unreadable_links_stop_with_a_reason() {
        let mem = HashMap::from([(0x100, 0xa0), (0xa0, 0)]);
        let (w, _) = walk(&mem, 0x100);
        assert_eq!(w.links, vec![VirtAddr(0xa0)]);
        assert!(w.stopped.unwrap().to_string().contains("NULL"));
        let mem = HashMap::from([(0x100, 0xa0)]);
        let (w, _) = walk(&mem, 0x100);
        assert!(w.stopped.unwrap().to_string().contains("unmapped"));
    }

    #[test]
    fn container_of_a_corrupt_pointer_is_an_error() {
        let m = Member {
            ty: "task_struct",
            path: "tasks",
            offset: 0x4a8,
        };
        assert_eq!(m.container_of(VirtAddr(0x1000)), Ok(VirtAddr(0xb58)));
        let e = m.container_of(VirtAddr(0x10)).unwrap_err().to_string();
        assert!(e.contains("task_struct.tasks") && e.contains("0x10"), "{e}");
        assert!(m.at(VirtAddr(u64::MAX)).is_err());
    }
}
