#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) each, with the seed corpora
# in fuzz/corpus/TARGET. Needs a nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz`). New crashes land in fuzz/artifacts/TARGET.
# Without nightly, `cargo test --test fuzz_smoke` runs the same harnesses
# (src/fuzz_harness.rs) over mutated seeds for a bounded time.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
targets=(elf kdump flat vmcoreinfo walkers rsp)
[ "$#" -gt 1 ] && targets=("${@:2}")
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== $t (${secs}s)"
  cargo +nightly fuzz run "$t" "corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=1024 -timeout=2 -max_len=65536 \
    2>&1 | grep -E "^(#[0-9]+ +DONE|Done|==[0-9]+== ERROR|SUMMARY|artifact_prefix|Test unit written)" || true
done
