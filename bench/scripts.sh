#!/usr/bin/env bash
# Wall time of three ways to print the kernel log of a dump through corestub:
# our gdb-scripts `dmesg` (3 bulk reads), the kernel's `lx-dmesg` (scripts/gdb)
# and Documentation/admin-guide/kdump/gdbmacros.txt's `dmesg` (one packet per
# byte). Each runs 3 times in one GDB session (timed inside GDB, so GDB's
# start-up is not counted); the table shows the median and the runs.
#
# usage: bench/scripts.sh [DUMP [VMLINUX]]
#   default: $CORESTUB_FIXTURES/x86_64-6.1/kdump-zlib-d31.kdump
#   CORESTUB=path/to/corestub (default: target/release, else target/debug)
#   KSCRIPTS=dir of the kernel's vmlinux-gdb.py + gdbmacros.txt
#           (default: ../shared/fixtures/clients/linux-6.1-gdb-scripts)
set -euo pipefail
cd "$(dirname "$0")/.."
fx="${CORESTUB_FIXTURES:-$HOME/.cache/corestub-fixtures}"
dump="${1:-$fx/x86_64-6.1/kdump-zlib-d31.kdump}"
vmlinux="${2:-$(dirname "$dump")/vmlinux}"
ks="${KSCRIPTS:-../shared/fixtures/clients/linux-6.1-gdb-scripts}"
bin="${CORESTUB:-}"
if [ -z "$bin" ]; then
  if [ -x target/release/corestub ]; then bin=target/release/corestub; else bin=target/debug/corestub; fi
fi
[ -x "$bin" ] || { echo "build corestub first (cargo build)" >&2; exit 1; }
[ -f "$ks/vmlinux-gdb.py" ] || { echo "kernel scripts not found in $ks (set KSCRIPTS)" >&2; exit 1; }
ks="$(cd "$ks" && pwd)"

py="$(mktemp --suffix=.py)"
trap 'rm -f "$py"' EXIT
cat >"$py" <<'PYEOF'
import time, gdb
def bench(label, cmd, n=3):
    runs = []
    lines = 0
    for _ in range(n):
        t = time.time()
        out = gdb.execute(cmd, to_string=True)
        runs.append(time.time() - t)
        lines = len(out.splitlines())
    gdb.write("BENCH|%s|%.3f|%s|%d\n" % (label, sorted(runs)[n // 2], " ".join("%.3f" % r for r in runs), lines))
PYEOF

"$bin" gdb --vmlinux "$vmlinux" "$dump" -- -nx -batch \
  -ex "source $py" \
  -ex "python bench('dmesg (corestub gdb-scripts)', 'dmesg')" \
  -ex "source $ks/vmlinux-gdb.py" \
  -ex "python bench('lx-dmesg (kernel scripts/gdb)', 'lx-dmesg')" \
  -ex "source $ks/gdbmacros.txt" \
  -ex "python bench('dmesg (gdbmacros.txt)', 'dmesg')" 2>&1 |
  awk -F'|' -v dump="$(basename "$dump")" '
    /^BENCH\|/ { rows[++n] = sprintf("%-30s %10s   %-22s %6s", $2, $3, $4, $5) }
    END {
      printf "dump: %s (median of 3 runs in one GDB session, seconds)\n", dump
      printf "%-30s %10s   %-22s %6s\n", "command", "median", "runs", "lines"
      for (i = 1; i <= n; i++) print rows[i]
      if (n < 3) { print "bench: some commands failed (run the GDB command by hand to see why)" > "/dev/stderr"; exit 1 }
    }'
