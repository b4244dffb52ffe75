#!/usr/bin/env bash
# Installs attnmap on a PATH prefix: PREFIX/bin/attnmap and the bundled demo model in
# PREFIX/share/attnmap/models (found without --model). Sets up and builds first, like demo.sh.
# Usage: scripts/install.sh [--prefix DIR]     (default /usr/local)
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=/usr/local
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=${2:?--prefix needs a folder}; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    *) echo "install.sh: unknown argument '$1'; usage: scripts/install.sh [--prefix DIR]" >&2; exit 2 ;;
  esac
done
scripts/bootstrap.sh
scripts/build.sh
export PATH="$PWD/.venv/bin:$PATH"
cmake --install build --prefix "$prefix"
echo "installed: $prefix/bin/attnmap (demo model in $prefix/share/attnmap/models; libtorch stays in $PWD/.venv)"
