#!/usr/bin/env bash
# Regenerates the FFM bindings of native/include/aya_kernels.h with jextract (must be on PATH, or JEXTRACT=/path/to/jextract).
# Output: bindings/src/aya/kernels/ffm/ (committed) and bindings/header.sha256, the hash of the header the bindings were
# made from; NativeBindingsTest fails when the header changes without regenerating.
#   bindings/generate.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
header="$root/native/include/aya_kernels.h"
jextract="${JEXTRACT:-jextract}"
if ! command -v "$jextract" >/dev/null; then
  echo "generate.sh: jextract not found (put it on PATH or set JEXTRACT); see https://github.com/openjdk/jextract" >&2
  exit 2
fi

# Every aya_* function the header declares, and nothing else from the system headers it includes.
functions=$(grep -oE '\baya_[a-z0-9_]+\s*\(' "$header" | tr -d ' (' | sort -u)
args=()
for f in $functions; do args+=(--include-function "$f"); done
# and the enum constants (weight types, status codes)
constants=$(grep -oE '^\s*AYA_[A-Z0-9_]+\s*=' "$header" | tr -d ' =' | sort -u)
for c in $constants; do args+=(--include-constant "$c"); done

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$jextract" --output "$out" --target-package aya.kernels.ffm --header-class-name aya_kernels_h \
  "${args[@]}" "$header"

rm -rf "$root/bindings/src/aya/kernels/ffm"
mkdir -p "$root/bindings/src/aya/kernels"
mv "$out/aya/kernels/ffm" "$root/bindings/src/aya/kernels/ffm"
(cd "$root" && sha256sum native/include/aya_kernels.h) > "$root/bindings/header.sha256"
echo "generate.sh: $(echo "$functions" | wc -l) functions -> bindings/src/aya/kernels/ffm ($("$jextract" --version 2>&1 | head -1))"
