//! Kernel tasks: enumeration from `init_task`, each task's state, address
//! space and saved registers. Layouts come from DWARF (never hard-coded
//! offsets), so other kernel versions work as long as the names exist; where
//! a member was renamed between versions, the alternatives are tried.

use crate::addr::{Arch, PageTableRoot, PhysAddr, VirtAddr};
use crate::kernel::Kernel;
use crate::kernel::dwarf::DebugInfo;
use crate::mmu::AddressSpace;

/// Upper bound on the tasks we walk: a corrupt list must not loop forever.
const MAX_TASKS: usize = 1 << 22;

/// `base + off` for a member of a structure at an address read from the
/// dump: an error naming both when it would leave the address space.
fn at(base: u64, off: u64) -> Result<u64, String> {
    base.checked_add(off)
        .ok_or_else(|| format!("member at {base:#x}+{off:#x} is past the address space"))
}

/// Member offsets needed to walk and describe tasks, resolved once.
#[derive(Clone, Debug)]
pub struct TaskLayout {
    tasks: u64,
    thread_group: Option<u64>,
    pid: u64,
    tgid: u64,
    comm: u64,
    mm: u64,
    active_mm: u64,
    stack: u64,
    state: u64,
    exit_state: Option<u64>,
    cpu: Option<u64>,
    flags: u64,
    real_parent: Option<u64>,
    mm_pgd: u64,
    /// x86_64: offset of thread.sp; arm64: of thread.cpu_context.
    switch_ctx: u64,
    /// x86_64 inactive_task_frame members (name, offset) and its size.
    frame: Vec<(String, u64)>,
    frame_size: u64,
    rq_curr: Option<u64>,
}

fn off(d: &DebugInfo, ty: &str, path: &str) -> Result<u64, String> {
    d.offset_of(ty, path).map_err(|e| e.to_string())
}

fn opt(d: &DebugInfo, ty: &str, path: &str) -> Option<u64> {
    d.try_offset_of(ty, path).ok().flatten()
}

impl TaskLayout {
    pub fn resolve(d: &DebugInfo, arch: Arch) -> Result<TaskLayout, String> {
        let t = "struct task_struct";
        // One scan for the whole set (absent names would cost a full pass).
        let switch_type = match arch {
            Arch::X86_64 => "inactive_task_frame",
            Arch::Aarch64 => "cpu_context",
        };
        let t0 = std::time::Instant::now();
        let _ = d.preload(&["task_struct", "mm_struct", switch_type]);
        log::debug!("task layouts preloaded in {:?}", t0.elapsed());
        let state = d
            .first_offset_of(t, &["__state", "state"])
            .map_err(|e| e.to_string())?
            .1;
        let (switch_ctx, frame, frame_size) = match arch {
            Arch::X86_64 => {
                let f = d
                    .layout("struct inactive_task_frame")
                    .map_err(|e| e.to_string())?;
                let members = f
                    .members
                    .iter()
                    .map(|m| (m.name.clone(), m.offset))
                    .collect();
                (off(d, t, "thread.sp")?, members, f.size)
            }
            Arch::Aarch64 => (off(d, t, "thread.cpu_context")?, Vec::new(), 0),
        };
        Ok(TaskLayout {
            tasks: off(d, t, "tasks")?,
            thread_group: opt(d, t, "thread_group"),
            pid: off(d, t, "pid")?,
            tgid: off(d, t, "tgid")?,
            comm: off(d, t, "comm")?,
            mm: off(d, t, "mm")?,
            active_mm: off(d, t, "active_mm")?,
            stack: off(d, t, "stack")?,
            state,
            exit_state: opt(d, t, "exit_state"),
            cpu: opt(d, t, "cpu").or_else(|| opt(d, t, "thread_info.cpu")),
            flags: off(d, t, "flags")?,
            real_parent: opt(d, t, "real_parent"),
            mm_pgd: off(d, "struct mm_struct", "pgd")?,
            switch_ctx,
            frame,
            frame_size,
            rq_curr: opt(d, "struct rq", "curr"),
        })
    }
}

/// One task as the dump recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    /// Address of the task_struct.
    pub addr: u64,
    pub pid: i32,
    pub tgid: i32,
    pub ppid: i32,
    pub comm: String,
    /// ps-style state letter (R S D T t X Z P I).
    pub state: char,
    pub mm: u64,
    pub active_mm: u64,
    pub stack: u64,
    pub cpu: Option<u32>,
    /// Kernel thread (PF_KTHREAD).
    pub kthread: bool,
}

