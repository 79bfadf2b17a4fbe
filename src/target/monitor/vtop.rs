//! `vtop`, `ptov` and `kmem -p`: page-table walks, the direct map and
//! `struct page`, printed as crash prints them.

use super::fmt::{center, page_size};
use super::{CmdError, CmdResult, parse_addr, parse_dec, usage};
use crate::addr::{Arch, PhysAddr, VirtAddr};
use crate::kernel::tasks::TaskReader;
use crate::kernel::{Kernel, page};
use crate::mmu::{AddressSpace, Paging, TranslateError, WalkStep};
use crate::target::Session;

/// x86_64 entry flag names by bit (bit 7 is PSE in a large-page entry and
/// PAT in a 4 KiB PTE; bit 12 is PAT in a large-page entry).
fn x86_flags(entry: u64, large: bool) -> Vec<&'static str> {
    let mut v = Vec::new();
    let bits: [(u32, &str); 7] = [
        (0, "PRESENT"),
        (1, "RW"),
        (2, "USER"),
        (3, "PWT"),
        (4, "PCD"),
        (5, "ACCESSED"),
        (6, "DIRTY"),
    ];
    for (b, n) in bits {
        if entry & (1 << b) != 0 {
            v.push(n);
        }
    }
    if entry & (1 << 7) != 0 {
        v.push(if large { "PSE" } else { "PAT" });
    }
    if entry & (1 << 8) != 0 {
        v.push("GLOBAL");
    }
    if large && entry & (1 << 12) != 0 {
        v.push("PAT");
    }
    if entry & (1 << 63) != 0 {
        v.push("NX");
    }
    v
}

/// arm64 descriptor flag names (crash's spelling where it has one).
fn arm64_flags(entry: u64, page_level: bool) -> Vec<&'static str> {
    let mut v = Vec::new();
    if entry & 1 != 0 {
        v.push("VALID");
    }
    // bit 1: table (non-leaf) / page (level-3 leaf); clear for a block
    if entry & 2 != 0 && page_level {
        v.push("PAGE");
    } else if entry & 2 == 0 && entry & 1 != 0 {
        v.push("BLOCK");
    }
    let bits: [(u32, &str); 9] = [
        (6, "USER"),
        (7, "RDONLY"),
        (10, "AF"),
        (11, "NG"),
        (51, "DBM"),
        (52, "CONT"),
        (53, "PXN"),
        (54, "UXN"),
        (55, "DIRTY"),
    ];
    for (b, n) in bits {
        if b == 10 && (entry >> 8) & 3 == 3 {
            v.push("SHARED");
        }
        if entry & (1 << b) != 0 {
            v.push(n);
        }
    }
    if entry & (1 << 56) != 0 {
        v.push("SPECIAL");
    }
    v
}

