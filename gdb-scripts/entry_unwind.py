# corestub: unwind kernel backtraces through the kernel's entry code, from
# the pt_regs it saved, as crash's `bt` does.
#
# The kernel's assembly entry points (x86_64 entry_SYSCALL_64, asm_exc_*,
# asm_sysvec_*; arm64 el0t_64_sync, el1h_64_sync, ...) have no CFI, so GDB
# guesses past them: every task blocked in a system call ends its `bt` with
# a dozen garbage frames read off the user stack, and an oops backtrace
# stops at the exception instead of going on into the function that
# faulted. At the point the entry code calls its C handler, its stack
# pointer is the `struct pt_regs` holding the interrupted context. This
# unwinder claims those frames and gives GDB the saved registers as the
# caller's:
# - kernel mode interrupted (an exception or interrupt in the kernel): the
#   backtrace goes on in the interrupted function;
# - user mode (a system call, a user fault): the next frame is the user pc,
#   with the user's registers (`frame N`, `info registers`), and the
#   backtrace ends there (a zero pc after it), unless symbols for that user
#   code were loaded.
# arm64 kernel threads end at ret_from_fork the same way (a zero pc). IRQ-stack
# switches (x86_64 6.x call_on_irqstack, arm64 call_on_irq_stack) are followed
# back to the interrupted stack; GDB itself then stops if that stack lies
# below the IRQ stack ("previous frame inner"), which no unwinder can change.
# `set corestub-entry-unwind off` turns it off.

import re

import gdb
from gdb.unwinder import Unwinder, register_unwinder

MASK64 = (1 << 64) - 1

# Entry points that call their C handler with the stack pointer = pt_regs
# (the C handlers themselves, exc_* / *_handler, must not match).
X86_ENTRY = re.compile(r"^(asm_exc_\w+|asm_sysvec_\w+|asm_common_interrupt|asm_spurious_interrupt"
                       r"|entry_SYSCALL_64\w*|entry_SYSCALL_compat\w*|entry_SYSENTER_compat\w*"
                       r"|entry_INT80_compat|asm_int80_emulation)$")
# arm64 vectors: el{0t,1t,1h}_{64,32}_{sync,irq,fiq,error} (5.13+), el{0,1}_{sync,irq,...} before
ARM64_ENTRY = re.compile(r"^(el[01][th]_(64|32)_(sync|irq|fiq|error)"
                         r"|el[01]_(sync|irq|fiq|error)(_compat|_invalid)?)$")

# C handlers that run their work on the IRQ stack (6.x call_on_irqstack,
# inline asm): `movq %rsp, (tos); movq tos, %rsp; call ...`. In their frame
# the stack pointer GDB computes is that IRQ stack top, which holds the
# interrupted stack pointer.
X86_IRQSTACK_CALLERS = re.compile(r"^(sysvec_\w+|common_interrupt|spurious_interrupt)$")

X86_KERNEL_CS = (0x10,)
X86_USER_CS = (0x33, 0x23)
X86_REGS = (("rip", "ip"), ("rsp", "sp"), ("rbp", "bp"), ("rbx", "bx"), ("rax", "ax"),
            ("rcx", "cx"), ("rdx", "dx"), ("rsi", "si"), ("rdi", "di"), ("r8", "r8"),
            ("r9", "r9"), ("r10", "r10"), ("r11", "r11"), ("r12", "r12"), ("r13", "r13"),
            ("r14", "r14"), ("r15", "r15"), ("eflags", "flags"), ("cs", "cs"), ("ss", "ss"))


class Enabled(gdb.Parameter):
    """Whether corestub unwinds through the kernel's entry code (pt_regs)."""

    set_doc = "Set whether corestub unwinds through kernel entry code from pt_regs."
    show_doc = "Show whether corestub unwinds through kernel entry code from pt_regs."

    def __init__(self):
        super(Enabled, self).__init__("corestub-entry-unwind", gdb.COMMAND_STACK, gdb.PARAM_BOOLEAN)
        self.value = True


_enabled = Enabled()

# (user pc, user sp) -> address of the pt_regs they came from. GDB stops a
# backtrace whose next frame's id is "inner" (lower) than the last, and the
# user stack is below the kernel's: the user frame's id is placed just
# above its pt_regs instead, and its (zero-pc) caller above that.
_user_frames = {}


class _FrameId(object):
    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


_names = {}


def _function(pc):
    """The name of the function (or, for assembly without DWARF functions,
    the ELF symbol) at `pc`, or None. Cached: GDB asks for every frame of
    every backtrace, and most tasks share their return addresses."""
    try:
        return _names[pc]
    except KeyError:
        pass
    if len(_names) > 100000:
        _names.clear()
    _names[pc] = name = _lookup_function(pc)
    return name