/// `__state` / `exit_state` as ps prints it.
fn state_letter(state: u32, exit_state: u32) -> char {
    if exit_state & 0x20 != 0 {
        return 'Z';
    }
    if exit_state & 0x10 != 0 {
        return 'X';
    }
    match state {
        0 => 'R',
        s if s & 0x402 == 0x402 => 'I', // TASK_IDLE = UNINTERRUPTIBLE|NOLOAD
        s if s & 0x1 != 0 => 'S',
        s if s & 0x2 != 0 => 'D',
        s if s & 0x4 != 0 => 'T',
        s if s & 0x8 != 0 => 't',
        s if s & 0x40 != 0 => 'P',
        _ => '?',
    }
}

const PF_KTHREAD: u32 = 0x0020_0000;

/// Reads what we need of tasks; `layout` comes from DWARF.
pub struct TaskReader<'k> {
    pub kernel: &'k Kernel,
    pub layout: TaskLayout,
}

impl<'k> TaskReader<'k> {
    pub fn new(kernel: &'k Kernel) -> Result<Self, String> {
        let d = kernel
            .debug_info()
            .ok_or("task threads need the kernel's debug vmlinux (DWARF): pass --vmlinux")?;
        Ok(TaskReader {
            kernel,
            layout: TaskLayout::resolve(d, kernel.arch)?,
        })
    }

    fn u64_at(&self, va: u64) -> Result<u64, String> {
        self.kernel
            .read_u64(&self.kernel.kernel_space(), VirtAddr(va))
            .map_err(|e| e.to_string())
    }

    fn u32_at(&self, va: u64) -> Result<u32, String> {
        self.kernel
            .read_u32(&self.kernel.kernel_space(), VirtAddr(va))
            .map_err(|e| e.to_string())
    }

    /// Reads one task_struct's interesting fields.
    pub fn task(&self, addr: u64) -> Result<Task, String> {
        let l = &self.layout;
        let mut comm = [0u8; 16];
        self.kernel
            .read_virt(
                &self.kernel.kernel_space(),
                VirtAddr(at(addr, l.comm)?),
                &mut comm,
            )
            .map_err(|e| e.to_string())?;
        let end = comm.iter().position(|&c| c == 0).unwrap_or(16);
        let ppid = match l.real_parent {
            Some(o) => {
                let parent = self.u64_at(at(addr, o)?)?;
                at(parent, l.tgid)
                    .and_then(|a| self.u32_at(a))
                    .map(|v| v as i32)
                    .unwrap_or(0)
            }
            None => 0,
        };
        let exit_state = match l.exit_state {
            Some(o) => self.u32_at(at(addr, o)?)?,
            None => 0,
        };
        Ok(Task {
            addr,
            pid: self.u32_at(at(addr, l.pid)?)? as i32,
            tgid: self.u32_at(at(addr, l.tgid)?)? as i32,
            ppid,
            comm: String::from_utf8_lossy(&comm[..end]).into_owned(),
            state: state_letter(self.u32_at(at(addr, l.state)?)?, exit_state),
            mm: self.u64_at(at(addr, l.mm)?)?,
            active_mm: self.u64_at(at(addr, l.active_mm)?)?,
            stack: self.u64_at(at(addr, l.stack)?)?,
            cpu: match l.cpu {
                Some(o) => Some(self.u32_at(at(addr, o)?)?),
                None => None,
            },
            kthread: self.u32_at(at(addr, l.flags)?)? & PF_KTHREAD != 0,
        })
    }

    /// Follows a circular list of `list_head`s embedded at `link` in each
    /// element, starting after `head_elem`; returns element addresses. A
    /// corrupt list that loops back to an element already seen (not to the
    /// head) stops there with a warning: walking on would repeat the same
    /// elements up to MAX_TASKS times.
    fn walk(&self, head_elem: u64, link: u64, out: &mut Vec<u64>) -> Result<(), String> {
        let head = at(head_elem, link)?;
        let mut next = self.u64_at(head)?;
        let mut seen = std::collections::HashSet::new();
        while next != head {
            if seen.len() >= MAX_TASKS {
                return Err(format!(
                    "task list at {head:#x} does not close after {MAX_TASKS} entries"
                ));
            }
            if !seen.insert(next) {
                log::warn!(
                    "task list at {head:#x} loops back to {next:#x} after {} entries",
                    seen.len()
                );
                break;
            }
            let elem = next.checked_sub(link).ok_or_else(|| {
                format!("task list at {head:#x}: link {next:#x} is below its offset {link:#x}")
            })?;
            out.push(elem);
            next = self.u64_at(next)?;
        }
        Ok(())
    }

