# corestub's GDB scripts: sourced by `corestub gdb`, or by hand with
#   source /path/to/gdb-scripts/corestub.py
# Each command also works on its own (`source dmesg.py`).

import os
import sys

import gdb

_here = os.path.dirname(os.path.abspath(__file__))
# the scripts share corestub_common.py
if _here not in sys.path:
    sys.path.insert(0, _here)


def _import_common():
    """Imports corestub_common with its compiled copy kept under the user's
    cache directory: GDB sets sys.dont_write_bytecode, so every start
    compiled its 800 lines again (30 ms with GDB 16.3)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    saved = sys.dont_write_bytecode, getattr(sys, "pycache_prefix", None)
    sys.dont_write_bytecode = False
    sys.pycache_prefix = os.path.join(cache, "corestub", "pycache")
    try:
        import corestub_common  # noqa: F401
    finally:
        sys.dont_write_bytecode, sys.pycache_prefix = saved


_import_common()
# entry_unwind after arm64_pac: the unwinder registered last is asked first
for _name in ("dmesg.py", "task.py", "arm64_pac.py", "entry_unwind.py", "ps.py", "trapinfo.py", "lsmod.py", "sys.py"):
    gdb.execute("source " + os.path.join(_here, _name))
