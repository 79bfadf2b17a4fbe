# corestub: `trapinfo [PID]` — the last trap/fault the kernel recorded for a
# task (modern replacement for gdbmacros.txt's i386-era `trapinfo`, which
# reads thread.trap_no / thread.cr2 / thread.error_code of 2.6 kernels).
#
#   x86_64: task->thread.trap_nr, .cr2, .error_code
#   arm64:  task->thread.fault_address, .fault_code (an ESR value)
# plus the user-mode registers saved at kernel entry (task_pt_regs).

import os
import sys

import gdb

_dir = os.path.dirname(os.path.abspath(__file__))
if _dir not in sys.path:
    sys.path.insert(0, _dir)
import corestub_common as cc  # noqa: E402

X86_TRAPS = {
    0: "#DE divide error", 1: "#DB debug", 2: "NMI", 3: "#BP breakpoint (int3)",
    4: "#OF overflow", 5: "#BR bound range", 6: "#UD invalid opcode",
    7: "#NM device not available", 8: "#DF double fault", 9: "coprocessor segment overrun",
    10: "#TS invalid TSS", 11: "#NP segment not present", 12: "#SS stack segment",
    13: "#GP general protection", 14: "#PF page fault", 15: "spurious interrupt",
    16: "#MF x87 floating point", 17: "#AC alignment check", 18: "#MC machine check",
    19: "#XM SIMD floating point", 20: "#VE virtualization", 21: "#CP control protection",
    29: "#VC VMM communication", 32: "IRET exception",
}

X86_PF_BITS = [(0, "protection violation", "page not present"), (1, "write", "read"),
               (2, "user mode", "kernel mode"), (3, "reserved bit set", None),
               (4, "instruction fetch", None), (5, "protection key", None),
               (15, "SGX", None)]

ARM64_EC = {
    0x00: "unknown reason", 0x01: "WFI/WFE", 0x07: "FP/SIMD access", 0x0e: "illegal execution state",
    0x11: "SVC (AArch32)", 0x15: "SVC (syscall)", 0x18: "MSR/MRS/system instruction",
    0x19: "SVE access", 0x1c: "pointer authentication failure", 0x20: "instruction abort from user mode",
    0x21: "instruction abort in the kernel", 0x22: "PC alignment fault",
    0x24: "data abort from user mode", 0x25: "data abort in the kernel", 0x26: "SP alignment fault",
    0x28: "FP exception (AArch32)", 0x2c: "FP exception", 0x2f: "SError",
    0x30: "breakpoint from user mode", 0x31: "breakpoint in the kernel",
    0x32: "software step from user mode", 0x33: "software step in the kernel",
    0x34: "watchpoint from user mode", 0x35: "watchpoint in the kernel",
    0x3c: "BRK instruction (BUG/WARN or debugger)",
}

ARM64_DFSC = {
    0x04: "translation fault, level 0", 0x05: "translation fault, level 1",
    0x06: "translation fault, level 2", 0x07: "translation fault, level 3",
    0x09: "access flag fault, level 1", 0x0a: "access flag fault, level 2",
    0x0b: "access flag fault, level 3", 0x0d: "permission fault, level 1",
    0x0e: "permission fault, level 2", 0x0f: "permission fault, level 3",
    0x10: "synchronous external abort", 0x21: "alignment fault", 0x30: "TLB conflict",
}


def _arch():
    return gdb.selected_inferior().architecture().name()


def _thread_fields(task, names):
    """Reads task->thread members by name: {name: int} (missing ones left out)."""
    L = cc.task_layout("trapinfo")
    th_t = cc.member_type(L.t, "thread")
    base = cc.off(L.t, "thread")
    out = {}
    for n in names:
        hit = cc.field(th_t, n)
        if hit is None:
            continue
        f, o = hit
        size = f.type.strip_typedefs().sizeof
        out[n] = cc.u(task.buf, base + o, size)
    return out


SIGNED = ("orig_ax", "syscallno", "r7")
# 32-bit arm `struct pt_regs { unsigned long uregs[18]; }` (the EABI
# syscall number is in r7)
ARM_UREGS = ["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "fp", "ip",
             "sp", "lr", "pc", "cpsr", "orig_r0"]


def _stack_size():
    """THREAD_SIZE: union thread_union when the debug info has it, else the
    size of init_stack (declared as THREAD_SIZE bytes), else 16 KiB."""
    try:
        return gdb.lookup_type("union thread_union").sizeof
    except gdb.error:
        pass
    s_ = cc.sym("init_stack")
    if s_ is not None and s_.type.sizeof:
        return s_.type.sizeof
    return 16384


