#!/usr/bin/env python3
"""Video: attnmap's memory and time against transformers eager on the same frames, 4/8/16/32 frames.

For each model (by default the demo model on 224x320 frames and a Qwen2.5-VL-3B-shaped checkpoint with
random weights cut to 4 decoder layers and 4 vision blocks, made and exported on first use under the
forward bench's folder, on 448x448 frames; `--models qwen3-2b`: a Qwen3-VL-2B-shaped one cut the same
way, whose prompt carries a timestamp per temporal patch) and each frame count, every engine in its own
fresh process (peak RSS from wait4), CPU, fp32, the frames given as PNG files taken whole (24 fps):

  attnmap              `attnmap run --frames DIR --layers all --no-images --no-viewer`: every layer's map
                       of the prompt rows over every temporal patch (forward = timings_ms.forward)
  transformers eager   model(**inputs, output_attentions=True), attn_implementation="eager": every layer's
                       [heads, seq, seq] probabilities, the workflow attnmap replaces
  transformers sdpa    the same forward with SDPA, logits_to_keep=1 and no attentions: plain inference

The check after the table: attnmap's peak RSS must grow linearly with the frames: the growth per added
frame from the last step (16 -> 32) stays within --linear-slack (default 1.5x) of the first step's (4 -> 8).
Eager's grows with the square of the sequence (layers x heads x seq^2 x 4 bytes).

    .venv/bin/python bench/video_bench.py
    .venv/bin/python bench/video_bench.py --models demo --frames 4,8 --bin build/attnmap --json out.json
"""
import argparse
import json
import os
import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from bench_common import load_average, machine, run_child  # noqa: E402
from forward_bench import DEFAULT_WORK, ensure_model, metadata, random_qwen3_export  # noqa: E402
from generate_bench import fmt, markdown_table, ratio  # noqa: E402

PROMPT = "Where does the red square go? Describe its path."
ENGINES = ("attnmap", "eager", "sdpa")
ENGINE_LABELS = {"attnmap": "attnmap run --frames (all layers)", "eager": "transformers eager, output_attentions",
                 "sdpa": "transformers sdpa, no attentions"}


