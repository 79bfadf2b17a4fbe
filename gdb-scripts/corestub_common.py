# corestub: helpers shared by the gdb-scripts commands (dmesg, ps, trapinfo,
# lsmod, modsyms, sys). Imported as a module: corestub.py and each script put
# this directory on sys.path.
#
# Packets are what cost time against a remote stub, so structures are read in
# one bulk `read_memory` each and decoded with field offsets taken from GDB's
# types (DWARF of the debug vmlinux), never field by field through gdb.Value.

import gdb

PF_KTHREAD = 0x00200000


class Missing(gdb.GdbError):
    pass


def need_type(name, who):
    try:
        return gdb.lookup_type(name).strip_typedefs()
    except gdb.error:
        raise Missing("%s: type '%s' not found: load the kernel's debug vmlinux first "
                      "(corestub gdb does; by hand: add-symbol-file VMLINUX -o OFFSET)" % (who, name))


def field(t, name):
    """The gdb.Field `name` of struct type t, looking into anonymous members."""
    for f in t.fields():
        if f.name == name:
            return f, f.bitpos // 8
        if f.name is None and f.type.strip_typedefs().code in (gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION):
            sub = field(f.type.strip_typedefs(), name)
            if sub is not None:
                return sub[0], f.bitpos // 8 + sub[1]
    return None


def has(t, name):
    return field(t, name) is not None


def off(t, path, who="corestub"):
    """Byte offset of a dotted member path inside type t."""
    o = 0
    for part in path.split("."):
        hit = field(t, part)
        if hit is None:
            raise Missing("%s: %s has no member %s (kernel layout not supported)" % (who, t, part))
        f, fo = hit
        o += fo
        t = f.type.strip_typedefs()
    return o


def member_type(t, path, who="corestub"):
    for part in path.split("."):
        hit = field(t, part)
        if hit is None:
            raise Missing("%s: %s has no member %s" % (who, t, part))
        t = hit[0].type.strip_typedefs()
    return t


def member_int(buf, t, path, who="corestub"):
    """The integer member at `path` of a struct of type t held in buf, read
    as wide as its DWARF type says (an `unsigned long` is 4 bytes on a
    32-bit kernel) and signed as that type is."""
    mt = member_type(t, path, who)
    o = off(t, path, who)
    # Type.is_signed is GDB 12+; before, signed as these readers always were
    signed = mt.is_signed if hasattr(mt, "is_signed") else True
    return int.from_bytes(buf[o:o + mt.sizeof], "little", signed=signed)


def first_off(t, names, who="corestub"):
    for n in names:
        if has(t, n.split(".")[0]):
            try:
                return off(t, n, who)
            except gdb.GdbError:
                pass
    raise Missing("%s: %s has none of %s" % (who, t, ", ".join(names)))


MASK64 = (1 << 64) - 1


def read(addr, size):
    # per-CPU offsets are added as unsigned longs and wrap around
    return bytes(gdb.selected_inferior().read_memory(addr & MASK64, size))


def u(buf, o, size=8):
    return int.from_bytes(buf[o:o + size], "little")


def s(buf, o, size=8):
    return int.from_bytes(buf[o:o + size], "little", signed=True)


def cstr(buf, o=0, n=None):
    b = buf[o:] if n is None else buf[o:o + n]
    end = b.find(b"\0")
    if end >= 0:
        b = b[:end]
    return b.decode("utf-8", "replace")


def read_cstr(addr, maxlen=256):
    """A NUL-terminated string in one packet when it does not cross a page."""
    room = 0x1000 - (addr & 0xFFF)
    try:
        return cstr(read(addr, min(maxlen, room)))
    except gdb.MemoryError:
        return cstr(read(addr, 1)) if room else ""


def sym(name):
    s_ = gdb.lookup_global_symbol(name) or gdb.lookup_static_symbol(name)
    if s_ is None:
        try:
            s_ = gdb.lookup_symbol(name)[0]
        except gdb.error:
            s_ = None
    return s_


