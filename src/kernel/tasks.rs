//! Kernel tasks, built on the typed views of [`crate::kernel::objects`]:
//! the task list (processes, threads and every CPU's idle task), each
//! task's address space, and the registers saved at its last switch.

use crate::addr::{Arch, PageTableRoot, PhysAddr, VirtAddr};
use crate::kernel::objects::Member;
use crate::kernel::objects::mm::MmView;
use crate::kernel::objects::runqueue::{CpuRq, runqueues};
use crate::kernel::objects::task::{TaskList, TaskView};
use crate::kernel::{Kernel, KernelError};
use crate::mmu::AddressSpace;

pub use crate::kernel::objects::task::Task;

/// GDB thread id of a task: this plus its PID (PIDs are below 2^22; CPU
/// threads are 1..=CPUs). The one definition: the GDB scripts learn each
/// task's id from `monitor ps --json`.
pub const TASK_TID_BASE: usize = 1_000_000;

/// Reads tasks with the layouts the [`Kernel`] resolved once.
pub struct TaskReader<'k> {
    pub kernel: &'k Kernel,
    pub view: TaskView<'k>,
}

impl<'k> TaskReader<'k> {
    pub fn new(kernel: &'k Kernel) -> Result<Self, KernelError> {
        Ok(TaskReader {
            kernel,
            view: TaskView::new(kernel)?,
        })
    }

    /// One task_struct.
    pub fn task(&self, addr: VirtAddr) -> Result<Task, KernelError> {
        self.view.read(addr)
    }

    /// `init_task` (CPU 0's idle task, PID 0), then each process on
    /// `init_task.tasks` followed by its other threads; what could not be
    /// read is logged and left out. The other CPUs' idle tasks are on no
    /// list: see [`TaskReader::with_idle_tasks`].
    pub fn all_tasks(&self) -> Result<Vec<Task>, KernelError> {
        let init = self.kernel.init_task()?;
        let TaskList { tasks, problems } = self.view.list(init)?;
        for p in problems {
            log::warn!("task list: {p}");
        }
        Ok(tasks)
    }

    /// [`TaskReader::all_tasks`] plus the idle task of each other CPU
    /// (`rq->idle`), as crash's `ps` lists them.
    pub fn with_idle_tasks(&self) -> Result<Vec<Task>, KernelError> {
        let mut tasks = self.all_tasks()?;
        let rqs = match runqueues(self.kernel) {
            Ok(r) => r,
            Err(e) => {
                log::warn!("idle tasks: {e}");
                return Ok(tasks);
            }
        };
        for rq in rqs.iter().skip(1) {
            match &rq.idle {
                Ok(idle) if idle.0 != 0 && !tasks.iter().any(|t| t.addr == *idle) => {
                    match self.task(*idle) {
                        Ok(t) => tasks.push(t),
                        Err(e) => log::warn!("idle task of CPU {}: {e}", rq.cpu),
                    }
                }
                Ok(_) => {}
                Err(e) => log::warn!("runqueue of CPU {}: {e}", rq.cpu),
            }
        }
        Ok(tasks)
    }

    /// The task each CPU was running (`rq->curr`), by CPU index.
    pub fn cpu_current(&self) -> Vec<Option<VirtAddr>> {
        match runqueues(self.kernel) {
            Ok(rqs) => rqs
                .into_iter()
                .map(|CpuRq { curr, .. }| curr.ok().filter(|a| a.0 != 0))
                .collect(),
            Err(_) => vec![None; self.kernel.cpus.len()],
        }
    }

