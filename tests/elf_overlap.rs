//! Overlapping PT_LOADs on a real `makedumpfile -E` dump: the x86_64 ELF
//! fixture maps PA 0x8e00000 twice, as kernel text (p_memsz 0x30000) and in
//! the direct map (p_memsz 0xa200000), both with 0x6000 file bytes. Every
//! page the longer segment covers must read (as crash and GDB read it), and
//! agree with the kdump-compressed dump of the same boot: the same bytes
//! where that dump stores the page, zeros where it excluded it (makedumpfile
//! -E writes excluded pages as zero fill).

mod common;

use corestub::addr::PhysAddr;
use corestub::dump::{self, MemError};

const START: u64 = 0x8e0_0000;
/// Where the short (kernel-text) segment ends and the long one goes on.
const SHORT_END: u64 = 0x8e3_0000;
const END: u64 = 0x1300_0000;

#[test]
fn direct_map_segment_reads_past_the_shorter_text_segment() {
    let Some(f) = common::fixture_set(
        "x86_64-6.1",
        &["elf-d31.vmcore", "kdump-zlib-d31.kdump"],
        "direct_map_segment_reads_past_the_shorter_text_segment",
    ) else {
        return;
    };
    let elf = dump::open(&f[0]).unwrap();
    let kdump = dump::open(&f[1]).unwrap();
    let (mut same, mut zero_excluded) = (0u64, 0u64);
    let mut a = vec![0u8; 4096];
    let mut b = vec![0u8; 4096];
    for pa in (START..END).step_by(4096) {
        elf.memory
            .read_phys(PhysAddr(pa), &mut a)
            .unwrap_or_else(|e| panic!("ELF page {pa:#x}: {e}"));
        match kdump.memory.read_phys(PhysAddr(pa), &mut b) {
            Ok(()) => {
                assert!(
                    a == b,
                    "page {pa:#x} differs between the ELF and kdump dumps"
                );
                same += 1;
            }
            Err(MemError::Excluded(_)) => {
                assert!(
                    a.iter().all(|&x| x == 0),
                    "page {pa:#x}: excluded in kdump, not zero fill in the ELF"
                );
                zero_excluded += 1;
            }
            Err(e) => panic!("kdump page {pa:#x}: {e}"),
        }
    }
    eprintln!("{same} pages equal to kdump's, {zero_excluded} excluded there and zero here");
    // the pages with file bytes are compared, and most of the range was
    // unreadable before the segments were merged
    assert!(same >= 1, "no stored page compared");
    assert!(zero_excluded * 4096 > END - SHORT_END - 0x10_0000);
    // past the long segment: the next PT_LOAD starts at 0x1f000000
    let mut one = [0u8; 1];
    assert_eq!(
        elf.memory.read_phys(PhysAddr(END), &mut one),
        Err(MemError::NotInDump(PhysAddr(END)))
    );
}
