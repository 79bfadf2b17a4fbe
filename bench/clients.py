#!/usr/bin/env python3
"""corestub per-client benchmark (issue 18): one column per debugger (the
host's GDB 13 and LLDB 14, Debian 13's GDB 16.3/18.1 and LLDB 19/22 from the
roots tests/clients/trixie.sh builds), each cell corestub's time, the same
debugger's native time on the same data in the same run, and their ratio.

Rows (medians of RUNS; a cold row empties the debugger's index cache first):
  B0  `corestub gdb kdump-zlib -batch -ex dmesg`, cold and warm GDB index
      cache, against drgn's open + debug info + log when drgn is installed
  B2  `dump binary memory` of 64 MiB of the direct map, against the same GDB
      reading the ELF core natively (server CPU from CORESTUB_STATS)
  B5  `info threads` with 10,000 extra task threads (examples/many_tasks.rs),
      against the same GDB on an ELF core carrying as many NT_PRSTATUS
      threads (examples/task_core.rs)
  L1  LLDB's crash-path `bt` on kdump-zlib (cold: LLDB has no index cache),
      against the same LLDB on the ELF core natively
Usage: python3 bench/clients.py [--runs N] [--only gdb-16,lldb-22] [--skip B0,B2,B5]
[--out clients-B0.md] (a partial run's table beside the full one)
CORESTUB_BENCH_BIN=/path/to/corestub measures that binary (an earlier
build, for a before/after comparison) instead of building --release.
Needs the fixtures and, for the Debian 13 columns, the client roots (run
`cargo test --test clients` once); builds --release first."""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import run as base  # bench/run.py: paths, run(), median_time()

CLIENTS = os.environ.get("CORESTUB_CLIENTS", os.path.join(os.path.dirname(base.FIX), "corestub-clients"))
VML = os.path.join(base.X86, "vmlinux")
ELF = os.path.join(base.X86, "elf-d31.vmcore")
KZ = os.path.join(base.X86, "kdump-zlib-d31.kdump")
# The fixture's KASLR offset comes from the dump itself (corestub info), not
# from a constant: the native runs need it to place the vmlinux.


def binds():
    """The directories the chroot clients must see: the fixtures, the
    binary's (GDB runs `corestub serve` from there), the tree, /tmp."""
    return ":".join([base.FIX, os.path.dirname(os.path.dirname(base.BIN)), base.ROOT, tempfile.gettempdir()])


def clients():
    """(name, kind, program, version): host first, then the roots'."""
    out = []
    for kind, prog in (("gdb", "gdb"), ("lldb", "lldb")):
        if shutil.which(prog):
            v = base.run([prog, "--version"]).stdout.splitlines()[0]
            major = [w for w in v.replace("(", " ").split() if w[:1].isdigit()][-1].split(".")[0]
            out.append(("%s-%s" % (kind, major), kind, prog, v))
    try:
        with open(os.path.join(CLIENTS, "versions")) as f:
            for line in f:
                name, version = line.rstrip("\n").split(" ", 1)
                out.append((name, name.split("-")[0], os.path.join(CLIENTS, "bin", name), version))
    except OSError:
        sys.stderr.write("no Debian 13 clients in %s (cargo test --test clients builds them)\n" % CLIENTS)
    return out


def dump_info(dump):
    return json.loads(base.run([base.BIN, "info", "--json", dump]).stdout)


PANIC_PID = 0


def run_env():
    return {"CORESTUB_CLIENT_BINDS": binds()}


def corestub_gdb(prog, dump, *ex, threads="cpus", cache=None, env=None):
    """`cache`: the run's XDG_CACHE_HOME (corestub's GDB index cache, see
    run.py's corestub_gdb)."""
    cmd = [base.BIN, "gdb", "--gdb", prog, "--threads", threads, "--vmlinux", VML, dump, "--", "-nx", "-batch"]
    for e in ex:
        cmd += ["-ex", e]
    e = dict(run_env(), **(env or {}))
    if cache:
        e["XDG_CACHE_HOME"] = cache
    return base.run(cmd, env=e)


def native_gdb(prog, core, offset, *ex, cache=None):
    cmd = [prog, "-nx", "-batch", "-iex", "set index-cache enabled on"]
    if cache:
        cmd += ["-iex", "set index-cache directory " + cache]
    cmd += ["-ex", "set confirm off", "-ex", "add-symbol-file %s -o %#x -s .data..percpu 0" % (VML, offset),
            "-ex", "core-file " + core]
    for e in ex:
        cmd += ["-ex", e]
    return base.run(cmd, env=run_env())


LLDB_TIMEOUT = 300