/// ARMv7 short-descriptor leaf flags (B3.5.1): the descriptor's kind,
/// then the memory-attribute and access bits of a small/large page or a
/// (super)section, which sit at different bits.
fn arm_short_flags(entry: u64, page_size: u64) -> Vec<&'static str> {
    let (kind, bits): (&str, &[(u32, &'static str)]) = match page_size {
        4096 => (
            "SMALL",
            &[
                (0, "XN"),
                (2, "B"),
                (3, "C"),
                (5, "USER"),
                (9, "RDONLY"),
                (10, "S"),
                (11, "NG"),
            ],
        ),
        65536 => (
            "LARGE",
            &[
                (2, "B"),
                (3, "C"),
                (5, "USER"),
                (9, "RDONLY"),
                (10, "S"),
                (11, "NG"),
                (15, "XN"),
            ],
        ),
        _ => (
            if page_size == 16 << 20 {
                "SUPERSECTION"
            } else {
                "SECTION"
            },
            &[
                (0, "PXN"),
                (2, "B"),
                (3, "C"),
                (4, "XN"),
                (11, "USER"),
                (15, "RDONLY"),
                (16, "S"),
                (17, "NG"),
            ],
        ),
    };
    let mut v = vec![kind];
    v.extend(
        bits.iter()
            .filter(|(b, _)| entry & (1 << b) != 0)
            .map(|&(_, n)| n),
    );
    v
}

/// The virtual address to show for a page-table root: the kernel's symbol
/// for its own tables, else the direct-map address, else the physical one.
fn root_label(k: &Kernel, space: &AddressSpace, va: VirtAddr) -> String {
    let root = if k.paging.is_user(va) {
        space.user
    } else {
        Some(space.kernel)
    };
    let Some(root) = root else {
        return "(none)".into();
    };
    let pa = PhysAddr(root.0.0 & 0x000f_ffff_ffff_f000);
    if root == k.kernel_root {
        let sym = match k.arch {
            Arch::X86_64 => "init_top_pgt",
            Arch::Aarch64 | Arch::I386 | Arch::Arm => "swapper_pg_dir",
        };
        if let Some(s) = k.symbol(sym) {
            return format!("{:x}", s.0);
        }
    }
    match page::ptov(k, pa) {
        Ok(v) => format!("{:x}", v.0),
        Err(_) => format!("{:x} (physical)", pa.0),
    }
}

fn parse_space(s: &Session, args: &[&str]) -> Result<(AddressSpace, Vec<u64>), CmdError> {
    let k = &s.kernel;
    let mut space = k.kernel_space();
    let mut addrs = Vec::new();
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        match a {
            "-c" => {
                let Some(n) = it.next() else {
                    return usage("-c needs a CPU number");
                };
                let cpu = parse_dec("CPU", n)? as usize;
                let Some(sp) = s.cpu_state().spaces.get(cpu) else {
                    return usage(format!(
                        "no CPU {cpu} (the dump has CPUs 0..{})",
                        k.cpus.len().saturating_sub(1)
                    ));
                };
                space = *sp;
            }
            "-p" => {
                let Some(n) = it.next() else {
                    return usage("-p needs a PID");
                };
                let pid = parse_dec("PID", n)?;
                let r = TaskReader::new(k)?;
                let tasks = r.all_tasks()?;
                let Some(t) = tasks.iter().find(|t| t.pid as u64 == pid) else {
                    return Err(CmdError::Failed(format!("no task with PID {pid}")));
                };
                space = r.address_space(t);
            }
            _ if a.starts_with('-') && a.len() > 1 => return usage(format!("unknown option {a}")),
            _ => addrs.push(parse_addr(k, a)?),
        }
    }
    if addrs.is_empty() {
        return usage("an address is needed");
    }
    Ok((space, addrs))
}

/// `vtop [-c CPU] ADDR...`
pub(super) fn vtop(s: &Session, args: &[&str]) -> CmdResult {
    let (space, addrs) = parse_space(s, args)?;
    let mut out = String::new();
    for (i, va) in addrs.into_iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&vtop_one(&s.kernel, &space, VirtAddr(va)));
    }
    Ok(out)
}

