"""`attnmap run --vision-blocks ... --vision-query ...` against transformers' eager vision attention.

The oracle is attnmap_tools.testing.vision_reference: every probability matrix transformers' eager
path computes inside a vision block, captured, placed in raster order with transformers' own window
index and reduced in float64. It is fed exactly what the HF processor makes from the same PNG (the
pixel values the CLI uses are checked against the processor in test_run_parity.py; here they are
checked again through --dump-inputs). The query patches are worked out independently here: a box by
testing every patch's pixel span against it, text-peak from transformers' own decoder attention.

A tiny random checkpoint with full-attention blocks at non-default indexes ([0, 3]) and images whose
merged grids have partial windows (6x9, 8x3 merged cells).
"""
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from attnmap_tools.testing import hf_reference as R
from attnmap_tools.testing import vision_reference as V

BIN = os.environ.get("ATTNMAP_BIN", "")
PROMPT = "Where is the red door?"
FULLATT = [0, 3]
SIZES = [(168, 252), (230, 90)]  # (height, width): merged 6x9 and 8x3 (partial windows)
ATOL = 1e-5


def run_cli(args, check=True):
    assert BIN, "ATTNMAP_BIN must name the built attnmap binary (CTest sets it)"
    proc = subprocess.run([BIN, "run", "--device", "cpu"] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    work = tmp_path_factory.mktemp("vision_maps_cli")
    torch.manual_seed(5)
    torch.set_num_threads(R.THREADS)
    ckpt = pathlib.Path(R.make_checkpoint(work / "ckpt", seed=5))
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["vision_config"]["fullatt_block_indexes"] = FULLATT
    (ckpt / "config.json").write_text(json.dumps(cfg, indent=2))
    model_pt = work / "model.pt"
    proc = R.export_checkpoint(ckpt, model_pt)
    assert proc.returncode == 0, proc.stderr
    hf = R.load_hf_model(ckpt)
    processor = R.load_processor(ckpt)
    cases = []
    for i, (h, w) in enumerate(SIZES):
        path = work / f"image_{h}x{w}.png"
        R.synthetic_image(h, w, seed=40 + i).save(path)
        inputs = R.build_inputs(processor, [Image.open(path).convert("RGB")], PROMPT)
        dense = V.dense_attention_per_block(hf, inputs["pixel_values"], inputs["image_grid_thw"])
        attentions, _ = R.hf_forward(hf, inputs)
        cases.append({"image": path, "size": (h, w), "inputs": inputs, "dense": dense, "attentions": attentions,
                      "grid": tuple(inputs["image_grid_thw"][0].tolist())})
    return {"work": work, "model": model_pt, "hf": hf, "processor": processor, "cases": cases,
            "depth": len(hf.model.visual.blocks), "heads": hf.config.vision_config.num_heads}


def expected_maps(case, blocks, queries, heads):
    """float64 [blocks, grid_h, grid_w] from the captured eager attention."""
    _, gh, gw = case["grid"]
    out = []
    for b in blocks:
        reduce = heads if heads in ("mean", "max") else "keep"
        rows = V.oracle_map(case["dense"][b], queries, reduce)
        row = rows[0] if rows.size(0) == 1 else rows[int(heads)]
        out.append(row.reshape(gh, gw))
    return torch.stack(out).numpy()


def box_patches(case, box):
    """Every patch whose span of the original image overlaps the box by a positive length."""
    _, gh, gw = case["grid"]
    height, width = case["size"]
    x0, y0, x1, y1 = box
    picked = []
    for r in range(gh):
        for c in range(gw):
            px0, px1 = c * width / gw, (c + 1) * width / gw
            py0, py1 = r * height / gh, (r + 1) * height / gh
            if min(px1, x1) > max(px0, x0) and min(py1, y1) > max(py0, y0):
                picked.append(r * gw + c)
    return picked


def peak_patches(tiny, case, layer):
    """The 2x2 patches under the peak of transformers' own decoder map (prompt rows, heads mean)."""
    ids = case["inputs"]["input_ids"][0].tolist()
    cfg = tiny["hf"].config
    image_cols = [i for i, t in enumerate(ids) if t == cfg.image_token_id]
    vision_end = ids.index(cfg.vision_end_token_id)
    prompt_end = ids.index(tiny["processor"].tokenizer.convert_tokens_to_ids("<|im_end|>"), vision_end)
    rows = list(range(vision_end + 1, prompt_end))
    decoder_map = case["attentions"][layer][:, rows, :].double().mean(0).mean(0)[image_cols]
    _, gh, gw = case["grid"]
    mw = gw // 2
    peak = int(decoder_map.argmax())
    pr, pc = divmod(peak, mw)
    return [(2 * pr + i) * gw + 2 * pc + j for i in range(2) for j in range(2)], (pr, pc)


def assert_close(got, expected, what):
    assert got.dtype == np.float32 and got.shape == expected.shape, (what, got.shape, expected.shape)
    err = np.abs(got.astype(np.float64) - expected).max()
    assert err <= ATOL, f"{what}: max |diff| {err:.3g}"


@pytest.mark.parametrize("blocks_arg, blocks", [("all", [0, 1, 2, 3]), ("3,0", [3, 0]), ("1-2", [1, 2])])
def test_mean_query_equals_transformers(tiny, tmp_path, blocks_arg, blocks):
    for k, case in enumerate(tiny["cases"]):
        out = tmp_path / f"out{k}"
        run_cli(["--model", tiny["model"], "--image", case["image"], "--prompt", PROMPT, "--out", out,
                 "--vision-blocks", blocks_arg, "--layers", "0", "--no-images", "--no-viewer",
                 "--dump-inputs", tmp_path / f"in{k}"])
        np.testing.assert_allclose(np.load(tmp_path / f"in{k}" / "pixel_values.npy"),
                                   case["inputs"]["pixel_values"].numpy(), atol=1e-6, rtol=0)
        assert_close(np.load(out / "vision_maps.npy"), expected_maps(case, blocks, [], "mean"), f"case {k}")
        vision = json.loads((out / "attention.json").read_text())["vision"]
        assert [b["block"] for b in vision["blocks"]] == blocks
        assert [b["attention"] for b in vision["blocks"]] == ["full" if b in FULLATT else "window" for b in blocks]
        assert vision["query"] == "mean" and vision["query_patches"] == []
        assert vision["maps"]["shape"] == [len(blocks), case["grid"][1], case["grid"][2]]


@pytest.mark.parametrize("heads", ["mean", "max", "1"])
def test_box_query_equals_transformers(tiny, tmp_path, heads):
    for k, case in enumerate(tiny["cases"]):
        height, width = case["size"]
        # A box across window borders, its edges inside patches (partial patches count).
        box = (width * 0.3, height * 0.2, width * 0.8, height * 0.55)
        spec = "box:" + ",".join(f"{v:.2f}" for v in box)
        box = tuple(float(f"{v:.2f}") for v in box)
        out = tmp_path / f"out{k}"
        run_cli(["--model", tiny["model"], "--image", case["image"], "--prompt", PROMPT, "--out", out,
                 "--vision-blocks", "all", "--vision-query", spec, "--heads", heads, "--layers", "0",
                 "--no-images", "--no-viewer"])
        queries = box_patches(case, box)
        assert len(queries) > 1
        vision = json.loads((out / "attention.json").read_text())["vision"]
        assert vision["query_patches"] == queries
        assert_close(np.load(out / "vision_maps.npy"), expected_maps(case, [0, 1, 2, 3], queries, heads),
                     f"case {k} {spec} heads {heads}")


@pytest.mark.parametrize("layer", [1, 3])
def test_text_peak_query_equals_transformers(tiny, tmp_path, layer):
    for k, case in enumerate(tiny["cases"]):
        out = tmp_path / f"out{k}"
        run_cli(["--model", tiny["model"], "--image", case["image"], "--prompt", PROMPT, "--out", out,
                 "--vision-blocks", "0,2", "--vision-query", f"text-peak:{layer}", "--layers", "0-3",
                 "--no-images", "--no-viewer"])
        queries, (pr, pc) = peak_patches(tiny, case, layer)
        vision = json.loads((out / "attention.json").read_text())["vision"]
        assert vision["peak"]["layer"] == layer and (vision["peak"]["row"], vision["peak"]["col"]) == (pr, pc)
        assert vision["query_patches"] == queries
        assert_close(np.load(out / "vision_maps.npy"), expected_maps(case, [0, 2], queries, "mean"),
                     f"case {k} text-peak:{layer}")


def test_windowed_blocks_are_zero_outside_the_query_windows(tiny, tmp_path):
    """A one-patch box: the windowed blocks' maps vanish outside that patch's 8x8-patch window, the
    full blocks' do not."""
    case = tiny["cases"][0]
    out = tmp_path / "out"
    run_cli(["--model", tiny["model"], "--image", case["image"], "--prompt", PROMPT, "--out", out,
             "--vision-blocks", "all", "--vision-query", "box:1,1,2,2", "--layers", "0", "--no-viewer"])
    maps = np.load(out / "vision_maps.npy")
    for b in range(4):
        support = maps[b] > 0
        if b in FULLATT:
            assert support.all()
        else:
            assert support[:8, :8].all() and not support[8:, :].any() and not support[:, 8:].any()
    for name in ["vision_grid.jpg"] + [f"vision_block_{b:02d}.jpg" for b in range(4)]:
        assert (out / name).stat().st_size > 1000, name


def test_video_frames_give_a_time_axis_equal_to_transformers(tiny, tmp_path):
    frames = []
    for i in range(4):
        path = tmp_path / f"frame_{i}.png"
        R.synthetic_image(112, 140, seed=60 + i).save(path)
        frames.append(str(path))
    out, dump = tmp_path / "out", tmp_path / "inputs"
    run_cli(["--model", tiny["model"], "--frames", ",".join(frames), "--prompt", PROMPT, "--out", out,
             "--vision-blocks", "0,3", "--layers", "0", "--dump-inputs", dump, "--no-viewer"])
    pixel_values = torch.from_numpy(np.load(dump / "pixel_values_videos.npy"))
    grid_thw = torch.from_numpy(np.load(dump / "video_grid_thw.npy"))
    t, gh, gw = grid_thw[0].tolist()
    assert t == 2
    dense = V.dense_attention_per_block(tiny["hf"], pixel_values, grid_thw)
    expected = torch.stack([V.oracle_map(dense[b], [], "mean")[0].reshape(t, gh, gw) for b in (0, 3)]).numpy()
    assert_close(np.load(out / "vision_maps.npy"), expected, "video")
    for name in ("vision_grid.jpg", "vision_block_00.jpg", "vision_block_03.jpg"):
        assert (out / name).exists(), name


@pytest.mark.parametrize("args, code, words", [
    (["--vision-blocks", "4"], 2, ["--vision-blocks '4'", "block 4 is out of range", "4 vision blocks", "0-3"]),
    (["--vision-blocks", "x"], 2, ["--vision-blocks 'x'", "not a block number", "use none, all"]),
    (["--vision-query", "mean"], 2, ["--vision-query", "add --vision-blocks"]),
    (["--vision-blocks", "all", "--vision-query", "box:5,5,1,1"], 2, ["box is empty", "x0 < x1"]),
    (["--vision-blocks", "all", "--vision-query", "centre"], 2, ["--vision-query 'centre'", "use mean, box:"]),
    (["--vision-blocks", "all", "--vision-query", "box:900,900,950,950"], 3,
     ["image '", "lies outside the 252x168 image"]),
    (["--vision-blocks", "all", "--vision-query", "text-peak:3", "--layers", "0,1"], 2,
     ["text-peak:3", "decoder layer 3", "not among --layers '0,1'"]),
    (["--vision-blocks", "all", "--heads", "3"], 2, ["--heads 3", "vision tower has 2 heads"]),
])
def test_bad_vision_options_fail_with_one_line(tiny, tmp_path, args, code, words):
    case = tiny["cases"][0]
    out = tmp_path / "out"
    proc = subprocess.run([BIN, "-q", "run", "--device", "cpu", "--model", str(tiny["model"]), "--image",
                           str(case["image"]), "--prompt", PROMPT, "--out", str(out)] + args,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not (out / "attention.json").exists() and not (out / "vision_maps.npy").exists()


def test_an_export_without_vision_attention_asks_for_a_re_export(tiny, tmp_path):
    """An export made before vision maps: the same forward, but no vision_attention method."""
    from typing import Dict, List

    extra = {"attnmap/metadata.json": "", "attnmap/tokenizer.json": ""}
    inner = torch.jit.load(str(tiny["model"]), map_location="cpu", _extra_files=extra)

    class Older(torch.nn.Module):
        def __init__(self, inner_module):
            super().__init__()
            self.inner = inner_module

        def forward(self, inputs: Dict[str, torch.Tensor], layers: List[int], query_positions: torch.Tensor,
                    head_reduce: str, mean_queries: bool, return_logits: bool) -> Dict[str, torch.Tensor]:
            return self.inner(inputs, layers, query_positions, head_reduce, mean_queries, return_logits)

    older = tmp_path / "older.pt"
    torch.jit.save(torch.jit.script(Older(inner)), str(older), _extra_files=extra)
    case = tiny["cases"][0]
    base = [BIN, "-q", "run", "--device", "cpu", "--model", str(older), "--image", str(case["image"]), "--prompt",
            PROMPT, "--layers", "0"]
    plain = subprocess.run(base + ["--out", str(tmp_path / "plain")], capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0, plain.stderr  # the decoder maps still work
    out = tmp_path / "out"
    proc = subprocess.run(base + ["--out", str(out), "--vision-blocks", "all"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 4, proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and "has no vision_attention" in line and "re-export it: attnmap-export" in line, line
    assert not (out / "attention.json").exists()


def test_qwen2_vl_tower_maps_equal_transformers_and_every_block_is_full(tmp_path):
    """Qwen2-VL's tower has no windows: every block is full attention within its frame."""
    torch.manual_seed(7)
    torch.set_num_threads(R.THREADS)
    ckpt = pathlib.Path(R.make_checkpoint(tmp_path / "ckpt", seed=7, family="qwen2_vl"))
    model_pt = tmp_path / "qwen2_vl.pt"
    proc = R.export_checkpoint(ckpt, model_pt)
    assert proc.returncode == 0, proc.stderr
    hf = R.load_hf_model(ckpt)
    path = tmp_path / "image.png"
    R.synthetic_image(168, 252, seed=70).save(path)
    inputs = R.build_inputs(R.load_processor(ckpt), [Image.open(path).convert("RGB")], PROMPT)
    case = {"grid": tuple(inputs["image_grid_thw"][0].tolist()), "size": (168, 252),
            "dense": V.dense_attention_per_block(hf, inputs["pixel_values"], inputs["image_grid_thw"])}
    out = tmp_path / "out"
    run_cli(["--model", model_pt, "--image", path, "--prompt", PROMPT, "--out", out, "--vision-blocks", "all",
             "--vision-query", "box:20,20,60,50", "--layers", "0", "--no-viewer"])
    queries = box_patches(case, (20, 20, 60, 50))
    blocks = list(range(len(hf.model.visual.blocks)))
    assert_close(np.load(out / "vision_maps.npy"), expected_maps(case, blocks, queries, "mean"), "qwen2_vl")
    vision = json.loads((out / "attention.json").read_text())["vision"]
    assert [b["attention"] for b in vision["blocks"]] == ["full"] * len(blocks)
    assert vision["window_size"] == 0