def timed_out(r):
    return r is None


def run_limited(cmd, limit):
    """base.run with a time limit; None when the command ran out of time."""
    e = dict(os.environ, **run_env())
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return None


def corestub_lldb(prog, dump, *cmds):
    cmd = [base.BIN, "lldb", "--lldb", prog, "--vmlinux", VML, dump, "--", "-b"]
    for c in cmds:
        cmd += ["-o", c]
    return run_limited(cmd, LLDB_TIMEOUT)


def native_lldb(prog, core, offset, *cmds):
    """LLDB on the ELF core, the panicking CPU's thread selected (its tid
    is the panic PID in the core's NT_PRSTATUS, as corestub selects it)."""
    # The kernel core's notes name no OS (LLDB: "Unsupported OS"): say Linux.
    cmd = [prog, "-b", "-o", "target create --arch x86_64-unknown-linux-gnu --core %s %s" % (core, VML),
           "-o", "target modules load --file vmlinux --slide %#x" % offset,
           "-o", "script lldb.process.SetSelectedThreadByID(%d)" % PANIC_PID]
    for c in cmds:
        cmd += ["-o", c]
    return run_limited(cmd, LLDB_TIMEOUT)


class Table:
    def __init__(self, names):
        self.names = names
        self.cells = {}  # (row, client) -> text
        self.order = []

    def put(self, row, client, ours, native=None, note=""):
        if row not in self.order:
            self.order.append(row)
        if ours is None or native is None and note == "timeout":
            text = ("> %d s" % LLDB_TIMEOUT) if ours is None else "%.2f s" % ours
            text += " / " + ("> %d s" % LLDB_TIMEOUT if native is None else "%.2f s" % native)
            self.cells[(row, client)] = text
            sys.stderr.write("%s | %s | %s\n" % (row, client, text))
            return
        text = "%.2f s" % ours
        if native:
            text += " / %.2f s = **%.2f**" % (native, ours / native)
        if note:
            text += " " + note
        self.cells[(row, client)] = text
        sys.stderr.write("%s | %s | %s\n" % (row, client, text))

    def markdown(self):
        lines = ["| measure | " + " | ".join(self.names) + " |", "|---|" + "---|" * len(self.names)]
        for r in self.order:
            lines.append("| %s | %s |" % (r, " | ".join(self.cells.get((r, n), "-") for n in self.names)))
        return "\n".join(lines)


def drgn_log():
    return base.run(["drgn", "-c", KZ, "-s", VML, "-e", base.DRGN_LOG])


def gdb_rows(t, name, prog, tmp, offset, runs, skip):
    warm = os.path.join(tmp, name + "-warm")
    corestub_gdb(prog, KZ, "dmesg", cache=warm)
    if "B0" not in skip:
        b0_rows(t, name, prog, tmp, warm, runs)
    nwarm = os.path.join(tmp, name + "-nwarm")
    native_gdb(prog, ELF, offset, "info threads", cache=nwarm)
    if "B2" not in skip:
        start = direct_map_start()
        out = os.path.join(tmp, "mem.bin")
        cmd = "dump binary memory %s %#x %#x" % (out, start, start + (64 << 20))
        stats_file = os.path.join(tmp, "stats")
        cpu = []

        def ours():
            corestub_gdb(prog, ELF, cmd, cache=warm, env={"CORESTUB_STATS": stats_file})
            with open(stats_file) as f:
                cpu.append(float(f.read().split("cpu_s=")[1].split()[0]))
        t_ours = base.median_time(ours, runs)
        t_native = base.median_time(lambda: native_gdb(prog, ELF, offset, cmd, cache=nwarm), runs)
        t.put("B2 dump binary memory 64 MiB: corestub / native ELF core", name, t_ours, t_native,
              "(server CPU %.2f s)" % statistics.median(cpu))
    if "B5" not in skip and MANY:
        many, n_many, tcore, n_core = MANY
        t_many = base.median_time(lambda: corestub_gdb(prog, many, "info threads", threads="all", cache=warm), runs)
        t_core = base.median_time(lambda: native_gdb(prog, tcore, offset, "info threads", cache=nwarm), runs)
        t.put("B5 info threads, %d threads: corestub / native core with %d threads" % (n_many, n_core),
              name, t_many, t_core)


