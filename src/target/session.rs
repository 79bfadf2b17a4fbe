//! A dump being served: the kernel plus what every connection shares —
//! the panicking CPU, the task each CPU ran, and the thread table.
//!
//! Thread ids: CPU N is thread N+1, listed first and in CPU order (the
//! kernel's scripts/gdb map GDB thread N to CPU N-1). Task threads follow,
//! with id TASK_TID_BASE + PID, so ids are stable across sessions.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::OnceLock;

use crate::kernel::Kernel;
pub use crate::kernel::tasks::TASK_TID_BASE;
use crate::kernel::tasks::{Task, TaskReader};
use crate::mmu::AddressSpace;

/// Label suffix of a thread on a CPU that has no saved registers (the
/// running kernel): its registers are its last switch frame, not where it
/// is now (drgn marks these the same way).
pub const RUNNING: &str = " [running]";

/// Which threads GDB sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadMode {
    /// One thread per CPU only.
    Cpus,
    /// One thread per CPU, then one per task.
    All,
}

/// What a thread id stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadRef {
    Cpu(usize),
    Task(usize),
}

/// A task shown as a thread.
#[derive(Clone, Debug)]
pub struct TaskThread {
    pub task: Task,
    pub space: AddressSpace,
    /// The CPU it was running on at crash time (gets that CPU's registers).
    pub running_on: Option<usize>,
    /// Registers from its last context switch (by name), or why not.
    pub switch_regs: Result<Vec<(&'static str, u64)>, String>,
}

pub struct ThreadTable {
    pub order: Vec<(usize, ThreadRef)>,
    by_tid: HashMap<usize, ThreadRef>,
}

impl ThreadTable {
    /// CPU threads 1..=`cpus`, then one thread per task PID in list order.
    /// A corrupt list can repeat a PID: the first task keeps the id, so the
    /// thread list and what `g`/`m` read for that id agree.
    fn new(cpus: usize, pids: impl Iterator<Item = i32>) -> ThreadTable {
        let mut order: Vec<(usize, ThreadRef)> =
            (0..cpus).map(|i| (i + 1, ThreadRef::Cpu(i))).collect();
        let mut by_tid: HashMap<usize, ThreadRef> = order.iter().copied().collect();
        for (j, pid) in pids.enumerate() {
            let tid = TASK_TID_BASE + pid.max(0) as usize;
            if let Entry::Vacant(slot) = by_tid.entry(tid) {
                slot.insert(ThreadRef::Task(j));
                order.push((tid, ThreadRef::Task(j)));
            }
        }
        ThreadTable { order, by_tid }
    }

    pub fn get(&self, tid: usize) -> Option<ThreadRef> {
        self.by_tid.get(&tid).copied()
    }
}

/// What each CPU was running; needs DWARF, so computed on first use (GDB
/// expects the first packets answered within its remote timeout).
pub struct CpuTasks {
    /// The task each CPU was running, when task support is available.
    pub tasks: Vec<Option<Task>>,
    /// Each CPU's address space: kernel root + the user root of the task it
    /// ran (QEMU dumps: the CPU's own CR3).
    pub spaces: Vec<AddressSpace>,
    /// Why task threads are unavailable, if they are.
    pub error: Option<String>,
}

pub struct Session {
    pub kernel: Kernel,
    pub panic_cpu: Option<usize>,
    pub mode: ThreadMode,
    cpu: OnceLock<CpuTasks>,
    tasks: OnceLock<Vec<TaskThread>>,
    table: OnceLock<ThreadTable>,
}

impl Session {
    pub fn new(kernel: Kernel, mode: ThreadMode) -> Session {
        Session {
            panic_cpu: kernel.panic_cpu(),
            kernel,
            mode,
            cpu: OnceLock::new(),
            tasks: OnceLock::new(),
            table: OnceLock::new(),
        }
    }

    pub fn cpu_state(&self) -> &CpuTasks {
        self.cpu.get_or_init(|| {
            let kernel = &self.kernel;
            let mut spaces: Vec<AddressSpace> = kernel.cpus.iter().map(|c| c.space).collect();
            let mut tasks = vec![None; kernel.cpus.len()];
            let mut error = None;
            match TaskReader::new(kernel) {
                Ok(r) => {
                    for (i, cur) in r.cpu_current().into_iter().enumerate() {
                        let Some(t) = cur.and_then(|a| r.task(a).ok()) else {
                            continue;
                        };
                        if spaces[i].user.is_none() {
                            spaces[i].user = r.address_space(&t).user;
                        }
                        tasks[i] = Some(t);
                    }
                }
                Err(e) => error = Some(e.to_string()),
            }
            CpuTasks {
                tasks,
                spaces,
                error,
            }
        })
    }

