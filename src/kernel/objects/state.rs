//! Task-state letters as the dumped kernel itself reports them.
//!
//! The TASK_* values are macros (not in DWARF) and have moved between
//! versions, so they are not written here. The kernel's
//! `task_state_array` (fs/proc/array.c: "R (running)", "S (sleeping)", …)
//! is read from the dump: entry `i` is the state whose bit is `1 << (i-1)`
//! (entry 0: running, no bit), as `__task_state_index()` indexes it with
//! `fls(state & TASK_REPORT)`. TASK_REPORT is every bit up to the last
//! reported letter (R S D T t X Z P), as drgn derives it. Entries after it
//! are reporting-only states: since 4.14 "I (idle)" stands for TASK_IDLE =
//! TASK_UNINTERRUPTIBLE | TASK_NOLOAD; TASK_NOLOAD is not reported, so its
//! bit comes, as crash derives it, from its fixed place after TASK_PARKED
//! (PARKED, DEAD, WAKEKILL, WAKING, NOLOAD: `PARKED << 4`). Kernels before
//! 4.14 list "N (noload)" themselves, or nothing (no idle letter then).

use super::{KernelError, Result, symbol};
use crate::addr::VirtAddr;
use crate::kernel::Kernel;

/// Letters of the states in TASK_REPORT.
const REPORTED: &[u8] = b"RSDTtXZP";
/// Longest `task_state_array` we accept (4.14+ has 9 entries, 3.x had 12).
const MAX_ENTRIES: usize = 16;

/// The kernel's state letters and the bits they stand for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskStates {
    /// Letter of each `task_state_array` entry.
    letters: Vec<char>,
    /// TASK_REPORT: the bits `__task_state_index()` keeps.
    report: u32,
    /// TASK_UNINTERRUPTIBLE | TASK_NOLOAD and the index of "I (idle)".
    idle: Option<(u32, usize)>,
}

impl TaskStates {
    /// Reads `task_state_array` from the dump.
    pub fn resolve(k: &Kernel) -> Result<TaskStates> {
        let (arr, len) = match symbol(k, "task_state_array") {
            Ok(arr) => (arr, array_len(k)?),
            Err(e) => (array_by_structure(k).ok_or(e)?, Length::AtMost(MAX_ENTRIES)),
        };
        let names = match len {
            Length::Exact(n) => (0..n)
                .map(|i| {
                    entry(k, arr, i)?.ok_or_else(|| KernelError::Corrupt {
                        what: "task_state_array".into(),
                        addr: arr,
                        reason: format!("entry {i} is a null pointer"),
                    })
                })
                .collect::<Result<Vec<String>>>()?,
            Length::AtMost(n) => leading_entries(k, arr, n)?,
        };
        Self::from_names(&names).map_err(|reason| KernelError::Corrupt {
            what: "task_state_array".into(),
            addr: arr,
            reason,
        })
    }

    /// The table from the array's strings (each starts with its letter).
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> std::result::Result<TaskStates, String> {
        let letters: Vec<char> = names
            .iter()
            .map(|n| n.as_ref().chars().next().unwrap_or('?'))
            .collect();
        if letters.len() > MAX_ENTRIES {
            return Err(format!(
                "{} entries (at most {MAX_ENTRIES} expected)",
                letters.len()
            ));
        }
        let last = letters
            .iter()
            .rposition(|&c| c.is_ascii() && REPORTED.contains(&(c as u8)))
            .filter(|&i| letters.first() == Some(&'R') && i > 0)
            .ok_or_else(|| format!("no reported states in {letters:?}"))?;
        let report = (1u32 << last) - 1;
        let bit = |c: char| {
            let i = letters.iter().position(|&l| l == c)?;
            Some(1u32 << i.checked_sub(1)?)
        };
        let idle = letters.iter().position(|&c| c == 'I').and_then(|i| {
            let noload = bit('N').or_else(|| bit('P').map(|p| p << 4))?;
            Some((bit('D')? | noload, i))
        });
        Ok(TaskStates {
            letters,
            report,
            idle,
        })
    }

    /// The letter /proc/PID/stat would show for `state` and `exit_state`
    /// (`task_state_to_char()`).
    pub fn letter(&self, state: u32, exit_state: u32) -> char {
        if let Some((mask, i)) = self.idle
            && state & mask == mask
        {
            return self.letters[i];
        }
        let reported = (state | exit_state) & self.report;
        let index = (u32::BITS - reported.leading_zeros()) as usize;
        self.letters.get(index).copied().unwrap_or('?')
    }
}

