#!/usr/bin/env python3
"""Vision-tower maps (--vision-blocks all): attnmap's peak memory and time against transformers, at
1k, 4k and 16k vision-tower tokens (patches before the 2x2 merge; the decoder sees a quarter of them).

The model: a Qwen2.5-VL-3B-shaped checkpoint with random weights (the real vision width: hidden 1280,
16 heads, MLP 3420; 8 blocks, block 7 full attention, the rest windowed; 1 decoder layer), made and
exported on first use under the forward bench's folder. Square images of 448, 896 and 1792 pixels
(32x32, 64x64, 128x128 patches). Every engine in its own fresh process (peak RSS from wait4), CPU, fp32:

  attnmap             `attnmap run --vision-blocks all --layers 0 --no-predict --no-images --no-viewer`:
                      every block's map of the mean query (the whole command: load, tower, decoder layer 0);
                      the maps' extra memory is its peak RSS minus that of the same command with
                      --vision-blocks none (the attnmap-none row)
  transformers eager  the vision tower with attn_implementation="eager" and a wrapper around its
                      eager_attention_forward that reduces each probability matrix to the block's map at
                      once (the thriftiest eager workflow: one block's [heads, L, L] alive at a time)
  transformers sdpa   the vision tower with SDPA and no maps: plain inference, the floor
                      (both transformers rows: "tower call" memory is the call's peak over the loaded
                      model, VmHWM after resetting it through /proc/self/clear_refs; transformers maps
                      the safetensors lazily, so its whole-process RSS lacks the untouched embeddings;
                      eager's maps' extra memory is its tower call's minus sdpa's)

Every child runs under an address-space cap (--cap-gib, default 20): past it an allocation fails in
the child ("out of memory") instead of exhausting the machine.

A full-attention block over P patches with 16 heads materialises 16 x P^2 x 4 bytes in eager (16 GiB at
16k patches); attnmap computes the rows in chunks and never holds more than its chunk.

    .venv/bin/python bench/vision_bench.py
    .venv/bin/python bench/vision_bench.py --sides 448,896 --engines attnmap,sdpa --json out.json
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from bench_common import load_average, machine, run_child  # noqa: E402
from forward_bench import DEFAULT_WORK  # noqa: E402
from generate_bench import fmt, markdown_table, ratio  # noqa: E402

PROMPT = "What is in the picture?"
ENGINES = ("attnmap-none", "attnmap", "eager", "sdpa")
ENGINE_LABELS = {"attnmap-none": "attnmap run --vision-blocks none", "attnmap": "attnmap run --vision-blocks all",
                 "eager": "transformers eager, maps by hook", "sdpa": "transformers sdpa, no maps"}


def ensure_model(env) -> dict:
    ckpt = DEFAULT_WORK / "rand3b-1l-8v"
    model = DEFAULT_WORK / "rand3b-1l-8v.pt"
    if not (ckpt / "config.json").is_file():
        subprocess.run([sys.executable, "-m", "attnmap_tools.testing.make_random_checkpoint", "--shape", "3b",
                        "--text-layers", "1", "--vision-layers", "8", "--dtype", "fp32",
                        "--out-checkpoint", str(ckpt)], check=True, env=env)
    if not model.is_file():
        subprocess.run([sys.executable, "-m", "attnmap_tools.export", "--checkpoint", str(ckpt), "--out", str(model),
                        "--dtype", "fp32"], check=True, env=env)
    return {"ckpt": str(ckpt), "pt": str(model)}


def write_image(path: pathlib.Path, side: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    img = np.stack([120 + 60 * np.sin(x / 37 + c) * np.cos(y / 29 + c) for c in range(3)], axis=-1)
    img += 8 * rng.standard_normal(img.shape).astype(np.float32)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)


def child(args) -> int:
    """One transformers measurement: the vision tower over the HF processor's pixel values."""
    import torch
    from PIL import Image

    sys.path.insert(0, str(ROOT / "tools"))
    from attnmap_tools.testing import hf_reference as R

    torch.set_num_threads(os.cpu_count() or 1)
    processor = R.load_processor(args.checkpoint)
    processor.image_processor.min_pixels = processor.image_processor.max_pixels = args.side * args.side
    processor.image_processor.size = {"shortest_edge": args.side * args.side, "longest_edge": args.side * args.side}
    inputs = R.build_inputs(processor, [Image.open(args.image).convert("RGB")], PROMPT)
    from transformers import Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(args.checkpoint, torch_dtype=torch.float32,
                                                               attn_implementation=args.engine).eval()
    visual = model.model.visual
    maps = {}
    if args.engine == "eager":
        modeling = sys.modules[type(visual).__module__]
        block_of = {id(blk.attn): i for i, blk in enumerate(visual.blocks)}
        original = modeling.eager_attention_forward

        def reducing(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
            out, weights = original(module, query, key, value, attention_mask, scaling, dropout=dropout, **kwargs)
            if id(module) in block_of:  # the mean query's map of this segment, then the matrix is dropped
                b = block_of[id(module)]
                maps.setdefault(b, []).append(weights[0].mean(0).sum(0))
            return out, None

        modeling.eager_attention_forward = reducing
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS: the peak below is the tower call's
    base = vm_kib("VmRSS")
    start = time.perf_counter()
    try:
        with torch.no_grad():
            visual(inputs["pixel_values"], inputs["image_grid_thw"])
    except (RuntimeError, MemoryError) as e:
        if "memory" not in str(e).lower() and not isinstance(e, MemoryError):
            raise
        print(json.dumps({"error": "out of memory", "own_mib": (vm_kib("VmHWM") - base) / 1024}))
        return 3
    seconds = time.perf_counter() - start
    grid = inputs["image_grid_thw"][0].tolist()
    print(json.dumps({"forward_s": seconds, "patches": grid[1] * grid[2], "blocks_mapped": len(maps),
                      "own_mib": (vm_kib("VmHWM") - base) / 1024}))
    return 0


def vm_kib(field: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field + " not in /proc/self/status")


def run_engine(args, engine, model, image, side, work, env) -> dict:
    cap = int(args.cap_gib * 2 ** 30)
    if engine.startswith("attnmap"):
        out = work / f"{engine}_{side}"
        blocks = "none" if engine == "attnmap-none" else "all"
        cmd = [args.bin, "-q", "run", "--model", model["pt"], "--image", str(image), "--prompt", PROMPT,
               "--out", str(out), "--device", "cpu", "--dtype", "fp32", "--vision-blocks", blocks, "--layers", "0",
               "--no-predict", "--no-images", "--no-viewer", "--min-pixels", str(side * side),
               "--max-pixels", str(side * side)]
        res = run_child(cmd, env=env, timeout=args.timeout, address_space_bytes=cap)
        if not res.ok:
            return {"ok": False, "status": res.describe() + ": " + res.stderr.strip()[-300:], "peak_rss_mib": res.peak_rss_mib}
        doc = json.loads((out / "attention.json").read_text())
        timings = doc["timings_ms"]
        return {"ok": True, "forward_s": timings.get("vision", timings["forward"]) / 1000, "process_s": res.seconds,
                "peak_rss_mib": res.peak_rss_mib, "patches": doc["grid"]["h"] * doc["grid"]["w"], "cmd": cmd}
    cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), "--child", engine, "--checkpoint", model["ckpt"],
           "--image", str(image), "--side", str(side)]
    res = run_child(cmd, env=env, timeout=args.timeout, address_space_bytes=cap)
    last = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
    child_out = json.loads(last) if last.startswith("{") else {}
    if not res.ok or "error" in child_out:
        status = child_out.get("error") or (res.describe() + ": " + res.stderr.strip()[-300:])
        return {"ok": False, "status": status, "peak_rss_mib": res.peak_rss_mib, "own_mib": child_out.get("own_mib")}
    return {"ok": True, "forward_s": child_out["forward_s"], "process_s": res.seconds,
            "peak_rss_mib": res.peak_rss_mib, "own_mib": child_out["own_mib"], "patches": child_out["patches"],
            "cmd": cmd}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sides", default="448,896,1792", help="square image sides in pixels (1k, 4k, 16k patches)")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--bin", default=str(ROOT / "build" / "attnmap"))
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--cap-gib", type=float, default=20.0, help="address-space cap of every child")
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--child", choices=["eager", "sdpa"], help=argparse.SUPPRESS)
    ap.add_argument("--checkpoint", help=argparse.SUPPRESS)
    ap.add_argument("--image", help=argparse.SUPPRESS)
    ap.add_argument("--side", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.engine = args.child
        return child(args)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "tools") + os.pathsep + env.get("PYTHONPATH", "")
    model = ensure_model(env)
    work = pathlib.Path(tempfile.mkdtemp(prefix="attnmap-vision-bench-"))
    print(f"machine: {machine()}; load average before: {load_average()}")
    print(f"command: {' '.join(sys.argv)}")
    rows = []
    for side in [int(s) for s in args.sides.split(",")]:
        image = work / f"image_{side}.png"
        write_image(image, side)
        for engine in args.engines.split(","):
            r = run_engine(args, engine, model, image, side, work, env)
            r.update({"side": side, "engine": engine})
            rows.append(r)
            print(f"  {side}x{side} {engine}: "
                  + (f"{r['forward_s']:.2f} s, peak RSS {r['peak_rss_mib']:.0f} MiB" if r["ok"] else r["status"]),
                  flush=True)
    # The maps' extra memory over plain inference of the same work: attnmap with vs without
    # --vision-blocks (same command otherwise); transformers eager's tower call over sdpa's.
    def find(side, engine):
        return next((b for b in rows if b["side"] == side and b["engine"] == engine and b.get("ok")), None)

    for r in rows:
        if not r.get("ok"):
            continue
        base = find(r["side"], {"attnmap": "attnmap-none", "eager": "sdpa"}.get(r["engine"], ""))
        if base and r["engine"] == "attnmap":
            r["maps_extra_mib"] = r["peak_rss_mib"] - base["peak_rss_mib"]
        elif base and r["engine"] == "eager":
            r["maps_extra_mib"] = r["own_mib"] - base["own_mib"]
    header = ["image", "patches", "merged tokens", "engine", "tower s", "process s", "peak RSS MiB",
              "tower call MiB", "maps' extra MiB", "eager full block [16,P,P] MiB"]
    lines = []
    for r in rows:
        patches = (r["side"] // 14) ** 2
        dense = 16 * patches * patches * 4 / 2 ** 20
        first = [f"{r['side']}x{r['side']}", fmt(patches, ","), fmt(patches // 4, ","), ENGINE_LABELS[r["engine"]]]
        if not r.get("ok"):
            lines.append(first + [r["status"][:60], "-", fmt(r.get("peak_rss_mib"), ",.0f"),
                                  fmt(r.get("own_mib"), ",.0f", " (at failure)"), "-", fmt(dense, ",.0f")])
            continue
        lines.append(first + [fmt(r["forward_s"]), fmt(r["process_s"], ".1f"), fmt(r["peak_rss_mib"], ",.0f"),
                              fmt(r.get("own_mib"), ",.0f"), fmt(r.get("maps_extra_mib"), ",.0f"), fmt(dense, ",.0f")])
    print()
    print(markdown_table(header, lines, [False, True, True, False] + [True] * 6))
    print(f"\nload average after: {load_average()}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
