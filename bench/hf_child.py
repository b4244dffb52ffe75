#!/usr/bin/env python3
"""The Python side of the benchmarks, run by them as a child process (one per measurement, so an
out-of-memory at one image size does not take the others down). Prints one JSON line last.

    hf_child.py eager  --checkpoint DIR --items ITEMS.jsonl [--max-pixels N] [--device D] [--dtype T]
        transformers eager, output_attentions=True, per-item model-call time and peak memory
    hf_child.py sdpa   --checkpoint DIR --items ITEMS.jsonl [--repeats N] [...]
        transformers with SDPA everywhere and logits_to_keep=1, no attentions: plain inference doing the
        work attnmap does (every layer, the last position's logits); median of N calls after one warm-up
    hf_child.py module --model PT --checkpoint DIR --items ITEMS.jsonl [--max-pixels N] [--device D] [--dtype T]
        attnmap's exported module: forward alone vs forward + attention rows of every layer
    hf_child.py generate-eager --checkpoint DIR --items ITEMS.jsonl --new-tokens N [--warmup W] [...]
        greedy generate(do_sample=False, max_new_tokens=N, min_new_tokens=N, repetition_penalty=1.0,
        output_attentions=True, return_dict_in_generate=True), attn_implementation="eager"
        (--vision-attn sdpa: eager in the decoder only); the first item only
    hf_child.py generate-sdpa  --checkpoint DIR --items ITEMS.jsonl --new-tokens N [...]
        the same greedy generate with attn_implementation="sdpa" and no attentions: plain inference
        generate-*: a LogitsProcessor stamps the time each step's logits are ready, so the prefill (call
        start to step 0's logits) and the decode steps (step 0's logits to the end, per token: / (N-1))
        are timed apart; --warmup W short generates (2 tokens) run first, untimed (default 0: the timed
        call is the process's first, as for a fresh `attnmap run`)

    hf_child.py video-eager --checkpoint DIR --items ITEMS.jsonl [--video-max-pixels N] [...]
    hf_child.py video-sdpa  --checkpoint DIR --items ITEMS.jsonl [...]
        the first item's "frames" (a folder of PNGs, taken whole at the 24 fps default, as attnmap's
        --frames) through the HF processor's video path; one forward, eager with output_attentions, or
        sdpa with logits_to_keep=1 and no attentions (the processor imports torchvision through
        attnmap_tools.testing.torchvision_shim)

ITEMS.jsonl lines are {"image": PATH, "prompt": TEXT} ({"frames": DIR, "prompt": TEXT} for video-*). Exit code 3 with {"error": "out of memory", ...}
when the device (or, under an RLIMIT_AS cap, the CPU allocator) runs out of memory.
"""
import argparse
import json
import resource
import sys
import time
import warnings

import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def pick_dtype(name: str, device: str) -> torch.dtype:
    if name == "auto":  # what attnmap's --dtype auto picks
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return DTYPES[name]


def load_processor(ckpt: str, max_pixels: int = 0):
    """The HF processor (PIL image processor on transformers 5, AutoProcessor before), with the
    pixel budget raised so that the benchmark's images are not downscaled."""
    try:
        from attnmap_tools.testing import hf_reference as ref

        processor = ref.load_processor(ckpt)
    except ImportError:  # transformers 4.x: no PIL-backend module
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(ckpt)
    if max_pixels:
        ip = processor.image_processor
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ip.size = {"shortest_edge": int(getattr(ip, "min_pixels", None) or 3136), "longest_edge": int(max_pixels)}
            if hasattr(ip, "max_pixels"):
                ip.max_pixels = int(max_pixels)
    return processor


def build_inputs(processor, image, prompt: str) -> dict:
    from attnmap_tools.testing import hf_reference as ref  # the tests' oracle input builder, so bench and tests feed transformers alike

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ref.build_inputs(processor, [image], prompt)


def model_type(ckpt: str) -> str:
    import json
    import pathlib

    return json.loads((pathlib.Path(ckpt) / "config.json").read_text()).get("model_type", "qwen2_5_vl")


