//! The gdbstub target: a stopped machine whose threads are the dump's CPUs
//! and whose memory is read through the dump's page tables.
//!
//! Thread ids: CPU N is thread N+1, listed first and in CPU order (the
//! kernel's scripts/gdb map GDB thread N to CPU N-1).

pub mod aarch64;
pub mod arm;
pub mod colocate;
pub mod conn;
pub mod i386;
pub mod kcore;
pub mod live;
pub mod monitor;
pub mod refresh;
pub mod regs;
pub mod session;
pub mod x86_64;

use std::fmt::Debug;
use std::num::NonZeroUsize;
use std::sync::Arc;

use gdbstub::common::{Endianness, Pid, Tid};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::base::multithread::MultiThreadBase;
use gdbstub::target::ext::base::single_register_access::{
    SingleRegisterAccess, SingleRegisterAccessOps,
};
use gdbstub::target::ext::host_info::{HostInfo, HostInfoOps, HostInfoResponse};
use gdbstub::target::ext::monitor_cmd::{ConsoleOutput, MonitorCmd, MonitorCmdOps};
use gdbstub::target::ext::process_info::{ProcessInfo, ProcessInfoOps, ProcessInfoResponse};
use gdbstub::target::ext::thread_extra_info::{ThreadExtraInfo, ThreadExtraInfoOps};
use gdbstub::target::{Target, TargetError, TargetResult};

use crate::addr::VirtAddr;
use crate::kernel::tasks::TaskReader;
use crate::kernel::{CpuContext, Kernel};
use crate::mmu::AddressSpace;
use regs::{RegNum, RegTable, Regs, TableArch};
pub use session::{Session, ThreadMode, ThreadRef};

/// What an architecture must provide to be served.
pub trait ArchSupport: RegTable + Debug + Sized {
    /// LLVM target triple for LLDB's qHostInfo/qProcessInfo.
    const TRIPLE: &'static str;

    /// A CPU's registers as its dump note saved them.
    fn cpu_registers(kernel: &Kernel, cpu: &CpuContext) -> Regs<Self>;

    /// The starting point for a sleeping task's registers (all unavailable
    /// but what every thread of the arch has, e.g. arm64's PAC masks); the
    /// switch-frame registers are set on top by name.
    fn task_registers(_kernel: &Kernel) -> Regs<Self> {
        Regs::default()
    }

    /// Records the task the thread runs (`current`) where the architecture
    /// keeps it in a register (arm64: SP_EL0). Default: nowhere.
    fn set_current_task(_regs: &mut Regs<Self>, _task: Option<u64>) {}
}

impl ArchSupport for x86_64::X86_64 {
    const TRIPLE: &'static str = "x86_64-unknown-linux-gnu";

    fn cpu_registers(_kernel: &Kernel, cpu: &CpuContext) -> Regs<Self> {
        x86_64::cpu_registers(cpu)
    }
}

impl ArchSupport for aarch64::Aarch64 {
    const TRIPLE: &'static str = "aarch64-unknown-linux-gnu";

    fn cpu_registers(kernel: &Kernel, cpu: &CpuContext) -> Regs<Self> {
        let mask = kernel.number("KERNELPACMASK");
        aarch64::cpu_registers(cpu, mask)
    }

    fn task_registers(kernel: &Kernel) -> Regs<Self> {
        let mut regs = Regs::default();
        let mask = kernel.number("KERNELPACMASK");
        aarch64::set_pac_masks(&mut regs, mask);
        regs
    }

    fn set_current_task(regs: &mut Regs<Self>, task: Option<u64>) {
        aarch64::set_sp_el0(regs, task);
    }
}

impl ArchSupport for i386::I386 {
    const TRIPLE: &'static str = "i386-unknown-linux-gnu";

    fn cpu_registers(_kernel: &Kernel, cpu: &CpuContext) -> Regs<Self> {
        i386::cpu_registers(cpu)
    }
}

impl ArchSupport for arm::Arm {
    // LLDB reads a kernel vmlinux as arm-*-*-eabi and drops it as the
    // target's executable when qHostInfo names an incompatible environment
    // (armv7-…-gnueabihf was: no symbols at all).
    const TRIPLE: &'static str = "arm-unknown-linux-eabi";

    fn cpu_registers(_kernel: &Kernel, cpu: &CpuContext) -> Regs<Self> {
        arm::cpu_registers(cpu)
    }
}

/// A CPU whose note saved `n` registers numbered 0x100, 0x101, …, for the
/// register tables' tests.
#[cfg(test)]
fn numbered_cpu(n: u64) -> CpuContext {
    CpuContext {
        index: 0,
        note_pid: 1,
        regs: (0..n).map(|i| 0x100 + i).collect(),
        space: AddressSpace {
            kernel: crate::addr::PageTableRoot(crate::addr::PhysAddr(0)),
            user: None,
        },
        control: None,
        seg_bases: None,
    }
}

/// Per-connection target state over a shared [`Session`].
pub struct DumpTarget<A: ArchSupport> {
    session: Arc<Session>,
    _arch: std::marker::PhantomData<A>,
}