    /// The page tables a task's user memory goes through: its mm's pgd, or
    /// init_mm's for kernel threads. No user half when unreadable.
    pub fn address_space(&self, task: &Task) -> AddressSpace {
        let kernel = self.kernel;
        let mm = if task.mm.0 != 0 {
            Some(task.mm)
        } else {
            kernel.symbol("init_mm")
        };
        let user = mm
            .and_then(|mm| MmView::new(kernel).ok()?.read(mm).ok())
            .and_then(|info| {
                kernel
                    .paging
                    .translate(
                        kernel.dump.memory.as_ref(),
                        &kernel.kernel_space(),
                        info.pgd,
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

    /// The registers a switch frame of type `ty` at `base` saves (the
    /// layout's frame members this architecture names).
    fn frame_registers(
        &self,
        ty: &'static str,
        base: VirtAddr,
    ) -> Result<Vec<(&'static str, u64)>, KernelError> {
        let k = self.kernel;
        let mut regs = Vec::new();
        for (name, o) in &self.view.layout.frame {
            if let Some((path, reg)) = frame_register(k.arch, name) {
                let m = Member {
                    ty,
                    path,
                    offset: *o,
                };
                regs.push((reg, m.ulong(k, base)?));
            }
        }
        Ok(regs)
    }

    /// Registers saved at the task's last context switch, by name
    /// (x86_64: rbx rbp r12-r15 rip rsp; i386: eflags esi edi ebx ebp eip
    /// esp; arm64: x19-x28 x29 sp pc; arm: r4-r11 sp pc).
    pub fn switch_registers(&self, task: &Task) -> Result<Vec<(&'static str, u64)>, KernelError> {
        let l = self.view.layout;
        let k = self.kernel;
        match k.arch {
            Arch::X86_64 | Arch::I386 => {
                let sp = l.switch_ctx.ptr(k, task.addr)?;
                let top = sp.checked_add(l.frame_size).ok_or(KernelError::Overflow {
                    member: "thread.sp".into(),
                    base: sp,
                    op: '+',
                    offset: l.frame_size,
                })?;
                let i386 = k.arch == Arch::I386;
                let mut regs = vec![(if i386 { "esp" } else { "rsp" }, top.0)];
                regs.extend(self.frame_registers("inactive_task_frame", sp)?);
                Ok(regs)
            }
            Arch::Arm => {
                // struct cpu_context_save { r4..r9, sl, fp, sp, pc, extra[2] }
                let ctx = l.switch_ctx.at(task.addr)?;
                self.frame_registers("cpu_context_save", ctx)
            }
            Arch::Aarch64 => {
                // struct cpu_context { x19..x28, fp, sp, pc }
                const NAMES: [&str; 13] = [
                    "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", "fp",
                    "sp", "pc",
                ];
                NAMES
                    .iter()
                    .enumerate()
                    .map(|(i, n)| {
                        let m = Member {
                            ty: "cpu_context",
                            path: n,
                            offset: l.switch_ctx.offset + 8 * i as u64,
                        };
                        let reg = if *n == "fp" { "x29" } else { *n };
                        Ok((reg, m.u64(k, task.addr)?))
                    })
                    .collect()
            }
        }
    }
}

/// The switch-frame member called `member` (its name as a static string,
/// for errors) and the register it holds: x86_64 `inactive_task_frame`
/// r15..r12, bx, bp, ret_addr; i386 flags, si, di, bx, bp, ret_addr; arm
/// `cpu_context_save` r4..r9, sl (r10), fp (r11), sp, pc. Other members
/// (padding, arm's `extra[]`) hold none.
fn frame_register(arch: Arch, member: &str) -> Option<(&'static str, &'static str)> {
    Some(match (arch, member) {
        (Arch::X86_64, "r15") => ("r15", "r15"),
        (Arch::X86_64, "r14") => ("r14", "r14"),
        (Arch::X86_64, "r13") => ("r13", "r13"),
        (Arch::X86_64, "r12") => ("r12", "r12"),
        (Arch::X86_64, "bx") => ("bx", "rbx"),
        (Arch::X86_64, "bp") => ("bp", "rbp"),
        (Arch::X86_64, "ret_addr") => ("ret_addr", "rip"),
        (Arch::I386, "flags") => ("flags", "eflags"),
        (Arch::I386, "si") => ("si", "esi"),
        (Arch::I386, "di") => ("di", "edi"),
        (Arch::I386, "bx") => ("bx", "ebx"),
        (Arch::I386, "bp") => ("bp", "ebp"),
        (Arch::I386, "ret_addr") => ("ret_addr", "eip"),
        (Arch::Arm, "r4") => ("r4", "r4"),
        (Arch::Arm, "r5") => ("r5", "r5"),
        (Arch::Arm, "r6") => ("r6", "r6"),
        (Arch::Arm, "r7") => ("r7", "r7"),
        (Arch::Arm, "r8") => ("r8", "r8"),
        (Arch::Arm, "r9") => ("r9", "r9"),
        (Arch::Arm, "sl") => ("sl", "r10"),
        (Arch::Arm, "fp") => ("fp", "r11"),
        (Arch::Arm, "sp") => ("sp", "sp"),
        (Arch::Arm, "pc") => ("pc", "pc"),
        _ => return None,
    })
}
