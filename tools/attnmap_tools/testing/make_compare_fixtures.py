#!/usr/bin/env python3
"""Synthetic attnmap output folders for testing `attnmap compare` without a model.

A run folder gets maps.npy (float32 [layers, merged_h, merged_w]) and an attention.json with every
field of docs/design.md at ATTENTION_SCHEMA_VERSION (tests/python/test_run_cli.py checks both the
number, against include/attnmap/run_folder.hpp, and the keys, against a real `attnmap run`); a batch folder gets one run folder per item plus
summary.jsonl. Each layer's default map is a faint random background (< 0.01) with one clear peak
at PEAK_CELL, so that perturbations have effects that can be worked out by hand.

Usage as a script:
  make_compare_fixtures.py run OUT [--layers 0,1,2,3] [--height 6] [--width 8] [--prompt TEXT] [--seed 0]
  make_compare_fixtures.py batch OUT --ids a,b,c [same options]
  make_compare_fixtures.py perturb RUN_DIR --layer L (--add DELTA [--cell R,C] | --scale F | --move-peak DR,DC)
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import shutil
from typing import Iterable, Sequence

import numpy as np

# attention.json's schema_version: kAttentionSchemaVersion in include/attnmap/run_folder.hpp.
ATTENTION_SCHEMA_VERSION = 1
# The stages of timings_ms (docs/design.md, "Timings"); `attnmap run` adds load_model.
TIMING_STAGES = ("decode", "preprocess", "tokenize", "forward", "maps", "render", "write", "total")

PEAK_CELL = (2, 2)
DEFAULT_LAYERS = (0, 1, 2, 3)
DEFAULT_PROMPT = "What is in the image?"


def layer_map(layer: int, merged_h: int, merged_w: int, seed: int = 0) -> np.ndarray:
    """The default map of one layer; depends only on (seed, layer), not on which other layers exist."""
    rng = np.random.RandomState(seed * 1000 + layer)
    m = rng.uniform(0.0, 0.01, size=(merged_h, merged_w)).astype(np.float32)
    r, c = min(PEAK_CELL[0], merged_h - 1), min(PEAK_CELL[1], merged_w - 1)
    m[r, c] = np.float32(0.5 + 0.01 * layer)
    return m


def _entropy(m: np.ndarray) -> float:
    total = float(m.sum())
    if total <= 0:
        return 0.0
    p = m.astype(np.float64).ravel() / total
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def _top1_share(m: np.ndarray) -> float:
    """Share of the mass on the top 1% cells (at least one), as docs/design.md defines top1_share."""
    flat = np.sort(np.clip(m.astype(np.float64).ravel(), 0, None))[::-1]
    total = float(flat.sum())
    if total <= 0:
        return 0.0
    return float(flat[:max(1, -(-flat.size // 100))].sum() / total)


def write_run(out: str | pathlib.Path, maps: np.ndarray | None = None, layers: Sequence[int] = DEFAULT_LAYERS,
              merged_h: int = 6, merged_w: int = 8, prompt: str = DEFAULT_PROMPT, seed: int = 0,
              image: str = "in.png") -> pathlib.Path:
    """Writes OUT/maps.npy and OUT/attention.json; `maps` overrides the default maps ([L, h, w])."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    layers = list(layers)
    if maps is None:
        maps = np.stack([layer_map(l, merged_h, merged_w, seed) for l in layers])
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 3 or maps.shape[0] != len(layers):
        raise ValueError(f"maps must be [len(layers), h, w], got {maps.shape} for {len(layers)} layers")
    merged_h, merged_w = int(maps.shape[1]), int(maps.shape[2])
    np.save(out / "maps.npy", maps)
    doc = {
        "schema_version": ATTENTION_SCHEMA_VERSION,
        "attnmap_version": "0.1.0",
        "model": {"path": "models/fixture.pt", "sha256": "0" * 64, "model_family": "qwen2_5_vl",
                  "model_name": "fixture", "format_version": 1, "exported_dtype": "float32",
                  "metadata": {"text": {"num_hidden_layers": max(layers) + 1}}},
        "options": {"query": "prompt", "layers": "all", "heads": "mean", "colormap": "jet", "alpha": 0.5,
                    "blur": 0.0, "predict": True, "system_prompt": "", "min_pixels": 3136, "max_pixels": 12845056},
        "device": "cpu",
        "dtype": "float32",
        "image": {"path": image, "width": merged_w * 28, "height": merged_h * 28,
                  "resized_width": merged_w * 28, "resized_height": merged_h * 28},
        "grid": {"t": 1, "h": merged_h * 2, "w": merged_w * 2, "merged_h": merged_h, "merged_w": merged_w},
        "id": out.name,
        "prompt": prompt,
        "tokens": {"ids": [151644], "strings": ["<|im_start|>"]},
        "image_token_span": {"start": 15, "end": 15 + merged_h * merged_w},
        "image_token_runs": [{"start": 15, "end": 15 + merged_h * merged_w}],
        "prompt_token_span": {"start": 16 + merged_h * merged_w, "end": 17 + merged_h * merged_w},
        "query_positions": [16 + merged_h * merged_w],
        "layers": [{"layer": int(l), "min": float(m.min()), "max": float(m.max()), "sum": float(m.sum()),
                    "entropy": _entropy(m), "top1_share": _top1_share(m)} for l, m in zip(layers, maps)],
        "maps": {"file": "maps.npy", "shape": list(maps.shape), "dtype": "float32"},
        "focus_layer": None,
        "prediction": {"token_id": 1234, "token": "Ġred", "text": " red", "probability": 0.9},
        "timings_ms": {stage: 0.0 for stage in TIMING_STAGES},
    }
    # attention.json last, as attnmap does: with maps.npy, its presence marks the item complete.
    (out / "attention.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return out


def write_batch(out: str | pathlib.Path, ids: Iterable[str] = ("a", "b", "c"), **run_kwargs) -> pathlib.Path:
    """Writes OUT/<id>/ run folders (item i uses seed i unless `seed` is given) and OUT/summary.jsonl."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, item in enumerate(ids):
        kwargs = dict(run_kwargs)
        kwargs.setdefault("seed", i)
        kwargs.setdefault("image", f"images/{item}.png")
        write_run(out / item, **kwargs)
        lines.append(json.dumps({"id": item, "image": kwargs["image"], "prompt": kwargs.get("prompt", DEFAULT_PROMPT),
                                 "status": "ok", "error": None, "output": str(out / item),
                                 "timings_ms": {stage: 0.0 for stage in TIMING_STAGES}}))
    (out / "summary.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def copy_tree(src: str | pathlib.Path, dst: str | pathlib.Path) -> pathlib.Path:
    shutil.copytree(src, dst)
    return pathlib.Path(dst)


def _row_of(run_dir: pathlib.Path, layer: int) -> int:
    doc = json.loads((run_dir / "attention.json").read_text(encoding="utf-8"))
    recorded = [entry["layer"] for entry in doc["layers"]]
    if layer not in recorded:
        raise ValueError(f"layer {layer} is not recorded in {run_dir} (it has {recorded})")
    return recorded.index(layer)


def perturb(run_dir: str | pathlib.Path, layer: int, add: float | None = None, cell: tuple[int, int] | None = None,
            scale: float | None = None, move_peak: tuple[int, int] | None = None,
            set_cells: dict[tuple[int, int], float] | None = None) -> np.ndarray:
    """Changes decoder layer `layer` of RUN_DIR/maps.npy in place and returns the new map.

    add:       adds `add` to `cell` (default (0, 0), a background cell)
    scale:     multiplies the whole map by `scale`
    move_peak: swaps the argmax cell with the cell (drow, dcol) away, so the peak moves by exactly that
    set_cells: sets the given cells to the given values
    """
    run_dir = pathlib.Path(run_dir)
    maps = np.load(run_dir / "maps.npy")
    row = _row_of(run_dir, layer)
    m = maps[row]
    if add is not None:
        r, c = cell if cell is not None else (0, 0)
        m[r, c] = np.float32(m[r, c] + add)
    if scale is not None:
        m *= np.float32(scale)
    if move_peak is not None:
        r, c = np.unravel_index(int(np.argmax(m)), m.shape)
        nr, nc = r + move_peak[0], c + move_peak[1]
        if not (0 <= nr < m.shape[0] and 0 <= nc < m.shape[1]):
            raise ValueError(f"moving the peak at {(r, c)} by {move_peak} leaves the {m.shape} map")
        peak = m[r, c]
        m[r, c] = m[nr, nc]
        m[nr, nc] = peak
    for (r, c), value in (set_cells or {}).items():
        m[r, c] = np.float32(value)
    maps[row] = m
    np.save(run_dir / "maps.npy", maps)
    return m


def edit_json(run_dir: str | pathlib.Path, **fields) -> None:
    """Overwrites top-level attention.json fields, e.g. edit_json(d, prompt="other")."""
    path = pathlib.Path(run_dir) / "attention.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc.update(fields)
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")


def add_answer(run_dir: str | pathlib.Path, ids: Sequence[int] = (9707, 13, 151645),
               texts: Sequence[str] = ("green", ".", ""), seed: int = 0) -> np.ndarray:
    """Gives RUN_DIR an `attnmap run --answer` result: attention.json's `answer` and answer_maps.npy
    [tokens, layers, h, w] (token k's map of each layer is a fixture map of seed seed + 100 + k).
    Returns the answer maps."""
    run_dir = pathlib.Path(run_dir)
    path = run_dir / "attention.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    h, w = doc["grid"]["merged_h"], doc["grid"]["merged_w"]
    layers = [entry["layer"] for entry in doc["layers"]]
    maps = np.stack([np.stack([layer_map(l, h, w, seed + 100 + k) for l in layers]) for k in range(len(ids))])
    maps = maps.astype(np.float32)
    np.save(run_dir / "answer_maps.npy", maps)
    start = doc["prompt_token_span"]["end"] + 5
    doc["answer"] = {
        "text": "".join(texts), "stopped_on_eos": True, "max_new_tokens": 32, "repetition_penalty": 1.05,
        "query_tokens": [], "strip_labels": "text",
        "tokens": [{"id": int(i), "token": t, "text": t, "probability": 0.5, "position": start + k}
                   for k, (i, t) in enumerate(zip(ids, texts))],
        "maps": {"file": "answer_maps.npy", "shape": list(maps.shape), "dtype": "float32"},
    }
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return maps


def _pair(text: str) -> tuple[int, int]:
    a, b = text.split(",")
    return int(a), int(b)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "batch"):
        p = sub.add_parser(name)
        p.add_argument("out")
        p.add_argument("--layers", default=",".join(map(str, DEFAULT_LAYERS)))
        p.add_argument("--height", type=int, default=6)
        p.add_argument("--width", type=int, default=8)
        p.add_argument("--prompt", default=DEFAULT_PROMPT)
        p.add_argument("--seed", type=int)
        if name == "batch":
            p.add_argument("--ids", default="a,b,c")
    p = sub.add_parser("perturb")
    p.add_argument("run_dir")
    p.add_argument("--layer", type=int, required=True)
    p.add_argument("--add", type=float)
    p.add_argument("--cell", type=_pair)
    p.add_argument("--scale", type=float)
    p.add_argument("--move-peak", type=_pair)
    args = parser.parse_args(argv)

    if args.command == "perturb":
        perturb(args.run_dir, args.layer, add=args.add, cell=args.cell, scale=args.scale, move_peak=args.move_peak)
        return 0
    kwargs = dict(layers=[int(x) for x in args.layers.split(",")], merged_h=args.height, merged_w=args.width,
                  prompt=args.prompt)
    if args.seed is not None:
        kwargs["seed"] = args.seed
    if args.command == "run":
        write_run(args.out, **kwargs)
    else:
        write_batch(args.out, ids=args.ids.split(","), **kwargs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
