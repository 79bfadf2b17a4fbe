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
        let arr = symbol(k, "task_state_array")?;
        let len = array_len(k)?;
        let mut names = Vec::with_capacity(len);
        let w = k.arch.pointer_size();
        for i in 0..len {
            let slot = arr.checked_add(w * i as u64).ok_or(KernelError::Overflow {
                member: format!("task_state_array[{i}]"),
                base: arr,
                op: '+',
                offset: w * i as u64,
            })?;
            let read = |va: VirtAddr, buf: &mut [u8]| {
                k.read_virt(&k.kernel_space(), va, buf)
                    .map_err(|source| KernelError::Read {
                        member: format!("task_state_array[{i}]"),
                        addr: va,
                        source,
                    })
            };
            let mut p = [0u8; 8];
            read(slot, &mut p[..w as usize])?;
            // "X (xxxx)": the letter and the name's start are enough
            let mut s = [0u8; 4];
            read(VirtAddr(u64::from_le_bytes(p)), &mut s)?;
            names.push(String::from_utf8_lossy(&s).into_owned());
        }
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

/// Entries of `task_state_array`: its ELF symbol size, else its DWARF type.
fn array_len(k: &Kernel) -> Result<usize> {
    let from_elf = k
        .vmlinux
        .as_ref()
        .and_then(|v| v.symbol("task_state_array"))
        .map(|s| s.size / k.arch.pointer_size())
        .filter(|&n| n > 0);
    let from_dwarf = || {
        let ty = k.debug_info()?.variable_type("task_state_array").ok()?;
        let n = ty.rsplit_once('[')?.1.strip_suffix(']')?;
        n.parse::<u64>().ok()
    };
    let n = from_elf
        .or_else(from_dwarf)
        .ok_or_else(|| KernelError::Layout {
            what: "task_state_array".into(),
            reason: "its length is in neither the symbol table nor the DWARF".into(),
        })?;
    if n as usize > MAX_ENTRIES {
        return Err(KernelError::Layout {
            what: "task_state_array".into(),
            reason: format!("{n} entries (at most {MAX_ENTRIES} expected)"),
        });
    }
    Ok(n as usize)
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
