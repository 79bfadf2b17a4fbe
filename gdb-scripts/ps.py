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


def _totalram_pages():
    v = cc.sym_value("_totalram_pages")
    if v is None:
        v = cc.sym_value("totalram_pages")
    if v is None:
        return 0
    try:
        return int(v["counter"])
    except gdb.error:
        return int(v)


def mem_usage(tasks, L):
    """{mm address: (total_vm pages, rss pages)}; per-thread rss deltas
    (SPLIT_RSS_COUNTING) are added like crash does."""
    out = {}
    base, el, n, inner = L.mm_rss
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
                rss += cc.s(b, base + i * el + inner, 8 if el >= 8 else 4)
        out[t.mm] = [cc.u(b, L.total_vm, cc.ulong()), rss]
    if L.rss is not None:
        o, el, n = L.rss
        for t in tasks:
            if t.mm in out:
                for i in RSS_COUNTERS:
                    if i < n:
                        out[t.mm][1] += cc.s(t.buf, o + i * el, el)
    return out


def ps_lines(filters=()):
    L = cc.task_layout("ps")
    tasks = cc.all_tasks("ps")
    running = {}
    try:
        for cpu, curr, _idle in cc.runqueue_tasks("ps"):
            running[curr] = cpu
    except gdb.GdbError:
        pass
    usage = mem_usage(tasks, L)
    total = _totalram_pages()
    kb = cc.page_size() // 1024
    tasks.sort(key=lambda t: (t.pid, t.cpu if t.cpu is not None else 0, t.addr))
    lines = [HEADER]
    for t in tasks:
        if filters and str(t.pid) not in filters and t.comm not in filters:
            continue
        vm, rss = usage.get(t.mm, (0, 0))
        rss = max(rss, 0)
        pct = 100.0 * rss / total if total else 0.0
        comm = "[%s]" % t.comm if t.kthread else t.comm
        lines.append("%s%8d %7d %4s  %016x  %s  %4.1f %8d %8d  %s" % (
            ">" if t.addr in running else " ", t.pid, t.ppid if t.ppid is not None else -1,
            "-" if t.cpu is None else t.cpu, t.addr, cc.state_letters(t.state, t.exit_state),
            pct, vm * kb, rss * kb, comm))
    return lines


class Ps(gdb.Command):
    """List the dump's tasks like crash's `ps`.

Usage: ps [PID|COMM ...]
Columns: PID, PPID, CPU (the task's last CPU), TASK (task_struct address),
ST (state: RU running, IN interruptible, UN uninterruptible, ID idle,
ST stopped, TR traced, ZO zombie, DE dead, PA parked, WA waking, NE new),
%MEM, VSZ and RSS in KiB (RSS: file + anonymous pages, as crash counts), COMM ([brackets] for kernel threads).
'>' marks the task each CPU was running (its runqueue's curr).
Idle tasks of every CPU are listed as PID 0.
`task PID` then switches to a task's thread."""

    def __init__(self):
        super(Ps, self).__init__("ps", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        gdb.write("\n".join(ps_lines(gdb.string_to_argv(arg))) + "\n")


Ps()
