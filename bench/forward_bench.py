#!/usr/bin/env python3
"""attnmap's forward next to transformers doing the same work, and the fp32 matmul limit, in one run.

On one checkpoint (by default a Qwen2.5-VL-3B-shaped one with random weights, cut to 4 decoder layers
and 4 vision blocks, made and exported on first use), one image per size, CPU, fp32:

  attnmap            `attnmap batch` over N+1 copies of the image (one process, the model loaded once):
                     the forward stage of items 2..N+1 from summary.jsonl (item 1 is the cold call)
                     - "all layers": the defaults (every layer's rows for the prompt query + the next token)
                     - "one layer, no logits": --layers L-1 --no-predict (every layer still runs; one
                       layer's rows, no lm_head): what the extraction of the other layers costs
  transformers sdpa  attn_implementation="sdpa", model(**inputs, logits_to_keep=1), no attentions:
                     plain inference doing the work attnmap does (every layer, the last position's logits)
  transformers eager attn_implementation="eager" in the decoder (SDPA in the vision tower, so its full
                     attention blocks do not need patches^2 memory), output_attentions=True
  GEMM limit         the forward's matmul FLOPs (linear layers, attention scores and values, lm_head)
                     divided by the fp32 GEMM rate torch reaches on this machine at the decoder's shapes

Every figure is the median of N warm calls; each engine runs in its own process (peak RSS from wait4).

    .venv/bin/python bench/forward_bench.py --tokens 1000,4000 --repeats 3
    .venv/bin/python bench/forward_bench.py --model build/models/demo.pt --checkpoint models/demo-qwen2_5_vl
"""
import argparse
import json
import os
import pathlib
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent

from bench_common import load_average, machine, parse_size, run_child

DEFAULT_WORK = pathlib.Path(tempfile.gettempdir()) / "attnmap-forward-bench"


def metadata(model_pt: str) -> dict:
    with zipfile.ZipFile(model_pt) as z:
        for name in z.namelist():
            if name.endswith("extra/attnmap/metadata.json"):
                return json.loads(z.read(name))
    raise SystemExit(f"forward_bench: '{model_pt}' carries no attnmap metadata; export it with attnmap-export")


def random_export(name: str, text_layers: int, vision_layers: int, env) -> tuple:
    """A Qwen2.5-VL-3B-shaped checkpoint with random weights cut to these depths, and its fp32 export,
    made once under DEFAULT_WORK (reused by later runs). Returns (checkpoint folder, model file)."""
    ckpt = DEFAULT_WORK / name
    model = DEFAULT_WORK / (name + ".pt")
    if not (ckpt / "config.json").is_file():
        subprocess.run([sys.executable, "-m", "attnmap_tools.testing.make_random_checkpoint", "--shape", "3b",
                        "--text-layers", str(text_layers), "--vision-layers", str(vision_layers), "--dtype", "fp32",
                        "--out-checkpoint", str(ckpt)], check=True, env=env)
    if not model.is_file():
        subprocess.run([sys.executable, "-m", "attnmap_tools.export", "--checkpoint", str(ckpt), "--out", str(model),
                        "--dtype", "fp32"], check=True, env=env)
    return str(ckpt), str(model)


def random_qwen3_export(name: str, text_layers: int, vision_layers: int, env) -> tuple:
    """random_export for Qwen3-VL: the released 2B's widths (attnmap_tools.testing.qwen3_vl_tiny --shape
    2b) cut to these depths, and its fp32 export. Returns (checkpoint folder, model file)."""
    ckpt = DEFAULT_WORK / name
    model = DEFAULT_WORK / (name + ".pt")
    if not (ckpt / "config.json").is_file():
        subprocess.run([sys.executable, "-m", "attnmap_tools.testing.qwen3_vl_tiny", "--shape", "2b",
                        "--text-layers", str(text_layers), "--vision-layers", str(vision_layers),
                        "--out-checkpoint", str(ckpt)], check=True, env=env)
    if not model.is_file():
        subprocess.run([sys.executable, "-m", "attnmap_tools.export", "--checkpoint", str(ckpt), "--out", str(model),
                        "--dtype", "fp32"], check=True, env=env)
    return str(ckpt), str(model)


def ensure_model(args, env) -> None:
    """The default checkpoint and its export, made once under --work (reused by later runs)."""
    if args.model and args.checkpoint:
        return
    args.checkpoint, args.model = random_export("rand3b-4l-4v", 4, 4, env)