/// `task_state_array` found in the image when no symbol names it (arm64
/// cloud kernels list functions only): a pointer-aligned slot holding the
/// address of an "R (running)" string, whose entries make a state table
/// ([`leading_entries`], [`TaskStates::from_names`]). 64-bit kernels.
fn array_by_structure(k: &Kernel) -> Option<VirtAddr> {
    use crate::kernel::init_task_search::scan_image;
    let w = k.arch.pointer_size();
    let (lo, hi) = k.image_scan_range().filter(|_| w == 8)?;
    let page = k.paging.page_size();
    let t0 = std::time::Instant::now();
    let (arr, scanned) = scan_image(k, lo, hi, page, b"R (running)\0", |running, _| {
        let slot = scan_image(k, lo, hi, page, &running.to_le_bytes(), |slot, _| {
            let names = leading_entries(k, VirtAddr(slot), MAX_ENTRIES).ok()?;
            let ok = slot % w == 0 && names.len() > 1 && TaskStates::from_names(&names).is_ok();
            ok.then_some(slot)
        });
        slot.map(|(slot, _)| slot)
    })?;
    log::info!(
        "task_state_array not among the symbols: found by its entries at {arr:#x} \
         ({} KiB of the image scanned, in {:?})",
        scanned >> 10,
        t0.elapsed()
    );
    Some(VirtAddr(arr))
}

/// How many entries `task_state_array` has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Length {
    /// From its DWARF type or a debug vmlinux's symbol size.
    Exact(usize),
    /// From a symbol file built from kallsyms, whose symbol runs to the next
    /// one (alignment padding or other objects may follow the array).
    AtMost(usize),
}

/// Entries of `task_state_array`: a debug vmlinux's ELF symbol size, else
/// its DWARF type (BTF's, where BTF has the variable), else the bound a
/// symbol file built from kallsyms gives.
fn array_len(k: &Kernel) -> Result<Length> {
    let from_elf = k.vmlinux.as_ref().and_then(|v| {
        let n = v.symbol("task_state_array")?.size / k.arch.pointer_size();
        (n > 0).then_some((n, !v.sizes_are_bounds()))
    });
    let from_dwarf = || {
        let ty = k.debug_info()?.variable_type("task_state_array").ok()?;
        let n = ty.rsplit_once('[')?.1.strip_suffix(']')?;
        n.parse::<u64>().ok().map(|n| (n, true))
    };
    let (n, exact) = match from_elf {
        Some((n, true)) => (n, true),
        bound => from_dwarf().or(bound).ok_or_else(|| KernelError::Layout {
            what: "task_state_array".into(),
            reason: "its length is in neither the symbol table nor the DWARF".into(),
        })?,
    };
    match (exact, usize::try_from(n)) {
        (true, Ok(n)) if n <= MAX_ENTRIES => Ok(Length::Exact(n)),
        (false, _) => Ok(Length::AtMost(n.min(MAX_ENTRIES as u64) as usize)),
        _ => Err(KernelError::Layout {
            what: "task_state_array".into(),
            reason: format!("{n} entries (at most {MAX_ENTRIES} expected)"),
        }),
    }
}

/// The array's entries up to the first that is not one (a null pointer or
/// a string not shaped "X (name)"), at most `bound`: the array's length
/// when only an upper bound of it is known. Unreadable memory is an error,
/// not an end: it could hide entries.
fn leading_entries(k: &Kernel, arr: VirtAddr, bound: usize) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for i in 0..bound {
        match entry(k, arr, i)? {
            Some(name) if is_state_name(&name) => names.push(name),
            _ => break,
        }
    }
    Ok(names)
}

/// Does `name` read like fs/proc/array.c's entries: a letter, a space and
/// a lower-case name in parentheses ("t (tracing stop)")?
fn is_state_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() > 4
        && b[0].is_ascii_alphabetic()
        && b[1..3] == *b" ("
        && b[b.len() - 1] == b')'
        && b[3..b.len() - 1]
            .iter()
            .all(|&c| c.is_ascii_lowercase() || c == b' ')
}

/// Longest entry string read ("t (tracing stop)" has 16 bytes).
const MAX_NAME: usize = 24;

