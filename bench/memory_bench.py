#!/usr/bin/env python3
"""Peak memory and wall time of one `attnmap run` (all layers, default query) against transformers
eager with output_attentions=True, on the same checkpoint, image and prompt, at growing image sizes.

Each measurement is its own process, so running out of memory at one size is reported for that size
and the others still run. CPU: peak RSS of that process (os.wait4), optionally under an RLIMIT_AS cap
so that an oversized run fails inside its process instead of exhausting the machine. CUDA: the peak
device memory attnmap writes to attention.json ("peak_device_memory_mib", when present) and
torch.cuda.max_memory_allocated for transformers, both cross-checked with NVML samples of the device
(per process when the driver attributes memory to it, else the device's growth over its use before
the process started).

    python3 bench/memory_bench.py --model build/models/demo.pt --checkpoint models/demo-qwen2_5_vl \\
        --device cpu --tokens 1000,4000,16000

Images are squares whose side is a multiple of 28 (so smart_resize keeps them) with (side/28)^2 image
tokens closest to each count; --max-pixels is passed to attnmap and to the HF processor so they are
not downscaled.
"""
import argparse
import json
import os
import pathlib
import shlex
import sys
import tempfile
import time
import zipfile
from typing import Optional, Tuple

ROOT = pathlib.Path(__file__).resolve().parent.parent

from bench_common import load_average, machine, parse_size, run_child
from gpu_sampler import GpuSampler, baseline_used_mib, summarize, window

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def model_metadata(model_pt: str) -> Optional[dict]:
    """attnmap/metadata.json from the TorchScript archive (a zip), without loading the weights."""
    try:
        with zipfile.ZipFile(model_pt) as z:
            for name in z.namelist():
                if name.endswith("extra/attnmap/metadata.json"):
                    return json.loads(z.read(name))
    except (OSError, zipfile.BadZipFile, json.JSONDecodeError):
        pass
    return None


def weights_line(model_pt: str, dtype: str, device: str) -> Tuple[str, Optional[float]]:
    """A line describing the weights and their size in GiB at the dtype the run uses."""
    meta = model_metadata(model_pt)
    size = os.path.getsize(model_pt) / 2**30
    if not meta:
        return f"model {model_pt}: {size:.2f} GiB file (no attnmap metadata found)", None
    params = meta["parameters"]["total"]
    run_dtype = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}.get(
        dtype, "bfloat16" if device.startswith("cuda") else "float32")
    gib = params * DTYPE_BYTES[run_dtype] / 2**30
    t, v = meta["text"], meta["vision"]
    def amount(gib_value):
        return f"{gib_value:.2f} GiB" if gib_value >= 1 else f"{gib_value * 1024:.1f} MiB"

    count = f"{params / 1e9:.3f} B" if params >= 1e8 else f"{params / 1e6:.2f} M"
    return (f"model {meta.get('model_name')}: {count} parameters (text {t['num_hidden_layers']} x "
            f"{t['hidden_size']}, vision {v['depth']} x {v['hidden_size']}), stored {meta['dtype']}; "
            f"weights at run dtype {run_dtype}: {amount(gib)}; file {amount(size)}"), gib


def make_image(path: pathlib.Path, height: int, width: int) -> None:
    from attnmap_tools.testing import hf_reference as ref

    ref.synthetic_image(height, width, seed=height).save(path)


def mib(v) -> str:
    return "-" if v is None else f"{v:,.0f}"


def gpu_window(sampler, t0, t1) -> dict:
    if sampler is None:
        return {}
    base = baseline_used_mib(sampler.samples, t0)
    return summarize(window(sampler.samples, t0, t1), baseline_mib=base)


def run_sampled(cmd, args, env, sampler, cap):
    """Runs one measured child; the GPU sampler (if any) watches that pid from its start to its end."""
    times = {}

    def started(pid):
        times["t0"] = time.monotonic()
        if sampler:
            sampler.pids = {pid}

    res = run_child(cmd, env=env, timeout=args.timeout, address_space_bytes=cap, on_start=started)
    return res, gpu_window(sampler, times["t0"], time.monotonic())


