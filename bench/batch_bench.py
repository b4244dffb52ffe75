#!/usr/bin/env python3
"""attnmap batch vs transformers eager (output_attentions=True) on the same model and images.

Prints, for one run: the machine and command; attnmap batch items/s, mean per-stage time, peak RSS;
transformers' per-image time and peak RSS for the same forward with every layer's attention
materialised (what Python attention tools do); and attnmap's cost of attention extraction
(--no-predict with one layer vs every layer vs the forward alone). CPU here; on a CUDA machine pass
--device cuda to both.

    python3 bench/batch_bench.py --model build/models/demo.pt --checkpoint models/demo-qwen2_5_vl --count 200
"""
import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests" / "python"))


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()}: {os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}"


def peak_rss_of(cmd, env=None):
    """Runs cmd; returns (seconds, peak RSS of that process in MiB, exit code, stdout, stderr)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # rusage of this child alone
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        return (seconds, usage.ru_maxrss / 1024.0, os.waitstatus_to_exitcode(status),
                out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def make_images(folder: pathlib.Path, count: int, seed: int):
    from demo.scenes import make_scene  # the demo model's own scene generator

    lines = []
    for i in range(count):
        scene = make_scene(seed, i)
        path = folder / f"scene_{i:04d}.png"
        scene.image.save(path)
        lines.append({"image": str(path), "prompt": scene.question, "id": f"scene_{i:04d}"})
    manifest = folder / "items.jsonl"
    manifest.write_text("".join(json.dumps(l) + "\n" for l in lines))
    return manifest, lines


HF_SCRIPT = r"""
import json, sys, time, torch
sys.path.insert(0, sys.argv[4])
import hf_reference as ref
from PIL import Image
torch.set_num_threads(int(sys.argv[5]))
ckpt, manifest, device = sys.argv[1], sys.argv[2], sys.argv[3]
processor = ref.load_processor(ckpt)
model = ref.load_hf_model(ckpt).to(device)
items = [json.loads(l) for l in open(manifest)]
times = []
for item in items:
    inputs = ref.build_inputs(processor, [Image.open(item["image"]).convert("RGB")], item["prompt"])
    inputs = {k: v.to(device) for k, v in inputs.items()}
    t = time.perf_counter()
    with torch.no_grad():
        out = model(**inputs, output_attentions=True)
    if device == "cuda": torch.cuda.synchronize()
    times.append(time.perf_counter() - t)
peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else 0
print(json.dumps({"per_image_s": sum(times) / len(times), "n": len(times), "peak_gpu_mib": peak}))
"""


OVERHEAD_SCRIPT = r"""
import json, sys, time, torch
sys.path.insert(0, sys.argv[4])
import hf_reference as ref
from PIL import Image
torch.set_num_threads(int(sys.argv[5]))
model_pt, ckpt, manifest = sys.argv[1], sys.argv[2], sys.argv[3]
processor = ref.load_processor(ckpt)
hf = ref.load_hf_model(ckpt)
module = torch.jit.load(model_pt, map_location="cpu")
layers = list(range(hf.config.text_config.num_hidden_layers))
image_token = hf.config.image_token_id
times = {"forward only": 0.0, "forward + attention rows of every layer": 0.0}
items = [json.loads(l) for l in open(manifest)]
for item in items:
    inputs = ref.build_inputs(processor, [Image.open(item["image"]).convert("RGB")], item["prompt"])
    ids = inputs["input_ids"][0]
    pos = ref.hf_position_ids(hf, inputs)
    rows = torch.arange(int((ids == image_token).nonzero().max()) + 2, ids.numel() - 5)
    for name, ls in [("forward only", []), ("forward + attention rows of every layer", layers)]:
        q = rows if ls else torch.zeros(0, dtype=torch.long)
        with torch.no_grad():
            t = time.perf_counter()
            module(ids, inputs["pixel_values"], inputs["image_grid_thw"], pos, ls, q, 1, True, True)
            times[name] += time.perf_counter() - t
