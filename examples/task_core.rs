//! Writes the native-GDB baseline for benchmark B5: an ELF core in which
//! every kernel task is a thread, as corestub serves them, so that GDB's own
//! per-thread cost (`info threads`) can be measured without any protocol.
//!
//!     cargo run --release --example task_core -- ELF_VMCORE VMLINUX OUT [COPIES]
//!
//! OUT holds the vmcore's own PT_LOADs and CPU notes, one NT_PRSTATUS per
//! sleeping task (registers from its switch frame, exactly what corestub's
//! `g` reply carries), a PT_LOAD with each task's kernel stack at its
//! vmalloc address (native GDB cannot walk page tables), and COPIES
//! (default 1) replicas of the task notes with distinct PIDs, to reach
//! thread counts no fixture has. x86_64 only.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use corestub::dump::notes::encode_note;
use corestub::kernel::Kernel;
use corestub::target::{Session, ThreadMode};

const STACK: u64 = 16 << 10; // x86_64 THREAD_SIZE without KASAN
const PRSTATUS_SIZE: usize = 336;
const PR_REG: usize = 112;
// user_regs_struct order
const REGS: [&str; 27] = [
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi",
    "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs",
    "gs",
];

#[path = "common/le.rs"]
mod le;
use le::{u16le, u32le, u64le};

struct Seg {
    vaddr: u64,
    paddr: u64,
    data: Vec<u8>,
    memsz: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        return Err("usage: task_core ELF_VMCORE VMLINUX OUT [COPIES]".into());
    }
    let copies: u32 = args.get(3).map(|c| c.parse()).transpose()?.unwrap_or(1);
    let src = std::fs::read(&args[0])?;
    let mut kernel = Kernel::new(corestub::dump::open(Path::new(&args[0]))?)?;
    kernel.vmlinux = Some(corestub::kernel::symbols::Vmlinux::open(Path::new(
        &args[1],
    ))?);
    let session = Session::new(kernel, ThreadMode::All);

    // the original's CPU notes and loads
    let phoff = u64le(&src, 32) as usize;
    let phnum = u16le(&src, 56) as usize;
    let mut notes = Vec::new();
    let mut segs = Vec::new();
    for i in 0..phnum {
        let p = phoff + i * 56;
        let (ty, off, vaddr, paddr) = (
            u32le(&src, p),
            u64le(&src, p + 8) as usize,
            u64le(&src, p + 16),
            u64le(&src, p + 24),
        );
        let (filesz, memsz) = (u64le(&src, p + 32) as usize, u64le(&src, p + 40));
        match ty {
            4 => {
                let mut at = off;
                while at + 12 <= off + filesz {
                    let (nsz, dsz, nty) = (
                        u32le(&src, at) as usize,
                        u32le(&src, at + 4) as usize,
                        u32le(&src, at + 8),
                    );
                    let name_end = at + 12 + nsz.div_ceil(4) * 4;
                    let end = name_end + dsz.div_ceil(4) * 4;
                    if nty == 1 && src.get(at + 12..at + 16) == Some(b"CORE") {
                        encode_note(&mut notes, b"CORE", 1, &src[name_end..name_end + dsz]);
                    }
                    at = end;
                }
            }
            1 => segs.push(Seg {
                vaddr,
                paddr,
                data: src[off..off + filesz].to_vec(),
                memsz,
            }),
            _ => {}
        }
    }

    // one note per sleeping task (running ones are the CPU notes), stacks
    let k = &session.kernel;
    let mut stacks = 0;
    for copy in 0..copies {
        for t in session.tasks() {
            let (Ok(regs), None) = (&t.switch_regs, t.running_on) else {
                continue;
            };
            let mut d = vec![0u8; PRSTATUS_SIZE];
            let pid = t.task.pid as u32 + copy * 1_000_000;
            d[32..36].copy_from_slice(&pid.to_le_bytes());
            for (name, v) in regs.iter().chain([("cs", 0x10), ("ss", 0x18)].iter()) {
                if let Some(i) = REGS.iter().position(|r| r == name) {
                    d[PR_REG + 8 * i..PR_REG + 8 * i + 8].copy_from_slice(&v.to_le_bytes());
                }
            }
            encode_note(&mut notes, b"CORE", 1, &d);
            if copy == 0 && t.task.stack.0 != 0 {
                let mut data = vec![0u8; STACK as usize];
                if k.read_virt(&k.kernel_space(), t.task.stack, &mut data)
                    .is_ok()
                {
                    segs.push(Seg {
                        vaddr: t.task.stack.0,
                        paddr: 0,
                        data,
                        memsz: STACK,
                    });
                    stacks += 1;
                }
            }
        }
    }

    let mut out = BufWriter::new(File::create(&args[2])?);
    let nph = 1 + segs.len();
    let note_off = 64 + 56 * nph;
    let mut data_off = (note_off + notes.len()).div_ceil(4096) * 4096;
    let mut h = Vec::new();
    h.extend_from_slice(&src[..24]); // ident, ET_CORE, EM_X86_64, version
    h.extend_from_slice(&0u64.to_le_bytes()); // entry
    h.extend_from_slice(&64u64.to_le_bytes()); // phoff
    h.extend_from_slice(&0u64.to_le_bytes()); // shoff
    h.extend_from_slice(&0u32.to_le_bytes()); // flags
    for x in [64u16, 56, nph as u16, 64, 0, 0] {
        h.extend_from_slice(&x.to_le_bytes());
    }
    let ph = |h: &mut Vec<u8>, ty: u32, off: usize, va: u64, pa: u64, fsz: usize, msz: u64| {
        h.extend_from_slice(&ty.to_le_bytes());
        h.extend_from_slice(&(if ty == 1 { 7u32 } else { 0 }).to_le_bytes());
        for v in [
            off as u64,
            va,
            pa,
            fsz as u64,
            msz,
            if ty == 1 { 4096 } else { 4 },
        ] {
            h.extend_from_slice(&v.to_le_bytes());
        }
    };
    ph(&mut h, 4, note_off, 0, 0, notes.len(), notes.len() as u64);
    for s in &segs {
        ph(&mut h, 1, data_off, s.vaddr, s.paddr, s.data.len(), s.memsz);
        data_off += s.data.len();
    }
    h.extend_from_slice(&notes);
    h.resize((note_off + notes.len()).div_ceil(4096) * 4096, 0);
    out.write_all(&h)?;
    for s in &segs {
        out.write_all(&s.data)?;
    }
    out.flush()?;
    let threads = notes.len() / (20 + PRSTATUS_SIZE);
    println!("{} threads, {stacks} task stacks", threads);
    Ok(())
}
