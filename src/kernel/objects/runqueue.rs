//! The per-CPU runqueues (`struct rq runqueues`): the task each CPU was
//! running (`curr`) and its idle task (`idle`). The one runqueue walk.

use super::{Member, Result, member, symbol};
use crate::addr::VirtAddr;
use crate::kernel::Kernel;

#[derive(Clone, Debug)]
pub struct RqLayout {
    pub runqueues: VirtAddr,
    pub curr: Member,
    pub idle: Member,
}

impl RqLayout {
    pub fn resolve(k: &Kernel) -> Result<RqLayout> {
        Ok(RqLayout {
            runqueues: symbol(k, "runqueues")?,
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
    Ok((0..k.cpus.len())
        .map(|cpu| {
            let rq = k
                .per_cpu_offset(cpu)
                .map(|o| l.runqueues.per_cpu(o))
                .ok_or(super::KernelError::NoSymbol("__per_cpu_offset"));
            CpuRq {
                cpu,
                curr: rq.clone().and_then(|rq| l.curr.ptr(k, rq)),
                idle: rq.and_then(|rq| l.idle.ptr(k, rq)),
            }
        })
        .collect())
}
