# corestub's GDB scripts: sourced by `corestub gdb`, or by hand with
#   source /path/to/gdb-scripts/corestub.py
# Each command also works on its own (`source dmesg.py`).

import os
import gdb

_here = os.path.dirname(os.path.abspath(__file__))
for _name in ("dmesg.py", "task.py", "arm64_pac.py"):
    gdb.execute("source " + os.path.join(_here, _name))
