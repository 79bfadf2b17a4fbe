#!/usr/bin/env python3
"""corestub end-to-end benchmark: prints a markdown table (and writes it to
bench/results/latest.md). Every figure is the median of 3 runs, each next to
its baseline measured in the same run. Usage: python3 bench/run.py
(needs the fixtures: ../shared/fixtures/unpack.sh; builds --release first);
`python3 bench/run.py B6` runs B6 alone (bench/results/latest-B6.md)."""

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
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
BIN = os.path.join(TARGET, "release", "corestub")
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
    """`cache`: the run's XDG_CACHE_HOME, which holds corestub's GDB index
    cache (corestub writes the vmlinux's index there and points GDB's index
    cache at it): a fresh directory is a first start."""
    cmd = [BIN, "gdb", "--threads", threads, "--vmlinux", os.path.join(X86, "vmlinux"), dump, "--", "-nx", "-batch"]
    for e in ex:
        cmd += ["-ex", e]
    e = dict(env or {})
    if cache:
        e["XDG_CACHE_HOME"] = cache
    return run(cmd, env=e)


DRGN_LOG = "from drgn.helpers.linux.printk import get_printk_records; list(get_printk_records(prog))"


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


def nodebug_dumps():
    """(label, dump) for B6: the 6.1 fixtures and the guest dumps that
    tests/qemu_other_kernel.rs has cached (5.10, 6.12, 7.x)."""
    out = []
    for s in ("x86_64-6.1", "arm64-6.1"):
        d = os.path.join(FIX, s, "elf-d31.vmcore")
        if os.path.exists(d):
            out.append((s, d))
    for s in ("x86_64-5.10", "arm64-5.10", "x86_64-6.12", "arm64-6.12", "x86_64-7", "arm64-7"):
        base = os.path.join(FIX, s)
        for rel in sorted(os.listdir(base)) if os.path.isdir(base) else []:
            d = os.path.join(base, rel, "guest-v3", "qemu.elf")
            if os.path.exists(d):
                out.append(("%s guest (%s)" % (s, rel), d))
    return out


def nodebug_build(dump, tmp):
    """One cold build of the symbol file for `dump` (no vmlinux beside it,
    an empty cache, no debuginfod): (seconds the server logged for the
    build, wall seconds of the whole `corestub info`)."""
    d = tempfile.mkdtemp(prefix="nodebug-", dir=tmp)
    link = os.path.join(d, os.path.basename(dump))
    os.symlink(dump, link)
    env = {"XDG_CACHE_HOME": os.path.join(d, "cache"), "DEBUGINFOD_URLS": "",
           "RUST_LOG": "corestub::cli::nodebug=info"}
    t = time.perf_counter()
    r = run([BIN, "info", link], env=env)
    wall = time.perf_counter() - t
    shutil.rmtree(d, ignore_errors=True)
    for line in r.stderr.splitlines():
        if "symbol file built from the dump in " in line:
            took = line.split("symbol file built from the dump in ")[1].split(":")[0]
            return parse_duration(took), wall
    sys.stderr.write("no symbol file built for %s:\n%s\n" % (dump, r.stderr[-2000:]))
    return None, wall


def parse_duration(text):
    """Rust's Debug form of a Duration (`1.234567s`, `812.3ms`) in seconds."""
    for unit, scale in (("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9), ("s", 1.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    raise ValueError(text)


def b6_nodebug(tmp):
    """B6: the symbol file built from the dump alone (kallsyms, BTF as DWARF,
    ORC as .debug_frame), cold: its cache emptied before each run. The target
    is 3 s; the second figure in the note is the whole `corestub info`."""
    for label, dump in nodebug_dumps():
        res = [nodebug_build(dump, tmp) for _ in range(RUNS)]
        built = [b for b, _ in res if b is not None]
        if not built:
            rows.append("| B6 symbol file from the dump, %s | failed | | | |" % label)
            continue
        row("B6 symbol file built from the dump, cold, %s" % label, statistics.median(built), 3.0,
            "target (3 s)", "(whole `corestub info` %.2f s)" % statistics.median(w for _, w in res))


def write_table(name, extra=""):
    host = "%s, %d cores, load %.1f" % (os.uname().machine, os.cpu_count(), os.getloadavg()[0])
    table = ["## corestub benchmark (%s, %s)" % (time.strftime("%Y-%m-%d"), host), "",
             "| measure | corestub | baseline | baseline is | ratio |", "|---|---|---|---|---|"] + rows
    text = "\n".join(table) + "\n\n" + extra
    print(text)
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", name), "w") as f:
        f.write(text)


def main():
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    if sys.argv[1:] == ["B6"]:
        tmp = tempfile.mkdtemp(prefix="corestub-bench-")
        b6_nodebug(tmp)
        write_table("latest-B6.md")
        shutil.rmtree(tmp, ignore_errors=True)
        return
    elf = os.path.join(X86, "elf-d31.vmcore")
    kz = os.path.join(X86, "kdump-zlib-d31.kdump")
    for f in (elf, kz):
        if not os.path.exists(f):
            sys.exit("missing fixture %s: run ../shared/fixtures/unpack.sh" % f)
    tmp = tempfile.mkdtemp(prefix="corestub-bench-")
    dmesg_src = "source " + os.path.join(SCRIPTS, "dmesg.py")

    # B0: what the user waits for first. Cold: corestub's index absent and
    # GDB's cache empty (a fresh XDG_CACHE_HOME); issue 18's target is
    # <= 1.5x drgn opening the same dump, debug info and log, same run.
    # Cold runs alternate with drgn's, so both see the same machine load.
    vml = os.path.join(X86, "vmlinux")
    cold, drgns = [], []
    for i in range(RUNS):
        if shutil.which("drgn"):
            drgns.append(median_time(lambda: run(["drgn", "-c", kz, "-s", vml, "-e", DRGN_LOG]), 1))
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
    drgn = statistics.median(drgns) if drgns else None
    row("B0 `corestub gdb kdump-zlib -batch -ex dmesg`, cold (no index, GDB cache empty)", statistics.median(cold),
        drgn, "drgn (open + debug info + log) alternating, target 1.5" if drgn else "-")
    row("B0 same, second start (GDB index cache warm)", second, native_second,
        "native GDB on the ELF core, same dmesg.py, warm cache")
    for tool, cmd in (("drgn", ["drgn", "-c", kz, "-s", vml, "-e", DRGN_LOG]),
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

    b6_nodebug(tmp)

    # B4: server-internal reads
    b4 = subprocess.run(["cargo", "bench", "-q", "--bench", "reads"], cwd=ROOT, stdout=subprocess.PIPE, text=True).stdout

    write_table("latest.md", b4)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
