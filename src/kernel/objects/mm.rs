//! `struct mm_struct`: page tables, size and resident pages.
//!
//! RSS counters changed type in Linux 6.2: `mm->rss_stat` was a `struct
//! mm_rss_stat { atomic_long_t count[NR_MM_COUNTERS]; }` (with per-thread
//! deltas in `task->rss_stat` under SPLIT_RSS_COUNTING), and is now `struct
//! percpu_counter rss_stat[NR_MM_COUNTERS]`. Which one a kernel has is read
//! from the member's DWARF type, not guessed from a version. For percpu
//! counters the value is the counter's global `count`, clamped at 0: what
//! the kernel's own `get_mm_counter()` (`percpu_counter_read_positive`)
//! returns, hence what /proc/PID/status showed; the per-CPU deltas not yet
//! folded in (at most the batch size per CPU) are not added.

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
    /// offset of its global s64.
    PerCpu {
        base: Member,
        stride: u64,
        count: u64,
    },
    /// No counters the kernel's DWARF describes.
    None,
}

impl RssCounters {
    pub fn kind(&self) -> &'static str {
        match self {
            RssCounters::Atomic { .. } => "atomic_long_t[]",
            RssCounters::PerCpu { .. } => "percpu_counter[] (global count)",
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
        let count = d
            .offset_of("struct percpu_counter", "count")
            .map_err(|e| super::layout_error("percpu_counter.count", e))?;
        return Ok(RssCounters::PerCpu {
            base,
            stride: size_of(k, "percpu_counter")?,
            count,
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

    pub fn read(&self, mm: VirtAddr) -> Result<MmInfo> {
        let (k, l) = (self.kernel, self.layout);
        let counter = |i: u64| -> Result<i64> {
            let (base, stride, inner) = match l.rss {
                RssCounters::Atomic { base, stride } => (base, stride, 0),
                RssCounters::PerCpu {
                    base,
                    stride,
                    count,
                } => (base, stride, count),
                RssCounters::None => return Ok(0),
            };
            let m = Member {
                offset: base.offset + i * stride + inner,
                ..base
            };
            let v = m.u64(k, mm)? as i64;
            Ok(match l.rss {
                RssCounters::PerCpu { .. } => v.max(0),
                _ => v,
            })
        };
        let mut rss = 0i64;
        for i in RSS_COUNTERS {
            rss = rss.saturating_add(counter(i)?);
        }
        Ok(MmInfo {
            pgd: l.pgd.ptr(k, mm)?,
            total_vm: l.total_vm.map(|m| m.u64(k, mm)).transpose()?.unwrap_or(0),
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
