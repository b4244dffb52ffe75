#!/usr/bin/env bash
# The test command: installs dependencies, builds, and runs every test (GoogleTest + pytest) via CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/build.sh
export PATH="$PWD/.venv/bin:$PATH"
ctest --test-dir build --output-on-failure -j "$(nproc)" "$@"
