#!/usr/bin/env python3
"""Answer generation: attnmap's `run --answer` next to transformers' generate(), speed and memory, in one run.

For each model (by default both: the demo model at its natural size on its circle scene, and a
Qwen2.5-VL-3B-shaped checkpoint with random weights cut to 4 decoder layers and 4 vision blocks, made
and exported on first use under the forward bench's folder, on a ~1,000-image-token synthetic image),
CPU, fp32, greedy, N new tokens (default 64), every engine in its own fresh process (peak RSS from wait4):

  attnmap              `attnmap run --answer --max-new-tokens N --raw-argmax` (all layers, the default):
                       a prefill (vision tower once, KV cache returned), then one decode step per token
                       over the cache, with the attention row of every answer token for every layer.
                       prefill = timings_ms.forward; per token = timings_ms.generate / (tokens - 1)
  transformers eager   generate(do_sample=False, max_new_tokens=N, min_new_tokens=N, repetition_penalty=1.0,
                       output_attentions=True, return_dict_in_generate=True), attn_implementation="eager":
                       the workflow attnmap replaces
  transformers sdpa    the same generate with attn_implementation="sdpa" and no attentions: plain inference

transformers' prefill and decode are timed apart by a LogitsProcessor that stamps each step's logits
(bench/hf_child.py generate-eager / generate-sdpa). min_new_tokens=N makes transformers run N steps even
where the random weights pick an end token; attnmap has no such flag and may stop earlier, so the table
shows the tokens each engine made and compares time per token. --raw-argmax and repetition_penalty=1.0
give both the same (no) repetition penalty. The prefill is each process's first model call (no warm-up)
for every engine, as in a one-off `attnmap run` or script.

Two checks follow the table:
  decode step is O(sequence)   attnmap at two image sizes (--small-tokens and --tokens on the 3B-shaped
                               model; the demo scene at a quarter of its pixel budget and at its own):
                               the per-token time must grow much less than the prefill time (growth over
                               1x below half the prefill's; a decode step that re-ran the prefix would
                               grow like the prefill)
  memory while generating      attnmap's peak RSS with --max-new-tokens 1 (the prefill) and N: the
                               difference must stay within the KV cache (2 x layers x kv_heads x
                               (seq + N) x head_dim x 4 bytes) plus the answer maps, plus --rss-slack-mib

    .venv/bin/python bench/generate_bench.py                       # both models, 64 new tokens
    .venv/bin/python bench/generate_bench.py --models demo --new-tokens 8 --bin build/attnmap
    .venv/bin/python bench/generate_bench.py --models 3b --tokens 1000 --small-tokens 250 --repeats 3 --json out.json
"""
import argparse
import json
import os
import pathlib
import shlex
import statistics
import sys
import tempfile
import types
from typing import Dict, List, Optional

ROOT = pathlib.Path(__file__).resolve().parent.parent

from bench_common import load_average, machine, parse_size, run_child
from forward_bench import DEFAULT_WORK, ensure_model, metadata

DEMO_IMAGE = ROOT / "examples" / "scene_circle.png"
DEMO_PROMPT_FILE = ROOT / "examples" / "scene_circle.txt"
ENGINES = ("attnmap", "eager", "sdpa")
ENGINE_LABELS = {"attnmap": "attnmap run --answer (all layers' rows)",
                 "eager": "transformers eager, output_attentions",
                 "sdpa": "transformers sdpa, no attentions"}


# ----- pure helpers (tests/python/test_bench_tools.py) -----

def kv_cache_bytes(meta: dict, seq: int, bytes_per_value: int = 4) -> int:
    """Keys and values of every decoder layer for `seq` positions: 2 x layers x kv_heads x seq x head_dim
    x bytes (4 in fp32)."""
    t = meta["text"]
    return 2 * t["num_hidden_layers"] * t["num_key_value_heads"] * seq * t["head_dim"] * bytes_per_value


def answer_maps_bytes(tokens: int, layers: int, image_tokens: int) -> int:
    """attnmap's answer_maps.npy, kept while it generates: float32 [tokens, layers, h, w]."""
    return 4 * tokens * layers * image_tokens


def per_token_ms(decode_ms: Optional[float], tokens: int) -> Optional[float]:
    """Decode time per token: the steps after the prefill (which made token 1) over tokens - 1."""
    if decode_ms is None or tokens < 2:
        return None
    return decode_ms / (tokens - 1)


def decode_timing_ms(timings: Dict[str, float]) -> Optional[float]:
    """attnmap's decode steps after the prefill: timings_ms.generate (None when absent: --max-new-tokens 1
    or a build without --answer). timings_ms.decode is the image's decoding, not generation."""
    return timings.get("generate")


