# corestub: `dmesg` for GDB — the kernel log from a crash dump or live target.
#
# Connected to corestub, the server reads the records (`monitor log --json`,
# from VMCOREINFO's layout): GDB then never looks up `prb`, which would make
# it expand printk.c's debug info (0.3 s of a 0.5 s start-up here); -T
# still asks GDB for the timekeeper.
# Elsewhere (a native core, another stub) it reads the 5.10+ lockless printk
# ring buffer (prb) with one bulk read per array (descriptors, infos, text)
# and falls back to the legacy log_buf layout of older kernels
# (corestub_common). Usable on its own: `source dmesg.py` then `dmesg`.

import os
import sys
import time

import gdb

_dir = os.path.dirname(os.path.abspath(__file__))
if _dir not in sys.path:
    sys.path.insert(0, _dir)
import corestub_common as cc  # noqa: E402


def gdb_records():
    """(ts_nsec, level, flags, text bytes) read GDB-side (any target)."""
    return cc.log_records("dmesg")


def server_records():
    """The server's records (`monitor log --json`), None off corestub."""
    doc = cc.server_json("log")
    if doc is None:
        return None
    return [(r["ts_nsec"], r["level"], 0, r["text"].encode("utf-8")) for r in doc["records"]]


def records():
    r = server_records()
    return r if r is not None else gdb_records()


def _human(ts_ns, wall_off_ns):
    secs = (ts_ns + wall_off_ns) // 1000000000
    return time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(secs))


def format_lines(show_level=False, human=False, recs=None):
    wall = None
    if human:
        wall = cc.boot_wall_offset_ns()
        if wall is None:
            raise gdb.GdbError("dmesg -T: no timekeeper (tk_core) in the symbols: cannot tell wall-clock time")
    out = []
    for ts, level, flags, text in (recs if recs is not None else records()):
        lines = text.decode("utf-8", "replace").split("\n")
        if human:
            prefix = "[%s] " % _human(ts, wall)
        else:
            prefix = "[%5d.%06d] " % (ts // 1000000000, (ts % 1000000000) // 1000)
        if show_level:
            prefix = "<%d>%s" % (level, prefix)
        for i, line in enumerate(lines):
            out.append((prefix if i == 0 else " " * len(prefix)) + line)
    return out


class Dmesg(gdb.Command):
    """Print the kernel log (printk ring buffer) of the dump.

Usage: dmesg [-l] [-T]
  -l   prefix each record with its log level as <N>
  -T   wall-clock (UTC) timestamps instead of seconds since boot, from the
       kernel's timekeeper (CLOCK_REALTIME - CLOCK_MONOTONIC at the crash;
       like dmesg -T, times drift if the machine was suspended)

Works on 5.10+ kernels (lockless ring buffer) and older ones (log_buf).
Needs the kernel's debug vmlinux loaded (corestub gdb does that)."""

    def __init__(self):
        super(Dmesg, self).__init__("dmesg", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        unknown = [a for a in argv if a not in ("-l", "-T")]
        if unknown:
            raise gdb.GdbError("dmesg: unknown option %s (see 'help dmesg')" % unknown[0])
        gdb.write("\n".join(format_lines("-l" in argv, "-T" in argv)) + "\n")


Dmesg()
