# corestub: `task PID` — switch to the thread of a kernel task, like crash's
# `set PID`. corestub numbers task threads 1000000 + PID (CPU N is thread N+1).

import gdb

TASK_TID_BASE = 1000000


def thread_of_pid(pid):
    for t in gdb.selected_inferior().threads():
        if t.ptid[1] == TASK_TID_BASE + pid or t.ptid[2] == TASK_TID_BASE + pid:
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