def sym_addr(name, who=None):
    """Address of a variable, or None (or a GdbError naming `who`)."""
    s_ = sym(name)
    if s_ is None:
        if who:
            raise Missing("%s: symbol '%s' not found: load the kernel's debug vmlinux first" % (who, name))
        return None
    return int(s_.value().address)


def sym_value(name):
    s_ = sym(name)
    return None if s_ is None else s_.value()


def ulong():
    return gdb.lookup_type("unsigned long").sizeof


def read_ulongs(addr, n):
    w = ulong()
    b = read(addr, n * w)
    return [u(b, i * w, w) for i in range(n)]


# ---- the server ------------------------------------------------------------

_corestub_conn = {}


def on_corestub():
    """True when the current inferior is connected to a corestub server
    (asked once per connection with `monitor info version`)."""
    try:
        conn = gdb.selected_inferior().connection
    except AttributeError:  # GDB < 11: no connection objects
        return False
    if conn is None or conn.type not in ("remote", "extended-remote"):
        return False
    if conn.num not in _corestub_conn:
        try:
            reply = gdb.execute("monitor info version", to_string=True)
        except gdb.error:
            reply = ""
        _corestub_conn[conn.num] = reply.startswith("corestub ")
    return _corestub_conn[conn.num]


def server_json(command):
    """`monitor COMMAND --json` parsed, when connected to corestub; None
    elsewhere (other stubs, native cores) or when the server cannot answer
    (the GDB-side readers below then do the work)."""
    if not on_corestub():
        return None
    import json
    try:
        text = gdb.execute("monitor %s --json" % command, to_string=True)
    except gdb.error:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None  # an error message instead of JSON: let GDB read it


# ---- the kernel's own notes ---------------------------------------------

_vmcoreinfo = None


def vmcoreinfo():
    """The kernel's vmcoreinfo_data (KEY=value lines; CRASHTIME is appended at
    crash time) as a dict, {} when absent."""
    global _vmcoreinfo
    if _vmcoreinfo is None:
        _vmcoreinfo = {}
        data = sym_value("vmcoreinfo_data")
        size = sym_value("vmcoreinfo_size")
        if data is not None and size is not None and int(data) and 0 < int(size) < (1 << 20):
            try:
                text = read(int(data), int(size)).decode("utf-8", "replace")
                for line in text.splitlines():
                    k, eq, v = line.partition("=")
                    if eq:
                        _vmcoreinfo[k] = v
            except gdb.MemoryError:
                pass
    return _vmcoreinfo