def ratio(value: Optional[float], base: Optional[float]) -> Optional[float]:
    return value / base if value is not None and base else None


def scaling_verdict(small: dict, large: dict, margin: float = 0.5) -> dict:
    """O(sequence) decode: from the smaller to the larger image the per-token time grows much less
    than the prefill (a decode step that re-ran the prefix would grow like it). Growth is measured
    over 1x (x1.30 -> 0.30), so a per-token time that does not grow passes even where the prefill grows
    little (tiny models, where fixed costs dominate): passes when the per-token growth is below
    `margin` x the prefill's; inconclusive (ok None) when the prefill did not grow by 5 %.
    Rows carry prefill_s, per_token_ms, seq_len."""
    prefill = ratio(large.get("prefill_s"), small.get("prefill_s"))
    token = ratio(large.get("per_token_ms"), small.get("per_token_ms"))
    seq = ratio(large.get("seq_len"), small.get("seq_len"))
    if prefill is None or token is None or prefill < 1.05:
        ok = None
    else:
        ok = token - 1 < margin * (prefill - 1)
    return {"seq_growth": seq, "prefill_growth": prefill, "per_token_growth": token, "ok": ok, "margin": margin}


def memory_verdict(peak_one_mib: float, peak_n_mib: float, kv_bytes: int, maps_bytes: int, slack_mib: float) -> dict:
    """Peak RSS while generating N tokens against the prefill's (--max-new-tokens 1): the growth must
    stay within the whole KV cache plus the answer maps plus an allowance for allocator noise."""
    growth = peak_n_mib - peak_one_mib
    bound = (kv_bytes + maps_bytes) / 2**20 + slack_mib
    return {"growth_mib": growth, "kv_mib": kv_bytes / 2**20, "maps_mib": maps_bytes / 2**20,
            "slack_mib": slack_mib, "bound_mib": bound, "ok": growth <= bound}