def write_frames(folder: pathlib.Path, count: int, height: int, width: int) -> None:
    """A red square crossing a smooth noisy background, PNG frames frame_000.png ..."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([120 + 60 * np.sin(x / 23 + c) * np.cos(y / 31 + c) for c in range(3)], axis=-1)
    side = min(height, width) // 5
    for k in range(count):
        img = base + 8 * rng.standard_normal(base.shape).astype(np.float32)
        left = int((width - side) * k / max(1, count - 1))
        img[(height - side) // 2:(height + side) // 2, left:left + side] = [220, 30, 30]
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"frame_{k:03d}.png")


def linear_verdict(rows: list, slack: float) -> dict:
    """Peak RSS per added frame, first step vs last: linear memory keeps them within `slack` x."""
    points = sorted((r["frames"], r["peak_rss_mib"]) for r in rows if r.get("ok"))
    if len(points) < 3:
        return {"ok": None, "reason": "fewer than three frame counts"}
    first = (points[1][1] - points[0][1]) / (points[1][0] - points[0][0])
    last = (points[-1][1] - points[-2][1]) / (points[-1][0] - points[-2][0])
    ok = last <= slack * max(first, 1.0)
    return {"ok": ok, "first_mib_per_frame": first, "last_mib_per_frame": last, "slack": slack}


def run_engine(args, engine: str, model: dict, frames_dir: pathlib.Path, work: pathlib.Path, env: dict) -> dict:
    if engine == "attnmap":
        out = work / f"attnmap_{model['name']}_{frames_dir.name}"
        cmd = [args.bin, "-q", "run", "--model", model["pt"], "--frames", str(frames_dir), "--prompt", PROMPT,
               "--out", str(out), "--device", "cpu", "--dtype", "fp32", "--no-images", "--no-viewer",
               "--layers", "all", "--video-max-pixels", str(model["max_pixels"])]
        res = run_child(cmd, env=env, timeout=args.timeout)
        if not res.ok:
            return {"ok": False, "status": res.describe() + ": " + res.stderr.strip()[-300:], "peak_rss_mib": res.peak_rss_mib}
        doc = json.loads((out / "attention.json").read_text())
        g = doc["grid"]
        return {"ok": True, "forward_s": doc["timings_ms"]["forward"] / 1000, "process_s": res.seconds,
                "peak_rss_mib": res.peak_rss_mib, "seq_len": len(doc["tokens"]["ids"]),
                "visual_tokens": g["t"] * g["merged_h"] * g["merged_w"], "cmd": cmd}
    items = work / f"items_{frames_dir.name}.jsonl"
    items.write_text(json.dumps({"frames": str(frames_dir), "prompt": PROMPT}) + "\n")
    cmd = [sys.executable, str(ROOT / "bench" / "hf_child.py"), f"video-{engine}", "--checkpoint", model["ckpt"],
           "--items", str(items), "--dtype", "fp32", "--video-max-pixels", str(model["max_pixels"])]
    res = run_child(cmd, env=env, timeout=args.timeout)
    last = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
    if not res.ok:
        detail = last if last.startswith("{") else res.stderr.strip()[-300:]
        return {"ok": False, "status": res.describe() + ": " + detail, "peak_rss_mib": res.peak_rss_mib}
    child = json.loads(last)
    return {"ok": True, "forward_s": child["forward_s"], "process_s": res.seconds, "peak_rss_mib": res.peak_rss_mib,
            "seq_len": child["seq_len"], "visual_tokens": child["visual_tokens"], "cmd": cmd}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="demo,3b", help="demo, 3b, qwen3-2b, comma-separated")
    ap.add_argument("--frames", default="4,8,16,32")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--bin", default=str(ROOT / "build" / "attnmap"))
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--linear-slack", type=float, default=1.5)
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "tools") + os.pathsep + env.get("PYTHONPATH", "")
    models = []
    for name in args.models.split(","):
        if name == "demo":
            models.append({"name": "demo", "pt": str(ROOT / "build" / "models" / "demo.pt"),
                           "ckpt": str(ROOT / "models" / "demo-qwen2_5_vl"), "size": (224, 320), "max_pixels": 224 * 320})
        elif name == "3b":
            margs = argparse.Namespace(model=None, checkpoint=None)
            ensure_model(margs, env)
            models.append({"name": "3B-shaped 4+4 layers", "pt": margs.model, "ckpt": margs.checkpoint,
                           "size": (448, 448), "max_pixels": 448 * 448})
        elif name == "qwen3-2b":
            # Qwen3-VL's size bounds the whole clip (frames x h x w): the bound that keeps 448x448 frames
            # at every count here (32 frames), the same for both engines.
            ckpt, pt = random_qwen3_export("rand-qwen3-2b-4l-4v", 4, 4, env)
            models.append({"name": "Qwen3-VL-2B-shaped 4+4 layers", "pt": pt, "ckpt": ckpt, "size": (448, 448),
                           "max_pixels": 32 * 448 * 448})
    counts = [int(c) for c in args.frames.split(",")]
    engines = args.engines.split(",")
    work = pathlib.Path(tempfile.mkdtemp(prefix="attnmap-video-bench-"))
    print(f"machine: {machine()}; load average before: {load_average()}")
    print(f"command: {' '.join(sys.argv)}")
    rows = []
    for model in models:
        meta = metadata(model["pt"])
        for n in counts:
            frames_dir = work / f"{model['name'].split()[0]}_{n}f"
            write_frames(frames_dir, n, *model["size"])
            for engine in engines:
                r = run_engine(args, engine, model, frames_dir, work, env)
                r.update({"model": model["name"], "frames": n, "engine": engine,
                          "layers": meta["text"]["num_hidden_layers"], "heads": meta["text"]["num_attention_heads"]})
                rows.append(r)
                print(f"  {model['name']} {n} frames {engine}: "
                      + (f"{r['forward_s']:.2f} s, peak RSS {r['peak_rss_mib']:.0f} MiB" if r["ok"] else r["status"]),
                      flush=True)
    header = ["model", "frames", "visual tokens", "seq", "engine", "forward s", "process s", "peak RSS MiB",
              "RSS x sdpa", "forward x sdpa"]
    lines = []
    for r in rows:
        base = next((b for b in rows if b["model"] == r["model"] and b["frames"] == r["frames"] and b["engine"] == "sdpa"
                     and b.get("ok")), None)
        if not r.get("ok"):
            lines.append([r["model"], str(r["frames"]), "-", "-", ENGINE_LABELS[r["engine"]], r["status"][:60]] + ["-"] * 4)
            continue
        lines.append([r["model"], str(r["frames"]), fmt(r["visual_tokens"], ","), str(r["seq_len"]),
                      ENGINE_LABELS[r["engine"]], fmt(r["forward_s"]), fmt(r["process_s"], ".1f"),
                      fmt(r["peak_rss_mib"], ",.0f"),
                      fmt(ratio(r["peak_rss_mib"], base and base["peak_rss_mib"]), ".2f", "x"),
                      fmt(ratio(r["forward_s"], base and base["forward_s"]), ".2f", "x")])
    print()
    print(markdown_table(header, lines, [False, True, True, True, False] + [True] * 5))
    print()
    verdicts = {}
    for model in models:
        v = linear_verdict([r for r in rows if r["model"] == model["name"] and r["engine"] == "attnmap"], args.linear_slack)
        verdicts[model["name"]] = v
        if v["ok"] is None:
            print(f"{model['name']}: linear memory: inconclusive ({v['reason']})")
        else:
            print(f"{model['name']}: attnmap peak RSS per added frame {v['first_mib_per_frame']:.1f} MiB "
                  f"({counts[0]}->{counts[1]}) vs {v['last_mib_per_frame']:.1f} MiB ({counts[-2]}->{counts[-1]}): "
                  + ("linear, OK" if v["ok"] else f"grows faster than linear (over {args.linear_slack}x), FAIL"))
    print(f"load average after: {load_average()}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"rows": rows, "verdicts": verdicts}, indent=2))
    return 0 if all(v["ok"] is not False for v in verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
