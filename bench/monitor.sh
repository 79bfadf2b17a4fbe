#!/usr/bin/env bash
# `monitor log` (the log read in the server, one qRcmd) vs GDB-side `dmesg`
# (gdb-scripts/dmesg.py over `m` packets), each through `corestub gdb -batch`
# on the same dump: 3 runs each, medians and the ratio. A run of GDB with no
# command is timed too, so the startup cost can be subtracted.
# Usage: bench/monitor.sh [DUMP [VMLINUX]]   (builds --release first)
set -euo pipefail
cd "$(dirname "$0")/.."
FIX="${CORESTUB_FIXTURES:-$HOME/.cache/corestub-fixtures}/x86_64-6.1"
DUMP="${1:-$FIX/kdump-zlib-d31.kdump}"
VMLINUX="${2:-$FIX/vmlinux}"
RUNS=3
cargo build --release --quiet
BIN=target/release/corestub
MARKER=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['boots']['kdump']['marker'])" "$FIX/truth.json" 2>/dev/null || true)

# median wall time (seconds) of RUNS runs of: corestub gdb ... -batch "$@"
time_gdb() {
  local ts=() out
  for _ in $(seq "$RUNS"); do
    local t0 t1
    t0=$(date +%s.%N)
    out=$("$BIN" gdb --vmlinux "$VMLINUX" "$DUMP" -- -nx -batch -iex 'set remotetimeout 30' "$@" 2>&1)
    t1=$(date +%s.%N)
    ts+=("$(echo "$t1 - $t0" | bc -l)")
    if [ -n "$MARKER" ] && [ $# -gt 0 ] && ! grep -q "$MARKER" <<<"$out"; then
      echo "warning: output of '$*' lacks the marker $MARKER" >&2
    fi
  done
  printf '%s\n' "${ts[@]}" | sort -g | sed -n "$(( (RUNS + 1) / 2 ))p"
}

echo "dump: $DUMP"
base=$(time_gdb)
mon=$(time_gdb -ex 'monitor log')
dm=$(time_gdb -ex 'dmesg')
printf 'GDB attach only (baseline)  median %6.3f s\n' "$base"
printf "monitor log                 median %6.3f s  (%6.3f s over baseline)\n" "$mon" "$(echo "$mon - $base" | bc -l)"
printf "dmesg (GDB-side script)     median %6.3f s  (%6.3f s over baseline)\n" "$dm" "$(echo "$dm - $base" | bc -l)"
printf 'ratio dmesg / monitor log:  %.2fx wall, %.2fx over baseline\n' \
  "$(echo "$dm / $mon" | bc -l)" \
  "$(echo "($dm - $base) / (($mon - $base) + 0.0005)" | bc -l)"
