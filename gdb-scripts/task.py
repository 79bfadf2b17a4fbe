# corestub: `task PID` — switch to the thread of a kernel task, like crash's
# `set PID`. The server owns the thread numbering: `monitor ps --json` gives
# each task's GDB thread id.

import os
import sys

import gdb

_dir = os.path.dirname(os.path.abspath(__file__))
if _dir not in sys.path:
    sys.path.insert(0, _dir)
import corestub_common as cc  # noqa: E402


def task_threads():
    """{pid: GDB thread id} of the tasks corestub lists as threads ({} on
    other targets, which have no task threads)."""
    doc = cc.server_json("ps")
    if doc is None:
        return {}
    out = {}
    for t in doc["tasks"]:
        if t["thread"] is not None:
            out.setdefault(t["pid"], t["thread"])
    return out


def thread_of_pid(pid):
    tid = task_threads().get(pid)
    if tid is None:
        return None
    for t in gdb.selected_inferior().threads():
        if tid in (t.ptid[1], t.ptid[2]):
            return t
    return None


class Task(gdb.Command):
    """Switch to the thread of the kernel task with the given PID.

Usage: task PID
Task threads exist when corestub serves with --threads all (the default) and
the debug vmlinux is loaded. `info threads` lists them as "pid N comm [state]"."""

    def __init__(self):
        super(Task, self).__init__("task", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        if len(argv) != 1 or not argv[0].isdigit():
            raise gdb.GdbError("usage: task PID")
        t = thread_of_pid(int(argv[0]))
        if t is None:
            raise gdb.GdbError("task: no thread for pid %s (is corestub serving --threads all?)" % argv[0])
        gdb.execute("thread %d" % t.num, to_string=not from_tty)
        if not from_tty:
            gdb.write("[task %s is thread %d]\n" % (argv[0], t.num))


Task()