fn tid(n: usize) -> Tid {
    NonZeroUsize::new(n).expect("thread ids start at 1")
}

impl<A: ArchSupport> DumpTarget<A> {
    pub fn new(session: Arc<Session>) -> Self {
        DumpTarget {
            session,
            _arch: std::marker::PhantomData,
        }
    }

    fn thread(&self, t: Tid) -> Option<ThreadRef> {
        self.session.threads().get(t.get())
    }

    fn space(&self, t: Tid) -> AddressSpace {
        match self.thread(t) {
            Some(ThreadRef::Cpu(i)) => self.session.cpu_state().spaces[i],
            Some(ThreadRef::Task(j)) => self.session.tasks()[j].space,
            None => self.session.kernel.kernel_space(),
        }
    }

    /// CPU `i`'s registers from its note, plus the running task where the
    /// arch keeps it in a register. A CPU without saved registers (the
    /// running kernel, RAM without registers) shows its current task's last
    /// switch frame instead (labelled `[running]`), never invented values.
    fn cpu_registers(&self, i: usize) -> Regs<A> {
        let k = &self.session.kernel;
        let current = self
            .session
            .cpu_state()
            .tasks
            .get(i)
            .and_then(Option::as_ref);
        if !self.session.cpu_has_registers(i)
            && let Some(task) = current
        {
            let saved = TaskReader::new(k)
                .and_then(|r| r.switch_registers(task))
                .map_err(|e| e.to_string());
            return self.switch_frame(task.addr.0, &saved);
        }
        let mut regs = A::cpu_registers(k, &k.cpus[i]);
        A::set_current_task(&mut regs, current.map(|t| t.addr.0));
        regs
    }

    /// A task's registers as its last context switch saved them.
    fn switch_frame(&self, task: u64, saved: &Result<Vec<(&'static str, u64)>, String>) -> Regs<A> {
        let mut regs = A::task_registers(&self.session.kernel);
        A::set_current_task(&mut regs, Some(task));
        if let Ok(saved) = saved {
            for (name, v) in saved {
                regs.set(name, *v);
            }
        }
        regs
    }

    fn registers(&self, t: Tid) -> Option<Regs<A>> {
        match self.thread(t)? {
            ThreadRef::Cpu(i) => Some(self.cpu_registers(i)),
            ThreadRef::Task(j) => {
                let tt = &self.session.tasks()[j];
                if let Some(cpu) = tt.running_on
                    && self.session.cpu_has_registers(cpu)
                {
                    return Some(self.cpu_registers(cpu));
                }
                Some(self.switch_frame(tt.task.addr.0, &tt.switch_regs))
            }
        }
    }
}

impl<A: ArchSupport> Target for DumpTarget<A> {
    type Arch = TableArch<A>;
    type Error = String;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::MultiThread(self)
    }

    // No breakpoints can ever be hit in a dump; GDB's software breakpoints
    // would turn into memory writes, which fail with a clear error.
    fn guard_rail_implicit_sw_breakpoints(&self) -> bool {
        true
    }

    /// Binary memory reads (`x`, gdbstub patch 9): qSupported offers
    /// `binary-upload+`, which GDB >= 16.2 and LLDB >= 20 take; a byte costs
    /// one character on the wire instead of two hex digits. Older clients
    /// keep reading with `m` (GDB 13 does not know `x`; LLDB <= 19 probes
    /// `x0,0` for its own format and gets `b`, not `OK`).
    fn use_x_lowcase_packet(&self) -> bool {
        true
    }

    fn resume_stub_message(&self) -> &str {
        "corestub: this is a crash dump; it cannot run, continue or step (the machine is stopped for good)\n"
    }

    fn support_monitor_cmd(&mut self) -> Option<MonitorCmdOps<'_, Self>> {
        Some(self)
    }

    fn support_host_info(&mut self) -> Option<HostInfoOps<'_, Self>> {
        Some(self)
    }

    fn support_process_info(&mut self) -> Option<ProcessInfoOps<'_, Self>> {
        Some(self)
    }
}

impl<A: ArchSupport> MultiThreadBase for DumpTarget<A> {
    fn read_registers(&mut self, regs: &mut Regs<A>, t: Tid) -> TargetResult<(), Self> {
        *regs = self.registers(t).ok_or(TargetError::NonFatal)?;
        Ok(())
    }