print(json.dumps({k: v / len(items) for k, v in times.items()}))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=str(ROOT / "build" / "attnmap"))
    ap.add_argument("--model", default=str(ROOT / "build" / "models" / "demo.pt"))
    ap.add_argument("--checkpoint", default=str(ROOT / "models" / "demo-qwen2_5_vl"))
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--hf-count", type=int, default=40, help="images for the (slower) transformers run")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()

    print(f"machine: {machine()}")
    print(f"command: {' '.join(sys.argv)}")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        manifest, items = make_images(tmp, args.count, seed=99)
        out = tmp / "out"
        cmd = [args.bin, "-q", "batch", "--model", args.model, "--images", str(manifest), "--out", str(out),
               "--device", args.device, "--no-progress"]
        seconds, peak, rc, _, err = peak_rss_of(cmd, env)
        if rc not in (0, 1):
            sys.exit(f"attnmap batch failed ({rc}): {err}")
        lines = [json.loads(l) for l in (out / "summary.jsonl").read_text().splitlines()]
        ok = [l for l in lines if l["status"] == "ok"]
        stages = {}
        for l in ok:
            for k, v in l["timings_ms"].items():
                stages.setdefault(k, []).append(v)
        print(f"\nattnmap batch ({len(ok)}/{len(lines)} ok, all layers, images written): "
              f"{len(ok) / seconds:.2f} items/s, {seconds:.1f} s wall incl. model load, peak RSS {peak:.0f} MiB")
        print("  mean per item (ms): " + ", ".join(f"{k} {sum(v) / len(v):.1f}" for k, v in sorted(stages.items())
                                                  if k != "total"))

        # The price of attention extraction: the same forward with and without it.
        small = tmp / "small.jsonl"
        small.write_text("".join(json.dumps(i) + "\n" for i in items[: args.hf_count]))
        variants = {
            "forward + attention of all layers + maps": [],
            "forward + attention of one layer + maps": ["--layers", "0"],
        }
        timings = {}
        for name, extra in variants.items():
            o = tmp / ("v" + str(len(timings)))
            subprocess.run([args.bin, "-q", "batch", "--model", args.model, "--images", str(small), "--out", str(o),
                            "--device", args.device, "--no-progress", "--no-images"] + extra, env=env,
                           check=False)
            ls = [json.loads(l) for l in (o / "summary.jsonl").read_text().splitlines()]
            timings[name] = sum(l["timings_ms"]["forward"] for l in ls) / len(ls)
        for name, ms in timings.items():
            print(f"  {name}: forward stage {ms:.1f} ms/item")

        ov_cmd = [sys.executable, "-c", OVERHEAD_SCRIPT, args.model, args.checkpoint, str(small),
                  str(ROOT / "tests" / "python"), str(args.threads)]
        _, _, ov_rc, ov_out, ov_err = peak_rss_of(ov_cmd, env)
        if ov_rc == 0:
            ov = json.loads(ov_out.strip().splitlines()[-1])
            base = ov["forward only"]
            for name, sec in ov.items():
                print(f"  exported module, {name}: {sec * 1000:.1f} ms/item ({(sec / base - 1) * 100:+.1f}% vs forward only)")
        else:
            print(f"  overhead measurement failed: {ov_err[-1500:]}")

        hf_cmd = [sys.executable, "-c", HF_SCRIPT, args.checkpoint, str(small), args.device,
                  str(ROOT / "tests" / "python"), str(args.threads)]
        _, hf_peak, hf_rc, hf_out, hf_err = peak_rss_of(hf_cmd, env)
        if hf_rc != 0:
            print(f"\ntransformers failed: {hf_err[-2000:]}")
            return
        hf = json.loads(hf_out.strip().splitlines()[-1])
        print(f"\ntransformers eager, output_attentions=True ({hf['n']} images): "
              f"{hf['per_image_s'] * 1000:.1f} ms/image forward = {1 / hf['per_image_s']:.2f} images/s "
              f"(model call only, no preprocessing, no rendering), peak RSS {hf_peak:.0f} MiB"
              + (f", peak GPU {hf['peak_gpu_mib']:.0f} MiB" if args.device == "cuda" else ""))


if __name__ == "__main__":
    main()