def _lookup_function(pc):
    try:
        b = gdb.block_for_pc(pc)
    except RuntimeError:
        b = None
    # the outermost function: inlined ones have blocks of their own
    name = None
    while b is not None and not b.is_static and not b.is_global:
        if b.function is not None:
            name = b.function.name
        b = b.superblock
    if name is not None:
        return name
    # entry_64.S has line info but no DW_TAG_subprogram: "0x... <sym+off>"
    try:
        text = gdb.format_address(pc)
    except AttributeError:  # GDB < 13
        text = str(gdb.Value(pc).cast(gdb.lookup_type("void").pointer()))
    if "<" not in text:
        return None
    return text[text.index("<") + 1:].split("+")[0].rstrip(">")


def _ulong(v):
    return gdb.Value(v & MASK64).cast(gdb.lookup_type("unsigned long"))


# registers GDB holds in 32 bits (it checks the size of every saved value)
_REG32 = ("eflags", "cs", "ss", "cpsr")


def _save(info, pending_frame, reg, v):
    """Saves `v` for `reg` in the register's own size."""
    size = 4 if reg in _REG32 else 8
    t = gdb.lookup_type("unsigned int") if size == 4 else gdb.lookup_type("unsigned long")
    info.add_saved_register(reg, gdb.Value(v & ((1 << (8 * size)) - 1)).cast(t))


def _carry_pauth(info, pending_frame):
    """arm64: the PAC masks are per-CPU constants; hand them on (fetched
    now: a lazy value that turns out unavailable would fail the unwind)."""
    for reg in ("pauth_dmask", "pauth_cmask", "pauth_dmask_high", "pauth_cmask_high"):
        try:
            v = pending_frame.read_register(reg)
            v.fetch_lazy()
            info.add_saved_register(reg, v)
        except (gdb.error, ValueError):
            pass


def _regs(addr):
    """The pt_regs at `addr`, read in one go (one memory packet)."""
    t = gdb.lookup_type("struct pt_regs")
    v = gdb.Value(addr).cast(t.pointer()).dereference()
    v.fetch_lazy()
    return v


