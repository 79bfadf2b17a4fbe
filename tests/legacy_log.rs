//! The pre-5.10 kernel log (`log_buf` of `struct printk_log` records) on a
//! small synthetic x86_64 ELF vmcore built here: its memory holds a wrapped
//! log laid out by the format's definition (kernel/printk/printk.c of 5.4),
//! its VMCOREINFO the keys such a kernel exports, and no `prb`. Checked
//! through the library, `monitor log` over RSP, and GDB's `dmesg`
//! (gdb-scripts/dmesg.py asks the server). The same dump with the AMD SME
//! C-bit in every page-table entry checks that VMCOREINFO's sme_mask reaches
//! the walker.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use corestub::dump;
use corestub::kernel::{Kernel, printk};

/// Kernel VA 0xffffffff81000000 + n maps to PA DATA_PA + n (16 pages).
const KVA: u64 = 0xffff_ffff_8100_0000;
const DATA_PA: usize = 0x10000;
const LOG_OFF: usize = 0x1000; // __log_buf at KVA + 0x1000
const LOG_LEN: usize = 0x2000;
const SME_BIT: u64 = 1 << 47;

/// struct printk_log of 5.4 (no CONFIG_PRINTK_CALLER): header 16 bytes.
fn record(buf: &mut [u8], at: usize, ts_nsec: u64, level: u8, text: &str) -> usize {
    let size = (16 + text.len()).next_multiple_of(8);
    buf[at..at + 8].copy_from_slice(&ts_nsec.to_le_bytes());
    buf[at + 8..at + 10].copy_from_slice(&(size as u16).to_le_bytes());
    buf[at + 10..at + 12].copy_from_slice(&(text.len() as u16).to_le_bytes());
    buf[at + 12..at + 14].fill(0); // dict_len
    buf[at + 14] = 0; // facility
    buf[at + 15] = (level << 5) | 2; // level:3 over flags:5 (LOG_NEWLINE)
    buf[at + 16..at + 16 + text.len()].copy_from_slice(text.as_bytes());
    at + size
}

/// The log: two records at the end of the buffer, the wrap marker (a
/// zero header), two records from index 0, then a stale record past
/// log_next_idx that must not be shown. Returns (buffer, first, next).
fn wrapped_log() -> (Vec<u8>, usize, usize) {
    let mut b = vec![0xa5u8; LOG_LEN];
    let first = 0x1f80;
    let at = record(&mut b, first, 100_000, 6, "first record, before the wrap");
    let at = record(&mut b, at, 1_500_000_000, 5, "second");
    assert!(at + 16 <= LOG_LEN);
    b[at..at + 16].fill(0); // wrap marker
    let at = record(
        &mut b,
        0,
        42_123_456_789,
        0,
        "Kernel panic - not syncing: sysrq triggered crash",
    );
    let next = record(&mut b, at, 42_200_000_000, 4, "line one\nline two");
    record(&mut b, next, 1, 3, "STALE record past log_next_idx");
    (b, first, next)
}

const EXPECTED: &str = concat!(
    "[    0.000100] first record, before the wrap\n",
    "[    1.500000] second\n",
    "[   42.123456] Kernel panic - not syncing: sysrq triggered crash\n",
    "[   42.200000] line one\n",
    "               line two\n",
);