def _top_padding(regs_t):
    """TOP_OF_KERNEL_STACK_PADDING: x86_64 kernels built with FRED leave
    room above pt_regs for the rest of `struct fred_frame` (event data and
    a reserved word) whether or not the CPU uses FRED. The type exists in
    the debug info exactly when the kernel was built so."""
    try:
        frame = gdb.lookup_type("struct fred_frame")
    except gdb.error:
        return 0
    return max(frame.sizeof - regs_t.sizeof, 0)


def _entry_regs(task, names):
    """User registers saved at kernel entry: the pt_regs at the top of the
    task's stack (task_pt_regs)."""
    if task.kthread or task.stack == 0:
        return None
    try:
        stack_size = _stack_size()
        regs_t = cc.need_type("struct pt_regs", "trapinfo")
        arch = _arch()
        if ("i386" in arch and "x86-64" not in arch) or arch.startswith("arm"):
            # i386 leaves TOP_OF_KERNEL_STACK_PADDING (8 bytes) above
            # pt_regs, 32-bit arm starts its stack at THREAD_START_SP
            # (THREAD_SIZE - 8)
            pad = 8
        else:
            pad = _top_padding(regs_t)
        b = cc.read(task.stack + stack_size - pad - regs_t.sizeof, regs_t.sizeof)
    except (gdb.GdbError, gdb.MemoryError):
        return None
    out = []
    if cc.has(regs_t, "uregs"):
        # 32-bit arm: pt_regs is uregs[18] (r0..r15, cpsr, orig_r0)
        base = cc.off(regs_t, "uregs")
        for n in names:
            i = ARM_UREGS.index(n)
            out.append((n, cc.s(b, base + 4 * i, 4) if n in SIGNED else cc.u(b, base + 4 * i, 4)))
        return out
    for n in names:
        hit = cc.field(regs_t, n)
        if hit is not None:
            size = hit[0].type.strip_typedefs().sizeof
            out.append((n, cc.s(b, cc.off(regs_t, n), size) if n in SIGNED else cc.u(b, cc.off(regs_t, n), size)))
    return out


def _x86(task):
    v = _thread_fields(task, ["trap_nr", "cr2", "error_code"])
    if not v:
        raise gdb.GdbError("trapinfo: this kernel's thread_struct has no trap_nr/cr2/error_code")
    lines = []
    tn, cr2, ec = v.get("trap_nr", 0), v.get("cr2", 0), v.get("error_code", 0)
    if tn == 0 and cr2 == 0 and ec == 0:
        lines.append("no trap recorded for this task: thread.trap_nr, cr2 and error_code are all 0.")
        lines.append("(The kernel fills them when a trap or page fault sends a signal or is fixed up;")
        lines.append(" a crash through panic()/sysrq/BUG() leaves them as they were.)")
        return lines
    lines.append("trap:       %d  %s" % (tn, X86_TRAPS.get(tn, "?")))
    lines.append("cr2:        0x%016x%s" % (cr2, "  (faulting address)" if tn == 14 else ""))
    desc = ""
    if tn == 14:
        parts = []
        for bit, yes, no in X86_PF_BITS:
            if ec >> bit & 1:
                parts.append(yes)
            elif no:
                parts.append(no)
        desc = "  (" + ", ".join(parts) + ")"
    lines.append("error code: 0x%x%s" % (ec, desc))
    lines.append("(the last trap the kernel recorded for this task; it is not necessarily the crash's cause)")
    return lines


def _arm64(task):
    v = _thread_fields(task, ["fault_address", "fault_code"])
    if not v:
        raise gdb.GdbError("trapinfo: this kernel's thread_struct has no fault_address/fault_code")
    fa, esr = v.get("fault_address", 0), v.get("fault_code", 0)
    if fa == 0 and esr == 0:
        return ["no fault recorded for this task: thread.fault_address and fault_code (ESR) are 0.",
                "(arm64 fills them when a fault sends a signal to the task; a crash through",
                " panic()/sysrq/BUG() leaves them as they were.)"]
    ec = esr >> 26 & 0x3f
    lines = ["fault address: 0x%016x" % fa,
             "fault code:    ESR 0x%x  EC 0x%02x %s" % (esr, ec, ARM64_EC.get(ec, "?"))]
    if ec in (0x20, 0x21, 0x24, 0x25):
        fsc = esr & 0x3f
        wnr = " (write)" if ec in (0x24, 0x25) and esr >> 6 & 1 else (" (read)" if ec in (0x24, 0x25) else "")
        lines.append("               %s%s" % (ARM64_DFSC.get(fsc, "fault status 0x%02x" % fsc), wnr))
    lines.append("(the last fault the kernel recorded for this task; it is not necessarily the crash's cause)")
    return lines