def fmt(value, spec: str = ".2f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def markdown_table(header: List[str], rows: List[List[str]], right: Optional[List[bool]] = None) -> str:
    right = right or [True] * len(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if r else "---" for r in right) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def result_table(rows: List[dict]) -> str:
    """One line per model, size and engine; ratios against transformers sdpa of the same model and size."""
    header = ["model", "image tokens", "seq", "engine", "tokens", "prefill s", "per-token ms", "prefill + decode s",
              "process s", "peak RSS MiB", "prefill x sdpa", "per-token x sdpa", "RSS x sdpa"]
    right = [False, True, True, False] + [True] * 9
    lines = []
    for r in rows:
        base = next((b for b in rows if b["model"] == r["model"] and b["label"] == r["label"]
                     and b["engine"] == "sdpa" and b.get("ok")), None)
        if not r.get("ok"):
            lines.append([r["model"], fmt(r.get("image_tokens"), ","), fmt(r.get("seq_len"), "d"),
                          ENGINE_LABELS[r["engine"]], r.get("status", "failed")] + ["-"] * 8)
            continue
        x = lambda key: fmt(ratio(r.get(key), base.get(key)) if base else None, ".2f", "x")
        lines.append([r["model"], fmt(r.get("image_tokens"), ","), fmt(r.get("seq_len"), "d"), ENGINE_LABELS[r["engine"]],
                      str(r["tokens"]), fmt(r.get("prefill_s")), fmt(r.get("per_token_ms"), ".1f"),
                      fmt(r.get("generate_s")), fmt(r.get("process_s"), ".1f"), fmt(r.get("peak_rss_mib"), ",.0f"),
                      x("prefill_s"), x("per_token_ms"), x("peak_rss_mib")])
    return markdown_table(header, lines, right)


def token_counts_note(rows: List[dict]) -> Optional[str]:
    """A line when the engines of one model and size made different numbers of tokens."""
    notes = []
    for key in dict.fromkeys((r["model"], r["label"]) for r in rows):
        group = [r for r in rows if (r["model"], r["label"]) == key and r.get("ok")]
        counts = {r["engine"]: r["tokens"] for r in group}
        if len(set(counts.values())) > 1:
            notes.append(f"{key[0]} {key[1]}: tokens differ ({', '.join(f'{e} {n}' for e, n in counts.items())}); "
                         "compare per-token times")
    return "\n".join(notes) or None


def same_prefix(a: List[int], b: List[int]) -> int:
    """How many leading answer ids two engines share."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


# ----- runs -----

def run_attnmap(args, model: dict, image, prompt: str, max_pixels: int, new_tokens: int, work: pathlib.Path,
                env: dict, tag: str) -> dict:
    runs = []
    for rep in range(args.repeats):
        out = work / f"attnmap_{model['name']}_{tag}_{rep}"
        cmd = [args.bin, "-q", "run", "--model", model["pt"], "--image", str(image), "--prompt", prompt,
               "--out", str(out), "--device", "cpu", "--dtype", "fp32", "--no-images", "--answer",
               "--max-new-tokens", str(new_tokens), "--raw-argmax"]
        if max_pixels:
            cmd += ["--max-pixels", str(max_pixels)]
        res = run_child(cmd, env=env, timeout=args.timeout)
        if not res.ok:
            return {"engine": "attnmap", "cmd": cmd, "ok": False, "peak_rss_mib": res.peak_rss_mib,
                    "status": res.describe() + ": " + res.stderr.strip()[-300:]}
        doc = json.loads((out / "attention.json").read_text())
        t = doc["timings_ms"]
        tokens = len(doc["answer"]["tokens"])
        decode_ms = decode_timing_ms(t)
        runs.append({"engine": "attnmap", "cmd": cmd, "ok": True, "status": "ok", "tokens": tokens,
                     "ids": [x["id"] for x in doc["answer"]["tokens"]],
                     "stopped_on_eos": doc["answer"].get("stopped_on_eos"), "seq_len": len(doc["tokens"]["ids"]),
                     "image_tokens": doc["grid"].get("t", 1) * doc["grid"]["merged_h"] * doc["grid"]["merged_w"],
                     "prefill_s": t["forward"] / 1000, "decode_s": (decode_ms or 0) / 1000,
                     "generate_s": (t["forward"] + (decode_ms or 0)) / 1000,
                     "per_token_ms": per_token_ms(decode_ms, tokens), "load_s": t.get("load_model", 0) / 1000,
                     "process_s": res.seconds, "peak_rss_mib": res.peak_rss_mib})
    return summarize(runs)


def run_hf(args, model: dict, image, prompt: str, max_pixels: int, new_tokens: int, work: pathlib.Path,
           env: dict, mode: str) -> dict:
    items = work / f"hf_{model['name']}.jsonl"
    items.write_text(json.dumps({"image": str(image), "prompt": prompt}) + "\n")
    cmd = [sys.executable, str(ROOT / "bench" / "hf_child.py"), f"generate-{mode}", "--checkpoint", model["checkpoint"],
           "--items", str(items), "--max-pixels", str(max_pixels or 0), "--device", "cpu", "--dtype", "fp32",
           "--new-tokens", str(new_tokens), "--threads", str(args.threads)]
    if mode == "eager":
        cmd += ["--vision-attn", args.hf_vision_attn]
    runs = []
    for _ in range(args.repeats):
        res = run_child(cmd, env=env, timeout=args.timeout)
        last = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else "{}"
        out = json.loads(last) if last.startswith("{") else {}
        if not res.ok:
            return {"engine": mode, "cmd": cmd, "ok": False, "peak_rss_mib": res.peak_rss_mib,
                    "status": out.get("error") or (res.describe() + ": " + res.stderr.strip()[-300:])}
        runs.append({"engine": mode, "cmd": cmd, "ok": True, "status": "ok", **out,
                     "process_s": res.seconds, "peak_rss_mib": res.peak_rss_mib})
    return summarize(runs)


def summarize(runs: List[dict]) -> dict:
    """The first run's fields with the medians of the timings and RSS over the repeats."""
    row = dict(runs[0])
    for key in ("prefill_s", "decode_s", "generate_s", "per_token_ms", "process_s", "peak_rss_mib", "load_s"):
        values = [r[key] for r in runs if r.get(key) is not None]
        row[key] = statistics.median(values) if values else None
    row["repeats"] = len(runs)
    row["all"] = {key: [r.get(key) for r in runs] for key in ("prefill_s", "per_token_ms", "peak_rss_mib")}
    return row


def model_specs(args, env) -> List[dict]:
    specs = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        if name == "demo":
            prompt = DEMO_PROMPT_FILE.read_text().strip()
            meta = metadata(args.demo_model)
            natural = meta["preprocess"]["max_pixels"]
            specs.append({"name": "demo", "pt": args.demo_model, "checkpoint": args.demo_checkpoint, "meta": meta,
                          "prompt": prompt, "main": ("natural", DEMO_IMAGE, 0),
                          # the scaling check's smaller size: the same scene under a quarter of the pixel budget
                          "small": ("1/4 pixels", DEMO_IMAGE, natural // 4)})
        elif name == "3b":
            ns = types.SimpleNamespace(model=args.model_3b, checkpoint=args.checkpoint_3b)
            ensure_model(ns, env)
            specs.append({"name": "3b", "pt": ns.model, "checkpoint": ns.checkpoint, "meta": metadata(ns.model),
                          "prompt": args.prompt, "main": ("tokens", args.tokens), "small": ("tokens", args.small_tokens)})
        else:
            raise SystemExit(f"generate_bench: unknown model '{name}' (demo, 3b)")
    return specs


def image_for(spec: tuple, work: pathlib.Path):
    """(label, image path, max_pixels) for a size spec: the demo scene as is, or a synthetic square."""
    if spec[0] != "tokens":
        return spec
    h, w = parse_size(str(spec[1]))
    image = work / f"image_{h}x{w}.png"
    if not image.exists():
        from attnmap_tools.testing import hf_reference as ref

        ref.synthetic_image(h, w, seed=h).save(image)
    return f"{(h // 28) * (w // 28)} tokens", image, h * w


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=str(ROOT / "build" / "attnmap"))
    ap.add_argument("--models", default="demo,3b", help="comma-separated: demo, 3b")
    ap.add_argument("--demo-model", default=str(ROOT / "build" / "models" / "demo.pt"))
    ap.add_argument("--demo-checkpoint", default=str(ROOT / "models" / "demo-qwen2_5_vl"))
    ap.add_argument("--model-3b", help="exported .pt for '3b' (default: the 3B-shaped random checkpoint cut to 4+4 "
                                       f"layers, made once under {DEFAULT_WORK})")
    ap.add_argument("--checkpoint-3b", help="the Hugging Face folder --model-3b was exported from")
    ap.add_argument("--tokens", default="1000", help="3b: image tokens (nearest square) or WxH")
    ap.add_argument("--small-tokens", default="250", help="3b: the smaller size of the O(sequence) check")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=1, help="fresh processes per engine (medians are reported)")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--no-checks", action="store_true", help="skip the O(sequence) and memory checks")
    ap.add_argument("--rss-slack-mib", type=float, default=32.0,
                    help="memory check: allowance for allocator noise over KV cache + answer maps")
    ap.add_argument("--hf-vision-attn", default="eager", choices=["eager", "sdpa"],
                    help="transformers eager: the vision tower's attention too (eager: attn_implementation='eager' "
                         "everywhere, what attention tools do)")
    ap.add_argument("--prompt", default="Describe the image.", help="3b's prompt (the demo uses its scene's question)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--json", help="also write the rows and checks here")
    args = ap.parse_args()
    if args.new_tokens < 2:
        ap.error("--new-tokens must be >= 2 (per-token time needs a step after the prefill)")
    if not pathlib.Path(args.bin).is_file():
        ap.error(f"no attnmap binary at {args.bin} (build it or pass --bin)")
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if set(engines) - set(ENGINES):
        ap.error(f"--engines: choose from {', '.join(ENGINES)}")

    import torch

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=str(ROOT / "tools"))
    DEFAULT_WORK.mkdir(parents=True, exist_ok=True)
    specs = model_specs(args, env)
    print(f"machine: {machine()}, {args.threads} threads, torch {torch.__version__}")
    print(f"command: {' '.join(shlex.quote(a) for a in sys.argv)}")
    for m in specs:
        t, v = m["meta"]["text"], m["meta"]["vision"]
        print(f"model {m['name']}: {m['pt']} ({m['meta'].get('model_name')}, "
              f"{m['meta']['parameters']['total'] / 1e9:.3f} B parameters, text {t['num_hidden_layers']} x "
              f"{t['hidden_size']} ({t['num_key_value_heads']} KV heads x {t['head_dim']}), vision {v['depth']} x "
              f"{v['hidden_size']}), fp32, CPU, {args.new_tokens} new tokens, greedy, no repetition penalty")
    print(f"at start: {load_average()}", flush=True)

    rows, checks = [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        for m in specs:
            label, image, max_pixels = image_for(m["main"], work)
            group = []
            for engine in engines:
                if engine == "attnmap":
                    r = run_attnmap(args, m, image, m["prompt"], max_pixels, args.new_tokens, work, env, "main")
                else:
                    r = run_hf(args, m, image, m["prompt"], max_pixels, args.new_tokens, work, env, engine)
                r.update(model=m["name"], label=label)
                group.append(r)
                print(f"  {m['name']} {label}, {ENGINE_LABELS[engine]}: {r['status']}"
                      + (f", {r['tokens']} tokens, prefill {r['prefill_s']:.2f} s, "
                         f"{fmt(r['per_token_ms'], '.1f')} ms/token, peak RSS {r['peak_rss_mib']:,.0f} MiB"
                         if r.get("ok") else ""), flush=True)
            rows += group
            main_row = next((r for r in group if r["engine"] == "attnmap" and r.get("ok")), None)
            if args.no_checks or main_row is None:
                continue
            # O(sequence): attnmap at the smaller size, same N.
            s_label, s_image, s_pixels = image_for(m["small"], work)
            small = run_attnmap(args, m, s_image, m["prompt"], s_pixels, args.new_tokens, work, env, "small")
            small.update(model=m["name"], label=s_label)
            print(f"  {m['name']} {s_label}, attnmap (O(sequence) check): {small['status']}", flush=True)
            # Memory: the same run with one token (the prefill alone).
            one = run_attnmap(args, m, image, m["prompt"], max_pixels, 1, work, env, "one")
            print(f"  {m['name']} {label}, attnmap --max-new-tokens 1 (memory check): {one['status']}", flush=True)
            check = {"model": m["name"], "small": small, "large": main_row, "one": one}
            if small.get("ok"):
                check["scaling"] = scaling_verdict(small, main_row)
            if one.get("ok"):
                seq = main_row["seq_len"] + main_row["tokens"]
                check["memory"] = memory_verdict(one["peak_rss_mib"], main_row["peak_rss_mib"],
                                                 kv_cache_bytes(m["meta"], seq),
                                                 answer_maps_bytes(main_row["tokens"],
                                                                   m["meta"]["text"]["num_hidden_layers"],
                                                                   main_row["image_tokens"]),
                                                 args.rss_slack_mib)
            checks.append(check)

    print(f"at end: {load_average()}\n")
    print(result_table(rows))
    note = token_counts_note(rows)
    if note:
        print("\n" + note)
    for key in dict.fromkeys((r["model"], r["label"]) for r in rows):
        group = {r["engine"]: r for r in rows if (r["model"], r["label"]) == key and r.get("ok")}
        if "attnmap" in group and "eager" in group:
            a, e = group["attnmap"]["ids"], group["eager"]["ids"]
            print(f"{key[0]} {key[1]}: attnmap's answer ids equal transformers eager's for the first "
                  f"{same_prefix(a, e)} of {min(len(a), len(e))} tokens")

    for c in checks:
        print(f"\nchecks, {c['model']}:")
        sc = c.get("scaling")
        if sc:
            s, l = c["small"], c["large"]
            print(f"  decode step is O(sequence): seq {s['seq_len']} -> {l['seq_len']} (x{fmt(sc['seq_growth'])}); "
                  f"prefill {s['prefill_s']:.2f} -> {l['prefill_s']:.2f} s (x{fmt(sc['prefill_growth'])}); per token "
                  f"{fmt(s['per_token_ms'], '.1f')} -> {fmt(l['per_token_ms'], '.1f')} ms "
                  f"(x{fmt(sc['per_token_growth'])}): "
                  + {True: f"yes (per-token growth over 1x < {sc['margin']} x the prefill's)",
                     False: f"NO (per-token growth over 1x >= {sc['margin']} x the prefill's)",
                     None: "inconclusive (the prefill did not grow)"}[sc["ok"]])
        else:
            print(f"  decode step is O(sequence): not measured ({c['small'].get('status')})")
        mv = c.get("memory")
        if mv:
            print(f"  memory while generating: peak RSS {c['one']['peak_rss_mib']:,.0f} MiB with --max-new-tokens 1, "
                  f"{c['large']['peak_rss_mib']:,.0f} MiB with {c['large']['tokens']} tokens: +{mv['growth_mib']:.1f} MiB "
                  f"vs KV cache {mv['kv_mib']:.1f} MiB + answer maps {mv['maps_mib']:.2f} MiB + slack "
                  f"{mv['slack_mib']:.0f} MiB = {mv['bound_mib']:.1f} MiB: " + ("within" if mv["ok"] else "OVER"))
        else:
            print(f"  memory while generating: not measured ({c['one'].get('status')})")

    print("\ncommands:")
    seen = set()
    for r in rows + [x for c in checks for x in (c["small"], c["one"])]:
        line = " ".join(shlex.quote(str(a)) for a in r.get("cmd", []))
        if line and line not in seen:
            seen.add(line)
            print("  " + line)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"machine": machine(), "torch": torch.__version__,
                                                       "argv": sys.argv, "rows": rows, "checks": checks},
                                                      indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
