#!/usr/bin/env bash
# Cross-compiles the native library and its C tests for aarch64 and runs them under qemu-aarch64 (the NEON path).
# Run by the Maven test phase; skips with a note when the cross compiler or qemu is not installed
# (Debian: apt-get install gcc-aarch64-linux-gnu qemu-user).
#   native/cross-test-aarch64.sh [build-dir]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/target/native-aarch64}"
for tool in aarch64-linux-gnu-gcc qemu-aarch64; do
  if ! command -v "$tool" >/dev/null; then
    echo "cross-test-aarch64: $tool not installed, NEON tests skipped"
    exit 0
  fi
done
cmake -S "$root" -B "$build" -DCMAKE_TOOLCHAIN_FILE="$root/native/cmake/aarch64-linux-gnu.cmake" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --parallel 2 >/dev/null
ctest --test-dir "$build" --output-on-failure