def forward_flops(meta: dict, grid_h: int, grid_w: int, seq: int) -> float:
    """Multiply-add FLOPs (2 per MAC) of the exported forward: what any implementation must compute."""
    v, t = meta["vision"], meta["text"]
    patches = grid_h * grid_w
    vh, vi, merge = v["hidden_size"], v["intermediate_size"], v["spatial_merge_size"]
    window_patches = (v["window_size"] // v["patch_size"]) ** 2
    flops = 2 * patches * (v["in_channels"] * v["temporal_patch_size"] * v["patch_size"] ** 2) * vh  # patch embed
    full = set(v["fullatt_block_indexes"])
    for block in range(v["depth"]):
        keys = patches if block in full else min(window_patches, patches)
        flops += 2 * patches * (4 * vh * vh + 3 * vh * vi)  # qkv, proj, gated MLP
        flops += 4 * patches * keys * vh  # scores and values
    merged = patches // merge ** 2
    flops += 2 * merged * ((vh * merge ** 2) ** 2 + vh * merge ** 2 * v["out_hidden_size"])  # merger MLP
    h, kv = t["hidden_size"], t["num_key_value_heads"] * t["head_dim"]
    per_layer = 2 * seq * (2 * h * h + 2 * h * kv + 3 * h * t["intermediate_size"]) + 4 * seq * seq * h
    flops += t["num_hidden_layers"] * per_layer
    flops += 2 * h * t["vocab_size"]  # lm_head on the last position
    return float(flops)


def gemm_rate(seq: int, hidden: int, inter: int, threads: int) -> float:
    """fp32 GEMM FLOP/s torch reaches here at the decoder MLP's shape (best of 5, after a warm-up)."""
    code = f"""
import time, torch
torch.set_num_threads({threads})
a = torch.randn({seq}, {hidden}); b = torch.randn({hidden}, {inter})
torch.mm(a, b)
best = min((lambda t0: (torch.mm(a, b), time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(5))
print(2 * {seq} * {hidden} * {inter} / best)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def run_attnmap(args, image, h, w, work, env, label, extra) -> dict:
    listing = work / f"items_{h}x{w}.txt"
    listing.write_text((str(image) + "\n") * (args.repeats + 1))
    out = work / f"attnmap_{h}x{w}_{label.replace(' ', '_').replace(',', '')}"
    cmd = [args.bin, "-q", "batch", "--model", args.model, "--images", str(listing), "--prompt", args.prompt,
           "--out", str(out), "--device", "cpu", "--dtype", "fp32", "--max-pixels", str(h * w), "--no-images",
           "--no-progress", "--workers", "1", "--queue-depth", "1"] + extra
    res = run_child(cmd, env=env, timeout=args.timeout)
    row = {"engine": f"attnmap, {label}", "cmd": cmd, "peak_rss_mib": res.peak_rss_mib, "ok": res.ok}
    if not res.ok:
        row["status"] = res.describe() + ": " + res.stderr.strip()[-300:]
        return row
    lines = [json.loads(x) for x in (out / "summary.jsonl").read_text().splitlines() if x.strip()]
    forwards = [x["timings_ms"]["forward"] / 1000 for x in lines if x.get("status") == "ok"]
    doc = json.loads((out / lines[0]["id"] / "attention.json").read_text())
    row.update(status="ok", first_s=forwards[0], median_s=statistics.median(forwards[1:] or forwards),
               times_s=forwards, seq_len=len(doc["tokens"]["ids"]), grid=(doc["grid"]["h"], doc["grid"]["w"]))
    return row


def run_hf(args, image, h, w, work, env, mode) -> dict:
    items = work / f"hf_{h}x{w}.jsonl"
    items.write_text(json.dumps({"image": str(image), "prompt": args.prompt}) + "\n")
    cmd = [sys.executable, str(ROOT / "bench" / "hf_child.py"), mode, "--checkpoint", args.checkpoint,
           "--items", str(items), "--max-pixels", str(h * w), "--device", "cpu", "--dtype", "fp32",
           "--vision-attn", "sdpa", "--repeats", str(args.repeats), "--threads", str(args.threads)]
    res = run_child(cmd, env=env, timeout=args.timeout)
    name = {"sdpa": "transformers sdpa, logits_to_keep=1", "eager": "transformers eager, output_attentions"}[mode]
    row = {"engine": name, "cmd": cmd, "peak_rss_mib": res.peak_rss_mib, "ok": res.ok}
    last = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else "{}"
    out = json.loads(last) if last.startswith("{") else {}
    if not res.ok:
        row["status"] = out.get("error") or (res.describe() + ": " + res.stderr.strip()[-300:])
        return row
    row.update(status="ok", first_s=out["first_s"], median_s=out["median_s"], times_s=out["times_s"],
               seq_len=out["seq_len"][0])
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=str(ROOT / "build" / "attnmap"))
    ap.add_argument("--model", help="exported .pt (default: a 3B-shaped random checkpoint cut to 4+4 layers)")
    ap.add_argument("--checkpoint", help="the Hugging Face folder --model was exported from")
    ap.add_argument("--tokens", default="1000,4000", help="image token counts (nearest square) or WxH, comma-separated")
    ap.add_argument("--repeats", type=int, default=3, help="warm calls per engine and size (the median is reported)")
    ap.add_argument("--prompt", default="Describe the image.")
    ap.add_argument("--engines", default="attnmap,sdpa,eager")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=str(ROOT / "tools"))
    DEFAULT_WORK.mkdir(parents=True, exist_ok=True)
    ensure_model(args, env)
    meta = metadata(args.model)
    layers = meta["text"]["num_hidden_layers"]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    print(f"machine: {machine()}")
    print(f"command: {' '.join(shlex.quote(a) for a in sys.argv)}")
    print(f"model: {args.model} ({meta.get('model_name')}, {meta['parameters']['total'] / 1e9:.3f} B parameters, "
          f"text {layers} x {meta['text']['hidden_size']}, vision {meta['vision']['depth']} x "
          f"{meta['vision']['hidden_size']}, full attention at {meta['vision']['fullatt_block_indexes']}), fp32, CPU, "
          f"{args.threads} threads")
    print(f"at start: {load_average()}", flush=True)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        for spec in args.tokens.split(","):
            h, w = parse_size(spec)
            tokens = (h // 28) * (w // 28)
            image = work / f"image_{h}x{w}.png"
            from attnmap_tools.testing import hf_reference as ref

            ref.synthetic_image(h, w, seed=h).save(image)
            size_rows = []
            if "attnmap" in engines:
                size_rows.append(run_attnmap(args, image, h, w, work, env, "all layers", []))
                size_rows.append(run_attnmap(args, image, h, w, work, env, "one layer, no logits",
                                             ["--layers", str(layers - 1), "--no-predict"]))
            for mode in ("sdpa", "eager"):
                if mode in engines:
                    size_rows.append(run_hf(args, image, h, w, work, env, mode))
            seq = next((r["seq_len"] for r in size_rows if r.get("seq_len")), None)
            if seq:
                flops = forward_flops(meta, h // 14, w // 14, seq)
                rate = gemm_rate(seq, meta["text"]["hidden_size"], meta["text"]["intermediate_size"], args.threads)
                size_rows.append({"engine": "GEMM limit (FLOPs / fp32 GEMM rate)", "status": "ok",
                                  "median_s": flops / rate, "seq_len": seq, "flops": flops, "gemm_rate": rate})
            for r in size_rows:
                r.update(tokens=tokens, size=f"{w}x{h}")
                print(f"  {tokens:,} tokens, {r['engine']}: {r['status']}"
                      + (f", median {r['median_s']:.2f} s" if r.get("median_s") else "")
                      + (f", peak RSS {r['peak_rss_mib']:,.0f} MiB" if r.get("peak_rss_mib") else ""), flush=True)
            rows += size_rows

    print(f"at end: {load_average()}\n")
    print("| image tokens | seq | engine | forward, median s | x transformers sdpa | first call s | peak RSS MiB |")
    print("|---:|---:|---|---:|---:|---:|---:|")
    for r in rows:
        base = next((b["median_s"] for b in rows if b["tokens"] == r["tokens"] and b.get("median_s")
                     and b["engine"].startswith("transformers sdpa")), None)
        med = r.get("median_s")
        cells = [f"{r['tokens']:,}", str(r.get("seq_len") or "-"), r["engine"],
                 f"{med:.2f}" if med else r["status"], f"{med / base:.2f}x" if med and base else "-",
                 f"{r['first_s']:.2f}" if r.get("first_s") else "-",
                 f"{r['peak_rss_mib']:,.0f}" if r.get("peak_rss_mib") else "-"]
        print("| " + " | ".join(cells) + " |")
    for r in rows:
        if r.get("flops"):
            print(f"{r['tokens']:,} tokens: {r['flops'] / 1e9:,.0f} GFLOP, fp32 GEMM rate {r['gemm_rate'] / 1e9:,.0f} GFLOP/s")
    print("\ncommands:")
    for r in rows:
        if r.get("cmd"):
            print("  " + " ".join(shlex.quote(str(a)) for a in r["cmd"]))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"machine": machine(), "argv": sys.argv, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
