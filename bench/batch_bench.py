#!/usr/bin/env python3
"""attnmap batch vs transformers eager (output_attentions=True) on the same model and images.

Prints, for one run: the machine and command; attnmap batch items/s, mean per-stage time, peak RSS
and, with --device cuda, the GPU busy fraction over the steady state (from the first summary line
written to the last, so model loading does not count) and the peak GPU memory (NVML, see
bench/gpu_sampler.py); transformers' per-image time and peak memory for the same forward with every
layer's attention materialised (what Python attention tools do); and attnmap's cost of attention
extraction (--layers 0 vs every layer inside batch, and the exported module's forward alone vs
forward + attention rows of every layer).

    .venv/bin/python bench/batch_bench.py --model build/models/demo.pt --checkpoint models/demo-qwen2_5_vl --count 200
    python3 bench/batch_bench.py --model rand7b.pt --checkpoint rand7b/ --device cuda --size 1000 --count 200

Without --size the images are the demo model's scenes (<= 64 image tokens) with their questions; with
--size (WxH pixels, multiples of 28, or an image-token count) they are synthetic images of that size
(--distinct different ones, cycled) with --prompt, and --max-pixels is raised so they are not
downscaled.
"""
import argparse
import json
import os
import pathlib
import shlex
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]

from bench_common import load_average, machine, parse_size, run_child
from gpu_sampler import GpuSampler, baseline_used_mib, summarize, window

PARTS = ("batch", "variants", "module", "transformers")


def make_scenes(folder: pathlib.Path, count: int, seed: int):
    from attnmap_tools.demo.scenes import make_scene  # the demo model's own scene generator

    lines = []
    for i in range(count):
        scene = make_scene(seed, i)
        path = folder / f"scene_{i:04d}.png"
        scene.image.save(path)
        lines.append({"image": str(path), "prompt": scene.question, "id": f"scene_{i:04d}"})
    return lines


def make_sized(folder: pathlib.Path, count: int, height: int, width: int, distinct: int, prompt: str):
    from attnmap_tools.testing import hf_reference as ref

    paths = []
    for i in range(min(count, distinct)):
        path = folder / f"image_{i:03d}.jpg"
        ref.synthetic_image(height, width, seed=i).save(path, quality=92)
        paths.append(path)
    return [{"image": str(paths[i % len(paths)]), "prompt": prompt, "id": f"item_{i:04d}"} for i in range(count)]


def write_manifest(path: pathlib.Path, lines) -> pathlib.Path:
    path.write_text("".join(json.dumps(l) + "\n" for l in lines))
    return path