def measure_attnmap(args, image, h, w, workdir, env, sampler, cap) -> dict:
    out = workdir / f"attnmap_{h}x{w}"
    cmd = [args.bin, "-q", "run", "--model", args.model, "--image", str(image), "--prompt", args.prompt,
           "--out", str(out), "--device", args.device, "--dtype", args.dtype, "--max-pixels", str(h * w)]
    if args.no_images:
        cmd.append("--no-images")
    res, gpu = run_sampled(cmd, args, env, sampler, cap)
    row = {"engine": "attnmap", "cmd": cmd, "wall_s": res.seconds, "peak_rss_mib": res.peak_rss_mib,
           "ok": res.ok, "status": "ok" if res.ok else res.describe(), **gpu}
    doc = out / "attention.json"
    if res.ok and doc.is_file():
        d = json.loads(doc.read_text())
        row["timings_ms"] = d.get("timings_ms", {})
        row["seq_len"] = len(d.get("tokens", {}).get("ids", [])) or None
        g = d.get("grid", {})
        row["image_tokens"] = g.get("merged_h", 0) * g.get("merged_w", 0) * g.get("t", 1)
        row["peak_device_memory_mib"] = d.get("peak_device_memory_mib")  # attnmap's own figure (CUDA)
        row["device"], row["dtype"] = d.get("device"), d.get("dtype")
    if not res.ok:
        row["stderr"] = res.stderr.strip()[-600:]
        if res.returncode == 6:
            row["status"] = "out of memory (exit 6)"
    return row


def measure_hf(args, image, h, w, workdir, env, sampler, cap) -> dict:
    items = workdir / f"hf_{h}x{w}.jsonl"
    items.write_text(json.dumps({"image": str(image), "prompt": args.prompt}) + "\n")
    cmd = [sys.executable, str(ROOT / "bench" / "hf_child.py"), "eager", "--checkpoint", args.checkpoint,
           "--items", str(items), "--max-pixels", str(h * w), "--device", args.device, "--dtype", args.dtype,
           "--vision-attn", args.hf_vision_attn]
    res, gpu = run_sampled(cmd, args, env, sampler, cap)
    row = {"engine": "transformers", "cmd": cmd, "wall_s": res.seconds, "peak_rss_mib": res.peak_rss_mib,
           "ok": res.ok, **gpu}
    last = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
    try:
        out = json.loads(last)
    except json.JSONDecodeError:
        out = {}
    if res.ok:
        row.update(status="ok", forward_s=out["per_image_s"], load_s=out["load_s"],
                   image_tokens=out["image_tokens"][0], seq_len=out["seq_len"][0],
                   peak_device_memory_mib=out["peak_device_mib"] if args.device.startswith("cuda") else None)
    elif out.get("error") == "out of memory":
        row.update(status="out of memory", detail=out.get("detail"),
                   peak_device_memory_mib=out.get("peak_device_mib") or None)
    else:
        row["status"] = res.describe()
        tail = res.stderr.strip()[-600:]
        if "out of memory" in tail or "can't allocate memory" in tail or "bad_alloc" in tail:
            row["status"] = "out of memory (" + res.describe() + ")"
        row["stderr"] = tail
    return row


