# Sourced by tests/server_vs_gdb.rs inside `corestub gdb` (after the
# gdb-scripts are loaded): writes, for ps, sys, lsmod and the kernel log, what the
# server answers (`monitor X --json`) and what the GDB-side readers (used on
# other targets) read, to the JSON file named by the convenience variable
# $corestub_diff_out.

import json

import gdb

out_path = gdb.parse_and_eval("$corestub_diff_out").string()


def attempt(f):
    try:
        return {"ok": f()}
    except Exception as e:  # the test reports which side failed and why
        return {"error": "%s: %s" % (type(e).__name__, e)}


def gdb_log():
    return [{"ts_nsec": ts, "level": lvl, "text": text.decode("utf-8", "replace")}
            for ts, lvl, _fl, text in gdb_records()]  # noqa: F821 (dmesg.py)


def list_walk():
    """corestub_common's list walk on a list that loops without coming back
    to its head (head -> a -> b -> c -> a ...): each element read once."""
    mem = {0x100: 0xa0, 0xa0: 0xb0, 0xb0: 0xc0, 0xc0: 0xa0}
    reads = []
    real = cc.read  # noqa: F821

    def fake(addr, size):
        reads.append(addr)
        return mem[addr].to_bytes(8, "little")
    cc.read = fake  # noqa: F821
    try:
        links = cc._list_links(0x100, 0xa0)  # noqa: F821
    finally:
        cc.read = real  # noqa: F821
    return {"links": links, "reads": len(reads)}


report = {
    "list_walk": attempt(list_walk),
    "on_corestub": cc.on_corestub(),  # noqa: F821 (corestub.py imports it)
    "ps": {"server": attempt(server_rows), "gdb": attempt(gdb_rows)},  # noqa: F821
    "sys": {"server": attempt(lambda: cc.server_json("sys")), "gdb": attempt(gdb_info)},  # noqa: F821
    "log": {"server": attempt(lambda: cc.server_json("log")["records"]), "gdb": attempt(gdb_log)},  # noqa: F821
    "lsmod": {"server": attempt(lambda: [vars(m) for m in server_modules()]),  # noqa: F821 (lsmod.py)
              "gdb": attempt(lambda: [vars(m) for m in gdb_modules("lsmod")])},  # noqa: F821
    "lsmod_text": attempt(lambda: gdb.execute("lsmod", to_string=True)),
    "monitor_lsmod": attempt(lambda: gdb.execute("monitor lsmod", to_string=True)),
    "ps_text": attempt(lambda: "\n".join(ps_lines())),  # noqa: F821
    "rss_counters": attempt(lambda: cc.server_json("ps")["rss_counters"]),  # noqa: F821
}
with open(out_path, "w") as f:
    json.dump(report, f)
gdb.write("server_vs_gdb: wrote %s\n" % out_path)
