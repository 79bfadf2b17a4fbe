//! `ps`: crash's process list, rendered from the kernel's task, mm and
//! runqueue views; `ps --json` gives the same rows for scripts.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::sys::total_ram_pages;
use super::{CmdResult, usage};
use crate::addr::VirtAddr;
use crate::kernel::objects::mm::{MmInfo, MmView};
use crate::kernel::tasks::{Task, TaskReader};
use crate::target::{Session, ThreadRef};

/// crash's two-letter state names for the kernel's letters.
pub(super) fn state_name(c: char) -> &'static str {
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

/// One row of `ps`.
struct Row<'t> {
    task: &'t Task,
    /// The CPU whose runqueue's `curr` it was.
    running_on: Option<usize>,
    vsz_kb: u64,
    rss_kb: u64,
    mem_pct: f64,
    /// Its GDB thread id, when the server lists it as a thread.
    thread: Option<usize>,
}

/// Every task crash lists: each CPU's idle task, the processes and their
/// threads. Sorted by PID, then CPU, then address.
pub(super) fn all_tasks(s: &Session) -> Result<Vec<Task>, String> {
    let r = TaskReader::new(&s.kernel).map_err(|e| e.to_string())?;
    let mut tasks = r.with_idle_tasks().map_err(|e| e.to_string())?;
    tasks.sort_by_key(|t| (t.pid, t.cpu, t.addr));
    // idle tasks have no parent to speak of (crash shows 0)
    for t in tasks.iter_mut().filter(|t| t.pid == 0) {
        t.ppid = 0;
    }
    Ok(tasks)
}

/// MM_FILEPAGES + MM_ANONPAGES of the mm, plus (before 6.2) what each of
/// its threads counted but had not yet folded in, as crash counts RSS.
fn rss_pages(s: &Session, tasks: &[Task], t: &Task, mm: &MmInfo) -> u64 {
    let k = &s.kernel;
    let pending: i64 = match k.task_layout().ok().and_then(|l| l.rss_stat_count) {
        Some(m) => tasks
            .iter()
            .filter(|o| o.mm == t.mm)
            .flat_map(|o| {
                [0u64, 1].map(|i| {
                    crate::kernel::objects::Member {
                        offset: m.offset + 4 * i,
                        ..m
                    }
                    .u32(k, o.addr)
                })
            })
            .filter_map(Result::ok)
            .map(|v| v as i32 as i64)
            .sum(),
        None => 0,
    };
    mm.rss.saturating_add(pending).max(0) as u64
}

fn rows<'t>(s: &Session, tasks: &'t [Task]) -> Vec<Row<'t>> {
    let k = &s.kernel;
    let running: Vec<Option<_>> = s
        .cpu_state()
        .tasks
        .iter()
        .map(|t| t.as_ref().map(|t| t.addr))
        .collect();
    let mm_view = MmView::new(k);
    let page_kb = k.paging.page_size() / 1024;
    let total = total_ram_pages(k).map(|(p, _)| p).filter(|&p| p > 0);
    let tid_of: HashMap<VirtAddr, usize> = s
        .threads()
        .order
        .iter()
        .filter_map(|&(tid, r)| match r {
            ThreadRef::Task(j) => s.tasks().get(j).map(|tt| (tt.task.addr, tid)),
            ThreadRef::Cpu(_) => None,
        })
        .collect();
    tasks
        .iter()
        .map(|t| {
            let mm = match (&mm_view, t.mm.0) {
                (_, 0) => None,
                (Ok(v), _) => v
                    .read(t.mm)
                    .map_err(|e| log::warn!("ps: pid {}: {e}", t.pid))
                    .ok(),
                (Err(_), _) => None,
            };
            let (vsz, rss) = mm.map_or((0, 0), |m| (m.total_vm, rss_pages(s, tasks, t, &m)));
            let thread = tid_of.get(&t.addr).copied();
            Row {
                task: t,
                running_on: running.iter().position(|r| *r == Some(t.addr)),
                vsz_kb: vsz.saturating_mul(page_kb),
                rss_kb: rss.saturating_mul(page_kb),
                mem_pct: total.map_or(0.0, |tot| rss as f64 * 100.0 / tot as f64),
                thread,
            }
        })
        .collect()
}

/// `ps [--json]`
pub(super) fn ps(s: &Session, args: &[&str]) -> CmdResult {
    let json = match args {
        [] => false,
        ["--json"] => true,
        _ => return usage("ps takes only --json"),
    };
    let tasks = all_tasks(s)?;
    let rows = rows(s, &tasks);
    if json {
        return Ok(ps_json(s, &rows).to_string());
    }
    let mut out =
        String::from("      PID    PPID  CPU       TASK        ST  %MEM      VSZ      RSS  COMM\n");
    for r in &rows {
        let t = r.task;
        out.push_str(&format!(
            "{}{:>8} {:>7} {:>3}  {:>16x}  {}  {:>4.1} {:>8} {:>8}  {}\n",
            if r.running_on.is_some() { '>' } else { ' ' },
            t.pid,
            t.ppid,
            t.cpu.map_or("-".to_string(), |c| c.to_string()),
            t.addr,
            state_name(t.state),
            r.mem_pct,
            r.vsz_kb,
            r.rss_kb,
            display_comm(t)
        ));
    }
    Ok(out)
}

/// `[comm]` for kernel threads (and the idle tasks), as crash prints them.
fn display_comm(t: &Task) -> String {
    if t.kthread || t.pid == 0 {
        format!("[{}]", t.comm)
    } else {
        t.comm.clone()
    }
}

/// The `ps --json` document (keys documented in the command's usage).
fn ps_json(s: &Session, rows: &[Row]) -> Value {
    let k = &s.kernel;
    let tasks: Vec<Value> = rows
        .iter()
        .map(|r| {
            let t = r.task;
            json!({
                "pid": t.pid,
                "ppid": t.ppid,
                "tgid": t.tgid,
                "cpu": t.cpu,
                "task": format!("{:#x}", t.addr),
                "state": t.state.to_string(),
                "st": state_name(t.state),
                "running_on": r.running_on,
                "kthread": t.kthread,
                "comm": t.comm,
                "mm": format!("{:#x}", t.mm),
                "vsz_kb": r.vsz_kb,
                "rss_kb": r.rss_kb,
                "mem_pct": (r.mem_pct * 10.0).round() / 10.0,
                "thread": r.thread,
            })
        })
        .collect();
    json!({
        "page_kb": k.paging.page_size() / 1024,
        "rss_counters": k.mm_layout().map(|l| l.rss.kind()).unwrap_or("unknown"),
        "tasks": tasks,
    })
}
