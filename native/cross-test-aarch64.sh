#!/usr/bin/env bash
# The aarch64 (NEON) build, when the cross tools are installed (Debian: apt-get install gcc-aarch64-linux-gnu qemu-user);
# skips with a note otherwise. Maven runs both steps:
#   native/cross-test-aarch64.sh build <build-dir> <resource-dir>   cross-compiles libaya_kernels into
#                                                                   <resource-dir>/native/linux-aarch64/ (ships in the jar)
#   native/cross-test-aarch64.sh test <build-dir>                   builds the C tests and runs them under qemu-aarch64
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode="${1:-test}"
build="${2:-$root/target/native-aarch64}"
tools=(aarch64-linux-gnu-gcc)
[[ "$mode" == test ]] && tools+=(qemu-aarch64)
for tool in "${tools[@]}"; do
  if ! command -v "$tool" >/dev/null; then
    echo "cross-test-aarch64: $tool not installed, aarch64 $mode skipped"
    exit 0
  fi
done
resources=()
[[ -n "${3:-}" ]] && resources=(-DAYA_RESOURCE_DIR="$3")
cmake -S "$root" -B "$build" -DCMAKE_TOOLCHAIN_FILE="$root/native/cmake/aarch64-linux-gnu.cmake" -DCMAKE_BUILD_TYPE=Release \
  "${resources[@]}" >/dev/null
case "$mode" in
  build) cmake --build "$build" --parallel 2 --target aya_kernels >/dev/null ;;
  test)  cmake --build "$build" --parallel 2 >/dev/null
         ctest --test-dir "$build" --output-on-failure ;;
  *) echo "cross-test-aarch64: unknown mode '$mode' (build or test)" >&2; exit 2 ;;
esac