def load_hf_model(ckpt: str, dtype: torch.dtype, device: str, vision_attn: str = "eager", text_attn: str = "eager"):
    import transformers
    from transformers import Qwen2_5_VLForConditionalGeneration

    model_class = Qwen2_5_VLForConditionalGeneration
    if model_type(ckpt) == "qwen3_vl":
        from transformers import Qwen3VLForConditionalGeneration as model_class

    version = tuple(int(v) for v in transformers.__version__.split(".")[:2] if v.isdigit())
    if vision_attn == text_attn:
        attn = text_attn
    else:
        attn = {"": text_attn, "text_config": text_attn, "vision_config": vision_attn}
    kwargs = {"attn_implementation": attn, ("dtype" if version >= (4, 56) else "torch_dtype"): dtype}
    model = model_class.from_pretrained(ckpt, **kwargs)
    return model.to(device).eval()


def is_oom(e: BaseException) -> bool:
    if isinstance(e, MemoryError):
        return True
    oom_type = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(e, oom_type):
        return True
    text = str(e)
    return "out of memory" in text or "can't allocate memory" in text or "std::bad_alloc" in text


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_device_mib(device: str) -> float:
    return torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else 0.0


def read_items(path: str):
    return [json.loads(line) for line in open(path) if line.strip()]


def open_image(path: str):
    from PIL import Image

    with Image.open(path) as im:
        return im.convert("RGB")


