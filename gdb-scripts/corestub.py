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
# entry_unwind after arm64_pac: the unwinder registered last is asked first
for _name in ("dmesg.py", "task.py", "arm64_pac.py", "entry_unwind.py", "ps.py", "trapinfo.py", "lsmod.py", "sys.py"):
    gdb.execute("source " + os.path.join(_here, _name))
