#!/usr/bin/env bash
# The GPU benchmark of docs/benchmarks.md ("GPU"), run on the CUDA machine from the repo root:
#
#   bench/gpu_bench.sh STEP [STEP...]
#
# Steps (in this order; each later step first does any earlier one whose result is missing):
#   build       cmake + ninja into build-gpu/ against python3's CUDA libtorch and .gpu/ (the C++ deps)
#   checkpoint  random-weight Qwen2.5-VL-7B-shape checkpoint (bf16) + its attnmap export, under build-gpu/bench/
#   batch       bench/batch_bench.py --parts batch,variants: images/s at ~1,000 image tokens, GPU busy %,
#               peak GPU memory, forward-stage cost of all layers vs one layer
#   batch-py    bench/batch_bench.py --parts module,transformers: exported module forward with vs without
#               attention extraction, and transformers eager (output_attentions=True) on the same images
#   memory      bench/memory_bench.py: attnmap run and transformers eager at ~1k / 4k / 16k image tokens
#   cuda-tests  tests/python/test_cuda_cli.py + test_run_cli.py against build-gpu/attnmap (GPU vs CPU maps,
#               peak memory in attention.json / summary.jsonl)
#   all         all of the above
#   status      what is already there
#
# Each step's output goes to stdout and to $OUT/<step>.txt (the device tool brings $OUT back; at most
# 8 files) and build-gpu/bench/results/. Generated files stay in build-gpu/ (ignored by git, kept on the
# machine between calls while it stays warm). Environment: COUNT (200 images), HF_COUNT (20), SIZE
# (1000 image tokens), TOKENS (1000,4000,16000), DEVICE (cuda), TIMEOUT (per memory run, 300 s),
# FORCE=1 to redo build/checkpoint, SHAPE/RANDOM_ARGS for a smoke run with a smaller model.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STATE=$ROOT/build-gpu/bench
RESULTS=$STATE/results
OUTDIR=${OUT:-$RESULTS}
BIN=$ROOT/build-gpu/attnmap
CKPT=$STATE/rand7b
MODEL=$STATE/rand7b.pt
PY=${PYTHON:-python3}
COUNT=${COUNT:-200}
HF_COUNT=${HF_COUNT:-20}
SIZE=${SIZE:-1000}
TOKENS=${TOKENS:-1000,4000,16000}
DEVICE=${DEVICE:-cuda}
TIMEOUT=${TIMEOUT:-300}
export PYTHONUNBUFFERED=1 PYTHONPATH=$ROOT/tools
mkdir -p "$RESULTS" "$OUTDIR"

D=$ROOT/.gpu/attnmap-gpu-deps
if [ -d "$D" ]; then
  export PKG_CONFIG_PATH=$D/sysroot/usr/lib/x86_64-linux-gnu/pkgconfig:$D/sysroot/usr/share/pkgconfig
  export LD_LIBRARY_PATH=$D/sysroot/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
fi

T0=$(date +%s)
say() { echo "[gpu_bench +$(( $(date +%s) - T0 ))s] $*"; }

# Runs one step with its output to stdout and to $OUTDIR/<step>.txt (and a copy in $RESULTS).
logged() {
  local name=$1; shift
  say "step $name"
  set +e
  ( set -eo pipefail; "$@" ) 2>&1 | tee "$OUTDIR/$name.txt"
  local rc=${PIPESTATUS[0]}
  set -e
  [ "$OUTDIR" = "$RESULTS" ] || cp "$OUTDIR/$name.txt" "$RESULTS/$name.txt"
  say "step $name finished with exit code $rc"
  return "$rc"
}

do_build() {
  if [ ! -d "$D" ]; then
    echo "no .gpu/attnmap-gpu-deps: on the developer machine run, in the repo root," >&2
    echo "  mkdir -p .gpu && tar xJf ../shared/gpu/attnmap-gpu-deps-x86_64.tar.xz -C .gpu" >&2
    echo "and name .gpu in the device call's carry (see /work/shared/gpu/README.md)" >&2
    return 2
  fi
  g++ --version | head -1
  cmake --version | head -1
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  "$PY" -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), "| transformers", transformers.__version__)'
  # A CUDA toolkit without libnvrtc.so (seen on the dev machine) fails the configure on
  # CUDA_nvrtc_LIBRARY: point CMake at the copy inside the torch wheel's nvidia/ packages instead.
  local nvrtc_dir=$STATE/nvrtc
  mkdir -p "$nvrtc_dir"
  local wheel_nvrtc
  wheel_nvrtc=$("$PY" -c 'import glob, os, torch; d = os.path.dirname(os.path.dirname(torch.__file__)); print(next(iter(sorted(glob.glob(d + "/nvidia/*/lib/libnvrtc.so.*") + glob.glob(d + "/nvidia/cuda_nvrtc/lib/libnvrtc.so.*"))), ""))')
  [ -n "$wheel_nvrtc" ] && ln -sf "$wheel_nvrtc" "$nvrtc_dir/libnvrtc.so"
  configure() {
    cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DATTNMAP_BUILD_TESTS="${GPU_TESTS:-OFF}" \
      -DATTNMAP_PYTHON="$PY" "$@" \
      -DCMAKE_PREFIX_PATH="$D/opencv;$D/sysroot/usr;$("$PY" -c 'import torch;print(torch.utils.cmake_prefix_path)')" \
      > "$STATE/cmake-configure.log" 2>&1
  }
  configure || { grep -q CUDA_nvrtc_LIBRARY "$STATE/cmake-configure.log" && rm -rf build-gpu/CMakeCache.txt && \
                 configure -DCMAKE_LIBRARY_PATH="$nvrtc_dir"; } || { tail -40 "$STATE/cmake-configure.log"; return 1; }
  grep -E "attnmap:|Torch|CUDA" "$STATE/cmake-configure.log" | head -10 || true
  local t=$SECONDS
  cmake --build build-gpu --target attnmap demo_model > "$STATE/cmake-build.log" 2>&1 || { tail -60 "$STATE/cmake-build.log"; return 1; }
  tail -3 "$STATE/cmake-build.log"
  echo "build: $((SECONDS - t)) s"
  "$BIN" info --model build-gpu/models/demo.pt | tail -3
}