    /// `info threads` text for CPU `i`, e.g. "CPU 2 sh/161 [panic]".
    pub fn cpu_label(&self, i: usize) -> String {
        let mut s = format!("CPU {i}");
        match self.cpu_state().tasks.get(i).and_then(Option::as_ref) {
            Some(t) if t.pid == 0 => s.push_str(" idle"),
            Some(t) => s.push_str(&format!(" {}/{}", t.comm, t.pid)),
            // without DWARF: kdump notes carry the PID (QEMU's carry vCPU+1)
            None if self.kernel.notes_carry_pids() => match self.kernel.cpus[i].note_pid {
                0 => s.push_str(" idle"),
                pid => s.push_str(&format!(" pid {pid}")),
            },
            None => {}
        }
        if Some(i) == self.panic_cpu {
            s.push_str(" [panic]");
        }
        if !self.cpu_has_registers(i) && self.cpu_state().tasks.get(i).is_some_and(Option::is_some)
        {
            s.push_str(RUNNING);
        }
        s
    }

    /// True if `task` is on a CPU whose registers were not saved (the
    /// running kernel): the CPU's `rq->curr` (`running_on`), or flagged
    /// `on_cpu` (also mid-switch, its frame not settled) on a CPU we know.
    fn on_cpu_without_registers(&self, task: &Task, running_on: Option<usize>) -> bool {
        let flagged = task
            .cpu
            .map(|c| c as usize)
            .filter(|&c| task.on_cpu && c < self.kernel.cpus.len());
        running_on
            .or(flagged)
            .is_some_and(|cpu| !self.cpu_has_registers(cpu))
    }

    /// True if CPU `i`'s registers were saved (dump notes, QMP); false on
    /// the running kernel, whose CPUs are busy: their threads then show the
    /// current task's last switch frame.
    pub fn cpu_has_registers(&self, i: usize) -> bool {
        self.kernel.cpus.get(i).is_some_and(|c| !c.regs.is_empty())
    }

    /// Every task (idle tasks excepted), read on first use and kept.
    pub fn tasks(&self) -> &[TaskThread] {
        self.tasks.get_or_init(|| {
            if self.mode == ThreadMode::Cpus {
                return Vec::new();
            }
            let Ok(r) = TaskReader::new(&self.kernel) else {
                return Vec::new();
            };
            let tasks = match r.all_tasks() {
                Ok(t) => t,
                Err(e) => {
                    log::warn!("cannot list tasks: {e}");
                    return Vec::new();
                }
            };
            tasks
                .into_iter()
                .map(|task| {
                    let running_on = self
                        .cpu_state()
                        .tasks
                        .iter()
                        .position(|c| c.as_ref().is_some_and(|c| c.addr == task.addr));
                    let space = r.address_space(&task);
                    let switch_regs = r.switch_registers(&task).map_err(|e| e.to_string());
                    TaskThread {
                        task,
                        space,
                        running_on,
                        switch_regs,
                    }
                })
                .collect()
        })
    }

    /// The thread list in GDB order: CPUs, then tasks by list order.
    pub fn threads(&self) -> &ThreadTable {
        self.table.get_or_init(|| {
            ThreadTable::new(
                self.kernel.cpus.len(),
                self.tasks().iter().map(|t| t.task.pid),
            )
        })
    }

    /// `info threads` text for a task thread.
    pub fn task_label(&self, j: usize) -> String {
        let Some(t) = self.tasks().get(j) else {
            return String::new();
        };
        let mut flags = vec![t.task.state.to_string()];
        if let Some(cpu) = t.running_on {
            flags.push(format!("CPU {cpu}"));
            if Some(cpu) == self.panic_cpu {
                flags.push("panic".into());
            }
        }
        let running = if self.on_cpu_without_registers(&t.task, t.running_on) {
            RUNNING
        } else {
            ""
        };
        format!(
            "pid {} {} [{}]{running}",
            t.task.pid,
            t.task.comm,
            flags.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_pid_keeps_the_first_task() {
        // tasks 0..4 with PIDs 1, 7, 1 (a corrupt list repeating PID 1), 9
        let t = ThreadTable::new(2, [1, 7, 1, 9].into_iter());
        let tid = |pid: usize| TASK_TID_BASE + pid;
        assert_eq!(
            t.order,
            vec![
                (1, ThreadRef::Cpu(0)),
                (2, ThreadRef::Cpu(1)),
                (tid(1), ThreadRef::Task(0)),
                (tid(7), ThreadRef::Task(1)),
                (tid(9), ThreadRef::Task(3)),
            ]
        );
        // every listed id resolves to the entry the list shows
        for &(id, r) in &t.order {
            assert_eq!(t.get(id), Some(r), "thread {id}");
        }
        assert_eq!(t.get(tid(2)), None);
    }
}