fn note(out: &mut Vec<u8>, name: &[u8], ty: u32, desc: &[u8]) {
    out.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(name);
    out.push(0);
    out.resize(out.len().next_multiple_of(4), 0);
    out.extend_from_slice(desc);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// An x86_64 ELF vmcore: one CPU, 4-level tables (init_top_pgt at PA
/// 0x1000) mapping KVA, the log variables at KVA, and VMCOREINFO. `sme`
/// is OR-ed into CR3's target and every entry; `sme_key` says whether
/// VMCOREINFO exports it.
fn vmcore(sme: u64, sme_key: bool) -> Vec<u8> {
    let mut info = format!(
        "OSRELEASE=5.4.0-synthetic\nPAGESIZE=4096\n\
         SYMBOL(init_top_pgt)=ffffffff80001000\nNUMBER(phys_base)=0\n\
         NUMBER(pgtable_l5_enabled)=0\nKERNELOFFSET=0\n\
         SYMBOL(log_buf)={:x}\nSYMBOL(log_buf_len)={:x}\n\
         SYMBOL(log_first_idx)={:x}\nSYMBOL(log_next_idx)={:x}\n\
         SIZE(printk_log)=16\nOFFSET(printk_log.ts_nsec)=0\n\
         OFFSET(printk_log.len)=8\nOFFSET(printk_log.text_len)=10\n",
        KVA,
        KVA + 8,
        KVA + 0xc,
        KVA + 0x10
    );
    if sme_key {
        info.push_str(&format!("NUMBER(sme_mask)={sme}\n"));
    }
    let mut notes = Vec::new();
    let mut prstatus = vec![0u8; 336];
    prstatus[32..36].copy_from_slice(&1u32.to_le_bytes());
    prstatus[112 + 16 * 8..112 + 17 * 8].copy_from_slice(&KVA.to_le_bytes()); // rip
    prstatus[112 + 17 * 8..112 + 18 * 8].copy_from_slice(&0x10u64.to_le_bytes()); // cs
    note(&mut notes, b"CORE", 1, &prstatus);
    let mut desc = info.into_bytes();
    desc.push(0);
    note(&mut notes, b"VMCOREINFO", 0, &desc);

    let mut mem = vec![0u8; DATA_PA + 0x10000];
    let mut set = |pa: usize, v: u64| mem[pa..pa + 8].copy_from_slice(&(v | sme).to_le_bytes());
    set(0x1000 + 511 * 8, 0x2000 | 0x63); // PGD
    set(0x2000 + 510 * 8, 0x3000 | 0x63); // PUD
    set(0x3000 + 8 * 8, 0x4000 | 0x63); // PMD
    for i in 0..16 {
        set(0x4000 + i * 8, (DATA_PA + i * 0x1000) as u64 | 0x63); // PTE
    }
    let (log, first, next) = wrapped_log();
    let d = DATA_PA;
    mem[d..d + 8].copy_from_slice(&(KVA + LOG_OFF as u64).to_le_bytes());
    mem[d + 8..d + 12].copy_from_slice(&(LOG_LEN as u32).to_le_bytes());
    mem[d + 0xc..d + 0x10].copy_from_slice(&(first as u32).to_le_bytes());
    mem[d + 0x10..d + 0x14].copy_from_slice(&(next as u32).to_le_bytes());
    mem[d + LOG_OFF..d + LOG_OFF + LOG_LEN].copy_from_slice(&log);

    let phdrs_end = 64 + 2 * 56;
    let load_off = (phdrs_end + notes.len()).next_multiple_of(4096);
    let mut f = Vec::new();
    f.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    f.extend_from_slice(&4u16.to_le_bytes()); // ET_CORE
    f.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    f.extend_from_slice(&1u32.to_le_bytes());
    for v in [0u64, 64, 0] {
        f.extend_from_slice(&v.to_le_bytes()); // entry, phoff, shoff
    }
    f.extend_from_slice(&0u32.to_le_bytes());
    for v in [64u16, 56, 2, 0, 0, 0] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    let phdr = |f: &mut Vec<u8>, ty: u32, off: usize, vaddr: u64, size: usize| {
        f.extend_from_slice(&ty.to_le_bytes());
        f.extend_from_slice(&7u32.to_le_bytes());
        for v in [off as u64, vaddr, 0, size as u64, size as u64, 0] {
            f.extend_from_slice(&v.to_le_bytes());
        }
    };
    phdr(&mut f, 4, phdrs_end, 0, notes.len()); // PT_NOTE
    phdr(&mut f, 1, load_off, 0xffff_8880_0000_0000, mem.len()); // PT_LOAD at PA 0
    f.extend_from_slice(&notes);
    f.resize(load_off, 0);
    f.extend_from_slice(&mem);
    f
}

fn kernel(bytes: &[u8]) -> Kernel {
    Kernel::new(dump::open_bytes(Path::new("legacy-log.vmcore"), bytes).unwrap()).unwrap()
}

fn formatted(records: &[printk::LogRecord], show_level: bool) -> String {
    records.iter().map(|r| r.format(show_level)).collect()
}

#[test]
fn legacy_log_reads_through_the_library() {
    let k = kernel(&vmcore(0, false));
    assert!(k.symbol("prb").is_none());
    let records = printk::read_log(&k).unwrap();
    assert_eq!(formatted(&records, false), EXPECTED);
    let levels: Vec<u8> = records.iter().map(|r| r.level).collect();
    assert_eq!(levels, [6, 5, 0, 4]);
    assert_eq!(
        printk::panic_message(&records).as_deref(),
        Some("Kernel panic - not syncing: sysrq triggered crash")
    );
}

#[test]
fn sme_mask_from_vmcoreinfo_reaches_the_walker() {
    // every entry carries the C-bit: readable only with NUMBER(sme_mask)
    let k = kernel(&vmcore(SME_BIT, true));
    let records = printk::read_log(&k).unwrap();
    assert_eq!(formatted(&records, false), EXPECTED);
    let k = kernel(&vmcore(SME_BIT, false));
    assert!(printk::read_log(&k).is_err());
}

fn write_dump(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("corestub-legacy-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn monitor_log_and_gdb_dmesg_use_the_legacy_log() {
    let path = write_dump("legacy.vmcore", &vmcore(0, false));
    let server = common::server::Server::start(&path, &[]);
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("gdb-scripts/dmesg.py");
    let out = common::run(
        Command::new("gdb")
            .args(common::GDB_BATCH)
            .args(["-ex", "set architecture i386:x86-64"])
            .args(["-ex", &format!("target remote {}", server.addr)])
            .args(["-ex", &format!("source {}", scripts.display())])
            .args(["-ex", "monitor log -l"])
            .args(["-ex", "echo @@STEP dmesg\\n", "-ex", "dmesg"])
            .args(["-ex", "echo @@STEP end\\n"]),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let steps = common::split_steps(&stdout);
    // GDB prints a monitor command's output on stderr, and the rest on
    // stdout: `monitor log -l` is checked alone, dmesg between markers
    let stderr = String::from_utf8_lossy(&out.stderr);
    let with_levels = concat!(
        "<6>[    0.000100] first record, before the wrap\n",
        "<5>[    1.500000] second\n",
        "<0>[   42.123456] Kernel panic - not syncing: sysrq triggered crash\n",
        "<4>[   42.200000] line one\n",
        "                  line two\n",
    );
    assert!(stderr.contains(with_levels), "{stdout}\n{stderr}");
    assert_eq!(
        steps.get("dmesg").map(String::as_str),
        Some(EXPECTED),
        "{stdout}\n{stderr}"
    );
    // the stale record past log_next_idx is shown by neither
    assert!(!stdout.contains("STALE") && !stderr.contains("STALE"));
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