def cmd_eager(args) -> dict:
    sdpa = args.mode == "sdpa"
    dtype = pick_dtype(args.dtype, args.device)
    processor = load_processor(args.checkpoint, args.max_pixels)
    t = time.perf_counter()
    model = load_hf_model(args.checkpoint, dtype, args.device, "sdpa" if sdpa else args.vision_attn,
                          "sdpa" if sdpa else "eager")
    load_s = time.perf_counter() - t
    weights_mib = peak_device_mib(args.device)
    times, tokens, seq = [], [], []
    items = read_items(args.items)
    # Repeats of the first item after it (the first call is the warm-up the summary leaves out).
    items = items + [items[0]] * max(0, args.repeats - len(items) + 1)
    for item in items:
        inputs = build_inputs(processor, open_image(item["image"]), item["prompt"])
        grid = inputs["image_grid_thw"][0].tolist()
        tokens.append(grid[0] * grid[1] * grid[2] // 4)
        seq.append(int(inputs["input_ids"].shape[1]))
        inputs = {k: v.to(args.device) for k, v in inputs.items()}
        sync(args.device)
        t = time.perf_counter()
        with torch.no_grad():
            if sdpa:
                out = model(**inputs, logits_to_keep=1)
            else:
                out = model(**inputs, output_attentions=True)
        sync(args.device)
        times.append(time.perf_counter() - t)
        if not sdpa:
            assert out.attentions is not None and len(out.attentions) == model.config.text_config.num_hidden_layers
        del out
    steady = times[1:] or times  # the first call carries one-time initialisation (kernels, allocator)
    ordered = sorted(steady)
    return {"n": len(times), "per_image_s": sum(steady) / len(steady), "first_s": times[0],
            "median_s": ordered[len(ordered) // 2], "min_s": ordered[0], "times_s": times,
            "image_tokens": tokens, "seq_len": seq, "load_s": load_s, "weights_device_mib": weights_mib,
            "peak_device_mib": peak_device_mib(args.device), "dtype": str(dtype).replace("torch.", ""),
            "vision_attn": args.vision_attn}


def cmd_module(args) -> dict:
    from attnmap_tools.testing.positions import get_rope_index

    dtype = pick_dtype(args.dtype, args.device)
    processor = load_processor(args.checkpoint, args.max_pixels)
    extra = {"attnmap/metadata.json": ""}
    module = torch.jit.load(args.model, map_location=args.device, _extra_files=extra).to(dtype)
    meta = json.loads(extra["attnmap/metadata.json"])
    layers = list(range(meta["text"]["num_hidden_layers"]))
    image_token = meta["tokens"]["image_token_id"]
    variants = {"forward only": [], "forward + attention rows of every layer": layers}
    times = {name: [] for name in variants}
    prepared = []
    for item in read_items(args.items):
        inputs = build_inputs(processor, open_image(item["image"]), item["prompt"])
        ids = inputs["input_ids"][0]
        pos, _ = get_rope_index(ids.tolist(), inputs["image_grid_thw"].tolist(), image_token)
        pos = torch.tensor(pos, dtype=torch.long)
        # The prompt's rows: after the image's <|vision_end|> up to the chat template's tail.
        rows = torch.arange(int((ids == image_token).nonzero().max()) + 2, ids.numel() - 5)
        prepared.append([t.to(args.device) for t in (ids, inputs["pixel_values"], inputs["image_grid_thw"], pos, rows)])
    empty = torch.zeros(0, dtype=torch.long, device=args.device)
    # TorchScript's profiling executor specialises the graph on the first calls: those are not timed.
    schedule = [(prepared[0], False)] * args.warmup + [(p, True) for p in prepared]
    for (ids, pixels, grid, pos, rows), timed in schedule:
        for name, ls in variants.items():
            sync(args.device)
            t = time.perf_counter()
            with torch.no_grad():
                module({"input_ids": ids, "pixel_values": pixels, "image_grid_thw": grid, "position_ids": pos},
                       ls, rows if ls else empty, "mean", True, True)
            sync(args.device)
            if timed:
                times[name].append(time.perf_counter() - t)
    return {**{name: sum(v) / len(v) for name, v in times.items()}, "n": len(times["forward only"]),
            "warmup": args.warmup, "peak_device_mib": peak_device_mib(args.device),
            "dtype": str(dtype).replace("torch.", "")}


def cmd_generate(args) -> dict:
    from transformers import LogitsProcessor, LogitsProcessorList

    eager = args.mode == "generate-eager"
    n = args.new_tokens
    dtype = pick_dtype(args.dtype, args.device)
    processor = load_processor(args.checkpoint, args.max_pixels)
    t = time.perf_counter()
    model = load_hf_model(args.checkpoint, dtype, args.device, args.vision_attn if eager else "sdpa",
                          "eager" if eager else "sdpa")
    load_s = time.perf_counter() - t
    rss_after_load_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    item = read_items(args.items)[0]
    inputs = build_inputs(processor, open_image(item["image"]), item["prompt"])
    grid = inputs["image_grid_thw"][0].tolist()
    seq = int(inputs["input_ids"].shape[1])
    inputs = {k: v.to(args.device) for k, v in inputs.items()}
    stamps = []

    class Stamp(LogitsProcessor):
        """Called once per step, when that step's logits exist (after its forward)."""

        def __call__(self, input_ids, scores):
            sync(args.device)
            stamps.append(time.perf_counter())
            return scores

    def generate(tokens: int):
        # min_new_tokens = max_new_tokens: an end token (random weights hit one early) cannot stop it,
        # so every engine runs the same number of steps; repetition_penalty=1.0 is attnmap's --raw-argmax.
        kwargs = dict(do_sample=False, max_new_tokens=tokens, min_new_tokens=tokens, repetition_penalty=1.0,
                      logits_processor=LogitsProcessorList([Stamp()]))
        if eager:
            kwargs.update(output_attentions=True, return_dict_in_generate=True)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.generate(**inputs, **kwargs)

    for _ in range(args.warmup):
        generate(min(2, n))
    stamps.clear()
    sync(args.device)
    t0 = time.perf_counter()
    out = generate(n)
    sync(args.device)
    t1 = time.perf_counter()
    sequences = out.sequences if eager else out
    ids = sequences[0, seq:].tolist()
    if eager:
        assert out.attentions is not None and len(out.attentions) == len(ids)
        assert len(out.attentions[0]) == model.config.text_config.num_hidden_layers
    assert len(stamps) == len(ids), (len(stamps), len(ids))
    decode_s = t1 - stamps[0]
    return {"tokens": len(ids), "ids": ids, "seq_len": seq, "image_tokens": grid[0] * grid[1] * grid[2] // 4,
            "prefill_s": stamps[0] - t0, "decode_s": decode_s, "generate_s": t1 - t0,
            "per_token_ms": decode_s * 1000 / (len(ids) - 1) if len(ids) > 1 else None,
            "load_s": load_s, "rss_after_load_mib": rss_after_load_mib, "warmup": args.warmup,
            "peak_device_mib": peak_device_mib(args.device), "dtype": str(dtype).replace("torch.", ""),
            "attn_implementation": ("eager" if args.vision_attn == "eager" else "eager decoder, sdpa vision")
            if eager else "sdpa"}


def cmd_video(args) -> dict:
    from attnmap_tools.testing.torchvision_shim import import_torchvision

    import_torchvision()  # before transformers' first import in this process
    import pathlib

    import numpy as np

    from attnmap_tools.testing import hf_reference as ref

    eager = args.mode == "video-eager"
    dtype = pick_dtype(args.dtype, args.device)
    item = read_items(args.items)[0]
    files = sorted(pathlib.Path(item["frames"]).glob("*.png"))
    frames = np.stack([np.asarray(open_image(str(f))) for f in files])
    qwen3 = model_type(args.checkpoint) == "qwen3_vl"
    if qwen3:  # Qwen3VLProcessor: timestamps per temporal patch; its size bounds the whole clip
        from attnmap_tools.testing import qwen3_vl_reference as q3

        processor = q3.load_video_processor(args.checkpoint)
    else:
        processor = ref.load_video_processor(args.checkpoint)
    t = time.perf_counter()
    model = load_hf_model(args.checkpoint, dtype, args.device, args.vision_attn if eager else "sdpa",
                          "eager" if eager else "sdpa")
    load_s = time.perf_counter() - t
    rss_after_load_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if qwen3:
            if args.video_max_pixels:
                processor.video_processor.size = {"shortest_edge": processor.video_processor.size["shortest_edge"],
                                                  "longest_edge": int(args.video_max_pixels)}
            inputs = q3.build_video_inputs(processor, frames, item["prompt"])
        else:
            inputs = ref.build_video_inputs(processor, frames, item["prompt"], max_pixels=args.video_max_pixels or None)
    grid = inputs["video_grid_thw"][0].tolist()
    seq = int(inputs["input_ids"].shape[1])
    inputs = {k: v.to(args.device) for k, v in inputs.items()}
    sync(args.device)
    t = time.perf_counter()
    with torch.no_grad():
        out = model(**inputs, output_attentions=True) if eager else model(**inputs, logits_to_keep=1)
    sync(args.device)
    forward_s = time.perf_counter() - t
    if eager:
        assert out.attentions is not None and len(out.attentions) == model.config.text_config.num_hidden_layers
    return {"frames": len(files), "video_grid_thw": grid, "visual_tokens": grid[0] * grid[1] * grid[2] // 4,
            "seq_len": seq, "forward_s": forward_s, "load_s": load_s, "rss_after_load_mib": rss_after_load_mib,
            "peak_device_mib": peak_device_mib(args.device), "dtype": str(dtype).replace("torch.", "")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["eager", "sdpa", "module", "generate-eager", "generate-sdpa", "video-eager",
                                     "video-sdpa"])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--items", required=True)
    ap.add_argument("--model", help="exported .pt (mode module)")
    ap.add_argument("--max-pixels", type=int, default=0)
    ap.add_argument("--video-max-pixels", type=int, default=0, help="video-*: the video processor's longest_edge")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=None,
                    help="module: calls per variant not timed (default 2); generate-*: 2-token generates "
                         "before the timed one (default 0)")
    ap.add_argument("--new-tokens", type=int, default=64, help="generate-*: tokens to generate")
    ap.add_argument("--repeats", type=int, default=0,
                    help="eager/sdpa: call the first item again until there are this many timed calls")
    ap.add_argument("--vision-attn", default="eager", choices=["eager", "sdpa"],
                    help="eager: attn_implementation='eager' everywhere (what attention tools do); sdpa: "
                         "eager only in the decoder (transformers 5)")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        if args.mode == "module":
            args.warmup = 2 if args.warmup is None else args.warmup
            result = cmd_module(args)
        elif args.mode.startswith("video-"):
            result = cmd_video(args)
        elif args.mode.startswith("generate-"):
            args.warmup = 0 if args.warmup is None else args.warmup
            result = cmd_generate(args)
        else:
            result = cmd_eager(args)
    except Exception as e:  # noqa: BLE001 - the parent reports it
        if is_oom(e):
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print(json.dumps({"error": "out of memory", "detail": first[:300],
                              "peak_device_mib": peak_device_mib(args.device)}))
            return 3
        raise
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
