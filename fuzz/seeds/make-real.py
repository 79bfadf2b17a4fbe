#!/usr/bin/env python3
"""Writes the seeds of the targets over damaged real fixtures (session,
tasks, printk, monitor, regs) into fuzz/corpus/TARGET. Each seed is a damage
description (see src/fuzz_harness/real.rs): fixture selector, patch records,
then the target's tail. Deterministic; a few hundred bytes each."""
import os, random, struct

here = os.path.dirname(os.path.abspath(__file__))
corpus = os.path.join(here, "..", "corpus")
rng = random.Random(16)


def record(page, off, kind, length, value):
    return struct.pack("<HHBBQ", page, off, kind, length, value & (2**64 - 1))


def desc(fixture, records):
    return bytes([fixture, len(records)]) + b"".join(records)


def some_records(n):
    out = []
    for _ in range(n):
        kind = rng.randrange(7)
        val = rng.choice([0, 1, 0xffffffffffffffff, 0x8000000000000000, 0xffff888000000000,
                          0xffffffff81000000, rng.getrandbits(64), 0x1000, 8, -8 & 0xffff])
        out.append(record(rng.getrandbits(16), rng.randrange(0, 4096, 8), kind,
                          rng.randrange(1, 64), val))
    return out


def hexs(s):
    return s.encode().hex().encode()


def rsp_tail(arch):
    feat = b"qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+;fork-events+;vfork-events+;exec-events+;vContSupported+;QThreadEvents+;no-resumed+;xmlRegisters=" + (b"i386" if arch == 0 else b"aarch64")
    pc = b"ffffffff81000000" if arch == 0 else b"ffff800008000000"
    lines = [feat, b"vMustReplyEmpty", b"QStartNoAckMode", b"Hgp0.0",
             b"qXfer:features:read:target.xml:0,ffb", b"qTStatus", b"?",
             b"qXfer:threads:read::0,fff", b"qAttached:1", b"g", b"Hg2", b"g",
             b"p10", b"Hg" + b"%x" % 1000001, b"g", b"m" + pc + b",40",
             b"qThreadExtraInfo,1", b"qThreadStopInfo1", b"T1", b"qC", b"qOffsets", b"qSymbol::",
             b"qRcmd," + hexs("ps"), b"qRcmd," + hexs("sys"), b"qRcmd," + hexs("log -l"),
             b"qRcmd," + hexs("vtop -c 0 " + pc.decode()), b"qRcmd," + hexs("rd -64 init_task 8"),
             b"M0,1:00", b"vCont;c", b"D"]
    return b"\x01" + b"\n".join(lines)


MONITOR = [b"ps\nsys\nlog", b"log -l\nhelp ps",
           b"vtop ffffffff81000000\nvtop -c 1 ffff888000001000\nvtop -p 1 400000",
           b"rd -64 init_task 16\nrd -8 -p 1000 32\nrd -32 jiffies_64 4",
           b"kmem -p 1000\nptov 1000\ninfo dumpfile\ninfo version",
           b"vtop ffff800008000000\nrd -16 swapper_pg_dir 8\nps"]


def write(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


for fx, arch in ((0, "x86"), (1, "arm64")):
    write("session", f"seed-{arch}-intact", desc(fx, []) + rsp_tail(fx))
    write("session", f"seed-{arch}-damaged", desc(fx, some_records(8)) + rsp_tail(fx))
    write("session", f"seed-{arch}-raw", desc(fx, some_records(2)) + b"\x00+$qSupported#37+$g#67$m0,8#xx-$?#3f\x03")
    for t in ("tasks", "printk"):
        write(t, f"seed-{arch}-intact", desc(fx, []))
        for i in range(3):
            write(t, f"seed-{arch}-damaged{i}", desc(fx, some_records(2 + 6 * i)))
    for i, m in enumerate(MONITOR):
        write("monitor", f"seed-{arch}-{i}", desc(fx, some_records(i % 3)) + m)
    write("regs", f"seed-{arch}-intact", desc(fx, []) + bytes([0, 7, 16, 17, 32, 33, 0x50, 0xff]))
    write("regs", f"seed-{arch}-notes", desc(fx, [record(0, r, 6, c, v) for r, c, v in
        ((16, 0, 0xffffffffffffffff), (17, 0, 3), (0xffff, 1, 0x7fffffff), (33, 1, 0), (32, 0, 0))])
        + bytes([16, 17, 33]))
