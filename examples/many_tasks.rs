//! Writes a synthetic dump with many more tasks than any fixture, for
//! benchmark B5 (`info threads` with 10,000 task threads).
//!
//!     cargo run --release --example many_tasks -- ELF_VMCORE VMLINUX OUT N
//!
//! OUT is ELF_VMCORE plus N clones of one sleeping kernel thread's
//! task_struct, written into RAM the dump left out (free pages: they are
//! still mapped by the direct map, whose page tables the dump holds) and
//! linked into init_task.tasks. Each clone gets its own PID and an empty
//! thread group; it shares the original's stack, so its switch frame and
//! backtrace are the original's. Offsets come from the vmlinux's DWARF.
//! x86_64 ELF vmcores only. The result is re-opened and its task count
//! checked before this exits.

use std::path::Path;

use corestub::addr::VirtAddr;
use corestub::kernel::Kernel;
use corestub::kernel::tasks::TaskReader;

#[path = "common/le.rs"]
mod le;
use le::{u16le, u32le, u64le};

/// (program header offset, paddr, filesz, memsz) of every PT_LOAD.
fn loads(elf: &[u8]) -> Vec<(usize, u64, u64, u64)> {
    let phoff = u64le(elf, 32) as usize;
    (0..u16le(elf, 56) as usize)
        .map(|i| phoff + i * 56)
        .filter(|&p| u32le(elf, p) == 1)
        .map(|p| {
            (
                p,
                u64le(elf, p + 24),
                u64le(elf, p + 32),
                u64le(elf, p + 40),
            )
        })
        .collect()
}