/// The walk of one address, as crash prints it. Unmapped or unreadable
/// addresses print the levels that were read and the reason.
pub fn vtop_one(k: &Kernel, space: &AddressSpace, va: VirtAddr) -> String {
    let mut steps: Vec<WalkStep> = Vec::new();
    let res = k
        .paging
        .translate(k.dump.memory.as_ref(), space, va, Some(&mut steps));
    let mut out = String::from("VIRTUAL           PHYSICAL        \n");
    match &res {
        Ok(t) => out.push_str(&format!("{:<16x}  {:<16x}\n", va.0, t.pa.0)),
        Err(TranslateError::NonCanonical { .. }) => {
            out.push_str(&format!("{:<16x}  (not a canonical address)\n", va.0));
            return out;
        }
        Err(_) => out.push_str(&format!("{:<16x}  (not mapped)\n", va.0)),
    }
    out.push('\n');
    let root = root_label(k, space, va);
    match k.arch {
        Arch::X86_64 => {
            out.push_str(&format!("PGD DIRECTORY: {root}\n"));
            if let Some(first) = steps.first() {
                out.push_str(&format!("PAGE DIRECTORY: {:x}\n", first.entry));
            }
        }
        Arch::Aarch64 | Arch::I386 | Arch::Arm => {
            out.push_str(&format!("PAGE DIRECTORY: {root}\n"))
        }
    }
    for st in &steps {
        out.push_str(&format!(
            "{:>6}: {:x} => {:x}\n",
            st.level, st.entry_pa.0, st.entry
        ));
    }
    let t = match res {
        Ok(t) => t,
        Err(e) => {
            out.push_str(&format!("\n{e}\n"));
            if matches!(e, TranslateError::NoRoot { .. }) {
                out.push_str(
                    "(no user page tables known here: use -p PID, or -c CPU with the debug vmlinux)\n",
                );
            }
            return out;
        }
    };
    let base = PhysAddr(t.pa.0 & !(t.page_size - 1));
    if t.page_size != k.paging.page_size() {
        out.push_str(&format!(
            "  PAGE: {:x}  ({})\n",
            base.0,
            page_size(t.page_size)
        ));
    } else {
        out.push_str(&format!("  PAGE: {:x}\n", base.0));
    }
    if let Some(leaf) = steps.last() {
        let large = t.page_size != k.paging.page_size();
        let flags = match k.arch {
            Arch::X86_64 | Arch::I386 => x86_flags(leaf.entry, large),
            Arch::Aarch64 => arm64_flags(leaf.entry, !large),
            // LPAE descriptors have arm64's layout (and Linux's software
            // bits DIRTY/SPECIAL at 55/56 as on arm64)
            Arch::Arm if matches!(&k.paging, Paging::Arm(p) if p.is_lpae()) => {
                arm64_flags(leaf.entry, !large)
            }
            Arch::Arm => arm_short_flags(leaf.entry, t.page_size),
        };
        let ew = format!("{:x}", leaf.entry).len().max(3);
        let pw = format!("{:x}", base.0).len().max(8);
        out.push_str(&format!(
            "\n{}  {:>pw$}  FLAGS\n{:x}  {:>pw$x}  ({})\n",
            center("PTE", ew),
            "PHYSICAL",
            leaf.entry,
            base.0,
            flags.join("|")
        ));
    }
    out.push('\n');
    out.push_str(&page_table(k, &[t.pa]));
    out
}

/// crash's `kmem -p` table for physical addresses.
fn page_table(k: &Kernel, pas: &[PhysAddr]) -> String {
    let mut out = String::from("      PAGE       PHYSICAL      MAPPING       INDEX CNT FLAGS\n");
    for &pa in pas {
        match page::read_page(k, pa) {
            Ok(p) => {
                let names = page::page_flag_names(k, p.flags);
                out.push_str(&format!(
                    "{:x} {:>8x} {:>16x} {:>8x} {:>2} {:x}{}{}\n",
                    p.page.0,
                    p.pa.0,
                    p.mapping,
                    p.index,
                    p.refcount,
                    p.flags,
                    if names.is_empty() { "" } else { " " },
                    names.join(",")
                ));
            }
            Err(e) => out.push_str(&format!("(struct page of {pa}: {e})\n")),
        }
    }
    out
}

/// `kmem -p PADDR...`
pub(super) fn kmem(s: &Session, args: &[&str]) -> CmdResult {
    let k = &s.kernel;
    let ["-p", addrs @ ..] = args else {
        return usage("only 'kmem -p PADDR...' is supported");
    };
    if addrs.is_empty() {
        return usage("a physical address is needed");
    }
    let mut pas = Vec::new();
    for a in addrs {
        pas.push(PhysAddr(parse_addr(k, a)?));
    }
    // A struct page that cannot be located at all is a failure, not a row.
    page::vmemmap(k)?;
    Ok(page_table(k, &pas))
}

/// `ptov PADDR...`
pub(super) fn ptov(s: &Session, args: &[&str]) -> CmdResult {
    let k = &s.kernel;
    if args.is_empty() {
        return usage("a physical address is needed");
    }
    let mut out = String::from("VIRTUAL           PHYSICAL\n");
    for a in args {
        let pa = PhysAddr(parse_addr(k, a)?);
        let va = page::ptov(k, pa)?;
        out.push_str(&format!("{:<16x}  {:x}\n", va.0, pa.0));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_flags_like_crash() {
        assert_eq!(
            x86_flags(0x8000_0000_023a_2163, false).join("|"),
            "PRESENT|RW|ACCESSED|DIRTY|GLOBAL|NX"
        );
        assert_eq!(
            x86_flags(0x6c0_01e1, true).join("|"),
            "PRESENT|ACCESSED|DIRTY|PSE|GLOBAL"
        );
    }
}
