#!/usr/bin/env bash
# Runs fuzz targets for SECONDS (default 60) each, with the seed corpora in
# fuzz/corpus/TARGET (grown entries stay untracked: only seed-* files are
# committed). Needs cargo-fuzz (`cargo install cargo-fuzz`); no nightly
# toolchain: RUSTC_BOOTSTRAP=1 lets the stable compiler take the sanitizer
# and coverage flags cargo-fuzz passes. New crashes land in
# fuzz/artifacts/TARGET.
#
#   fuzz/run.sh [SECONDS [TARGET...]]
#
# The targets session, tasks, printk, monitor and regs damage the real
# fixtures ($CORESTUB_FIXTURES, default ~/.cache/corestub-fixtures: the
# x86_64-6.1 and arm64-6.1 ELF vmcores and their vmlinux); without them they
# return at once. `cargo test --test fuzz_smoke` runs every harness
# (src/fuzz_harness.rs) over its seeds and mutations of them, bounded, in
# the normal test suite.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
targets=(elf kdump flat vmcoreinfo walkers rsp dwarf tasks printk monitor regs session)
[ "$#" -gt 1 ] && targets=("${@:2}")
export RUSTC_BOOTSTRAP=1
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== $t (${secs}s)"
  # -rss_limit_mb: the real-fixture targets map a 100 MiB dump and a
  # 0.3-0.6 GiB vmlinux (resident as they are read).
  cargo fuzz run "$t" "corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=4096 -timeout=20 -max_len=65536 \
    -print_final_stats=1 2>&1 |
    grep -E "^(#[0-9]+ +DONE|Done|==[0-9]+== ERROR|SUMMARY|artifact_prefix|Test unit written|stat::)" || true
done
