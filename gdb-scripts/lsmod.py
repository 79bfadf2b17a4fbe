# corestub: `lsmod` and `modsyms` — loaded kernel modules and their symbols.
#
# lsmod lists each module with its base address, size, holders and state, and
# prints a ready-to-paste `add-symbol-file` line for every module whose .ko is
# found (Debian: the linux-image-RELEASE-dbg package puts them under
# /usr/lib/debug/lib/modules/RELEASE/).
# modsyms loads them all, like the kernel's lx-symbols but keeping the
# vmlinux corestub loaded at its KASLR offset.
# Connected to corestub, the server reads the module list (`monitor lsmod
# --json`); the GDB-side reader below is for other targets (native cores,
# QEMU's gdbstub).

import os
import struct
import sys

import gdb

_dir = os.path.dirname(os.path.abspath(__file__))
if _dir not in sys.path:
    sys.path.insert(0, _dir)
import corestub_common as cc  # noqa: E402

KO_SUFFIXES = (".ko.debug", ".ko")


class Module(object):
    def __init__(self, addr, name, base, size, refs, state, sect_attrs):
        self.addr = addr
        self.name = name
        self.base = base
        self.size = size
        self.refs = refs  # holders: refcnt less the module's own reference
        self.state = state
        self.sect_attrs = sect_attrs


def server_modules():
    """The server's modules (`monitor lsmod --json`), None off corestub."""
    doc = cc.server_json("lsmod")
    if doc is None:
        return None
    return [Module(int(m["module"], 16), m["name"], int(m["base"], 16), m["size"], m["refs"],
                   m["state"], int(m["sect_attrs"], 16)) for m in doc["modules"]]


def state_names(mt):
    """{value: name} of enum module_state (MODULE_STATE_LIVE -> live)."""
    try:
        t = cc.member_type(mt, "state").strip_typedefs()
        return dict((f.enumval, f.name.replace("MODULE_STATE_", "").lower()) for f in t.fields())
    except (gdb.error, AttributeError, TypeError):
        return {}


