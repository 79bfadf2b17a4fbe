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


def _fmt_mem(b):
    """crash's MEMORY: "511.5 MB", "15.6 GB" (the server's format)."""
    mb = b / (1024.0 * 1024.0)
    if mb >= 1024.0:
        return "%.1f GB" % (mb / 1024.0)
    if mb >= 1.0:
        return "%.1f MB" % mb
    return "%.1f KB" % (b / 1024.0)


def _loadavg():
    """avenrun[3], fixed point with FSHIFT = 11, printed as crash does."""
    a = cc.sym_addr("avenrun")
    if a is None:
        return None
    fixed_1, fshift = 1 << 11, 11
    # rounded as /proc/loadavg and crash do
    vals = [v + fixed_1 // 200 for v in cc.read_ulongs(a, 3)]
    return ["%d.%02d" % (v >> fshift, ((v & (fixed_1 - 1)) * 100) >> fshift) for v in vals]


def _uptime(secs):
    d, r = divmod(int(secs), 86400)
    h, r = divmod(r, 3600)
    m, s = divmod(r, 60)
    days = "" if not d else ("1 day, " if d == 1 else "%d days, " % d)
    return days + "%02d:%02d:%02d" % (h, m, s)


def _date(secs):
    """crash's DATE: "Sat Nov 21 22:45:55 UTC 2026" (day space-padded)."""
    t = time.gmtime(secs)
    return "%s %2d %s UTC %d" % (time.strftime("%a %b", t), t.tm_mday,
                                 time.strftime("%H:%M:%S", t), t.tm_year)


def gdb_info():
    """What `sys` shows, read GDB-side (any target): a dict with the keys of
    the server's `monitor sys --json`."""
    uts = cc.utsname("sys")
    ct = cc.crash_time()
    try:
        up = cc.uptime_seconds()
    except gdb.GdbError:
        up = None
    up_source = "timekeeper"
    if up is None or up >= 1 << 40:
        # as the server: the newest log timestamp
        try:
            up = max(ts for ts, _l, _f, _t in cc.log_records("sys")) // 1000000000
            up_source = "newest log timestamp"
        except (gdb.GdbError, gdb.MemoryError, ValueError):
            up = None
    try:
        tasks = len(cc.all_tasks("sys"))
    except gdb.GdbError:
        tasks = None
    khz = cc.sym_value("cpu_khz")
    try:
        pages = cc.memory_pages()
    except (gdb.GdbError, gdb.MemoryError):
        pages = None
    return {
        "kernel": _kernel_file(),
        "dumpfile": _dumpfile(),
        "cpus": len(cc.present_cpus()),
        "crash_time": ct,
        "date": _date(ct) if ct else None,
        "uptime_seconds": up,
        "uptime_source": up_source if up is not None else None,
        "load_average": _loadavg(),
        "tasks": tasks,
        "nodename": uts.get("nodename"),
        "release": uts.get("release"),
        "version": uts.get("version"),
        "machine": uts.get("machine"),
        "cpu_mhz": int(khz) // 1000 if khz is not None and int(khz) else None,
        "memory_bytes": pages * cc.page_size() if pages else None,
        "memory_source": "present" if pages else None,
        "panic": cc.panic_message(),
    }


def info():
    """The server's answer on corestub, else GDB's reading."""
    doc = cc.server_json("sys")
    return doc if doc is not None else gdb_info()


def sys_lines(i=None):
    i = i or info()
    rows = []

    def row(k, v):
        if v is not None:
            rows.append("%12s: %s" % (k, v))

    row("KERNEL", i["kernel"])
    row("DUMPFILE", i["dumpfile"])
    row("CPUS", i["cpus"])
    row("DATE", i["date"])
    if i["uptime_seconds"] is not None:
        src = i["uptime_source"]
        row("UPTIME", _uptime(i["uptime_seconds"]) + ("" if src == "timekeeper" else "  (%s)" % src))
    row("LOAD AVERAGE", ", ".join(i["load_average"]) if i["load_average"] else None)
    row("TASKS", i["tasks"])
    row("NODENAME", i["nodename"])
    row("RELEASE", i["release"])
    row("VERSION", i["version"])
    machine = i["machine"]
    if machine and i["cpu_mhz"]:
        machine = "%s  (%d Mhz)" % (machine, i["cpu_mhz"])
    row("MACHINE", machine)
    if i["memory_bytes"]:
        src = i["memory_source"]
        row("MEMORY", _fmt_mem(i["memory_bytes"]) + ("" if src == "present" else "  (%s)" % src))
    row("PANIC", '"%s"' % i["panic"] if i["panic"] else "(no panic message in the log)")
    return rows


class Sys(gdb.Command):
    """Print crash's system banner for the dump.

Usage: sys
KERNEL (the vmlinux GDB loaded), DUMPFILE (from corestub's `monitor info
dumpfile`), CPUS (present), DATE (VMCOREINFO CRASHTIME, else the timekeeper;
UTC), UPTIME (CLOCK_BOOTTIME at the crash), LOAD AVERAGE, TASKS (idle tasks
included), NODENAME, RELEASE, VERSION, MACHINE, MEMORY (present pages of all
nodes), PANIC (the panic/oops line of the kernel log).
On corestub the server answers (`monitor sys --json`); on other targets
(native cores, QEMU's gdbstub) GDB reads the same values."""

    def __init__(self):
        super(Sys, self).__init__("sys", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        if arg.strip():
            raise gdb.GdbError("usage: sys")
        gdb.write("\n".join(sys_lines()) + "\n")


Sys()
