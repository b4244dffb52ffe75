#!/usr/bin/env bash
# Builds the libFuzzer harnesses of fuzz/ into build-fuzz/ (clang, ASan+UBSan, UB aborts) and runs
# each for SECONDS (default 60), two at a time. Prints executions and exec/s per harness; exits 1
# on any crash, leak, timeout or out-of-memory, printing the reproducer path and the report.
#
#   scripts/fuzz.sh [SECONDS]         FUZZ_JOBS=N  harnesses run at once (default 2)
#                                     FUZZ_ONLY="npy image"  run only these harnesses
# Reproduce a crash: build-fuzz/fuzz/fuzz_<name> <reproducer file>
set -uo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
parallel="${FUZZ_JOBS:-2}"
read -r -a harnesses <<<"${FUZZ_ONLY:-tokenizer image npy attention_json summary_jsonl manifest}"
start=$(date +%s)

# libFuzzer and the sanitizer runtimes are in libclang-rt-*-dev, which clang only recommends.
has_fuzzer_runtime() {
  command -v clang++ >/dev/null 2>&1 && command -v llvm-symbolizer >/dev/null 2>&1 &&
    [ -f "$(clang++ -print-file-name=libclang_rt.fuzzer-x86_64.a)" ]
}
if ! has_fuzzer_runtime; then
  echo "fuzz.sh: installing clang, its libFuzzer/sanitizer runtimes and llvm (llvm-symbolizer) with apt"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends clang llvm libclang-rt-dev; } >/dev/null || {
    echo "fuzz.sh: apt-get install clang llvm libclang-rt-dev failed" >&2; exit 2; }
  has_fuzzer_runtime || { echo "fuzz.sh: clang has no libFuzzer runtime (libclang_rt.fuzzer-x86_64.a) after the install" >&2; exit 2; }
fi

export PATH="$PWD/.venv/bin:$PATH"
generator=(); command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
if [ ! -f build-fuzz/CMakeCache.txt ]; then
  # -O1: fast enough to fuzz, quick to compile. The demo export and the test suite are not needed.
  cmake -S . -B build-fuzz "${generator[@]}" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_FLAGS_RELEASE=-O1 -DATTNMAP_FUZZ=ON -DATTNMAP_BUILD_TESTS=OFF -DATTNMAP_EXPORT_DEMO_MODEL=OFF \
    -DATTNMAP_PYTHON="$PWD/.venv/bin/python" >/dev/null || { echo "fuzz.sh: cmake configure failed" >&2; exit 2; }
fi
cmake --build build-fuzz -j "${BUILD_JOBS:-$(nproc)}" --target attnmap_fuzzers || { echo "fuzz.sh: build failed" >&2; exit 2; }
built=$(date +%s)
echo "fuzz.sh: harnesses built in $((built - start)) s; fuzzing each for ${seconds} s, ${parallel} at a time"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:symbolize=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:symbolize=1"
export ASAN_SYMBOLIZER_PATH="$(command -v llvm-symbolizer)"
export OMP_NUM_THREADS=1  # one core per harness; libtorch would otherwise start a thread per core
# OpenCV refuses to decode images over this many pixels (its default is 2^30, i.e. 3 GB of pixels
# before any EXIF rotation), so a 1.6 kB JPEG that declares a huge size fails cleanly instead of
# exhausting the harness's 2 GB: what is fuzzed is that such a file is refused, not that it fits.
# Read by OpenCV once at load time, hence the environment.
export OPENCV_IO_MAX_IMAGE_PIXELS="${OPENCV_IO_MAX_IMAGE_PIXELS:-16777216}"

run_one() {
  local name="$1" dir="build-fuzz/run/$1"
  rm -rf "$dir" && mkdir -p "$dir/corpus" "$dir/artifacts"
  local args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
              -artifact_prefix="$dir/artifacts/" "$dir/corpus" "fuzz/corpus/$name")
  [ -f "fuzz/dict/$name.dict" ] && args=(-dict="fuzz/dict/$name.dict" "${args[@]}")
  "build-fuzz/fuzz/fuzz_$name" "${args[@]}" >"$dir/log" 2>&1
  echo $? >"$dir/rc"
}

running=0
for name in "${harnesses[@]}"; do
  run_one "$name" &
  if (( ++running >= parallel )); then wait -n; ((running--)); fi
done
wait

failed=0
printf '\n%-16s %12s %10s %8s  %s\n' harness executions exec/s rss_mb result
for name in "${harnesses[@]}"; do
  dir="build-fuzz/run/$name"
  rc=$(cat "$dir/rc" 2>/dev/null || echo 99)
  stat() { grep -m1 "stat::$1:" "$dir/log" | awk '{print $2}'; }
  result=ok; [ "$rc" = 0 ] || { result="FAILED (exit $rc)"; failed=1; }
  printf '%-16s %12s %10s %8s  %s\n' "$name" "$(stat number_of_executed_units)" "$(stat average_exec_per_sec)" \
    "$(stat peak_rss_mb)" "$result"
done
for name in "${harnesses[@]}"; do
  dir="build-fuzz/run/$name"
  [ "$(cat "$dir/rc" 2>/dev/null)" = 0 ] && continue
  echo
  echo "=== fuzz_$name failed; full log: $dir/log"
  grep -h "Test unit written to\|^artifact_prefix" "$dir/log" | sed 's/^/    /'
  for f in "$dir"/artifacts/*; do [ -f "$f" ] && echo "    reproducer: $f  (run: build-fuzz/fuzz/fuzz_$name $f)"; done
  # The report: from the sanitizer's/harness's first line to the end of the stack.
  awk '/^==[0-9]+==|^attnmap fuzz:|runtime error:|^ALARM|out-of-memory|deadly signal/{p=1} p' "$dir/log" | head -80
done
echo
echo "fuzz.sh: total $(( $(date +%s) - start )) s (build $((built - start)) s)"
exit "$failed"
