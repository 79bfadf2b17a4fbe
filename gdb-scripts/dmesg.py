# corestub: `dmesg` for GDB — the kernel log from a crash dump or live target.
#
# Reads the 5.10+ lockless printk ring buffer (prb) with one bulk read per
# array (descriptors, infos, text) instead of several packets per record, and
# falls back to the legacy log_buf layout of older kernels.
# Usable on its own: `source dmesg.py` then `dmesg`.

import gdb

DESC_COMMITTED = 1
DESC_FINALIZED = 2
LOG_CONT = 8


def _type(name):
    try:
        return gdb.lookup_type(name)
    except gdb.error:
        raise gdb.GdbError("dmesg: type '%s' not found: load the kernel's debug vmlinux first" % name)


def _off(t, path):
    """Byte offset of a (dotted) member path inside type t."""
    off = 0
    for part in path.split("."):
        f = None
        for cand in t.fields():
            if cand.name == part:
                f = cand
                break
        if f is None:
            raise gdb.GdbError("dmesg: %s has no member %s" % (t, part))
        off += f.bitpos // 8
        t = f.type.strip_typedefs()
    return off


def _read(addr, size):
    return bytes(gdb.selected_inferior().read_memory(addr, size))


def _u(buf, off, size):
    return int.from_bytes(buf[off:off + size], "little")


def _sym_value(name):
    sym = gdb.lookup_global_symbol(name) or gdb.lookup_static_symbol(name)
    if sym is None:
        return None
    return sym.value()


def prb_records():
    """Yields (ts_nsec, level, flags, text bytes) from the lockless ring."""
    prb = _sym_value("prb")
    if prb is None:
        raise gdb.GdbError("dmesg: symbol 'prb' not found (kernel older than 5.10 or no symbols)")
    rb_t = _type("struct printk_ringbuffer")
    dr_t = _type("struct prb_desc_ring")
    tr_t = _type("struct prb_data_ring")
    desc_t = _type("struct prb_desc")
    info_t = _type("struct printk_info")
    ulong = 8 if _type("long").sizeof == 8 else 4

    prb_addr = int(prb)
    rb = _read(prb_addr, rb_t.sizeof)
    d = _off(rb_t, "desc_ring")
    t = _off(rb_t, "text_data_ring")
    count = 1 << _u(rb, d + _off(dr_t, "count_bits"), 4)
    descs = _u(rb, d + _off(dr_t, "descs"), ulong)
    infos = _u(rb, d + _off(dr_t, "infos"), ulong)
    head_id = _u(rb, d + _off(dr_t, "head_id"), ulong)
    tail_id = _u(rb, d + _off(dr_t, "tail_id"), ulong)
    data_size = 1 << _u(rb, t + _off(tr_t, "size_bits"), 4)
    data_addr = _u(rb, t + _off(tr_t, "data"), ulong)

    # three bulk reads: the whole descriptor array, info array and text ring
    dsz, isz = desc_t.sizeof, info_t.sizeof
    desc_buf = _read(descs, count * dsz)
    info_buf = _read(infos, count * isz)
    text_buf = _read(data_addr, data_size)

    sv_off = _off(desc_t, "state_var")
    begin_off = _off(desc_t, "text_blk_lpos.begin")
    next_off = _off(desc_t, "text_blk_lpos.next")
    ts_off = _off(info_t, "ts_nsec")
    len_off = _off(info_t, "text_len")
    # level and flags are bitfields sharing one byte after `facility`
    lvl_byte = _off(info_t, "facility") + 1

    bits = ulong * 8
    flags_shift = bits - 2
    id_mask = (1 << flags_shift) - 1

    did = tail_id & id_mask
    head_id &= id_mask
    for _ in range(count + 1):
        ind = did % count
        dbase, ibase = ind * dsz, ind * isz
        sv = _u(desc_buf, dbase + sv_off, ulong)
        state = (sv >> flags_shift) & 3
        if state in (DESC_COMMITTED, DESC_FINALIZED) and (sv & id_mask) == did:
            begin = _u(desc_buf, dbase + begin_off, ulong)
            nxt = _u(desc_buf, dbase + next_off, ulong)
            text_len = _u(info_buf, ibase + len_off, 2)
            text = b""
            if begin & 1 == 0 and begin != nxt:
                b = begin % data_size
                e = nxt % data_size
                # a block that wraps is stored whole at the ring's start
                if begin // data_size != nxt // data_size:
                    b = 0
                # each block starts with its descriptor id (one long)
                text = text_buf[b + ulong:b + ulong + text_len]
            flagbyte = info_buf[ibase + lvl_byte]
            yield (_u(info_buf, ibase + ts_off, 8), flagbyte >> 5, flagbyte & 0x1f, text)
        if did == head_id:
            break
        did = (did + 1) & id_mask


def legacy_records():
    """Pre-5.10 log_buf of struct printk_log records."""
    log_buf = _sym_value("log_buf")
    first = _sym_value("log_first_idx")
    nxt = _sym_value("log_next_idx")
    size = _sym_value("log_buf_len")
    if None in (log_buf, first, nxt, size):
        raise gdb.GdbError("dmesg: neither prb nor log_buf found: load the kernel's debug vmlinux first")
    log_t = _type("struct printk_log")
    buf = _read(int(log_buf), int(size))
    hdr = log_t.sizeof
    pos, end = int(first), int(nxt)
    for _ in range(len(buf)):
        if pos == end:
            break
        reclen = _u(buf, pos + _off(log_t, "len"), 2)
        if reclen == 0:
            pos = 0  # wrap marker
            continue
        text_len = _u(buf, pos + _off(log_t, "text_len"), 2)
        ts = _u(buf, pos + _off(log_t, "ts_nsec"), 8)
        lvl = buf[pos + _off(log_t, "facility") + 1]
        yield (ts, lvl >> 5, lvl & 0x1f, buf[pos + hdr:pos + hdr + text_len])
        pos += reclen


def records():
    if _sym_value("prb") is not None:
        return prb_records()
    return legacy_records()


def format_lines(show_level=False):
    out = []
    for ts, level, flags, text in records():
        lines = text.decode("utf-8", "replace").split("\n")
        prefix = "[%5d.%06d] " % (ts // 1000000000, (ts % 1000000000) // 1000)
        if show_level:
            prefix = "<%d>%s" % (level, prefix)
        for i, line in enumerate(lines):
            out.append((prefix if i == 0 else " " * len(prefix)) + line)
    return out


class Dmesg(gdb.Command):
    """Print the kernel log (printk ring buffer) of the dump.

Usage: dmesg [-l]
  -l   prefix each record with its log level as <N>

Works on 5.10+ kernels (lockless ring buffer) and older ones (log_buf).
Needs the kernel's debug vmlinux loaded (corestub gdb does that)."""

    def __init__(self):
        super(Dmesg, self).__init__("dmesg", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        show_level = "-l" in argv
        unknown = [a for a in argv if a != "-l"]
        if unknown:
            raise gdb.GdbError("dmesg: unknown option %s (see 'help dmesg')" % unknown[0])
        text = "\n".join(format_lines(show_level))
        gdb.write(text + "\n")


Dmesg()