/// Entry `i` of the array: its string (up to its NUL or [`MAX_NAME`]
/// bytes), `None` for a null pointer.
fn entry(k: &Kernel, arr: VirtAddr, i: usize) -> Result<Option<String>> {
    let w = k.arch.pointer_size();
    let member = || format!("task_state_array[{i}]");
    let offset = w.checked_mul(i as u64);
    let slot = offset
        .and_then(|o| arr.checked_add(o))
        .ok_or(KernelError::Overflow {
            member: member(),
            base: arr,
            op: '+',
            offset: offset.unwrap_or(u64::MAX),
        })?;
    let read = |va: VirtAddr, buf: &mut [u8]| {
        k.read_virt(&k.kernel_space(), va, buf)
            .map_err(|source| KernelError::Read {
                member: member(),
                addr: va,
                source,
            })
    };
    let mut p = [0u8; 8];
    read(slot, &mut p[..w as usize])?;
    let ptr = u64::from_le_bytes(p);
    if ptr == 0 {
        return Ok(None);
    }
    // page by page (4 KiB, the smallest), so that a short string at the
    // end of the last mapped page reads
    let mut s = Vec::with_capacity(MAX_NAME);
    let mut at = ptr;
    while s.len() < MAX_NAME && !s.contains(&0) {
        let to_page_end = 0x1000 - (at & 0xfff) as usize;
        let mut chunk = vec![0u8; to_page_end.min(MAX_NAME - s.len())];
        read(VirtAddr(at), &mut chunk)?;
        s.extend_from_slice(&chunk);
        at = at
            .checked_add(chunk.len() as u64)
            .ok_or(KernelError::Overflow {
                member: member(),
                base: VirtAddr(ptr),
                op: '+',
                offset: s.len() as u64,
            })?;
    }
    Ok(Some(super::c_string(&s)))
}

#[cfg(test)]
mod tests {
    use super::TaskStates;

    /// fs/proc/array.c since 4.14 (TASK_REPORT_IDLE after TASK_PARKED).
    const V4_14: [&str; 9] = [
        "R (running)",
        "S (sleeping)",
        "D (disk sleep)",
        "T (stopped)",
        "t (tracing stop)",
        "X (dead)",
        "Z (zombie)",
        "P (parked)",
        "I (idle)",
    ];

    #[test]
    fn letters_follow_the_kernels_array() {
        let s = TaskStates::from_names(&V4_14).unwrap();
        assert_eq!(s.letter(0, 0), 'R');
        assert_eq!(s.letter(0x1, 0), 'S');
        assert_eq!(s.letter(0x2, 0), 'D');
        // TASK_KILLABLE = WAKEKILL | UNINTERRUPTIBLE
        assert_eq!(s.letter(0x102, 0), 'D');
        assert_eq!(s.letter(0x4, 0), 'T');
        assert_eq!(s.letter(0x8, 0), 't');
        assert_eq!(s.letter(0x80, 0x20), 'Z');
        assert_eq!(s.letter(0x80, 0x10), 'X');
        assert_eq!(s.letter(0x40, 0), 'P');
        // TASK_IDLE = UNINTERRUPTIBLE | NOLOAD (0x400 = PARKED << 4)
        assert_eq!(s.letter(0x402, 0), 'I');
        // TASK_NOLOAD alone is not idle; TASK_WAKING alone reports R
        assert_eq!(s.letter(0x400, 0), 'R');
        assert_eq!(s.letter(0x200, 0), 'R');
    }

    #[test]
    fn entries_are_told_from_what_follows_the_array() {
        for name in V4_14 {
            assert!(super::is_state_name(name), "{name}");
        }
        for other in ["", "R", "R (", "R ()x", "R (Running)", "(idle)", "RS (x)"] {
            assert!(!super::is_state_name(other), "{other}");
        }
    }

    #[test]
    fn older_arrays_and_nonsense() {
        // 3.14-4.13: seven entries, no idle letter (TASK_IDLE shows as D)
        let s = TaskStates::from_names(&V4_14[..7]).unwrap();
        assert_eq!(s.letter(0x402, 0), 'D');
        assert_eq!(s.letter(0, 0x20), 'Z');
        assert!(TaskStates::from_names(&["garbage"; 3]).is_err());
        assert!(TaskStates::from_names::<&str>(&[]).is_err());
        assert!(TaskStates::from_names(&["R (running)"; 40]).is_err());
    }
}