def _arm(task):
    v = _thread_fields(task, ["address", "trap_no", "error_code"])
    if not v:
        raise gdb.GdbError("trapinfo: this kernel's thread_struct has no address/trap_no/error_code")
    addr, tn, ec = v.get("address", 0), v.get("trap_no", 0), v.get("error_code", 0)
    if addr == 0 and tn == 0 and ec == 0:
        return ["no fault recorded for this task: thread.address, trap_no and error_code are 0.",
                "(arm fills them when a fault sends a signal to the task; a crash through",
                " panic()/sysrq/BUG() leaves them as they were.)"]
    return ["fault address: 0x%08x" % addr,
            "trap_no:       %d" % tn,
            "error_code:    0x%x (FSR)" % ec,
            "(the last fault the kernel recorded for this task; it is not necessarily the crash's cause)"]


def selected_task():
    """The task of the selected thread: a corestub task thread (the server's
    `monitor ps --json` maps thread ids to tasks), else a CPU thread, which
    ran its runqueue's curr."""
    th = gdb.selected_thread()
    if th is None:
        return None
    tid = th.ptid[1] or th.ptid[2]
    doc = cc.server_json("ps")
    for t in (doc or {}).get("tasks", []):
        if t["thread"] == tid:
            return ("addr", int(t["task"], 16))
    cpu = th.num - 1
    for c, curr, _idle in cc.runqueue_tasks("trapinfo"):
        if c == cpu:
            return ("addr", curr)
    return None


class TrapInfo(gdb.Command):
    """Show the last trap or fault the kernel recorded for a task.

Usage: trapinfo [PID]
Without PID: the task of the selected thread (on attach, the panicking CPU's).
x86_64: thread.trap_nr (named), thread.cr2 and thread.error_code (decoded for
page faults). arm64: thread.fault_address and thread.fault_code (the ESR,
decoded). arm: thread.address, trap_no, error_code. Then the user registers the task entered the kernel with.
Replaces gdbmacros.txt's i386-era trapinfo (thread.trap_no), which cannot
work on current kernels."""

    def __init__(self):
        super(TrapInfo, self).__init__("trapinfo", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        if len(argv) > 1 or (argv and not argv[0].isdigit()):
            raise gdb.GdbError("usage: trapinfo [PID]")
        task = None
        if argv:
            task = cc.find_task(int(argv[0]), "trapinfo")
            if task is None:
                raise gdb.GdbError("trapinfo: no task with PID %s" % argv[0])
        else:
            sel = selected_task()
            if sel is None:
                raise gdb.GdbError("trapinfo: no task for the selected thread; give a PID")
            if sel[0] == "pid":
                task = cc.find_task(sel[1], "trapinfo")
            else:
                task = cc.read_task(sel[1], cc.task_layout("trapinfo"))
        arch = _arch()
        out = ["PID %d (%s) task 0x%x" % (task.pid, task.comm, task.addr)]
        if "x86-64" in arch or "i386" in arch:
            out += _x86(task)
            regs = _entry_regs(task, ["orig_ax", "ip", "sp", "cs", "flags"])
        elif "aarch64" in arch:
            out += _arm64(task)
            regs = _entry_regs(task, ["syscallno", "pc", "sp", "pstate"])
        elif arch.startswith("arm"):
            out += _arm(task)
            regs = _entry_regs(task, ["r7", "orig_r0", "pc", "sp", "cpsr"])
        else:
            raise gdb.GdbError("trapinfo: architecture %s not supported" % arch)
        if regs:
            out.append("entered the kernel with: " + "  ".join(
                ("%s=%d" if n in SIGNED else "%s=0x%x") % (n, v) for n, v in regs))
        pc = cc.panic_cpu()
        if pc is not None:
            for c, curr, _idle in cc.runqueue_tasks("trapinfo"):
                if c == pc and curr == task.addr:
                    msg = cc.panic_message()
                    out.append("this task was running on the panicking CPU %d%s" % (
                        pc, (": " + msg) if msg else ""))
        gdb.write("\n".join(out) + "\n")


TrapInfo()