class EntryUnwinder(Unwinder):
    def __init__(self):
        super(EntryUnwinder, self).__init__("corestub-entry")

    def __call__(self, pending_frame):
        if not _enabled.value or pending_frame.level() == 0:
            return None
        try:
            arch = pending_frame.architecture().name()
            if arch.startswith("i386:x86-64"):
                return self._x86_64(pending_frame)
            if arch == "aarch64":
                return self._arm64(pending_frame)
        except (gdb.error, gdb.MemoryError, RuntimeError, ValueError) as e:
            import os
            if os.environ.get("CORESTUB_DEBUG_UNWIND"):
                gdb.write("entry unwinder: %s\n" % e)
        return None

    @staticmethod
    def _end_of_user(pending_frame, pc, sp, pc_reg, sp_reg):
        """A user-mode frame with no symbols: its caller is a zero pc, where
        GDB ends the backtrace (as it does for kernel threads). Each is
        claimed here with an sp above the last so that GDB does not call
        the stack corrupt."""
        base = _user_frames.get((pc, sp))
        if pc == 0:
            base = sp  # the terminator made below: keep its place
        elif base is None:
            base = sp
        else:
            base += 8
        info = pending_frame.create_unwind_info(_FrameId(_ulong(base), _ulong(pc)))
        info.add_saved_register(pc_reg, _ulong(0))
        info.add_saved_register(sp_reg, _ulong(base + 8))
        return info

    def _x86_64(self, pending_frame):
        pc = int(pending_frame.read_register("rip")) & MASK64
        sp = int(pending_frame.read_register("rsp")) & MASK64
        if pc < (1 << 63):
            if pc != 0 and _function(pc) is not None:
                return None  # user symbols loaded: GDB unwinds it
            return self._end_of_user(pending_frame, pc, sp, "rip", "rsp")
        name = _function(pc)
        if name is not None and X86_IRQSTACK_CALLERS.match(name):
            return self._x86_off_irq_stack(pending_frame, pc, sp)
        if name is None or not X86_ENTRY.match(name):
            return None
        regs = _regs(sp)
        cs = int(regs["cs"]) & 0xFFFF
        if cs not in X86_KERNEL_CS + X86_USER_CS:
            return None  # not a pt_regs here: leave the frame to GDB
        info = pending_frame.create_unwind_info(_FrameId(_ulong(sp), _ulong(pc)))
        for reg, field in X86_REGS:
            _save(info, pending_frame, reg, int(regs[field]))
        if cs in X86_USER_CS:
            _user_frames[(int(regs["ip"]) & MASK64, int(regs["sp"]) & MASK64)] = sp
        return info

    def _x86_off_irq_stack(self, pending_frame, pc, sp):
        """A sysvec_*/common_interrupt frame on the IRQ stack: follow the
        saved stack pointer back to the interrupted stack, where the entry
        stub's return address sits just below its pt_regs."""
        inf = gdb.selected_inferior()
        orig = int.from_bytes(bytes(inf.read_memory(sp, 8)), "little")
        if orig < (1 << 63) or abs(orig - sp) < (16 << 10):
            return None  # not a stack switch: GDB's CFI is right
        try:
            words = bytes(inf.read_memory(orig, 64 * 8))
        except gdb.MemoryError:  # the top of the stack: read to its page end
            words = bytes(inf.read_memory(orig, ((orig | 0xFFF) + 1 - orig) & ~7))
        for i in range(len(words) // 8):
            ret = int.from_bytes(words[8 * i:8 * i + 8], "little")
            if ret < (1 << 63):
                continue
            name = _function(ret)
            if name is None or not X86_ENTRY.match(name):
                continue
            regs_at = orig + 8 * (i + 1)
            if int(_regs(regs_at)["cs"]) & 0xFFFF not in X86_KERNEL_CS + X86_USER_CS:
                continue
            info = pending_frame.create_unwind_info(_FrameId(_ulong(sp), _ulong(pc)))
            _save(info, pending_frame, "rip", ret)
            _save(info, pending_frame, "rsp", regs_at)
            return info
        return None

    def _arm64(self, pending_frame):
        pc = int(pending_frame.read_register("pc")) & MASK64
        sp = int(pending_frame.read_register("sp")) & MASK64
        if not (pc >> 55) & 1:
            if pc != 0 and _function(pc) is not None:
                return None  # user symbols loaded: GDB unwinds it
            return self._end_of_user(pending_frame, pc, sp, "pc", "sp")
        name = _function(pc)
        if name == "call_on_irq_stack":
            # switched to the IRQ stack after pushing a frame record {x29,
            # x30} on the interrupted stack and pointing x29 at it
            fp = int(pending_frame.read_register("x29")) & MASK64
            rec = bytes(gdb.selected_inferior().read_memory(fp, 16))
            prev_fp = int.from_bytes(rec[0:8], "little")
            lr = int.from_bytes(rec[8:16], "little")
            if not (lr >> 55) & 1:
                return None
            lr |= 0xFF80000000000000  # strip a PAC: kernel text is at the top
            info = pending_frame.create_unwind_info(_FrameId(_ulong(sp), _ulong(pc)))
            _save(info, pending_frame, "pc", lr)
            _save(info, pending_frame, "x30", lr)
            _save(info, pending_frame, "x29", prev_fp)
            _save(info, pending_frame, "sp", fp + 16)
            _carry_pauth(info, pending_frame)
            return info
        if name in ("ret_from_fork", "__secondary_switched"):
            # the bottom of kernel threads and secondary CPUs: GDB would say "previous
            # frame identical (corrupt stack?)"; end it like x86_64's
            info = pending_frame.create_unwind_info(_FrameId(_ulong(sp), _ulong(pc)))
            _save(info, pending_frame, "pc", 0)
            _save(info, pending_frame, "sp", sp + 16)
            return info
        if name is None or not ARM64_ENTRY.match(name):
            return None
        regs = _regs(sp)
        pstate = int(regs["pstate"]) & MASK64
        # AArch64 (bit 4 clear), EL0t, EL1t or EL1h
        if pstate & 0x1F not in (0x0, 0x4, 0x5):
            return None
        info = pending_frame.create_unwind_info(_FrameId(_ulong(sp), _ulong(pc)))
        gprs = regs["regs"]
        for i in range(31):
            _save(info, pending_frame, "x%d" % i, int(gprs[i]))
        _save(info, pending_frame, "sp", int(regs["sp"]))
        _save(info, pending_frame, "pc", int(regs["pc"]))
        _save(info, pending_frame, "cpsr", pstate)
        _carry_pauth(info, pending_frame)
        if pstate & 0xF == 0:  # EL0
            _user_frames[(int(regs["pc"]) & MASK64, int(regs["sp"]) & MASK64)] = sp
        return info


register_unwinder(None, EntryUnwinder(), replace=True)
