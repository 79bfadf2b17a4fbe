#!/usr/bin/env python3
"""corestub end-to-end benchmark: prints a markdown table (and writes it to
bench/results/latest.md). Every figure is the median of 3 runs, each next to
its baseline measured in the same run. Usage: python3 bench/run.py
(needs the fixtures: ../shared/fixtures/unpack.sh; builds --release first)."""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.environ.get("CORESTUB_FIXTURES", os.path.expanduser("~/.cache/corestub-fixtures"))
X86 = os.path.join(FIX, "x86_64-6.1")
BIN = os.path.join(ROOT, "target", "release", "corestub")
SCRIPTS = os.path.join(ROOT, "gdb-scripts")
RUNS = 3
rows = []


def median_time(fn, runs=RUNS):
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def run(cmd, env=None, check=True):
    e = dict(os.environ)
    if env:
        e.update(env)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e, text=True)
    if check and r.returncode != 0:
        sys.stderr.write("command failed: %s\n%s\n" % (cmd, r.stderr[-2000:]))
    return r


def corestub_gdb(dump, *ex, threads="all", env=None, cache=None):
    cmd = [BIN, "gdb", "--threads", threads, "--vmlinux", os.path.join(X86, "vmlinux"), dump, "--", "-nx", "-batch"]
    if cache:
        cmd += ["-iex", "set index-cache directory " + cache]
    for e in ex:
        cmd += ["-ex", e]
    return run(cmd, env=env)


def native_gdb(core, *ex, cache=None):
    cmd = ["gdb", "-nx", "-batch", "-iex", "set index-cache enabled on"]
    if cache:
        cmd += ["-iex", "set index-cache directory " + cache]
    cmd += ["-ex", "set confirm off",
            "-ex", "add-symbol-file %s -o 0x16000000 -s .data..percpu 0" % os.path.join(X86, "vmlinux"),
            "-ex", "core-file " + core]
    for e in ex:
        cmd += ["-ex", e]
    return run(cmd)


# The page-table walk cache (src/mmu/cache.rs) off: the "before" of B2/B3/B4.
WALK_CACHE_OFF = {"CORESTUB_WALK_CACHE": "0"}


def b2_walk_cache_off(elf, cmd, warm_cache, t_on):
    """B2 with the walk cache off. (Not on kdump-zlib: its d31 dump excludes
    pages in that range, which stops GDB's dump at the first one.)"""
    t_off = median_time(lambda: corestub_gdb(elf, cmd, threads="cpus", cache=warm_cache, env=WALK_CACHE_OFF))
    row("B2 same, walk cache off", t_off, t_on, "walk cache on (row above)")


def row(name, ours, base, base_name, note=""):
    ratio = "%.2f" % (ours / base) if base else "-"
    rows.append("| %s | %.3f s | %s | %s | %s |" % (
        name, ours, ("%.3f s" % base) if base else "-", base_name, ratio + ((" " + note) if note else "")))