    fn write_registers(&mut self, _regs: &Regs<A>, _t: Tid) -> TargetResult<(), Self> {
        Err(TargetError::NonFatal)
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8], t: Tid) -> TargetResult<usize, Self> {
        let space = self.space(t);
        let (n, err) = self
            .session
            .kernel
            .read_virt_partial(&space, VirtAddr(start), data);
        if n == 0 {
            if let Some(e) = err {
                log::debug!("read {start:#x}+{:#x}: {e}", data.len());
            }
            // EFAULT: GDB prints "Cannot access memory at address ..."
            return Err(TargetError::Errno(14));
        }
        Ok(n)
    }

    fn write_addrs(&mut self, start: u64, _data: &[u8], _t: Tid) -> TargetResult<(), Self> {
        log::warn!("refused a memory write at {start:#x}: the dump is read-only");
        Err(TargetError::Errno(30)) // EROFS
    }

    fn list_active_threads(&mut self, cb: &mut dyn FnMut(Tid)) -> Result<(), Self::Error> {
        for (t, _) in &self.session.threads().order {
            cb(tid(*t));
        }
        Ok(())
    }

    fn is_thread_alive(&mut self, t: Tid) -> Result<bool, Self::Error> {
        Ok(self.thread(t).is_some())
    }

    /// The thread list with its labels in one `qXfer:threads:read` (gdbstub
    /// patch 8) instead of a `qThreadExtraInfo` per thread.
    fn use_threads_xml(&self) -> bool {
        true
    }

    // LLDB names threads only from stop replies (vendor patch 12).
    fn use_thread_stop_info(&self) -> bool {
        true
    }

    fn initial_stop_thread(&mut self) -> Result<Option<Tid>, Self::Error> {
        Ok(self.session.panic_cpu.map(|c| tid(c + 1)))
    }

    fn support_thread_extra_info(&mut self) -> Option<ThreadExtraInfoOps<'_, Self>> {
        Some(self)
    }

    fn support_single_register_access(&mut self) -> Option<SingleRegisterAccessOps<'_, Tid, Self>> {
        Some(self)
    }
}

/// `p`/`P` packets. GDB reads the whole file with `g`; LLDB reads register
/// by register once it sees `p` answered. A register the dump does not hold
/// is an error reply rather than `xx…`: LLDB 14 decodes `x` digits as 0xcc
/// bytes and would show made-up values, while an error makes it report the
/// register as unavailable.
impl<A: ArchSupport> SingleRegisterAccess<Tid> for DumpTarget<A> {
    fn read_register(
        &mut self,
        t: Tid,
        reg: RegNum<A>,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        let regs = self.registers(t).ok_or(TargetError::NonFatal)?;
        if regs.vals[reg.0].is_none() {
            return Err(TargetError::Errno(5)); // EIO: not in the dump
        }
        let mut n = 0;
        regs.write_reg(reg.0, |b| {
            if let (Some(b), Some(slot)) = (b, buf.get_mut(n)) {
                *slot = b;
                n += 1;
            }
        });
        Ok(n)
    }

    fn write_register(&mut self, _t: Tid, _reg: RegNum<A>, _val: &[u8]) -> TargetResult<(), Self> {
        Err(TargetError::Errno(30)) // EROFS
    }
}

/// LLDB's qHostInfo: the dumped machine's triple, so LLDB picks the right
/// architecture and ABI before it reads any register.
impl<A: ArchSupport> HostInfo for DumpTarget<A> {
    fn host_info(
        &self,
        write_item: &mut dyn FnMut(&HostInfoResponse<'_>),
    ) -> Result<(), Self::Error> {
        write_item(&HostInfoResponse::Triple(A::TRIPLE));
        write_item(&HostInfoResponse::PointerSize(8));
        write_item(&HostInfoResponse::Endianness(Endianness::Little));
        Ok(())
    }
}

/// LLDB's qProcessInfo: one "process" (pid 1), the kernel.
impl<A: ArchSupport> ProcessInfo for DumpTarget<A> {
    fn process_info(
        &self,
        write_item: &mut dyn FnMut(&ProcessInfoResponse<'_>),
    ) -> Result<(), Self::Error> {
        write_item(&ProcessInfoResponse::Pid(Pid::new(1).expect("nonzero")));
        write_item(&ProcessInfoResponse::Triple(A::TRIPLE));
        write_item(&ProcessInfoResponse::PointerSize(8));
        write_item(&ProcessInfoResponse::Endianness(Endianness::Little));
        Ok(())
    }
}

impl<A: ArchSupport> ThreadExtraInfo for DumpTarget<A> {
    fn thread_extra_info(&self, t: Tid, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let label = match self.thread(t) {
            Some(ThreadRef::Cpu(i)) => self.session.cpu_label(i),
            Some(ThreadRef::Task(j)) => self.session.task_label(j),
            None => String::new(),
        };
        let n = label.len().min(buf.len());
        buf[..n].copy_from_slice(&label.as_bytes()[..n]);
        Ok(n)
    }
}

impl<A: ArchSupport> MonitorCmd for DumpTarget<A> {
    fn handle_monitor_cmd(
        &mut self,
        cmd: &[u8],
        out: ConsoleOutput<'_>,
    ) -> Result<(), Self::Error> {
        let cmd = String::from_utf8_lossy(cmd);
        write_console(out, &monitor::run(&self.session, &cmd));
        Ok(())
    }
}

/// A monitor command's answer on GDB's console. ConsoleOutput sends one `O`
/// packet per write: big answers go in chunks well under the packet size.
fn write_console(mut out: ConsoleOutput<'_>, text: &str) {
    for chunk in text.as_bytes().chunks(0x2000) {
        out.write_raw(chunk);
        out.flush();
    }
}