def print_table(rows, device: str, weights_gib: Optional[float]) -> None:
    cuda = device.startswith("cuda")
    print()
    if cuda:
        print("| image tokens | image | seq | engine | status | wall s | forward s | peak GPU MiB (reported) "
              "| peak GPU MiB (NVML process / device growth) | over weights GiB | peak RSS MiB |")
        print("|---:|---|---:|---|---|---:|---:|---:|---:|---:|---:|")
    else:
        print("| image tokens | image | seq | engine | status | wall s | forward s | peak RSS MiB |")
        print("|---:|---|---:|---|---|---:|---:|---:|")
    for r in rows:
        fwd = r.get("forward_s")
        if fwd is None and r.get("timings_ms", {}).get("forward") is not None:
            fwd = r["timings_ms"]["forward"] / 1000
        cells = [f"{r['tokens']:,}", r["size"], mib(r.get("seq_len")), r["engine"], r["status"],
                 f"{r['wall_s']:.1f}", "-" if fwd is None else f"{fwd:.2f}"]
        if cuda:
            reported = r.get("peak_device_memory_mib")
            nvml = f"{mib(r.get('peak_process_mib'))} / {mib(r.get('peak_device_used_over_baseline_mib'))}"
            best = reported if reported is not None else (r.get("peak_process_mib")
                                                        or r.get("peak_device_used_over_baseline_mib"))
            over = "-" if best is None or weights_gib is None else f"{best / 1024 - weights_gib:+.2f}"
            cells += [mib(reported), nvml, over, mib(r["peak_rss_mib"])]
        else:
            cells += [mib(r["peak_rss_mib"])]
        print("| " + " | ".join(cells) + " |")
    print()
    for r in rows:
        if r.get("stderr") or r.get("detail"):
            print(f"{r['engine']} at {r['tokens']:,} tokens: {r['status']}: {r.get('detail') or r.get('stderr')}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=str(ROOT / "build" / "attnmap"))
    ap.add_argument("--model", default=str(ROOT / "build" / "models" / "demo.pt"))
    ap.add_argument("--checkpoint", default=str(ROOT / "models" / "demo-qwen2_5_vl"))
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    ap.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                    help="for both engines; auto = bf16 on CUDA, fp32 on CPU (attnmap's rule)")
    ap.add_argument("--tokens", default="1000,4000,16000",
                    help="image token counts (nearest square), or WxH pixel sizes, comma-separated")
    ap.add_argument("--prompt", default="Describe the image.")
    ap.add_argument("--engines", default="attnmap,transformers", help="which to run: attnmap, transformers")
    ap.add_argument("--skip-hf-above", type=int, default=0,
                    help="skip transformers above this many image tokens (0: never skip)")
    ap.add_argument("--hf-vision-attn", default="eager", choices=["eager", "sdpa"],
                    help="transformers' vision tower attention (the decoder is always eager)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per run before it is killed")
    ap.add_argument("--address-space-gb", type=float, default=20,
                    help="CPU only: RLIMIT_AS of each child in GiB (0: no cap); never applied with CUDA")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--no-images", action="store_true", help="attnmap run --no-images (maps only)")
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()

    cuda = args.device.startswith("cuda")
    sampler = None
    gpu_name = None
    if cuda:
        index = int(args.device.split(":")[1]) if ":" in args.device else 0
        sampler = GpuSampler(index=index, interval=0.1)
        gpu_name = sampler.device_name()
        sampler.start()
    cap = int(args.address_space_gb * 2**30) if args.address_space_gb > 0 and not cuda else None
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=str(ROOT / "tools"))
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]

    print(f"machine: {machine(gpu_name)}")
    print(f"command: {' '.join(shlex.quote(a) for a in sys.argv)}")
    print(f"at start: {load_average()}")
    line, weights_gib = weights_line(args.model, args.dtype, args.device)
    print(line)
    if cap:
        print(f"each child runs under RLIMIT_AS = {args.address_space_gb:g} GiB: an allocation past it fails "
              "in that child and is reported as out of memory")
    if sampler:
        print(f"GPU sampling: {sampler.backend or 'unavailable'}"
              + (f" ({sampler.error})" if sampler.error else "") + ", every 0.1 s")
    sys.stdout.flush()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for spec in args.tokens.split(","):
            h, w = parse_size(spec)
            tokens = (h // 28) * (w // 28)
            image = tmp / f"image_{h}x{w}.png"
            make_image(image, h, w)
            for engine in engines:
                if engine == "transformers" and args.skip_hf_above and tokens > args.skip_hf_above:
                    continue
                measure = measure_attnmap if engine == "attnmap" else measure_hf
                row = measure(args, image, h, w, tmp, env, sampler, cap)
                row.update(tokens=tokens, size=f"{w}x{h}")
                rows.append(row)
                row["load_after"] = os.getloadavg()[0]
                print(f"  {engine} at {tokens:,} image tokens ({w}x{h}): {row['status']}, {row['wall_s']:.1f} s, "
                      f"peak RSS {row['peak_rss_mib']:,.0f} MiB, 1-min load after {row['load_after']:.2f}"
                      + (f", peak GPU {mib(row.get('peak_device_memory_mib'))} MiB reported, "
                         f"{mib(row.get('peak_process_mib'))} MiB NVML process, "
                         f"{mib(row.get('peak_device_used_over_baseline_mib'))} MiB NVML device growth" if cuda else ""),
                      flush=True)
    if sampler:
        sampler.stop()
        sampler.close()
    if rows:
        print("\nfirst command of each kind:")
        for engine in engines:
            first = next((r for r in rows if r["engine"] == engine), None)
            if first:
                print("  " + " ".join(shlex.quote(str(a)) for a in first["cmd"]))
    print(f"at end: {load_average()}")
    print_table(rows, args.device, weights_gib)
    if cuda and weights_gib is not None:
        print(f"target: attnmap's peak GPU memory at the largest size within weights ({weights_gib:.2f} GiB) + 10 GB")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"machine": machine(gpu_name), "argv": sys.argv,
                                                       "weights_gib": weights_gib, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
