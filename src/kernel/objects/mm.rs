//! `struct mm_struct`: page tables, size and resident pages.
//!
//! RSS counters changed type in Linux 6.2: `mm->rss_stat` was a `struct
//! mm_rss_stat { atomic_long_t count[NR_MM_COUNTERS]; }` (with per-thread
//! deltas in `task->rss_stat` under SPLIT_RSS_COUNTING), and is now `struct
//! percpu_counter rss_stat[NR_MM_COUNTERS]`. Which one a kernel has is read
//! from the member's DWARF type, not guessed from a version. For percpu
//! counters the value is exact, as `percpu_counter_sum()` (and crash)
//! compute it: the global `count` plus every CPU's not yet folded `s32`
//! delta (`*per_cpu_ptr(counters, cpu)`), over every CPU of the dump, not
//! just the online ones (a panic takes the others offline without folding
//! their deltas). The kernel's cheap `get_mm_counter()` reads `count` only,
//! which for a small process is often 0: up to 32 pages per CPU sit in the
//! deltas.

use super::{Member, Result, member, optional_member, size_of, typed_member};
use crate::addr::VirtAddr;
use crate::kernel::Kernel;

/// `MM_FILEPAGES` and `MM_ANONPAGES`, the counters RSS is made of (as crash
/// and ps count it; the order of this anonymous enum is unchanged since
/// 2.6.34).
pub const RSS_COUNTERS: [u64; 2] = [0, 1];

const MM: &str = "mm_struct";

#[derive(Clone, Debug)]
pub struct MmLayout {
    pub pgd: Member,
    pub total_vm: Option<Member>,
    pub rss: RssCounters,
}

/// Where an mm's RSS counters are and what they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RssCounters {
    /// Before 6.2: `rss_stat.count[i]`, atomic_long_t each (`stride` bytes).
    Atomic { base: Member, stride: u64 },
    /// 6.2+: `rss_stat[i]`, struct percpu_counter each; `count` is the
    /// offset of its global s64, `counters` of its per-CPU `s32 *`.
    PerCpu {
        base: Member,
        stride: u64,
        count: u64,
        counters: u64,
    },
    /// No counters the kernel's DWARF describes.
    None,
}

impl RssCounters {
    pub fn kind(&self) -> &'static str {
        match self {
            RssCounters::Atomic { .. } => "atomic_long_t[]",
            RssCounters::PerCpu { .. } => "percpu_counter[] (count + per-CPU deltas)",
            RssCounters::None => "none",
        }
    }
}

impl MmLayout {
    pub fn resolve(k: &Kernel) -> Result<MmLayout> {
        Ok(MmLayout {
            pgd: member(k, MM, "pgd")?,
            total_vm: optional_member(k, MM, "total_vm")?,
            rss: rss_counters(k)?,
        })
    }
}

fn rss_counters(k: &Kernel) -> Result<RssCounters> {
    let Some((base, f)) = typed_member(k, MM, "rss_stat")? else {
        return Ok(RssCounters::None);
    };
    if f.type_name.starts_with("struct percpu_counter") {
        let d = super::debug_info(k, "struct percpu_counter")?;
        let at = |m: &str| {
            d.offset_of("struct percpu_counter", m)
                .map_err(|e| super::layout_error(&format!("percpu_counter.{m}"), e))
        };
        return Ok(RssCounters::PerCpu {
            base,
            stride: size_of(k, "percpu_counter")?,
            count: at("count")?,
            counters: at("counters")?,
        });
    }
    let Some((base, f)) = typed_member(k, MM, "rss_stat.count")? else {
        return Ok(RssCounters::None);
    };
    Ok(match array_stride(&f.type_name, f.size) {
        Some(stride) => RssCounters::Atomic { base, stride },
        None => RssCounters::None,
    })
}

/// Element size of an array member from its C type (`atomic_long_t [4]`)
/// and total size.
fn array_stride(type_name: &str, size: Option<u64>) -> Option<u64> {
    let n: u64 = type_name
        .rsplit_once('[')?
        .1
        .strip_suffix(']')?
        .parse()
        .ok()?;
    size?.checked_div(n).filter(|&s| s > 0)
}

/// What `ps` shows of an mm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmInfo {
    pub pgd: VirtAddr,
    /// Pages mapped (`total_vm`; 0 when the kernel has no such member).
    pub total_vm: u64,
    /// MM_FILEPAGES + MM_ANONPAGES as the mm holds them (see module docs).
    pub rss: i64,
}

#[derive(Clone, Copy)]
pub struct MmView<'k> {
    pub kernel: &'k Kernel,
    pub layout: &'k MmLayout,
}

impl<'k> MmView<'k> {
    pub fn new(kernel: &'k Kernel) -> Result<Self> {
        Ok(MmView {
            kernel,
            layout: kernel.mm_layout()?,
        })
    }

    /// The sum of a percpu_counter's per-CPU `s32` deltas: `counters` (at
    /// `at` in the mm) is a per-CPU pointer, one slot per CPU of the dump.
    fn percpu_deltas(&self, mm: VirtAddr, base: Member, at: u64) -> Result<i64> {
        let k = self.kernel;
        let ptr = Member {
            path: "rss_stat[].counters",
            offset: at,
            ..base
        };
        let counters = ptr.ptr(k, mm)?;
        let mut sum = 0i64;
        for cpu in 0..k.cpus.len() {
            let off = k
                .per_cpu_offset(cpu)
                .ok_or(super::KernelError::NoSymbol("__per_cpu_offset"))?;
            let delta = Member {
                ty: "percpu_counter",
                path: "*counters",
                offset: 0,
            };
            sum += delta.u32(k, counters.per_cpu(off))? as i32 as i64;
        }
        Ok(sum)
    }

    pub fn read(&self, mm: VirtAddr) -> Result<MmInfo> {
        let (k, l) = (self.kernel, self.layout);
        let counter = |i: u64| -> Result<i64> {
            let (base, stride, inner) = match l.rss {
                RssCounters::Atomic { base, stride } => (base, stride, 0),
                RssCounters::PerCpu {
                    base,
                    stride,
                    count,
                    ..
                } => (base, stride, count),
                RssCounters::None => return Ok(0),
            };
            let elem = base.offset + i * stride;
            let m = Member {
                offset: elem + inner,
                ..base
            };
            // atomic_long_t: a 32-bit long on a 32-bit kernel
            let mut v = match k.arch.pointer_size() {
                4 => m.u32(k, mm)? as i32 as i64,
                _ => m.u64(k, mm)? as i64,
            };
            if let RssCounters::PerCpu { counters, .. } = l.rss {
                v = v.saturating_add(self.percpu_deltas(mm, base, elem + counters)?);
            }
            Ok(v)
        };
        let mut rss = 0i64;
        for i in RSS_COUNTERS {
            rss = rss.saturating_add(counter(i)?);
        }
        Ok(MmInfo {
            pgd: l.pgd.ptr(k, mm)?,
            total_vm: l.total_vm.map(|m| m.ulong(k, mm)).transpose()?.unwrap_or(0),
            rss,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn array_stride_from_the_c_type() {
        assert_eq!(super::array_stride("atomic_long_t [4]", Some(32)), Some(8));
        assert_eq!(super::array_stride("int [4]", Some(16)), Some(4));
        assert_eq!(super::array_stride("struct mm_rss_stat", Some(32)), None);
        assert_eq!(super::array_stride("int [0]", Some(0)), None);
    }
}