def gdb_modules(who="lsmod"):
    """The modules read GDB-side. Which members struct module has decides the
    layout: mem[] (every region summed, as /proc/modules counts; mem[0] is
    the text) or core_layout (+ init_layout, zeroed once initialised)."""
    head = cc.sym_addr("modules")
    if head is None:
        raise gdb.GdbError("%s: symbol 'modules' not found: load the kernel's debug vmlinux first "
                           "(or the kernel has no module support)" % who)
    mt = cc.need_type("struct module", who)
    o_list = cc.off(mt, "list", who)
    o_name = cc.off(mt, "name", who)
    name_len = cc.member_type(mt, "name").sizeof
    if cc.has(mt, "core_layout"):
        o_base = cc.off(mt, "core_layout.base", who)
        o_sizes = [cc.off(mt, "core_layout.size", who)]
        if cc.has(mt, "init_layout"):
            o_sizes.append(cc.off(mt, "init_layout.size", who))
    else:
        mem_t = cc.member_type(mt, "mem", who)
        el = mem_t.target().strip_typedefs()
        o_mem = cc.off(mt, "mem", who)
        o_base = o_mem + cc.off(el, "base")
        o_sizes = [o_mem + i * el.sizeof + cc.off(el, "size")
                   for i in range(mem_t.sizeof // el.sizeof)]
    o_ref = cc.off(mt, "refcnt", who) if cc.has(mt, "refcnt") else None
    o_state = cc.off(mt, "state", who) if cc.has(mt, "state") else None
    names = state_names(mt) if o_state is not None else {}
    o_sect = cc.off(mt, "sect_attrs", who) if cc.has(mt, "sect_attrs") else None
    w = cc.ulong()
    out = []
    for link in cc._list_links(head, cc.u(cc.read(head, w), 0, w)):
        addr = link - o_list
        b = cc.read(addr, mt.sizeof)
        state = None
        if o_state is not None:
            v = cc.u(b, o_state, 4)
            state = names.get(v, str(v))
        out.append(Module(addr, cc.cstr(b, o_name, name_len), cc.u(b, o_base, w),
                          sum(cc.u(b, o, 4) for o in o_sizes),
                          cc.s(b, o_ref, 4) - 1 if o_ref is not None else None,
                          state, cc.u(b, o_sect, w) if o_sect is not None else 0))
    return out


def modules(who="lsmod"):
    mods = server_modules()
    return mods if mods is not None else gdb_modules(who)


def sections(mod, who="lsmod"):
    """{section name: address} from the module's sysfs section attributes.

    Two layouts, told apart by the debug info: `attrs[]` of `struct
    module_sect_attr` (a bin_attribute plus `address`) counted by
    `nsections`; or, on newer kernels, `attrs[]` of plain bin_attributes
    whose `private` holds the address, listed NULL-terminated in the
    group's `bin_attrs`."""
    if not mod.sect_attrs:
        return {}
    st = cc.need_type("struct module_sect_attrs", who)
    if cc.has(st, "nsections"):
        return _counted_sections(mod.sect_attrs, st, who)
    return _listed_sections(mod.sect_attrs, st, who)


MAX_SECTIONS = 1000


def _counted_sections(addr, st, who):
    at = cc.need_type("struct module_sect_attr", who)
    hdr = cc.read(addr, st.sizeof)
    n = cc.u(hdr, cc.off(st, "nsections"), 4)
    if n == 0 or n > MAX_SECTIONS:
        return {}
    b = cc.read(addr + cc.off(st, "attrs"), n * at.sizeof)
    o_name = cc.first_off(at, ["battr.attr.name", "mattr.attr.name", "name"], who)
    o_addr = cc.off(at, "address")
    w = cc.ulong()
    out = {}
    for i in range(n):
        base = i * at.sizeof
        name_ptr = cc.u(b, base + o_name, w)
        if name_ptr:
            out[cc.read_cstr(name_ptr, 64)] = cc.u(b, base + o_addr, w)
    return out


def _listed_sections(addr, st, who):
    bt = cc.need_type("struct bin_attribute", who)
    o_list = cc.first_off(st, ["grp.bin_attrs", "grp.bin_attrs_new"], who)
    o_name = cc.off(bt, "attr.name", who)
    o_addr = cc.off(bt, "private", who)
    w = cc.ulong()
    list_ptr = cc.u(cc.read(addr + o_list, w), 0, w)
    out = {}
    for i in range(MAX_SECTIONS):
        attr = cc.u(cc.read(list_ptr + i * w, w), 0, w) if list_ptr else 0
        if attr == 0:
            break
        b = cc.read(attr, bt.sizeof)
        name_ptr = cc.u(b, o_name, w)
        if name_ptr:
            out[cc.read_cstr(name_ptr, 64)] = cc.u(b, o_addr, w)
    return out


def default_dirs():
    try:
        rel = cc.utsname("lsmod")["release"]
    except gdb.GdbError:
        return []
    return ["/usr/lib/debug/lib/modules/" + rel, "/lib/modules/" + rel]


def index_ko(dirs):
    """{module name with '-' as '_': path}; earlier directories win, and a
    .ko.debug beats a .ko in the same directory."""
    found = {}
    for d in dirs:
        if not os.path.isdir(d):
            continue
        local = {}
        for root, _dirs, files in os.walk(d):
            for f in files:
                for suf in KO_SUFFIXES:
                    if f.endswith(suf):
                        key = f[:-len(suf)].replace("-", "_")
                        if key not in local or suf == ".ko.debug":
                            local[key] = os.path.join(root, f)
                        break
        for k, v in local.items():
            found.setdefault(k, v)
    return found


_copies_dir = None

# ELF class -> (address format, e_shoff's offset, e_shentsize's offset,
# sh_addr's offset in a section header)
ELF_SHDR = {1: ("I", 0x20, 0x2e, 0x0c), 2: ("Q", 0x28, 0x3a, 0x10)}


def gdb_loadable(path):
    """`path`, or a private copy of it with every section address zeroed.

    Modules linked by 6.x's module.lds carry non-zero section addresses
    (`.data`, `__patchable_function_entries`; arm's `.plt` and `.init.plt`,
    32-bit ones too). With those, GDB 13 ignores `add-symbol-file -s` for
    the symbols and puts every one relative to .text: wrong addresses,
    silently (Debian 6.12 loop.ko, x86_64 and arm64: loop_exit in
    .exit.text and max_loop in .data; 6.1 armmp loop.ko: lo_fops in
    .rodata). Zeroing every sh_addr, as in i386's modules, makes GDB lay
    out the sections as told. GDB's own symfile.c only places a
    relocatable file's sections itself when all of them are at 0. The copy
    lives until GDB exits."""
    global _copies_dir
    try:
        with open(path, "rb") as f:
            data = bytearray(f.read())
    except OSError:
        return path
    if data[:4] != b"\x7fELF" or data[4] not in ELF_SHDR:
        return path
    e = "<" if data[5] == 1 else ">"
    word, shoff_at, shnum_at, addr_at = ELF_SHDR[data[4]]
    if len(data) < shnum_at + 4 or struct.unpack_from(e + "H", data, 16)[0] != 1:  # ET_REL
        return path
    shoff = struct.unpack_from(e + word, data, shoff_at)[0]
    shentsize, shnum = struct.unpack_from(e + "HH", data, shnum_at)
    size = struct.calcsize(e + word)
    changed = False
    for i in range(shnum):
        at = shoff + i * shentsize + addr_at
        if at + size <= len(data) and struct.unpack_from(e + word, data, at)[0]:
            struct.pack_into(e + word, data, at, 0)
            changed = True
    if not changed:
        return path
    if _copies_dir is None:
        # imported here, not when the scripts are sourced: tempfile (with
        # random, shutil...) cost 0.1 s of every GDB start where the
        # standard library has no compiled copies (GDB writes none)
        import atexit
        import shutil
        import tempfile

        _copies_dir = tempfile.mkdtemp(prefix="corestub-ko-")
        atexit.register(shutil.rmtree, _copies_dir, True)
    out = os.path.join(_copies_dir, os.path.basename(path))
    with open(out, "wb") as f:
        f.write(data)
    return out


def add_symbol_file_cmd(mod, path, who="lsmod"):
    secs = sections(mod, who)
    text = secs.get(".text", mod.base)
    cmd = "add-symbol-file %s 0x%x" % (path, text)
    # Every section the kernel placed, not lx-symbols' short list: GDB lays
    # out the ones it is not told about at made-up addresses.
    for name in sorted(secs):
        if name != ".text" and name and not any(c.isspace() for c in name):
            cmd += " -s %s 0x%x" % (name, secs[name])
    return cmd


def header_line(w):
    return "%-*s  %-24s %-*s %8s  %4s  %s" % (w, "MODULE", "NAME", w, "BASE", "SIZE", "REFS", "STATE")


def module_line(m, w):
    return "%0*x  %-24s %0*x %8d  %4s  %s" % (w, m.addr, m.name, w, m.base, m.size,
                                            "-" if m.refs is None else m.refs,
                                            "-" if m.state is None else m.state)


class Lsmod(gdb.Command):
    """List the loaded kernel modules.

Usage: lsmod [DIR ...]
Columns: MODULE (struct module address), NAME, BASE (start of its code),
SIZE (all its regions, as /proc/modules counts), REFS (holders), STATE.
On corestub the server reads the modules (`monitor lsmod --json`); on other
targets (native cores, QEMU's gdbstub) GDB reads them. For each module whose .ko is found in DIR or, by default, in
/usr/lib/debug/lib/modules/RELEASE/ (Debian's linux-image-RELEASE-dbg) and
/lib/modules/RELEASE/, a ready-to-paste `add-symbol-file` line follows with
the module's section addresses. `modsyms` loads them all."""

    def __init__(self):
        super(Lsmod, self).__init__("lsmod", gdb.COMMAND_STATUS, gdb.COMPLETE_FILENAME)

    def invoke(self, arg, from_tty):
        dirs = [os.path.expanduser(d) for d in gdb.string_to_argv(arg)] + default_dirs()
        mods = modules("lsmod")
        kos = index_ko(dirs)
        w = 2 * cc.ulong()
        lines = [header_line(w)]
        cmds = []
        for m in mods:
            lines.append(module_line(m, w))
            path = kos.get(m.name)
            if path:
                cmds.append(add_symbol_file_cmd(m, gdb_loadable(path)))
        if not mods:
            lines.append("(no modules loaded)")
        if cmds:
            lines.append("")
            lines.append("# symbols (or run `modsyms`):")
            lines += cmds
        elif mods:
            lines.append("")
            lines.append("# no .ko found in %s: install the -dbg package or give a directory "
                         "(lsmod DIR, modsyms DIR)" % ", ".join(dirs))
        gdb.write("\n".join(lines) + "\n")


class Modsyms(gdb.Command):
    """Load the symbols of every loaded kernel module.

Usage: modsyms [DIR ...]
Searches DIR (recursively) and then /usr/lib/debug/lib/modules/RELEASE/ and
/lib/modules/RELEASE/ for NAME.ko / NAME.ko.debug ('-' and '_' alike) and runs
add-symbol-file with each module's section addresses from the dump. Unlike the
kernel's lx-symbols it leaves the vmlinux symbols (loaded at the KASLR offset)
alone. Modules already loaded from the same file are skipped."""

    def __init__(self):
        super(Modsyms, self).__init__("modsyms", gdb.COMMAND_FILES, gdb.COMPLETE_FILENAME)

    def invoke(self, arg, from_tty):
        dirs = [os.path.abspath(os.path.expanduser(d)) for d in gdb.string_to_argv(arg)] + default_dirs()
        kos = index_ko(dirs)
        loaded = set(os.path.realpath(o.filename) for o in gdb.objfiles() if o.filename)
        n_ok, missing = 0, []
        for m in modules("modsyms"):
            path = kos.get(m.name)
            if not path:
                missing.append(m.name)
                continue
            if os.path.realpath(path) in loaded:
                gdb.write("%s: already loaded from %s\n" % (m.name, path))
                continue
            cmd = add_symbol_file_cmd(m, gdb_loadable(path), "modsyms")
            gdb.write("loading %s at 0x%x: %s\n" % (m.name, m.base, path))
            confirm = gdb.parameter("confirm")
            gdb.execute("set confirm off")
            try:
                gdb.execute(cmd, to_string=True)
            finally:
                gdb.execute("set confirm %s" % ("on" if confirm else "off"))
            n_ok += 1
        gdb.write("modsyms: loaded %d module(s)" % n_ok)
        if missing:
            gdb.write("; no .ko for %s (searched %s)" % (", ".join(missing), ", ".join(dirs)))
        gdb.write("\n")


Lsmod()
Modsyms()