do_checkpoint() {
  rm -f "$STATE/checkpoint.done"
  # SHAPE / RANDOM_ARGS only for a quick smoke run (e.g. SHAPE=tiny, RANDOM_ARGS="--text-layers 1").
  # shellcheck disable=SC2086
  "$PY" -m attnmap_tools.testing.make_random_checkpoint --shape "${SHAPE:-7b}" --dtype bf16 --seed 0 --out-checkpoint "$CKPT" \
    --device "$DEVICE" ${RANDOM_ARGS:-}
  local t=$SECONDS
  "$PY" -m attnmap_tools.export --checkpoint "$CKPT" --out "$MODEL" --dtype bf16
  echo "export: $((SECONDS - t)) s"
  "$BIN" info --model "$MODEL"
  du -sh "$CKPT" "$MODEL"
  df -h "$STATE" | tail -1
  touch "$STATE/checkpoint.done"
}

need_build() { [ -x "$BIN" ] && [ -f build-gpu/models/demo.pt ] && [ "${FORCE:-0}" != 1 ]; }
need_checkpoint() { [ -f "$STATE/checkpoint.done" ] && [ -f "$MODEL" ] && [ "${FORCE:-0}" != 1 ]; }
ensure_build() { need_build || logged build do_build; }
ensure_checkpoint() { ensure_build; need_checkpoint || logged checkpoint do_checkpoint; }

do_batch() {
  "$PY" bench/batch_bench.py --bin "$BIN" --model "$MODEL" --checkpoint "$CKPT" --device "$DEVICE" \
    --size "$SIZE" --count "$COUNT" --hf-count "$HF_COUNT" --parts batch,variants --json "$OUTDIR/batch.json"
}

do_batch_py() {
  "$PY" bench/batch_bench.py --bin "$BIN" --model "$MODEL" --checkpoint "$CKPT" --device "$DEVICE" \
    --size "$SIZE" --count "$HF_COUNT" --hf-count "$HF_COUNT" --parts module,transformers --json "$OUTDIR/batch-py.json"
}

do_memory() {
  "$PY" bench/memory_bench.py --bin "$BIN" --model "$MODEL" --checkpoint "$CKPT" --device "$DEVICE" \
    --tokens "$TOKENS" --timeout "$TIMEOUT" --json "$OUTDIR/memory.json"
}

# The CUDA half of the CLI tests (same maps on GPU and CPU, peak memory reported, batch goes on); they
# skip on a machine without a GPU, so this is the only place they run.
do_cuda_tests() {
  ATTNMAP_BIN="$BIN" ATTNMAP_DEMO_MODEL="$ROOT/build-gpu/models/demo.pt" ATTNMAP_CACHE_DIR="$STATE/cache" \
    PYTHONPATH="$ROOT/tools" "$PY" -m pytest -q -rs -p no:cacheprovider \
    tests/python/test_cuda_cli.py tests/python/test_run_cli.py
}

do_status() {
  nvidia-smi --query-gpu=name,memory.used,memory.total,utilization.gpu --format=csv,noheader || true
  ls -la "$BIN" "$MODEL" "$STATE" 2>&1 || true
  df -h "$ROOT" | tail -1
}

[ $# -gt 0 ] || { sed -n '2,23p' "$0"; exit 2; }
steps=("$@")
[ "${steps[0]}" = all ] && steps=(build cuda-tests checkpoint batch batch-py memory)
for step in "${steps[@]}"; do
  case $step in
    build) need_build || logged build do_build ;;
    checkpoint) ensure_build; need_checkpoint || logged checkpoint do_checkpoint ;;
    batch) ensure_checkpoint; logged batch do_batch ;;
    batch-py) ensure_checkpoint; logged batch-py do_batch_py ;;
    memory) ensure_checkpoint; logged memory do_memory ;;
    cuda-tests) ensure_build; logged cuda-tests do_cuda_tests ;;
    status) do_status ;;
    *) echo "unknown step '$step' (build, cuda-tests, checkpoint, batch, batch-py, memory, all, status)" >&2; exit 2 ;;
  esac
done
say "done: ${steps[*]}"
