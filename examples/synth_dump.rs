//! Writes synthetic dumps of a large machine for benchmarks (B1): sparse
//! files that claim GIGS GiB of RAM but take little disk.
//!
//!     cargo run --release --example synth_dump -- OUT_DIR [GIGS]
//!
//! Produces OUT_DIR/synth-GIGSg.elf (one PT_LOAD covering all of RAM, a
//! hole on disk) and OUT_DIR/synth-GIGSg.kdump (kdump-compressed v6: full
//! bitmaps, one stored page in 64, all sharing one data block). Both carry
//! 4 NT_PRSTATUS notes and a VMCOREINFO that makes them servable.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use corestub::dump::notes::encode_note;

const PAGE: u64 = 4096;

fn notes() -> Vec<u8> {
    let mut n = Vec::new();
    for cpu in 0..4u32 {
        let mut d = vec![0u8; 336];
        d[32..36].copy_from_slice(&(100 + cpu).to_le_bytes());
        // rip, cs (kernel mode)
        d[112 + 16 * 8..112 + 17 * 8].copy_from_slice(&0xffff_ffff_8100_0000u64.to_le_bytes());
        d[112 + 17 * 8..112 + 18 * 8].copy_from_slice(&0x10u64.to_le_bytes());
        encode_note(&mut n, b"CORE", 1, &d);
    }
    let info = "OSRELEASE=synthetic\nPAGESIZE=4096\nSYMBOL(init_top_pgt)=ffffffff82000000\n\
                NUMBER(phys_base)=0\nNUMBER(pgtable_l5_enabled)=0\nKERNELOFFSET=0\n";
    encode_note(&mut n, b"VMCOREINFO", 0, info.as_bytes());
    n
}

fn w16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn w32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn w64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn write_elf(path: &Path, ram: u64) -> std::io::Result<()> {
    let notes = notes();
    let phoff = 64u64;
    let note_off = phoff + 2 * 56;
    let load_off = (note_off + notes.len() as u64).div_ceil(PAGE) * PAGE;
    let mut h = Vec::new();
    h.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    w16(&mut h, 4); // ET_CORE
    w16(&mut h, 62); // EM_X86_64
    w32(&mut h, 1);
    w64(&mut h, 0);
    w64(&mut h, phoff);
    w64(&mut h, 0);
    w32(&mut h, 0);
    for x in [64u16, 56, 2, 64, 0, 0] {
        w16(&mut h, x);
    }
    // PT_NOTE
    w32(&mut h, 4);
    w32(&mut h, 0);
    for x in [note_off, 0, 0, notes.len() as u64, notes.len() as u64, 4] {
        w64(&mut h, x);
    }
    // PT_LOAD: all of RAM from PA 0
    w32(&mut h, 1);
    w32(&mut h, 7);
    for x in [load_off, 0xffff_8880_0000_0000, 0, ram, ram, PAGE] {
        w64(&mut h, x);
    }
    h.extend_from_slice(&notes);
    let mut f = File::create(path)?;
    f.write_all(&h)?;
    f.set_len(load_off + ram)?; // a hole: no disk used
    Ok(())
}

fn write_kdump(path: &Path, ram: u64) -> std::io::Result<()> {
    let block = PAGE;
    let pages = ram / PAGE;
    let bitmap_bytes = pages.div_ceil(8).div_ceil(block) * block;
    let bitmap_blocks = 2 * bitmap_bytes / block;
    let notes = notes();
    let sub_hdr_blocks = (104 + notes.len() as u64).div_ceil(block);
    let bitmaps_at = (1 + sub_hdr_blocks) * block;
    let descs_at = bitmaps_at + 2 * bitmap_bytes;
    let stride = 64u64; // one stored page in 64
    let stored = pages / stride;
    let data_at = descs_at + stored * 24;

    let mut hdr = vec![0u8; block as usize];
    hdr[..8].copy_from_slice(b"KDUMP   ");
    hdr[8..12].copy_from_slice(&6i32.to_le_bytes());
    for (i, s) in ["Linux", "synth", "synthetic", "#1", "x86_64", ""]
        .iter()
        .enumerate()
    {
        let o = 12 + i * 65;
        hdr[o..o + s.len()].copy_from_slice(s.as_bytes());
    }
    hdr[428..432].copy_from_slice(&(block as i32).to_le_bytes());
    hdr[432..436].copy_from_slice(&(sub_hdr_blocks as i32).to_le_bytes());
    hdr[436..440].copy_from_slice(&(bitmap_blocks as u32).to_le_bytes());
    hdr[440..444].copy_from_slice(&(pages.min(u32::MAX as u64) as u32).to_le_bytes());
    hdr[460..464].copy_from_slice(&4i32.to_le_bytes());

    let mut sub = Vec::new();
    w64(&mut sub, 0); // phys_base
    w32(&mut sub, 31); // dump_level
    w32(&mut sub, 0); // split
    w64(&mut sub, 0);
    w64(&mut sub, 0);
    w64(&mut sub, 0); // offset_vmcoreinfo (in the notes instead)
    w64(&mut sub, 0);
    w64(&mut sub, block + 104); // offset_note: right after these 104 bytes
    w64(&mut sub, notes.len() as u64);
    w64(&mut sub, 0);
    w64(&mut sub, 0);
    w64(&mut sub, 0); // start_pfn_64
    w64(&mut sub, pages); // end_pfn_64
    w64(&mut sub, pages); // max_mapnr_64
    sub.extend_from_slice(&notes);

    let mut f = File::create(path)?;
    f.write_all(&hdr)?;
    f.write_all(&sub)?;
    // bitmap 1: all RAM present; bitmap 2: every 64th page dumped
    f.seek(SeekFrom::Start(bitmaps_at))?;
    f.write_all(&vec![0xffu8; bitmap_bytes as usize])?;
    let mut dumped = vec![0u8; bitmap_bytes as usize];
    for p in (0..pages).step_by(stride as usize) {
        dumped[(p / 8) as usize] |= 1 << (p % 8);
    }
    f.write_all(&dumped)?;
    // descriptors: every stored page shares one uncompressed data block
    let mut d = Vec::with_capacity((stored * 24) as usize);
    for _ in 0..stored {
        d.extend_from_slice(&(data_at as i64).to_le_bytes());
        w32(&mut d, block as u32);
        w32(&mut d, 0);
        w64(&mut d, 0);
    }
    f.write_all(&d)?;
    f.write_all(&vec![0x5au8; block as usize])?;
    Ok(())
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("usage: synth_dump OUT_DIR [GIGS]");
    let gigs: u64 = args.next().map(|g| g.parse().expect("GIGS")).unwrap_or(64);
    let ram = gigs << 30;
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir)?;
    let elf = dir.join(format!("synth-{gigs}g.elf"));
    let kdump = dir.join(format!("synth-{gigs}g.kdump"));
    write_elf(&elf, ram)?;
    write_kdump(&kdump, ram)?;
    println!("{}\n{}", elf.display(), kdump.display());
    Ok(())
}