class LineWatcher:
    """Polled while `attnmap batch` runs: when its streamed summary got its first and its last line."""

    def __init__(self, out: pathlib.Path):
        self.paths = [out / "summary.jsonl.partial", out / "summary.jsonl"]
        self.count = 0
        self.first = None
        self.last = None

    def __call__(self) -> None:
        for p in self.paths:
            try:
                n = p.read_bytes().count(b"\n")
            except OSError:
                continue
            if n > self.count:
                now = time.monotonic()
                if self.first is None:
                    self.first = now
                self.last = now
                self.count = n
            return


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=str(ROOT / "build" / "attnmap"))
    ap.add_argument("--model", default=str(ROOT / "build" / "models" / "demo.pt"))
    ap.add_argument("--checkpoint", default=str(ROOT / "models" / "demo-qwen2_5_vl"))
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--hf-count", type=int, default=40, help="images for the variants, module and transformers runs")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    ap.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                    help="for attnmap and transformers; auto = bf16 on CUDA, fp32 on CPU")
    ap.add_argument("--size", default=None, help="WxH pixels (multiples of 28) or an image-token count, e.g. 1000")
    ap.add_argument("--prompt", default="Describe the image.", help="prompt of the --size images")
    ap.add_argument("--distinct", type=int, default=8, help="different --size images, cycled")
    ap.add_argument("--parts", default=",".join(PARTS),
                    help=f"what to measure, comma-separated: {', '.join(PARTS)} (each loads the model once)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        ap.error(f"unknown --parts {', '.join(sorted(unknown))}")
    cuda = args.device.startswith("cuda")

    sampler = None
    gpu_name = None
    if cuda:
        sampler = GpuSampler(index=int(args.device.split(":")[1]) if ":" in args.device else 0, interval=0.1)
        gpu_name = sampler.device_name()
    print(f"machine: {machine(gpu_name)}")
    print(f"command: {' '.join(shlex.quote(a) for a in sys.argv)}")
    print(f"at start: {load_average()}")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    results = {"machine": machine(gpu_name), "argv": sys.argv}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        size_args = []
        if args.size:
            h, w = parse_size(args.size)
            items = make_sized(tmp, args.count, h, w, args.distinct, args.prompt)
            size_args = ["--max-pixels", str(h * w)]
            print(f"images: {args.count} items of {w}x{h} px = {(h // 28) * (w // 28)} image tokens "
                  f"({min(args.count, args.distinct)} distinct JPEGs, cycled), prompt {args.prompt!r}")
        else:
            items = make_scenes(tmp, args.count, seed=99)
            print(f"images: {args.count} demo scenes (224..448 px) with their questions")
        manifest = write_manifest(tmp / "items.jsonl", items)
        small = write_manifest(tmp / "small.jsonl", items[: args.hf_count])
        base_cmd = ["--device", args.device, "--dtype", args.dtype, "--no-progress"] + size_args

        if "batch" in parts:
            out = tmp / "out"
            cmd = [args.bin, "-q", "batch", "--model", args.model, "--images", str(manifest), "--out", str(out)] + base_cmd
            watcher = LineWatcher(out)
            start = {}

            def started(pid):
                start["t"] = time.monotonic()
                if sampler:
                    sampler.watch_pid(pid)

            if sampler:
                sampler.start()
                time.sleep(0.3)  # a baseline sample of the device before attnmap starts
            res = run_child(cmd, env=env, poll=watcher, on_start=started)
            if sampler:
                sampler.stop()
            if res.returncode not in (0, 1):
                sys.exit(f"attnmap batch failed ({res.describe()}): {res.stderr[-2000:]}")
            lines = [json.loads(l) for l in (out / "summary.jsonl").read_text().splitlines()]
            ok = [l for l in lines if l["status"] == "ok"]
            stages = {}
            for l in ok:
                for k, v in l["timings_ms"].items():
                    stages.setdefault(k, []).append(v)
            print(f"\nattnmap batch ({len(ok)}/{len(lines)} ok, all layers, images written): "
                  f"{len(ok) / res.seconds:.2f} items/s, {res.seconds:.1f} s wall incl. model load, "
                  f"peak RSS {res.peak_rss_mib:.0f} MiB")
            means = {k: sum(v) / len(v) for k, v in sorted(stages.items()) if k != "total"}
            print("  mean per item (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in means.items()))
            batch = {"ok": len(ok), "items": len(lines), "seconds": res.seconds, "items_per_s": len(ok) / res.seconds,
                     "peak_rss_mib": res.peak_rss_mib, "mean_stage_ms": means}
            reported = [l["peak_device_memory_mib"] for l in ok if l.get("peak_device_memory_mib") is not None]
            if reported:  # attnmap's own figure (CUDA builds that write it): allocator peak per forward
                batch["reported_peak_device_memory_mib"] = max(reported)
                print(f"  peak GPU memory reported by attnmap (max over items): {max(reported):,.0f} MiB")
            if watcher.first is not None and watcher.last is not None and watcher.count > 1:
                steady_items = watcher.count - 1
                steady_s = watcher.last - watcher.first
                batch["steady_items_per_s"] = steady_items / steady_s if steady_s > 0 else None
                print(f"  steady state (first to last summary line, {steady_items} items in {steady_s:.1f} s): "
                      f"{batch['steady_items_per_s']:.2f} items/s")
            if sampler:
                base = baseline_used_mib(sampler.samples, start["t"])
                steady = summarize(sampler.samples, watcher.first, watcher.last, baseline_mib=base)
                batch["gpu"] = dict(steady, backend=sampler.backend, samples=len(sampler.samples))
                if steady["mean_busy_pct"] is None:
                    print(f"  GPU busy: no samples ({sampler.backend or 'no sampler'}: {sampler.error})")
                else:
                    print(f"  GPU busy ({sampler.backend}, {steady['steady_samples']} samples over the steady state): "
                          f"mean {steady['mean_busy_pct']:.1f} %, min {steady['min_busy_pct']:.0f} %")
                print(f"  peak GPU memory: {steady['peak_process_mib'] or 0:,.0f} MiB attributed to attnmap by NVML"
                      if steady["peak_process_mib"] is not None else "  peak GPU memory: NVML cannot attribute it "
                      "to the process", end="")
                print(f"; device {steady['peak_device_used_mib'] or 0:,.0f} MiB used at peak, "
                      f"{steady['peak_device_used_over_baseline_mib'] or 0:,.0f} MiB over its use before the run")
            results["batch"] = batch

        if "variants" in parts:
            # The price of attention extraction inside attnmap: every layer vs one layer.
            variants = {
                "forward + attention of all layers + maps": [],
                "forward + attention of one layer + maps": ["--layers", "0"],
            }
            timings = {}
            for name, extra in variants.items():
                o = tmp / ("v" + str(len(timings)))
                res = run_child([args.bin, "-q", "batch", "--model", args.model, "--images", str(small), "--out", str(o),
                                 "--no-images"] + base_cmd + extra, env=env)
                ls = [json.loads(l) for l in (o / "summary.jsonl").read_text().splitlines()] if res.returncode in (0, 1) else []
                ls = [l for l in ls if l["status"] == "ok"][1:]  # the first item carries the warm-up
                if not ls:
                    print(f"  {name}: failed ({res.describe()}): {res.stderr[-500:]}")
                    continue
                timings[name] = sum(l["timings_ms"]["forward"] for l in ls) / len(ls)
            for name, ms in timings.items():
                print(f"  {name}: forward stage {ms:.1f} ms/item (items 2..{args.hf_count})")
            results["variants_forward_ms"] = timings

        py_args = ["--checkpoint", args.checkpoint, "--items", str(small), "--device", args.device,
                   "--dtype", args.dtype, "--threads", str(args.threads)] + size_args
        if "module" in parts:
            res = run_child([sys.executable, str(ROOT / "bench" / "hf_child.py"), "module", "--model", args.model]
                            + py_args, env=env)
            if res.ok:
                ov = json.loads(res.stdout.strip().splitlines()[-1])
                base = ov["forward only"]
                for name in ("forward only", "forward + attention rows of every layer"):
                    sec = ov[name]
                    print(f"  exported module, {name}: {sec * 1000:.1f} ms/item ({(sec / base - 1) * 100:+.1f}% vs "
                          f"forward only; {ov['n']} items after {ov['warmup']} warm-up calls, {ov['dtype']})")
                results["module"] = ov
            else:
                print(f"  overhead measurement failed ({res.describe()}): {res.stderr[-1500:]}")

        if "transformers" in parts:
            res = run_child([sys.executable, str(ROOT / "bench" / "hf_child.py"), "eager"] + py_args, env=env)
            if not res.ok:
                print(f"\ntransformers failed ({res.describe()}): {(res.stdout + res.stderr)[-2000:]}")
            else:
                hf = json.loads(res.stdout.strip().splitlines()[-1])
                print(f"\ntransformers eager, output_attentions=True ({hf['n']} images, {hf['dtype']}): "
                      f"{hf['per_image_s'] * 1000:.1f} ms/image forward = {1 / hf['per_image_s']:.2f} images/s "
                      f"(model call only, images 2..n, no preprocessing, no rendering; first call {hf['first_s'] * 1000:.0f} ms), "
                      f"peak RSS {res.peak_rss_mib:.0f} MiB"
                      + (f", peak GPU {hf['peak_device_mib']:.0f} MiB (torch.cuda.max_memory_allocated)" if cuda else ""))
                results["transformers"] = dict(hf, peak_rss_mib=res.peak_rss_mib)
    if sampler:
        sampler.close()
    print(f"at end: {load_average()}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
