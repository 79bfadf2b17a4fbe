# corestub: unwind arm64 kernel frames whose return address carries a
# pointer-authentication code, on GDB < 14.
#
# GDB 13 strips PAC bits as `lr & ~pauth_cmask`, which is right for user
# addresses but leaves kernel addresses (bit 55 set) with their top bits
# cleared, so every caller of a PAC-signed function shows as `?? ()`. GDB 14
# sign-extends (and reads pauth_cmask_high, which corestub provides). For
# GDB 13 this unwinder takes over exactly those frames: it follows the frame
# record at x29 ({previous x29, signed lr}), strips the PAC by sign-extending
# from bit 55, and leaves every other frame to GDB's DWARF unwinder.

import gdb
from gdb.unwinder import Unwinder, register_unwinder

VA_BIT = 55
MASK64 = (1 << 64) - 1


def _pac_mask():
    try:
        return int(gdb.parse_and_eval("$pauth_cmask")) & MASK64
    except gdb.error:
        return 0


def _strip(addr, mask):
    if addr >> VA_BIT & 1:
        return (addr | mask) & MASK64
    return addr & ~mask & MASK64


class _FrameId(object):
    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


class Arm64PacUnwinder(Unwinder):
    def __init__(self):
        super(Arm64PacUnwinder, self).__init__("corestub-arm64-pac")

    def __call__(self, pending_frame):
        try:
            if pending_frame.architecture().name() != "aarch64":
                return None
            mask = _pac_mask()
            if mask == 0:
                return None
            fp = int(pending_frame.read_register("x29")) & MASK64
            if fp == 0 or fp & 0xF:
                return None
            inf = gdb.selected_inferior()
            rec = bytes(inf.read_memory(fp, 16))
            prev_fp = int.from_bytes(rec[0:8], "little")
            lr = int.from_bytes(rec[8:16], "little")
            stripped = _strip(lr, mask)
            # Only signed kernel return addresses need us.
            if stripped == lr or not (lr >> VA_BIT & 1):
                return None
            # GDB 13 wants the frame id's members as gdb.Values.
            info = pending_frame.create_unwind_info(
                _FrameId(pending_frame.read_register("sp"), pending_frame.read_register("pc"))
            )
            ptr = gdb.lookup_type("unsigned long")
            info.add_saved_register("pc", gdb.Value(stripped).cast(ptr))
            info.add_saved_register("x30", gdb.Value(stripped).cast(ptr))
            info.add_saved_register("x29", gdb.Value(prev_fp).cast(ptr))
            info.add_saved_register("sp", gdb.Value(fp + 16).cast(ptr))
            # the masks are per-CPU constants: the caller has the same
            for reg in ("pauth_dmask", "pauth_cmask", "pauth_dmask_high", "pauth_cmask_high"):
                try:
                    info.add_saved_register(reg, pending_frame.read_register(reg))
                except (gdb.error, ValueError):
                    pass
            return info
        except (gdb.error, gdb.MemoryError, ValueError) as e:
            import os
            if os.environ.get("CORESTUB_DEBUG_UNWIND"):
                gdb.write("arm64-pac unwinder: %s\n" % e)
            return None


def _gdb_major():
    try:
        return int(gdb.VERSION.split(".")[0].split()[-1])
    except ValueError:
        return 0


if _gdb_major() < 14:
    register_unwinder(None, Arm64PacUnwinder(), replace=True)
