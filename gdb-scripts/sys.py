# corestub: `sys` — crash's system banner for the dump.

import os
import sys
import time

import gdb

_dir = os.path.dirname(os.path.abspath(__file__))
if _dir not in sys.path:
    sys.path.insert(0, _dir)
import corestub_common as cc  # noqa: E402


def _kernel_file():
    s = cc.sym("linux_banner")
    try:
        if s is not None and s.symtab is not None:
            return s.symtab.objfile.filename
    except (AttributeError, gdb.error):
        pass
    for o in gdb.objfiles():
        if o.filename and "vmlinux" in os.path.basename(o.filename):
            return o.filename
    return None


def _dumpfile():
    """corestub answers `monitor info dumpfile`; other stubs do not."""
    try:
        out = gdb.execute("monitor info dumpfile", to_string=True).strip()
    except gdb.error:
        return None
    if not out or "unknown" in out or "\n" in out:
        return None
    return out


def _memory_bytes():
    """Present pages of every memory node (what crash calls MEMORY)."""
    pg_t = cc.need_type("struct pglist_data", "sys")
    o = cc.off(pg_t, "node_present_pages", "sys")
    nodes = []
    nd = cc.sym("node_data")
    if nd is not None:
        t = nd.type.strip_typedefs()
        n = t.sizeof // cc.ulong() if t.code == gdb.TYPE_CODE_ARRAY else 1
        # a declaration's type may be an incomplete array (size 0)
        ptrs = cc.read_ulongs(int(nd.value().address), min(n, 64) if n else 64)
        nodes = [p for p in ptrs if p]
    else:
        a = cc.sym_addr("contig_page_data")
        if a is not None:
            nodes = [a]
    if not nodes:
        return None
    pages = sum(cc.u(cc.read(p + o, 8), 0, 8) for p in nodes)
    return pages * cc.page_size()


def _fmt_mem(b):
    for unit, div in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if b >= div:
            v = b / float(div)
            return ("%.1f %s" % (v, unit)).replace(".0 ", " ")
    return "%d bytes" % b


def _loadavg():
    a = cc.sym_addr("avenrun")
    if a is None:
        return None
    vals = cc.read_ulongs(a, 3)
    fixed_1, fshift = 1 << 11, 11
    out = []
    for v in vals:
        v += fixed_1 // 200  # round as /proc/loadavg does
        out.append("%d.%02d" % (v >> fshift, ((v & (fixed_1 - 1)) * 100) >> fshift))
    return ", ".join(out)


def _uptime(secs):
    d, r = divmod(int(secs), 86400)
    h, r = divmod(r, 3600)
    m, s = divmod(r, 60)
    return ("%d days, " % d if d else "") + "%02d:%02d:%02d" % (h, m, s)


def sys_lines():
    uts = cc.utsname("sys")
    rows = []

    def row(k, v):
        if v is not None:
            rows.append("%12s: %s" % (k, v))

    row("KERNEL", _kernel_file())
    row("DUMPFILE", _dumpfile())
    # present, not online: panic() without kdump stops the other CPUs
    # with smp_send_stop(), which takes them out of the online mask (a
    # 3-CPU QEMU dump taken after the panic had 1 online CPU)
    present = cc.cpu_mask("__cpu_present_mask")
    row("CPUS", len(present) if present else cc.nr_cpus())
    ct = cc.crash_time()
    row("DATE", time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(ct)) if ct else None)
    try:
        up = cc.uptime_seconds()
    except gdb.GdbError:
        up = None
    row("UPTIME", _uptime(up) if up is not None else None)
    row("LOAD AVERAGE", _loadavg())
    try:
        row("TASKS", len(cc.all_tasks("sys")))
    except gdb.GdbError as e:
        row("TASKS", "? (%s)" % e)
    row("NODENAME", uts.get("nodename"))
    row("RELEASE", uts.get("release"))
    row("VERSION", uts.get("version"))
    machine = uts.get("machine")
    khz = cc.sym_value("cpu_khz")
    if machine and khz is not None and int(khz):
        machine = "%s  (%d Mhz)" % (machine, int(khz) // 1000)
    row("MACHINE", machine)
    try:
        mem = _memory_bytes()
    except (gdb.GdbError, gdb.MemoryError):
        mem = None
    row("MEMORY", _fmt_mem(mem) if mem else None)
    msg = cc.panic_message()
    row("PANIC", '"%s"' % msg if msg else '""')
    return rows


class Sys(gdb.Command):
    """Print crash's system banner for the dump.

Usage: sys
KERNEL (the vmlinux GDB loaded), DUMPFILE (from corestub's `monitor info
dumpfile`), CPUS (present), DATE (VMCOREINFO CRASHTIME, else the timekeeper;
UTC), UPTIME (CLOCK_BOOTTIME at the crash), LOAD AVERAGE, TASKS (idle tasks
included), NODENAME, RELEASE, VERSION, MACHINE, MEMORY (present pages of all
nodes), PANIC (the panic/oops line of the kernel log)."""

    def __init__(self):
        super(Sys, self).__init__("sys", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        if arg.strip():
            raise gdb.GdbError("usage: sys")
        gdb.write("\n".join(sys_lines()) + "\n")


Sys()
