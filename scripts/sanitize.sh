#!/usr/bin/env bash
# Builds attnmap and its GoogleTest suite with ASan+UBSan (GCC, -DATTNMAP_SANITIZE=ON) into
# build-asan/, runs the suite and a CLI smoke (run, batch over bad items, compare of corrupt
# folders) and fails on a wrong exit code or on any sanitizer report. The pytest suite is not run
# here (too slow under ASan on 2 cores); scripts/test.sh runs it on the normal build.
set -uo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
start=$(date +%s)
export PATH="$PWD/.venv/bin:$PATH"

generator=(); command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
if [ ! -f build-asan/CMakeCache.txt ]; then
  # The demo export runs Python, which need not be instrumented: it is reused from build/ or made below.
  # -O1, the optimisation the sanitizers' authors recommend: full reports, and the build (most of this
  # job on 2 cores) takes about 60% of -O3's time (runner.cpp: 33 s against 54 s).
  cmake -S . -B build-asan "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS=-g1 \
    -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" \
    -DATTNMAP_SANITIZE=ON -DATTNMAP_EXPORT_DEMO_MODEL=OFF -DATTNMAP_PYTHON="$PWD/.venv/bin/python" >/dev/null ||
    { echo "sanitize.sh: cmake configure failed" >&2; exit 2; }
fi
cmake --build build-asan -j "${BUILD_JOBS:-$(nproc)}" --target attnmap attnmap_tests ||
  { echo "sanitize.sh: build failed" >&2; exit 2; }
built=$(date +%s)

model=build/models/demo.pt
if [ ! -f "$model" ]; then
  model=build-asan/models/demo.pt
  if [ ! -f "$model" ]; then
    echo "sanitize.sh: exporting the demo model to $model"
    mkdir -p build-asan/models
    python -m attnmap_tools.export --checkpoint models/demo-qwen2_5_vl --out "$model" --dtype fp32 >/dev/null ||
      { echo "sanitize.sh: demo export failed" >&2; exit 2; }
  fi
fi

# Every report goes to a file under logs/ (children of the tests too), so none can hide in an
# expected failure's stderr; the job fails if any file appears there.
logs="$root/build-asan/sanitizer-logs"
rm -rf "$logs" && mkdir -p "$logs"
supp="$root/scripts/sanitizers"
export ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=1:allocator_may_return_null=1:detect_stack_use_after_return=0:strict_string_checks=1:check_initialization_order=1"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="log_path=$logs/ubsan:print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"

failed=0
fail() { echo "sanitize.sh: FAIL: $*"; failed=1; }

echo "== GoogleTest suite under ASan+UBSan"
mkdir -p build-asan/tests/work
(cd build-asan/tests && ATTNMAP_BIN="$root/build-asan/attnmap" ./attnmap_tests --gtest_brief=1) || fail "attnmap_tests"
tests_done=$(date +%s)

echo "== CLI smoke under ASan+UBSan (model $model)"
work=build-asan/smoke
rm -rf "$work" && mkdir -p "$work/images"
bin=build-asan/attnmap
prompt="$(cat examples/scene_circle.txt)"
expect() {  # expect CODE DESCRIPTION -- COMMAND...
  local want="$1" what="$2"; shift 3
  "$@" >"$work/last.out" 2>&1
  local got=$?
  if [ "$got" = "$want" ]; then echo "  ok   exit $got  $what"; else fail "$what: exit $got, documented $want"; tail -5 "$work/last.out"; fi
}
expect 0 "run on the demo model" -- "$bin" run --model "$model" --image examples/scene_circle.png --prompt "$prompt" --out "$work/run_a"
echo "not an image" >"$work/text.png"
expect 3 "run on a text file named .png" -- "$bin" run --model "$model" --image "$work/text.png" --prompt "$prompt" --out "$work/run_bad"

cp examples/scene_circle.png "$work/images/good.png"
head -c 300 examples/scene_shape.png >"$work/images/corrupt.png"   # a cut-off PNG
echo "not an image" >"$work/images/text.jpg"
python -c "from PIL import Image; Image.new('RGB', (8, 8)).save('$work/images/tiny.png')"  # below one patch
expect 1 "batch over good + corrupt/text/too-small images" -- "$bin" batch --model "$model" --images "$work/images" --prompt "$prompt" --out "$work/batch" --no-progress
ok_items=$(grep -c '"status":"ok"' "$work/batch/summary.jsonl" 2>/dev/null || true)
err_items=$(grep -c '"status":"error"' "$work/batch/summary.jsonl" 2>/dev/null || true)
[ "$ok_items" = 1 ] && [ "$err_items" = 3 ] && echo "  ok   summary.jsonl: 1 ok, 3 errors" ||
  fail "batch summary.jsonl has $ok_items ok / $err_items error items, expected 1 / 3"

cp -r "$work/run_a" "$work/run_same"
expect 0 "compare a run with its copy" -- "$bin" compare "$work/run_a" "$work/run_same"
cp -r "$work/run_a" "$work/bad_npy" && head -c 90 "$work/run_a/maps.npy" >"$work/bad_npy/maps.npy"
expect 2 "compare with a truncated maps.npy" -- "$bin" compare "$work/run_a" "$work/bad_npy"
cp -r "$work/run_a" "$work/garbage_npy" && echo "garbage" >"$work/garbage_npy/maps.npy"
expect 2 "compare with a maps.npy that is not .npy" -- "$bin" compare "$work/run_a" "$work/garbage_npy"
cp -r "$work/run_a" "$work/bad_json" && head -c 200 "$work/run_a/attention.json" >"$work/bad_json/attention.json"
expect 2 "compare with a truncated attention.json" -- "$bin" compare "$work/bad_json" "$work/run_a"
expect 2 "compare a batch folder with a run folder" -- "$bin" compare "$work/batch" "$work/run_a"
smoke_done=$(date +%s)

if compgen -G "$logs/*" >/dev/null; then
  fail "sanitizer reports (files in $logs):"
  for f in "$logs"/*; do echo "--- $f"; head -60 "$f"; done
else
  echo "== no sanitizer report"
fi
echo "sanitize.sh: build $((built - start)) s, tests $((tests_done - built)) s, smoke $((smoke_done - tests_done)) s, total $(( $(date +%s) - start )) s"
[ "$failed" = 0 ] && echo "sanitize.sh: PASS" || echo "sanitize.sh: FAILED"
exit "$failed"