def utsname(who="corestub"):
    """init_uts_ns.name as a dict (sysname, nodename, release, version, machine)."""
    addr = sym_addr("init_uts_ns", who)
    ns_t = need_type("struct uts_namespace", who)
    name_t = member_type(ns_t, "name")
    o = off(ns_t, "name")
    b = read(addr + o, name_t.sizeof)
    out = {}
    for f in name_t.fields():
        out[f.name] = cstr(b, f.bitpos // 8, f.type.sizeof)
    return out


def page_size():
    try:
        return int(vmcoreinfo().get("PAGESIZE", "4096"))
    except ValueError:
        return 4096


# ---- CPUs ----------------------------------------------------------------

def cpu_mask(name):
    """CPUs set in a cpumask variable (e.g. __cpu_online_mask)."""
    addr = sym_addr(name)
    if addr is None:
        return []
    t = need_type("struct cpumask", "cpus")
    b = read(addr, t.sizeof)
    out = []
    for i, byte in enumerate(b):
        for bit in range(8):
            if byte >> bit & 1:
                out.append(i * 8 + bit)
    return out


def nr_cpus():
    v = sym_value("nr_cpu_ids")
    if v is not None:
        return int(v)
    return max(cpu_mask("__cpu_possible_mask") or [0]) + 1


def present_cpus():
    """The CPUs the machine had: __cpu_present_mask. Not the online mask: a
    panic takes the other CPUs offline (smp_send_stop), but they still
    have runqueues and idle tasks (the server counts the dump's CPU notes)."""
    return cpu_mask("__cpu_present_mask") or list(range(nr_cpus()))


def per_cpu_offsets(n):
    addr = sym_addr("__per_cpu_offset")
    if addr is None:
        return [0] * n  # !SMP
    return read_ulongs(addr, n)


def runqueue_tasks(who="corestub"):
    """[(cpu, curr, idle)] from each CPU's runqueue."""
    rq = sym_addr("runqueues", who)
    rq_t = need_type("struct rq", who)
    oc, oi = off(rq_t, "curr", who), off(rq_t, "idle", who)
    lo, hi = min(oc, oi), max(oc, oi) + ulong()
    cpus = present_cpus()
    offs = per_cpu_offsets(max(cpus) + 1)
    out = []
    w = ulong()
    for c in cpus:
        try:
            b = read(rq + offs[c] + lo, hi - lo)
        except gdb.MemoryError:
            continue
        out.append((c, u(b, oc - lo, w), u(b, oi - lo, w)))
    return out


def panic_cpu():
    v = sym_value("panic_cpu")
    if v is None:
        return None
    try:
        n = int(v["counter"]) if v.type.strip_typedefs().code == gdb.TYPE_CODE_STRUCT else int(v)
    except gdb.error:
        return None
    return None if n < 0 else n


# ---- tasks ---------------------------------------------------------------

class TaskLayout(object):
    def __init__(self, who):
        t = need_type("struct task_struct", who)
        self.t = t
        self.size = t.sizeof
        self.tasks = off(t, "tasks", who)
        # signal->thread_head / thread_node (3.14+, the only thread list
        # since 6.7), else the older leader->thread_group
        self.thread_group = off(t, "thread_group", who) if has(t, "thread_group") else None
        self.signal = self.thread_head = self.thread_node = None
        if has(t, "thread_node") and has(t, "signal"):
            sig_t = member_type(t, "signal").target().strip_typedefs()
            if has(sig_t, "thread_head"):
                self.signal = off(t, "signal", who)
                self.thread_head = off(sig_t, "thread_head", who)
                self.thread_node = off(t, "thread_node", who)
        self.pid = off(t, "pid", who)
        self.tgid = off(t, "tgid", who)
        self.comm = off(t, "comm", who)
        self.comm_len = member_type(t, "comm").sizeof
        self.state = first_off(t, ["__state", "state"], who)
        self.exit_state = off(t, "exit_state", who) if has(t, "exit_state") else None
        self.real_parent = off(t, "real_parent", who)
        self.mm = off(t, "mm", who)
        self.flags = off(t, "flags", who)
        self.stack = off(t, "stack", who)
        if has(t, "cpu"):
            self.cpu = off(t, "cpu", who)
        elif has(t, "thread_info") and has(member_type(t, "thread_info"), "cpu"):
            self.cpu = off(t, "thread_info.cpu", who)
        else:
            self.cpu = None
        self.rss = None
        if has(t, "rss_stat"):  # SPLIT_RSS_COUNTING: per-thread deltas
            rt = member_type(t, "rss_stat")
            if has(rt, "count"):
                ct = member_type(rt, "count")
                el = ct.target().sizeof
                self.rss = (off(t, "rss_stat.count"), el, ct.sizeof // el)
        mm_t = need_type("struct mm_struct", who)
        self.mm_t = mm_t
        self.mm_size = mm_t.sizeof
        self.total_vm = off(mm_t, "total_vm", who)
        ct = member_type(mm_t, "rss_stat.count") if has(member_type(mm_t, "rss_stat"), "count") else member_type(mm_t, "rss_stat")
        el_t = ct.target().strip_typedefs()
        inner = 0
        self.rss_percpu = None
        # atomic_long_t's counter is a long (4 bytes on 32-bit kernels),
        # percpu_counter's count an s64
        self.rss_count_size = ulong()
        if has(el_t, "counter"):
            inner = off(el_t, "counter")
            self.rss_count_size = member_type(el_t, "counter").sizeof
        elif has(el_t, "count"):  # percpu_counter (6.2+): the global part,
            inner = off(el_t, "count")  # and the per-CPU s32 deltas
            self.rss_count_size = member_type(el_t, "count").sizeof
            self.rss_percpu = off(el_t, "counters")
        base = off(mm_t, "rss_stat.count") if has(member_type(mm_t, "rss_stat"), "count") else off(mm_t, "rss_stat")
        self.mm_rss = (base, el_t.sizeof, ct.sizeof // el_t.sizeof, inner)


_layout = None


def task_layout(who="corestub"):
    global _layout
    if _layout is None:
        _layout = TaskLayout(who)
    return _layout


def _forget(_event=None):
    global _layout, _vmcoreinfo, _states
    _layout = None
    _vmcoreinfo = None
    _states = None


if hasattr(gdb.events, "new_objfile"):
    gdb.events.new_objfile.connect(_forget)


class Task(object):
    __slots__ = ("addr", "buf", "pid", "tgid", "comm", "state", "exit_state", "parent",
                 "mm", "flags", "cpu", "stack", "ppid")

    def __init__(self, addr, buf, L):
        w = ulong()
        self.addr = addr
        self.buf = buf
        self.pid = s(buf, L.pid, 4)
        self.tgid = s(buf, L.tgid, 4)
        self.comm = cstr(buf, L.comm, L.comm_len)
        self.state = u(buf, L.state, 4)
        self.exit_state = u(buf, L.exit_state, 4) if L.exit_state is not None else 0
        self.parent = u(buf, L.real_parent, w)
        self.mm = u(buf, L.mm, w)
        self.flags = u(buf, L.flags, 4)
        self.cpu = u(buf, L.cpu, 4) if L.cpu is not None else None
        self.stack = u(buf, L.stack, w)
        self.ppid = None

    @property
    def kthread(self):
        return bool(self.flags & PF_KTHREAD) or self.pid == 0


def read_task(addr, L=None):
    L = L or task_layout()
    return Task(addr, read(addr, L.size), L)


MAX_TASKS = 1 << 22


def _list_links(head, first):
    """Link addresses of a circular list_head list after `head`, `first`
    being head->next. Stops at the head, a NULL, or the first link seen
    twice: a corrupt list must not be read again and again."""
    w = ulong()
    out, seen = [], set()
    nxt = first
    while nxt != head and nxt != 0 and nxt not in seen and len(out) < MAX_TASKS:
        seen.add(nxt)
        out.append(nxt)
        try:
            nxt = u(read(nxt, w), 0, w)
        except gdb.MemoryError:
            break
    return out


def _thread_addrs(leader, L):
    """The other threads of the process `leader` leads."""
    w = ulong()
    if L.thread_node is not None:
        sig = u(leader.buf, L.signal, w)
        if not sig:
            return []
        head = sig + L.thread_head
        links = _list_links(head, u(read(head, w), 0, w))
        return [a - L.thread_node for a in links if a - L.thread_node != leader.addr]
    if L.thread_group is not None:
        head = leader.addr + L.thread_group
        return [a - L.thread_group for a in _list_links(head, u(leader.buf, L.thread_group, w))]
    return []


def all_tasks(who="corestub", with_idle=True):
    """Every task: the idle tasks of all CPUs (init_task is CPU 0's), then
    each process on init_task.tasks with its threads. One read per task,
    each task read once (a list that repeats an element stops there)."""
    L = task_layout(who)
    init = sym_addr("init_task", who)
    seen = set()
    out = []

    def add(addr):
        if addr in seen or addr == 0:
            return None
        seen.add(addr)
        try:
            t = read_task(addr, L)
        except gdb.MemoryError:
            return None
        out.append(t)
        return t

    first = add(init)
    if with_idle:
        try:
            for _cpu, _curr, idle in runqueue_tasks(who):
                add(idle)
        except gdb.GdbError:
            pass
    head = init + L.tasks
    for link in _list_links(head, u(first.buf, L.tasks, ulong())):
        leader = add(link - L.tasks)
        if leader is None:
            continue
        for th in _thread_addrs(leader, L):
            add(th)
    by_addr = dict((t.addr, t) for t in out)
    for t in out:
        p = by_addr.get(t.parent)
        if t.pid == 0:
            t.ppid = 0  # idle tasks (crash shows 0)
        elif p is not None:
            t.ppid = p.tgid  # as /proc: the parent's process id
        elif t.parent:
            try:
                t.ppid = s(read(t.parent + L.tgid, 4), 0, 4)
            except gdb.MemoryError:
                t.ppid = 0
        else:
            t.ppid = 0
    return out


def find_task(pid, who="corestub"):
    for t in all_tasks(who):
        if t.pid == pid:
            return t
    return None


# ---- task states, from the kernel's own task_state_array ---------------------
# The TASK_* values are macros (not in DWARF) and have moved between versions:
# the letters come from fs/proc/array.c's task_state_array in the dump (entry
# i is the state with bit 1 << (i-1)); TASK_REPORT is every bit up to the last
# reported letter (R S D T t X Z P). "I (idle)" stands for TASK_IDLE =
# TASK_UNINTERRUPTIBLE | TASK_NOLOAD, NOLOAD being PARKED << 4 (crash's
# derivation) or "N (noload)" on kernels that list it. The server's
# src/kernel/objects/state.rs does the same; tests diff the two.

CRASH_STATE = {"R": "RU", "S": "IN", "D": "UN", "T": "ST", "t": "TR", "Z": "ZO",
               "X": "DE", "I": "ID", "P": "PA"}

_states = None


def task_states(who="corestub"):
    """(letters, TASK_REPORT, idle mask or None, idle index)."""
    global _states
    if _states is None:
        arr = sym_value("task_state_array")
        if arr is None:
            raise Missing("%s: symbol 'task_state_array' not found" % who)
        n = arr.type.strip_typedefs().sizeof // ulong()
        letters = []
        for i in range(min(n, 16)):
            letters.append(read_cstr(int(arr[i]), 4)[:1] or "?")
        last = max([i for i, c in enumerate(letters) if c in "RSDTtXZP"] or [0])
        if not last or letters[0] != "R":
            raise Missing("%s: task_state_array makes no sense: %s" % (who, letters))
        report = (1 << last) - 1

        def bit(c):
            return 1 << (letters.index(c) - 1) if c in letters[1:] else None
        idle = None
        if "I" in letters:
            noload = bit("N") or (bit("P") << 4 if bit("P") else None)
            if noload and bit("D"):
                idle = bit("D") | noload
        _states = (letters, report, idle, letters.index("I") if "I" in letters else None)
    return _states


def state_letter(state, exit_state, who="corestub"):
    """The letter /proc/PID/stat would show (the kernel's task_state_to_char)."""
    letters, report, idle, idle_index = task_states(who)
    if idle is not None and state & idle == idle:
        return letters[idle_index]
    index = ((state | exit_state) & report).bit_length()
    return letters[index] if index < len(letters) else "?"


def state_letters(state, exit_state, who="corestub"):
    """crash's two-letter state (RU, IN, UN, ID, ...)."""
    return CRASH_STATE.get(state_letter(state, exit_state, who), "??")


# ---- memory ----------------------------------------------------------------

def memory_pages():
    """Present pages of every memory node (crash's MEMORY and %MEM base)."""
    pg_t = need_type("struct pglist_data", "memory")
    o = off(pg_t, "node_present_pages", "memory")
    nodes = []
    nd = sym("node_data")
    if nd is not None:
        t = nd.type.strip_typedefs()
        n = t.sizeof // ulong() if t.code == gdb.TYPE_CODE_ARRAY else 1
        # a declaration's type may be an incomplete array (size 0); only the
        # first nr_node_ids entries can be nodes
        n = min(n, 64) if n else 64
        ids = sym_value("nr_node_ids")
        if ids is not None:
            n = min(n, max(int(ids), 1))
        ptrs = read_ulongs(int(nd.value().address), n)
        nodes = [p for p in ptrs if p]
    else:
        a = sym_addr("contig_page_data")
        if a is not None:
            nodes = [a]
    if not nodes:
        return None
    w = member_type(pg_t, "node_present_pages").sizeof
    return sum(u(read(p + o, w), 0, w) for p in nodes)


# ---- the kernel log --------------------------------------------------------

DESC_COMMITTED = 1
DESC_FINALIZED = 2


def prb_records(who="dmesg"):
    """Yields (ts_nsec, level, flags, text bytes) from the 5.10+ lockless ring,
    with three bulk reads (descriptors, infos, text)."""
    prb = sym_value("prb")
    if prb is None:
        raise Missing("%s: symbol 'prb' not found (kernel older than 5.10 or no symbols)" % who)
    rb_t = need_type("struct printk_ringbuffer", who)
    dr_t = need_type("struct prb_desc_ring", who)
    tr_t = need_type("struct prb_data_ring", who)
    desc_t = need_type("struct prb_desc", who)
    info_t = need_type("struct printk_info", who)
    w = ulong()

    rb = read(int(prb), rb_t.sizeof)
    d = off(rb_t, "desc_ring", who)
    t = off(rb_t, "text_data_ring", who)
    count = 1 << u(rb, d + off(dr_t, "count_bits", who), 4)
    descs = u(rb, d + off(dr_t, "descs", who), w)
    infos = u(rb, d + off(dr_t, "infos", who), w)
    head_id = u(rb, d + off(dr_t, "head_id", who), w)
    tail_id = u(rb, d + off(dr_t, "tail_id", who), w)
    data_size = 1 << u(rb, t + off(tr_t, "size_bits", who), 4)
    data_addr = u(rb, t + off(tr_t, "data", who), w)

    dsz, isz = desc_t.sizeof, info_t.sizeof
    desc_buf = read(descs, count * dsz)
    info_buf = read(infos, count * isz)
    text_buf = read(data_addr, data_size)

    sv_off = off(desc_t, "state_var", who)
    begin_off = off(desc_t, "text_blk_lpos.begin", who)
    next_off = off(desc_t, "text_blk_lpos.next", who)
    ts_off = off(info_t, "ts_nsec", who)
    len_off = off(info_t, "text_len", who)
    # level and flags are bitfields sharing one byte after `facility`
    lvl_byte = off(info_t, "facility", who) + 1

    flags_shift = w * 8 - 2
    id_mask = (1 << flags_shift) - 1

    did = tail_id & id_mask
    head_id &= id_mask
    for _ in range(count + 1):
        ind = did % count
        dbase, ibase = ind * dsz, ind * isz
        sv = u(desc_buf, dbase + sv_off, w)
        state = (sv >> flags_shift) & 3
        if state in (DESC_COMMITTED, DESC_FINALIZED) and (sv & id_mask) == did:
            begin = u(desc_buf, dbase + begin_off, w)
            nxt = u(desc_buf, dbase + next_off, w)
            text_len = u(info_buf, ibase + len_off, 2)
            text = b""
            if begin & 1 == 0 and begin != nxt:
                b = begin % data_size
                # a block that wraps is stored whole at the ring's start
                if begin // data_size != nxt // data_size:
                    b = 0
                # each block starts with its descriptor id (one long)
                text = text_buf[b + w:b + w + text_len]
            flagbyte = info_buf[ibase + lvl_byte]
            yield (u(info_buf, ibase + ts_off, 8), flagbyte >> 5, flagbyte & 0x1f, text)
        if did == head_id:
            break
        did = (did + 1) & id_mask


def legacy_records(who="dmesg"):
    """Pre-5.10 log_buf of struct printk_log records (one bulk read)."""
    log_buf = sym_value("log_buf")
    first = sym_value("log_first_idx")
    nxt = sym_value("log_next_idx")
    size = sym_value("log_buf_len")
    if None in (log_buf, first, nxt, size):
        raise Missing("%s: neither prb nor log_buf found: load the kernel's debug vmlinux first" % who)
    log_t = need_type("struct printk_log", who)
    buf = read(int(log_buf), int(size))
    hdr = log_t.sizeof
    o_len, o_tlen = off(log_t, "len", who), off(log_t, "text_len", who)
    o_ts, o_fac = off(log_t, "ts_nsec", who), off(log_t, "facility", who)
    pos, end = int(first), int(nxt)
    for _ in range(len(buf)):
        if pos == end:
            break
        reclen = u(buf, pos + o_len, 2)
        if reclen == 0:
            pos = 0  # wrap marker
            continue
        text_len = u(buf, pos + o_tlen, 2)
        ts = u(buf, pos + o_ts, 8)
        lvl = buf[pos + o_fac + 1]
        yield (ts, lvl >> 5, lvl & 0x1f, buf[pos + hdr:pos + hdr + text_len])
        pos += reclen


def log_records(who="dmesg"):
    if sym("prb") is not None:
        return prb_records(who)
    return legacy_records(who)


PANIC_MARKS = ("Kernel panic - not syncing:", "BUG: unable to handle", "kernel BUG at",
               "Unable to handle kernel", "Oops:", "general protection fault")


def panic_message(records=None):
    """The panic message as crash shows it: the last log line that starts
    with a panic/BUG/Oops marker, else the last that contains one (with
    "---[ end ... ]---" stripped). Same rule as the server's."""
    try:
        lines = [text.decode("utf-8", "replace").split("\n")[0]
                 for _ts, _lvl, _fl, text in (records if records is not None else log_records("sys"))]
    except gdb.GdbError:
        return None
    for line in reversed(lines):
        t = line.strip()
        if any(t.startswith(m) for m in PANIC_MARKS):
            return t
    for line in reversed(lines):
        for m in PANIC_MARKS:
            at = line.find(m)
            if at >= 0:
                hit = line[at:]
                return hit[:-5] if hit.endswith(" ]---") else hit
    return None


# ---- time ------------------------------------------------------------------

def timekeeper():
    """The core timekeeper's bytes and type: tk_core.timekeeper, or (6.15+,
    where tk_core became timekeeper_data[TIMEKEEPER_CORE]) the first element
    of timekeeper_data; None when neither is known or readable."""
    for name in ("tk_core", "timekeeper_data"):
        v = sym(name)
        if v is None:
            continue
        tkc_t = v.type.strip_typedefs()
        if tkc_t.code == gdb.TYPE_CODE_ARRAY:
            tkc_t = tkc_t.target().strip_typedefs()
        t = need_type("struct timekeeper", "time")
        try:
            return read(int(v.value().address) + off(tkc_t, "timekeeper"), t.sizeof), t
        except gdb.MemoryError:
            return None
    return None


def boot_wall_offset_ns():
    """Nanoseconds to add to a printk timestamp for wall-clock time, from the
    timekeeper (CLOCK_REALTIME - CLOCK_MONOTONIC); None if unknown."""
    tk = timekeeper()
    if tk is None:
        return None
    b, t = tk
    return member_int(b, t, "offs_real")


def uptime_seconds():
    """Seconds since boot at crash time (CLOCK_BOOTTIME), from the timekeeper."""
    tk = timekeeper()
    if tk is None:
        return None
    b, t = tk
    # ktime_sec is an unsigned long: 4 bytes on 32-bit kernels
    secs = member_int(b, t, "ktime_sec")
    boot = member_int(b, t, "offs_boot") if has(t, "offs_boot") else 0
    return secs + boot // 1000000000


def crash_time():
    """Wall-clock seconds at the crash: VMCOREINFO CRASHTIME, else the
    timekeeper's xtime_sec."""
    ct = vmcoreinfo().get("CRASHTIME")
    if ct and ct.isdigit():
        return int(ct)
    tk = timekeeper()
    if tk is None:
        return None
    b, t = tk
    return member_int(b, t, "xtime_sec")
