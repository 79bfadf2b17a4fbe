# corestub: `ps` — crash-like process list of the dump.
#
# Every task_struct is read with one read_memory of its size and decoded with
# field offsets from GDB's types; each mm_struct likewise. On a 70-task kernel
# that is ~100 packets, against thousands for field-by-field gdb.Value access.

import os
import sys

import gdb

_dir = os.path.dirname(os.path.abspath(__file__))
if _dir not in sys.path:
    sys.path.insert(0, _dir)
import corestub_common as cc  # noqa: E402

HEADER = "      PID    PPID  CPU       TASK        ST  %MEM      VSZ      RSS  COMM"

# rss_stat counters are FILE, ANON, SWAPENTS, SHMEM; like crash, RSS counts
# file and anonymous pages (not shmem/tmpfs, e.g. an initramfs binary)
RSS_COUNTERS = (0, 1)


def mem_usage(tasks, L):
    """{mm address: (total_vm pages, rss pages)}. percpu_counter counters
    (6.2+) are summed exactly, as percpu_counter_sum and crash do: the
    global count plus each present CPU's s32 delta (a panic takes the
    other CPUs offline without folding theirs). Before 6.2, per-thread
    deltas (SPLIT_RSS_COUNTING) are added like crash does."""
    out = {}
    base, el, n, inner = L.mm_rss
    w = cc.ulong()
    offs = None
    if L.rss_percpu is not None:
        cpus = cc.present_cpus()
        offs = [o for i, o in enumerate(cc.per_cpu_offsets(max(cpus) + 1)) if i in cpus]
    for t in tasks:
        if t.mm == 0 or t.mm in out:
            continue
        try:
            b = cc.read(t.mm, L.mm_size)
        except gdb.MemoryError:
            continue
        rss = 0
        for i in RSS_COUNTERS:
            if i < n:
                rss += cc.s(b, base + i * el + inner, L.rss_count_size)
                if offs is not None:
                    ptr = cc.u(b, base + i * el + L.rss_percpu, w)
                    rss += sum(cc.s(cc.read(ptr + o, 4), 0, 4) for o in offs)
        out[t.mm] = [cc.u(b, L.total_vm, w), rss]
    if L.rss is not None:
        o, el, n = L.rss
        for t in tasks:
            if t.mm in out:
                for i in RSS_COUNTERS:
                    if i < n:
                        out[t.mm][1] += cc.s(t.buf, o + i * el, el)
    return out


def gdb_rows():
    """The rows read GDB-side (any target): dicts with the keys of the
    server's `monitor ps --json` tasks."""
    L = cc.task_layout("ps")
    tasks = cc.all_tasks("ps")
    running = {}
    try:
        for cpu, curr, _idle in cc.runqueue_tasks("ps"):
            running[curr] = cpu
    except gdb.GdbError:
        pass
    usage = mem_usage(tasks, L)
    try:
        total = cc.memory_pages() or 0
    except (gdb.GdbError, gdb.MemoryError):
        total = 0
    kb = cc.page_size() // 1024
    tasks.sort(key=lambda t: (t.pid, t.cpu if t.cpu is not None else -1, t.addr))
    rows = []
    for t in tasks:
        vm, rss = usage.get(t.mm, (0, 0))
        rss = max(rss, 0)
        letter = cc.state_letter(t.state, t.exit_state, "ps")
        rows.append({
            "pid": t.pid, "ppid": t.ppid if t.ppid is not None else 0, "tgid": t.tgid,
            "cpu": t.cpu, "task": "0x%x" % t.addr, "state": letter,
            "st": cc.CRASH_STATE.get(letter, "??"), "running_on": running.get(t.addr),
            "kthread": t.kthread, "comm": t.comm, "mm": "0x%x" % t.mm,
            "vsz_kb": vm * kb, "rss_kb": rss * kb,
            "mem_pct": round(100.0 * rss / total, 1) if total else 0.0,
            "thread": None,
        })
    return rows


def server_rows():
    """The server's rows (`monitor ps --json`), or None off corestub."""
    doc = cc.server_json("ps")
    return None if doc is None else doc["tasks"]


def rows():
    r = server_rows()
    return r if r is not None else gdb_rows()


def format_row(r):
    comm = "[%s]" % r["comm"] if r["kthread"] or r["pid"] == 0 else r["comm"]
    return "%s%8d %7d %3s  %16x  %s  %4.1f %8d %8d  %s" % (
        ">" if r["running_on"] is not None else " ", r["pid"], r["ppid"],
        "-" if r["cpu"] is None else r["cpu"], int(r["task"], 16), r["st"],
        r["mem_pct"], r["vsz_kb"], r["rss_kb"], comm)


def ps_lines(filters=()):
    lines = [HEADER]
    for r in rows():
        if filters and str(r["pid"]) not in filters and r["comm"] not in filters:
            continue
        lines.append(format_row(r))
    return lines


class Ps(gdb.Command):
    """List the dump's tasks like crash's `ps`.

Usage: ps [PID|COMM ...]
Columns: PID, PPID, CPU (the task's last CPU), TASK (task_struct address),
ST (crash's names for the letters the kernel's own task_state_array gives:
RU running, IN interruptible, UN uninterruptible, ID idle, ST stopped,
TR traced, ZO zombie, DE dead, PA parked),
%MEM, VSZ and RSS in KiB (RSS: file + anonymous pages, as crash counts), COMM ([brackets] for kernel threads).
On corestub the server reads the tasks (`monitor ps --json`); on other
targets (native cores, QEMU's gdbstub) GDB reads them.
'>' marks the task each CPU was running (its runqueue's curr).
Idle tasks of every CPU are listed as PID 0.
`task PID` then switches to a task's thread."""

    def __init__(self):
        super(Ps, self).__init__("ps", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        gdb.write("\n".join(ps_lines(gdb.string_to_argv(arg))) + "\n")


Ps()