def main():
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    elf = os.path.join(X86, "elf-d31.vmcore")
    kz = os.path.join(X86, "kdump-zlib-d31.kdump")
    for f in (elf, kz):
        if not os.path.exists(f):
            sys.exit("missing fixture %s: run ../shared/fixtures/unpack.sh" % f)
    tmp = tempfile.mkdtemp(prefix="corestub-bench-")
    dmesg_src = "source " + os.path.join(SCRIPTS, "dmesg.py")

    # B0: what the user waits for first
    cold = []
    for i in range(RUNS):
        c = os.path.join(tmp, "cold%d" % i)
        t = time.perf_counter()
        corestub_gdb(kz, "dmesg", cache=c)
        cold.append(time.perf_counter() - t)
    warm_cache = os.path.join(tmp, "warm")
    corestub_gdb(kz, "dmesg", cache=warm_cache)
    second = median_time(lambda: corestub_gdb(kz, "dmesg", cache=warm_cache))
    nwarm = os.path.join(tmp, "nwarm")
    native_gdb(elf, dmesg_src, "dmesg", cache=nwarm)
    native_second = median_time(lambda: native_gdb(elf, dmesg_src, "dmesg", cache=nwarm))
    row("B0 `corestub gdb kdump-zlib -batch -ex dmesg`, cold index cache", statistics.median(cold), None, "-")
    row("B0 same, second start (GDB index cache warm)", second, native_second,
        "native GDB on the ELF core, same dmesg.py, warm cache")
    vml = os.path.join(X86, "vmlinux")
    for tool, cmd in (("drgn", ["drgn", "-c", kz, "-s", vml, "-e",
                                "from drgn.helpers.linux.printk import get_printk_records; list(get_printk_records(prog))"]),
                      ("crash", ["sh", "-c", "printf 'log\\nq\\n' | crash -s '%s' '%s'" % (vml, kz)])):
        if shutil.which(tool):
            t = median_time(lambda: run(cmd))
            row("B0 second start vs %s (open + debug info + log)" % tool, second, t, tool)
        else:
            rows.append("| B0 baseline: %s | not installed here (pip install drgn / apt-get install crash) | | | |" % tool)

    # B1: open to first answered packet, peak RSS of the server
    def first_packet(dump):
        p = subprocess.Popen([BIN, "serve", "--stdio", "--vmlinux", os.path.join(X86, "vmlinux"), dump],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        t = time.perf_counter()
        body = b"qSupported:multiprocess+;swbreak+"
        p.stdin.write(b"$" + body + b"#%02x" % (sum(body) & 0xff))
        p.stdin.flush()
        got = b""
        while b"#" not in got:
            b = p.stdout.read(1)
            if not b:
                break
            got += b
        dt = time.perf_counter() - t
        rss = "?"
        try:
            with open("/proc/%d/status" % p.pid) as f:
                rss = ([l.split(":")[1].strip() for l in f if l.startswith("VmHWM")] or ["exited"])[0]
        except OSError:
            pass
        p.kill()
        p.wait()
        return dt, rss

    synth = subprocess.run(["cargo", "run", "--release", "-q", "--example", "synth_dump", "--", tmp, "64"],
                           cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True).stdout.split()
    for name, dump in (("ELF", elf), ("kdump-zlib", kz), ("flat-zlib", os.path.join(X86, "flat-zlib-d31.flat")),
                       ("synthetic 64 GiB ELF", synth[0]), ("synthetic 64 GiB kdump", synth[1])):
        res = [first_packet(dump) for _ in range(RUNS)]
        t = statistics.median(r[0] for r in res)
        row("B1 open → first packet answered, %s (peak RSS %s)" % (name, res[-1][1]), t, None, "-")

    # B2: dump binary memory, 64 MiB of the direct map (PA 1 MiB..65 MiB)
    start = 0xffff897740100000
    end = start + (64 << 20)
    out = os.path.join(tmp, "mem.bin")
    cmd = "dump binary memory %s %#x %#x" % (out, start, end)
    stats = {}

    stats_file = os.path.join(tmp, "stats")

    def ours():
        corestub_gdb(elf, cmd, threads="cpus", env={"CORESTUB_STATS": stats_file}, cache=warm_cache)
        with open(stats_file) as f:
            stats["cpu"] = float(f.read().split("cpu_s=")[1].split()[0])
    t_ours = median_time(ours)
    t_native = median_time(lambda: native_gdb(elf, cmd, cache=nwarm))
    row("B2 dump binary memory 64 MiB (ELF)", t_ours, t_native, "native GDB core-file",
        "(server CPU %.2f s)" % stats.get("cpu", -1))
    b2_walk_cache_off(elf, cmd, warm_cache, t_ours)

    # B3: dmesg and thread apply all bt 1
    t_ours = median_time(lambda: corestub_gdb(kz, "dmesg", threads="cpus", cache=warm_cache))
    row("B3 our dmesg (kdump-zlib, incl. GDB start; formatted server-side)", t_ours, native_second,
        "native GDB + dmesg.py on ELF core")
    gdb_side = "python gdb.write(chr(10).join(format_lines()) + chr(10))"
    t_side = median_time(lambda: corestub_gdb(kz, gdb_side, threads="cpus", cache=warm_cache))
    row("B3 dmesg.py's GDB-side reader through corestub (no server help)", t_side, native_second,
        "native GDB + dmesg.py on ELF core")
    lx = os.path.join(os.path.dirname(ROOT), "shared", "fixtures", "clients", "linux-6.1-gdb-scripts", "vmlinux-gdb.py")
    if os.path.exists(lx):
        t_lx = median_time(lambda: corestub_gdb(kz, "source " + lx, "lx-dmesg", threads="cpus", cache=warm_cache))
        row("B3 kernel lx-dmesg through corestub", t_lx, t_ours, "our dmesg")
    t_bt = median_time(lambda: corestub_gdb(kz, "thread apply all bt 1", cache=warm_cache))
    row("B3 thread apply all bt 1 (all task threads)", t_bt, None, "native core: no task threads")
    t_bt_off = median_time(lambda: corestub_gdb(kz, "thread apply all bt 1", cache=warm_cache, env=WALK_CACHE_OFF))
    row("B3 thread apply all bt 1, walk cache off", t_bt_off, t_bt, "walk cache on (row above)")

    # B5: info threads with all task threads vs CPUs only
    t_all = median_time(lambda: corestub_gdb(kz, "info threads", cache=warm_cache))
    t_cpu = median_time(lambda: corestub_gdb(kz, "info threads", threads="cpus", cache=warm_cache))
    row("B5 info threads, --threads all (80 threads)", t_all, t_cpu, "--threads cpus")
    # 10,000 more tasks: clones of kthreadd linked into the fixture's task
    # list (examples/many_tasks.rs); the baseline is native GDB on an ELF
    # core carrying the same task threads as NT_PRSTATUS notes
    # (examples/task_core.rs): GDB's own cost for that many threads
    many = os.path.join(tmp, "many.vmcore")
    tcore = os.path.join(tmp, "tasks.core")
    ex = lambda name, *a: subprocess.run(["cargo", "run", "--release", "-q", "--example", name, "--"] + list(a),
                                         cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True).stdout.strip()
    got = ex("many_tasks", elf, vml, many, "10000")
    n_many = int(got.split(" = ")[1].split()[0]) + 4
    got = ex("task_core", elf, vml, tcore, str(10000 // 73 + 1))
    n_core = int(got.split()[0])
    t_many = median_time(lambda: run([BIN, "gdb", "--vmlinux", vml, many, "--", "-nx", "-batch",
                                      "-iex", "set index-cache directory " + warm_cache, "-ex", "info threads"]))
    t_core = median_time(lambda: native_gdb(tcore, "info threads", cache=nwarm))
    row("B5 info threads, %d threads (synthetic: fixture + 10,000 cloned tasks)" % n_many, t_many, t_core,
        "native GDB, ELF core with %d threads (same frames)" % n_core)
    os.unlink(many)
    os.unlink(tcore)

    # B4: server-internal reads
    b4 = subprocess.run(["cargo", "bench", "-q", "--bench", "reads"], cwd=ROOT, stdout=subprocess.PIPE, text=True).stdout

    host = "%s, %d cores, load %.1f" % (os.uname().machine, os.cpu_count(), os.getloadavg()[0])
    table = ["## corestub benchmark (%s, %s)" % (time.strftime("%Y-%m-%d"), host), "",
             "| measure | corestub | baseline | baseline is | ratio |", "|---|---|---|---|---|"] + rows
    text = "\n".join(table) + "\n\n" + b4
    print(text)
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "latest.md"), "w") as f:
        f.write(text)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
