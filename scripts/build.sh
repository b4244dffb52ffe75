#!/usr/bin/env bash
# Configures and builds attnmap into build/ against the libtorch of .venv's torch.
# Usage: scripts/build.sh [TARGET ...]   (default: everything, tests included)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
generator=(); command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
# ATTNMAP_WERROR=ON (CI sets it) makes every compiler warning an error.
werror=${ATTNMAP_WERROR:-OFF}
if [ ! -f build/CMakeCache.txt ] || ! grep -qx "ATTNMAP_WERROR:BOOL=$werror" build/CMakeCache.txt; then
  cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DATTNMAP_PYTHON="$PWD/.venv/bin/python" \
    -DATTNMAP_WERROR="$werror" >/dev/null
fi
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build build -j "$(nproc)" "${targets[@]}"
