//! The per-CPU runqueues (`struct rq runqueues`): the task each CPU was
//! running (`curr`) and its idle task (`idle`). The one runqueue walk.
//!
//! Each CPU's runqueue is `runqueues` plus the CPU's `__per_cpu_offset`
//! entry. When no symbol names them (kallsyms of functions only, as on
//! Debian's arm64 cloud kernels), it is found from the CPU's tasks: with
//! CONFIG_FAIR_GROUP_SCHED a task's `se.cfs_rq` is the CFS runqueue of the
//! CPU it is on, whose `rq` is that CPU's runqueue; one is accepted only if
//! it names the CPU (`rq.cpu`), its idle task has PID 0 and sits on that
//! CPU, and its current task sits on that CPU.

use super::task::TaskView;
use super::{KernelError, Member, Result, member, optional_member};
use crate::addr::VirtAddr;
use crate::kernel::Kernel;

#[derive(Clone, Debug)]
pub struct RqLayout {
    /// `runqueues` and `__per_cpu_offset`, when the symbols name them.
    pub runqueues: Option<VirtAddr>,
    pub curr: Member,
    pub idle: Member,
}

impl RqLayout {
    pub fn resolve(k: &Kernel) -> Result<RqLayout> {
        Ok(RqLayout {
            runqueues: k
                .symbol("runqueues")
                .filter(|_| k.symbol("__per_cpu_offset").is_some()),
            curr: member(k, "rq", "curr")?,
            idle: member(k, "rq", "idle")?,
        })
    }
}

/// One CPU's runqueue, each task or why it could not be read.
#[derive(Clone, Debug)]
pub struct CpuRq {
    pub cpu: usize,
    pub curr: Result<VirtAddr>,
    pub idle: Result<VirtAddr>,
}

/// Every CPU of the dump (its notes' count), in CPU order.
pub fn runqueues(k: &Kernel) -> Result<Vec<CpuRq>> {
    let l = k.rq_layout()?;
    let found = match l.runqueues {
        Some(_) => None,
        None => Some(k.runqueues_found()?),
    };
    Ok((0..k.cpus.len())
        .map(|cpu| {
            let rq = match (l.runqueues, found) {
                (Some(rqs), _) => k
                    .per_cpu_offset(cpu)
                    .map(|o| rqs.per_cpu(o))
                    .ok_or(KernelError::NoSymbol("__per_cpu_offset")),
                (None, found) => found
                    .and_then(|f| f.get(cpu).copied().flatten())
                    .ok_or_else(|| KernelError::Layout {
                        what: format!("runqueue of CPU {cpu}"),
                        reason: "no symbol names it, and none of the CPU's tasks leads to \
                                 a runqueue that names the CPU"
                            .into(),
                    }),
            };
            CpuRq {
                cpu,
                curr: rq.clone().and_then(|rq| l.curr.ptr(k, rq)),
                idle: rq.and_then(|rq| l.idle.ptr(k, rq)),
            }
        })
        .collect())
}

/// The members leading from a task to its CPU's runqueue.
struct TaskToRq {
    se_cfs_rq: Member,
    cfs_rq_rq: Member,
    rq_cpu: Member,
}

impl TaskToRq {
    fn resolve(k: &Kernel) -> Result<TaskToRq> {
        let missing = || KernelError::Layout {
            what: "runqueues".into(),
            reason: "no symbol names them, and without CONFIG_FAIR_GROUP_SCHED \
                     (task_struct.se.cfs_rq, cfs_rq.rq) no task leads to them"
                .into(),
        };
        Ok(TaskToRq {
            se_cfs_rq: optional_member(k, "task_struct", "se.cfs_rq")?.ok_or_else(missing)?,
            cfs_rq_rq: optional_member(k, "cfs_rq", "rq")?.ok_or_else(missing)?,
            rq_cpu: optional_member(k, "rq", "cpu")?.ok_or_else(missing)?,
        })
    }
}

/// Each CPU's runqueue found from its tasks (see the module
/// documentation), `None` for a CPU none of whose tasks leads to one.
pub fn runqueues_from_tasks(k: &Kernel) -> Result<Vec<Option<VirtAddr>>> {
    let l = k.rq_layout()?;
    let m = TaskToRq::resolve(k)?;
    let view = TaskView::new(k)?;
    let tasks = view.list(k.init_task()?)?.tasks;
    // the task at `va`, if it sits on `cpu`
    let on = |cpu: usize, va: VirtAddr| {
        view.read(va)
            .ok()
            .filter(|t| t.cpu == Some(cpu as u32) && t.addr.0 != 0)
    };
    let names_cpu = |rq: VirtAddr, cpu: usize| {
        let idle_ok = l
            .idle
            .ptr(k, rq)
            .is_ok_and(|idle| on(cpu, idle).is_some_and(|t| t.pid == 0 && t.tgid == 0));
        m.rq_cpu.u32(k, rq).ok() == Some(cpu as u32)
            && idle_ok
            && l.curr.ptr(k, rq).is_ok_and(|curr| on(cpu, curr).is_some())
    };
    Ok((0..k.cpus.len())
        .map(|cpu| {
            let rq = tasks
                .iter()
                .filter(|t| t.cpu == Some(cpu as u32))
                .find_map(|t| {
                    let cfs_rq = m.se_cfs_rq.ptr(k, t.addr).ok()?;
                    let rq = m.cfs_rq_rq.ptr(k, cfs_rq).ok()?;
                    names_cpu(rq, cpu).then_some(rq)
                });
            match rq {
                Some(rq) => log::info!(
                    "runqueues not among the symbols: CPU {cpu}'s found from its tasks at {rq}"
                ),
                None => log::warn!("runqueue of CPU {cpu}: none of its tasks leads to it"),
            }
            rq
        })
        .collect())
}