fn open(path: &Path, vmlinux: &Path) -> Result<Kernel, Box<dyn std::error::Error>> {
    let mut k = Kernel::new(corestub::dump::open(path)?)?;
    k.vmlinux = Some(corestub::kernel::symbols::Vmlinux::open(vmlinux)?);
    Ok(k)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() != 4 {
        return Err("usage: many_tasks ELF_VMCORE VMLINUX OUT N".into());
    }
    let (src_path, vml, out_path) = (Path::new(&a[0]), Path::new(&a[1]), Path::new(&a[2]));
    let n: u64 = a[3].parse()?;
    let k = open(src_path, vml)?;
    let d = k.debug_info().ok_or("no DWARF in the vmlinux")?;
    let size = d.size_of("task_struct")?;
    let o_tasks = d.offset_of("task_struct", "tasks")?;
    let o_tg = d.try_offset_of("task_struct", "thread_group")?;
    let o_pid = d.offset_of("task_struct", "pid")?;
    let o_tgid = d.offset_of("task_struct", "tgid")?;
    let space = k.kernel_space();
    let pa_of = |va: u64| -> Result<u64, String> {
        k.paging
            .translate(k.dump.memory.as_ref(), &space, VirtAddr(va), None)
            .map(|t| t.pa.0)
            .map_err(|e| format!("{va:#x}: {e}"))
    };

    // the clone source: kthreadd (pid 2), asleep with one thread
    let reader = TaskReader::new(&k)?;
    let tasks = reader.all_tasks()?;
    let before = tasks.len();
    eprintln!("{before} tasks");
    let src_task = tasks.into_iter().find(|t| t.pid == 2).ok_or("no pid 2")?;
    let mut image = vec![0u8; size as usize];
    k.read_virt(&space, src_task.addr, &mut image)?;
    let init = k.symbol("init_task").ok_or("no init_task")?.0;
    let first = k.read_u64(&space, VirtAddr(init + o_tasks))? - o_tasks;
    let (page_offset, _) = corestub::kernel::page::direct_map(&k)?;
    eprintln!(
        "task_struct {size:#x} bytes, init_task {init:#x}, first {first:#x}, direct map {page_offset:#x}"
    );

    // free RAM: the largest zero-filled tail (memsz past filesz: pages
    // makedumpfile left out) of a load, clipped to where no other load
    // reaches; it must be direct-mapped by the dump's page tables
    let mut elf = std::fs::read(src_path)?;
    let ls = loads(&elf);
    let stride = size.div_ceil(64) * 64;
    let mut best: Option<(usize, u64, u64)> = None; // (load index, start, end)
    for (i, &(_, pa, fsz, msz)) in ls.iter().enumerate() {
        let (mut lo, hi) = ((pa + fsz).div_ceil(4096) * 4096, pa + msz);
        for (j, &(_, opa, _, omsz)) in ls.iter().enumerate() {
            if j != i && opa < hi && opa + omsz > lo {
                lo = lo.max((opa + omsz).div_ceil(4096) * 4096);
            }
        }
        if lo < hi && best.is_none_or(|b| hi - lo > b.2 - b.1) {
            best = Some((i, lo, hi));
        }
    }
    let (owner, lo, hi) = best.ok_or("no zero-filled range in the dump")?;
    if n * stride > hi - lo {
        return Err(format!(
            "{n} clones need {:#x} bytes; the largest free range has {:#x}",
            n * stride,
            hi - lo
        )
        .into());
    }
    for pa in [lo, lo + n * stride - 1] {
        if pa_of(page_offset + pa) != Ok(pa) {
            return Err(format!("PA {pa:#x} is not in the dump's direct map").into());
        }
    }

    // clone i: own PID, empty thread group, linked after init_task
    let va = |i: u64| page_offset + lo + i * stride;
    let mut extra: Vec<Vec<u8>> = Vec::new();
    for i in 0..n {
        let mut t = image.clone();
        let me = va(i);
        let next = if i + 1 < n { va(i + 1) } else { first };
        let prev = if i == 0 { init } else { va(i - 1) };
        let put = |t: &mut Vec<u8>, off: u64, v: &[u8]| {
            t[off as usize..off as usize + v.len()].copy_from_slice(v)
        };
        put(&mut t, o_tasks, &(next + o_tasks).to_le_bytes());
        put(&mut t, o_tasks + 8, &(prev + o_tasks).to_le_bytes());
        if let Some(tg) = o_tg {
            put(&mut t, tg, &(me + tg).to_le_bytes());
            put(&mut t, tg + 8, &(me + tg).to_le_bytes());
        }
        let pid = 100_000 + i as u32;
        put(&mut t, o_pid, &pid.to_le_bytes());
        put(&mut t, o_tgid, &pid.to_le_bytes());
        extra.push(t);
    }
    // init_task.tasks.next and the old first task's tasks.prev
    let patches = [
        (pa_of(init + o_tasks)?, va(0) + o_tasks),
        (pa_of(first + o_tasks + 8)?, va(n - 1) + o_tasks),
    ];
    for (pa, v) in patches {
        let mut hit = false;
        for &(ph, lpa, fsz, _) in &ls {
            if pa >= lpa && pa + 8 <= lpa + fsz {
                let at = u64le(&elf, ph + 8) as usize + (pa - lpa) as usize;
                elf[at..at + 8].copy_from_slice(&v.to_le_bytes());
                hit = true;
            }
        }
        if !hit {
            return Err(format!("PA {pa:#x} is not in the dump").into());
        }
    }

    // the owner load now ends at its data; one load holds the clones and
    // one zero-fills the rest of the old range
    let (ph, opa, ofsz, omsz) = ls[owner];
    elf[ph + 40..ph + 48].copy_from_slice(&ofsz.to_le_bytes());
    let phoff = u64le(&elf, 32) as usize;
    let phnum = u16le(&elf, 56) as usize;
    let mut data = Vec::with_capacity((n * stride) as usize);
    for mut t in extra {
        t.resize(stride as usize, 0);
        data.extend_from_slice(&t);
    }
    let clones_end = lo + data.len() as u64;
    let mut runs: Vec<(u64, Vec<u8>, u64)> = vec![(lo, data, n * stride)];
    if opa + ofsz < lo {
        runs.push((opa + ofsz, Vec::new(), lo - (opa + ofsz)));
    }
    if clones_end < opa + omsz {
        runs.push((clones_end, Vec::new(), opa + omsz - clones_end));
    }
    // program headers move to the end of the file, after the clone data
    let mut phdrs = elf[phoff..phoff + phnum * 56].to_vec();
    let mut body = Vec::new();
    let mut at = elf.len().div_ceil(4096) * 4096;
    elf.resize(at, 0);
    for (pa, data, memsz) in &runs {
        let mut p = Vec::new();
        p.extend_from_slice(&1u32.to_le_bytes());
        p.extend_from_slice(&7u32.to_le_bytes());
        for v in [
            at as u64,
            page_offset + pa,
            *pa,
            data.len() as u64,
            *memsz,
            4096,
        ] {
            p.extend_from_slice(&v.to_le_bytes());
        }
        phdrs.extend_from_slice(&p);
        body.extend_from_slice(data);
        at += data.len();
    }
    elf.extend_from_slice(&body);
    let new_phoff = elf.len() as u64;
    elf.extend_from_slice(&phdrs);
    elf[32..40].copy_from_slice(&new_phoff.to_le_bytes());
    let new_phnum = u16::try_from(phnum + runs.len()).map_err(|_| "too many program headers")?;
    elf[56..58].copy_from_slice(&new_phnum.to_le_bytes());
    std::fs::write(out_path, &elf)?;

    let k2 = open(out_path, vml).map_err(|e| format!("re-opening {}: {e}", out_path.display()))?;
    let after = TaskReader::new(&k2)?
        .all_tasks()
        .map_err(|e| format!("walking the new task list: {e}"))?
        .len();
    println!(
        "{before} tasks + {n} clones of pid 2 = {after} tasks ({} new loads)",
        runs.len()
    );
    if after as u64 != before as u64 + n {
        return Err(format!(
            "expected {} tasks, the new dump lists {after}",
            before as u64 + n
        )
        .into());
    }
    Ok(())
}
