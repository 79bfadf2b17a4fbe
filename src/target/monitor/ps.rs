//! `ps`: crash's process list, from the kernel task list (kernel/tasks.rs).

use super::sys::total_ram_pages;
use super::{CmdResult, usage};
use crate::addr::VirtAddr;
use crate::kernel::tasks::{Task, TaskReader};
use crate::target::Session;

/// crash's two-letter state names.
fn state_name(c: char) -> &'static str {
    match c {
        'R' => "RU",
        'S' => "IN",
        'D' => "UN",
        'T' => "ST",
        't' => "TR",
        'Z' => "ZO",
        'X' => "DE",
        'I' => "ID",
        'P' => "PA",
        _ => "??",
    }
}

/// Every task crash lists: each CPU's idle task (`runqueues.idle`; CPU 0's
/// is init_task), then the task list (processes and their threads).
pub(super) fn all_tasks(s: &Session) -> Result<(TaskReader<'_>, Vec<Task>), String> {
    let k = &s.kernel;
    let r = TaskReader::new(k)?;
    let mut tasks = r.all_tasks()?;
    let idle_off = k
        .debug_info()
        .and_then(|d| d.offset_of("struct rq", "idle").ok());
    if let (Some(rq), Some(off)) = (k.symbol("runqueues"), idle_off) {
        for cpu in 1..k.cpus.len() {
            let Some(base) = k.per_cpu_offset(cpu) else {
                continue;
            };
            let Some(idle_ptr) = rq.0.wrapping_add(base).checked_add(off) else {
                continue;
            };
            let Ok(idle) = k.read_u64(&k.kernel_space(), VirtAddr(idle_ptr)) else {
                continue;
            };
            if idle != 0
                && !tasks.iter().any(|t| t.addr == idle)
                && let Ok(t) = r.task(idle)
            {
                tasks.push(t);
            }
        }
    }
    Ok((r, tasks))
}

/// `ps`
pub(super) fn ps(s: &Session, args: &[&str]) -> CmdResult {
    if !args.is_empty() {
        return usage("ps takes no arguments");
    }
    let k = &s.kernel;
    let (_reader, mut tasks) = all_tasks(s)?;
    tasks.sort_by_key(|t| (t.pid, t.cpu));
    // idle tasks have no parent to speak of (crash shows 0)
    for t in tasks.iter_mut().filter(|t| t.pid == 0) {
        t.ppid = 0;
    }
    let tasks_for_rss = tasks.clone();
    let running: Vec<u64> = s
        .cpu_state()
        .tasks
        .iter()
        .flatten()
        .map(|t| t.addr)
        .collect();
    let d = k.debug_info();
    let total_vm = d.and_then(|d| d.offset_of("struct mm_struct", "total_vm").ok());
    let rss = d.and_then(|d| d.offset_of("struct mm_struct", "rss_stat").ok());
    // With SPLIT_RSS_COUNTING (before 6.2) each thread also holds counts not
    // yet folded into its mm: task_struct.rss_stat.count[] (int).
    let task_rss = d.and_then(|d| d.offset_of("struct task_struct", "rss_stat.count").ok());
    let rd32 = |a: u64| k.read_u32(&k.kernel_space(), VirtAddr(a)).ok();
    let pending = |mm: u64| -> i64 {
        let Some(o) = task_rss else { return 0 };
        tasks_for_rss
            .iter()
            .filter(|t| t.mm == mm)
            .flat_map(|t| [0u64, 1].map(|i| rd32(t.addr.checked_add(o + 4 * i)?)))
            .flatten()
            .map(|v| v as i32 as i64)
            .fold(0i64, i64::saturating_add)
    };
    let page_kb = k.paging.page_size() / 1024;
    let total = total_ram_pages(k).map(|(p, _)| p).filter(|&p| p > 0);
    let rd = |a: u64| k.read_u64(&k.kernel_space(), VirtAddr(a)).ok();
    let mut out =
        String::from("      PID    PPID  CPU       TASK        ST  %MEM      VSZ      RSS  COMM\n");
    for t in &tasks {
        let (vsz, rss_pages) = if t.mm == 0 {
            (0, 0)
        } else {
            let vsz = total_vm
                .and_then(|o| rd(t.mm.checked_add(o)?))
                .unwrap_or(0)
                .saturating_mul(page_kb);
            // MM_FILEPAGES + MM_ANONPAGES of mm_rss_stat.count[], as crash counts RSS
            let rss = rss
                .map(|o| {
                    [0u64, 1]
                        .iter()
                        .filter_map(|i| rd(t.mm.checked_add(o + 8 * i)?))
                        .map(|v| v as i64)
                        .fold(0i64, i64::saturating_add)
                })
                .unwrap_or(0);
            (vsz, rss.saturating_add(pending(t.mm)).max(0) as u64)
        };
        let mem = total.map_or(0.0, |tot| rss_pages as f64 * 100.0 / tot as f64);
        let comm = if t.mm == 0 {
            format!("[{}]", t.comm)
        } else {
            t.comm.clone()
        };
        out.push_str(&format!(
            "{}{:>8} {:>7} {:>3}  {:>16x}  {}  {:>4.1} {:>8} {:>8}  {}\n",
            if running.contains(&t.addr) { '>' } else { ' ' },
            t.pid,
            t.ppid,
            t.cpu.map_or("-".to_string(), |c| c.to_string()),
            t.addr,
            state_name(t.state),
            mem,
            vsz,
            rss_pages.saturating_mul(page_kb),
            comm
        ));
    }
    Ok(out)
}