def b0_rows(t, name, prog, tmp, warm, runs):
    # Cold runs alternate with drgn's, so both see the same machine load.
    cold, drgn = [], []
    for i in range(runs):
        if shutil.which("drgn"):
            drgn.append(base.median_time(drgn_log, 1))
        c = os.path.join(tmp, "%s-cold%d" % (name, i))
        s = time.perf_counter()
        corestub_gdb(prog, KZ, "dmesg", cache=c)
        cold.append(time.perf_counter() - s)
    t.put("B0 dmesg, cold (no index, GDB cache empty): corestub / drgn alternating (target 1.5)", name,
          statistics.median(cold), statistics.median(drgn) if drgn else None)
    t.put("B0 dmesg, warm GDB index cache (corestub)", name,
          base.median_time(lambda: corestub_gdb(prog, KZ, "dmesg", cache=warm), runs))


def lldb_time(fn):
    """Seconds, or None past LLDB_TIMEOUT (LLDB <= 19 take many minutes for
    an x86_64 kernel bt: README, LLDB)."""
    s = time.perf_counter()
    r = fn()
    return None if timed_out(r) else time.perf_counter() - s


def lldb_rows(t, name, prog, offset, runs):
    row = "L1 crash-path bt (kdump-zlib): corestub / native ELF core"
    ours = [lldb_time(lambda: corestub_lldb(prog, KZ, "bt")) for _ in range(runs)]
    native = [lldb_time(lambda: native_lldb(prog, ELF, offset, "bt")) for _ in range(runs)]
    med = lambda v: None if None in v else statistics.median(v)
    m_ours, m_native = med(ours), med(native)
    if m_ours is None or m_native is None:
        t.put(row, name, m_ours, m_native, "timeout")
    else:
        t.put(row, name, m_ours, m_native)


def direct_map_start():
    """PA 1 MiB in the direct map: page_offset_base from the dump."""
    r = corestub_gdb("gdb", ELF, "p/x page_offset_base")
    for line in r.stdout.splitlines():
        if line.startswith("$1 = "):
            return int(line.split("=")[1], 16) + (1 << 20)
    sys.exit("page_offset_base not read: %s" % r.stderr[-500:])


MANY = None


def make_many(tmp):
    ex = lambda name, *a: subprocess.run(["cargo", "run", "--release", "-q", "--example", name, "--"] + list(a),
                                         cwd=base.ROOT, stdout=subprocess.PIPE, text=True, check=True).stdout.strip()
    many = os.path.join(tmp, "many.vmcore")
    tcore = os.path.join(tmp, "tasks.core")
    got = ex("many_tasks", ELF, VML, many, "10000")
    n_many = int(got.split(" = ")[1].split()[0]) + 4
    got = ex("task_core", ELF, VML, tcore, str(10000 // 73 + 1))
    return many, n_many, tcore, int(got.split()[0])


def main():
    global MANY, LLDB_TIMEOUT
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="")
    ap.add_argument("--skip", default="")
    ap.add_argument("--out", default="clients.md")
    ap.add_argument("--lldb-timeout", type=int, default=LLDB_TIMEOUT)
    a = ap.parse_args()
    LLDB_TIMEOUT = a.lldb_timeout
    if os.environ.get("CORESTUB_BENCH_BIN"):
        base.BIN = os.path.abspath(os.environ["CORESTUB_BENCH_BIN"])
    else:
        subprocess.run(["cargo", "build", "--release", "-q"], cwd=base.ROOT, check=True)
    cl = clients()
    if a.only:
        keep = a.only.split(",")
        cl = [c for c in cl if c[0] in keep]
    tmp = tempfile.mkdtemp(prefix="corestub-clients-bench-")
    global PANIC_PID
    info = dump_info(ELF)
    offset = int(info["kaslr_offset"], 0)
    PANIC_PID = info["panic_pid"]
    if "B5" not in a.skip:
        MANY = make_many(tmp)
    t = Table([c[0] for c in cl])
    if shutil.which("drgn"):
        drgn_note = "drgn open + debug info + log, same run: %.2f s" % base.median_time(drgn_log, a.runs)
    else:
        drgn_note = "drgn not installed (pip install drgn)"
    for name, kind, prog, _ in cl:
        sys.stderr.write("bench: %s\n" % name)
        if kind == "gdb":
            gdb_rows(t, name, prog, tmp, offset, a.runs, a.skip)
        else:
            lldb_rows(t, name, prog, offset, a.runs)
    host = "%s, %d cores, load %.1f" % (os.uname().machine, os.cpu_count(), os.getloadavg()[0])
    text = "## corestub per-client benchmark (%s, %s)\n\n%s\n\n%s\n\nClients: %s\n" % (
        time.strftime("%Y-%m-%d"), host, t.markdown(), drgn_note,
        "; ".join("%s = %s" % (c[0], c[3]) for c in cl))
    print(text)
    os.makedirs(os.path.join(base.ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(base.ROOT, "bench", "results", a.out), "w") as f:
        f.write(text)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
