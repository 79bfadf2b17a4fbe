#!/bin/sh
# Rebuilds the `dwarf` target's seeds (fuzz/corpus/dwarf) from
# kernel-types.c: small linked x86_64 ELF files with DWARF 4 and 5, and one
# with zlib-compressed debug sections; plus an arm64-machine copy (the same
# DWARF with e_machine patched, no cross compiler needed).
set -eu
cd "$(dirname "$0")"
out=../corpus/dwarf
mkdir -p "$out"
cc="gcc -O0 -nostdlib -static -fno-asynchronous-unwind-tables -Wl,--build-id -Wl,-z,noseparate-code -fno-eliminate-unused-debug-types"
$cc -gdwarf-5 -o "$out/seed-dwarf5" kernel-types.c
$cc -gdwarf-4 -o "$out/seed-dwarf4" kernel-types.c
$cc -gdwarf-5 -gz=zlib -o "$out/seed-dwarf5-zlib" kernel-types.c
cp "$out/seed-dwarf5" "$out/seed-dwarf5-arm64"
# e_machine (offset 18) = EM_AARCH64 (183)
printf '\267\000' | dd of="$out/seed-dwarf5-arm64" bs=1 seek=18 conv=notrunc status=none
ls -l "$out"