    /// `init_task` (CPU 0's idle task, PID 0), then each process on
    /// `init_task.tasks` followed by its other threads. The other CPUs' idle
    /// tasks are on no list; their CPU threads stand for them.
    pub fn all_tasks(&self) -> Result<Vec<Task>, String> {
        let init = self
            .kernel
            .symbol("init_task")
            .ok_or("symbol init_task not found")?
            .0;
        let mut leaders = vec![init];
        self.walk(init, self.layout.tasks, &mut leaders)?;
        let mut out = Vec::with_capacity(leaders.len());
        for leader in leaders {
            let t = match self.task(leader) {
                Ok(t) => t,
                Err(e) => {
                    log::warn!("task at {leader:#x}: {e}");
                    continue;
                }
            };
            out.push(t);
            if let Some(tg) = self.layout.thread_group {
                let mut threads = Vec::new();
                if let Err(e) = self.walk(leader, tg, &mut threads) {
                    log::warn!("threads of task {leader:#x}: {e}");
                }
                for th in threads {
                    match self.task(th) {
                        Ok(t) => out.push(t),
                        Err(e) => log::warn!("thread at {th:#x}: {e}"),
                    }
                }
            }
        }
        Ok(out)
    }

    /// The task each CPU was running (`runqueues.curr`), by CPU index.
    pub fn cpu_current(&self) -> Vec<Option<u64>> {
        let (Some(rq), Some(curr)) = (self.kernel.symbol("runqueues"), self.layout.rq_curr) else {
            return vec![None; self.kernel.cpus.len()];
        };
        (0..self.kernel.cpus.len())
            .map(|cpu| {
                let base = self.kernel.per_cpu_offset(cpu)?;
                self.u64_at(at(rq.0.wrapping_add(base), curr).ok()?).ok()
            })
            .collect()
    }

    /// The page tables a task's user memory goes through: its mm's pgd, or
    /// init_mm's for kernel threads.
    pub fn address_space(&self, task: &Task) -> AddressSpace {
        let kernel = self.kernel;
        let mm = if task.mm != 0 {
            task.mm
        } else {
            kernel.symbol("init_mm").map(|v| v.0).unwrap_or(0)
        };
        let user = (mm != 0)
            .then(|| self.u64_at(at(mm, self.layout.mm_pgd).ok()?).ok())
            .flatten()
            .and_then(|pgd| {
                kernel
                    .paging
                    .translate(
                        kernel.dump.memory.as_ref(),
                        &kernel.kernel_space(),
                        VirtAddr(pgd),
                        None,
                    )
                    .ok()
            })
            .map(|t| PageTableRoot(PhysAddr(t.pa.0)));
        AddressSpace {
            kernel: kernel.kernel_root,
            user,
        }
    }

    /// Registers saved at the task's last context switch, by name
    /// (x86_64: rbx rbp r12-r15 rip rsp; arm64: x19-x28 x29 sp pc).
    pub fn switch_registers(&self, task: &Task) -> Result<Vec<(&'static str, u64)>, String> {
        let l = &self.layout;
        match self.kernel.arch {
            Arch::X86_64 => {
                let sp = self.u64_at(at(task.addr, l.switch_ctx)?)?;
                let mut regs = vec![("rsp", at(sp, l.frame_size)?)];
                for (name, o) in &l.frame {
                    let reg = match name.as_str() {
                        "r15" => "r15",
                        "r14" => "r14",
                        "r13" => "r13",
                        "r12" => "r12",
                        "bx" => "rbx",
                        "bp" => "rbp",
                        "ret_addr" => "rip",
                        _ => continue,
                    };
                    regs.push((reg, self.u64_at(at(sp, *o)?)?));
                }
                Ok(regs)
            }
            Arch::Aarch64 => {
                // struct cpu_context { x19..x28, fp, sp, pc }
                const NAMES: [&str; 13] = [
                    "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", "x29",
                    "sp", "pc",
                ];
                let base = at(task.addr, l.switch_ctx)?;
                NAMES
                    .iter()
                    .enumerate()
                    .map(|(i, n)| Ok((*n, self.u64_at(at(base, 8 * i as u64)?)?)))
                    .collect()
            }
        }
    }
}
