"""Parity of the exported `vision_attention` method (maps inside the vision tower) with transformers.

The oracle is transformers' eager vision attention itself (attnmap_tools.testing.vision_reference): `eager_attention_forward` is wrapped so
that every probability matrix the eager path computes for a vision block (one call per window or per
full-attention frame, in transformers' window order) is recorded. The test places those matrices in a
dense [heads, P, P] matrix, maps it from window order back to the raster order of the patch grid with
transformers' own `get_vision_window_index` and `get_vision_position_ids`, takes the query rows and
reduces them in float64; the exported method must agree within 1e-5 (fp32).

Tiny random checkpoints with full-attention blocks at non-default indexes (the tiny default is [1, 3]),
images whose merged grids have partial windows (6x9: both directions and more than one window; 8x3:
a height divisible by the window, so transformers' empty window row is dropped; 4x5), and a two-frame
grid (full attention per temporal patch). A Qwen2-VL checkpoint (family qwen2_vl: no windows, every
block attends within its frame; its "vision.windows" number the frames) on non-square images and the
two-frame grid, against transformers' Qwen2-VL eager vision attention.
"""
import json
import pathlib

import pytest
import torch

from attnmap_tools.testing import hf_reference as R
from attnmap_tools.testing.vision_reference import (capture_vision_attention, dense_raster_attention, oracle_map,
                                                     raster_of_window_rows)

ATOL = 1e-5

# seed -> (family, vision fullatt_block_indexes, image sizes (H, W) in pixels). Qwen2-VL has no
# windows: every block is a full-attention block.
SEEDS = {
    0: ("qwen2_5_vl", [2], [(168, 252), (230, 90)]),
    1: ("qwen2_5_vl", [0, 3], [(100, 130), (168, 252)]),
    2: ("qwen2_vl", [0, 1, 2, 3], [(168, 252), (100, 130)]),
}
VIDEO_GRID = (2, 12, 16)  # two temporal patches, merged 6x8


def _export(work: pathlib.Path, seed: int, family: str, fullatt):
    """A tiny checkpoint whose config.json names other full-attention blocks (Qwen2.5-VL), exported by
    the real CLI."""
    torch.manual_seed(seed)
    torch.set_num_threads(R.THREADS)
    ckpt = pathlib.Path(R.make_checkpoint(work / "ckpt", seed=seed, family=family))
    if family == "qwen2_5_vl":
        cfg_path = ckpt / "config.json"
        cfg = json.loads(cfg_path.read_text())
        cfg["vision_config"]["fullatt_block_indexes"] = list(fullatt)
        cfg_path.write_text(json.dumps(cfg, indent=2))
    model_pt = work / "model.pt"
    proc = R.export_checkpoint(ckpt, model_pt)
    assert proc.returncode == 0, proc.stderr
    return ckpt, model_pt


def box_patches(grid, t0, r0, c0, r1, c1):
    """Raster indexes of the patches of frame t0 in rows [r0, r1) and columns [c0, c1) of the patch grid."""
    _, h, w = grid
    return [t0 * h * w + r * w + c for r in range(r0, r1) for c in range(c0, c1)]


def _cases(processor, seed, sizes):
    cases = {}
    for i, (height, width) in enumerate(sizes):
        inputs = R.build_inputs(processor, [R.synthetic_image(height, width, seed=seed * 10 + i)], "Describe.")
        cases[f"image_{height}x{width}"] = (inputs["pixel_values"], inputs["image_grid_thw"])
    t, h, w = VIDEO_GRID
    gen = torch.Generator().manual_seed(seed)
    cases["frames_2"] = (torch.randn(t * h * w, 1176, generator=gen), torch.tensor([[t, h, w]]))
    return cases


@pytest.fixture(scope="module", params=sorted(SEEDS), ids=lambda s: f"seed{s}")
def seed_run(request, tmp_path_factory):
    seed = request.param
    family, fullatt, sizes = SEEDS[seed]
    work = tmp_path_factory.mktemp(f"vision_attn_seed{seed}")
    ckpt, model_pt = _export(work, seed, family, fullatt)
    hf = R.load_hf_model(ckpt)
    assert hf.config.model_type == family
    if family == "qwen2_5_vl":
        assert list(hf.config.vision_config.fullatt_block_indexes) == fullatt
    processor = R.load_processor(ckpt)
    module = torch.jit.load(str(model_pt), map_location="cpu")
    cases = {}
    for name, (pixel_values, grid_thw) in _cases(processor, seed, sizes).items():
        captured = capture_vision_attention(hf, pixel_values, grid_thw)
        raster, cu_window = raster_of_window_rows(hf, grid_thw)
        dense = {b: dense_raster_attention(captured[b], raster) for b in captured}
        segments = {b: len(captured[b]) for b in captured}
        with torch.no_grad():
            features = hf.model.get_image_features(pixel_values, grid_thw).pooler_output
        cases[name] = dict(pixel_values=pixel_values, grid_thw=grid_thw, dense=dense, raster=raster,
                           cu_window=cu_window, segments=segments, features=torch.cat(features).float())
    return dict(seed=seed, family=family, fullatt=fullatt, hf=hf, module=module, cases=cases)


def _calls(grid):
    """(blocks, query patches, head_reduce): the mean query, a box straddling a window border, a single
    patch, blocks in any order (windowed and full)."""
    t, h, w = grid
    box = box_patches(grid, t - 1, h // 3, w // 4, min(h, h // 3 + 5), min(w, w // 4 + 7))
    return [
        ([0, 1, 2, 3], [], "keep"),
        ([3, 0, 1], [], "mean"),
        ([2, 1], [], "max"),
        ([0, 1, 2, 3], box, "keep"),
        ([1, 2], box, "mean"),
        ([3, 0], box, "max"),
        ([0, 1, 2, 3], [h * w - 1], "keep"),
        ([2], [5, 5, w + 3], "mean"),  # a repeated patch counts twice
    ]


def _run(module, case, blocks, queries, head_reduce):
    with torch.no_grad():
        return module.vision_attention(case["pixel_values"], case["grid_thw"], blocks,
                                       torch.tensor(queries, dtype=torch.long), head_reduce)


def _assert_maps(name, case, blocks, queries, head_reduce, out):
    for b in blocks:
        mine = out[f"vision.{b}"]
        theirs = oracle_map(case["dense"][b], queries, head_reduce)
        assert mine.dtype == torch.float32
        assert mine.shape == theirs.shape, (name, b, tuple(mine.shape), tuple(theirs.shape))
        err = (mine.double() - theirs).abs().max().item()
        assert err <= ATOL, f"{name} block {b} {head_reduce} ({len(queries)} queries): max |diff| {err:.3g}"


def test_cases_cover_partial_windows_and_both_block_kinds(seed_run):
    for name, case in seed_run["cases"].items():
        _, h, w = case["grid_thw"][0].tolist()
        lh, lw = h // 2, w // 2
        assert lh % 4 or lw % 4, (name, lh, lw)  # some window is partial
        windows = case["cu_window"].numel() - 1
        frames = int(case["grid_thw"][:, 0].sum())
        for b, count in case["segments"].items():
            assert count == (frames if b in seed_run["fullatt"] else windows), (name, b)
        if seed_run["family"] == "qwen2_vl":
            assert windows == frames  # no windows: each frame is one segment of every block
        else:
            assert windows > frames  # windowed blocks really differ from full ones here


def test_vision_features_still_match_transformers(seed_run):
    for name, case in seed_run["cases"].items():
        mine = seed_run["module"].vision_features(case["pixel_values"], case["grid_thw"])
        err = (mine - case["features"]).abs().max().item()
        assert err <= ATOL * max(1.0, case["features"].abs().max().item()), f"{name}: {err:.3g}"


def test_maps_match_transformers_eager(seed_run):
    module = seed_run["module"]
    for name, case in seed_run["cases"].items():
        grid = tuple(case["grid_thw"][0].tolist())
        for blocks, queries, head_reduce in _calls(grid):
            out = _run(module, case, blocks, queries, head_reduce)
            assert sorted(out) == sorted([f"vision.{b}" for b in blocks] + ["vision.windows"])
            _assert_maps(name, case, blocks, queries, head_reduce, out)


def test_small_chunks_give_the_same_maps(seed_run):
    """Chunks of 3 query rows and a few segments at a time (partial chunks everywhere) change nothing."""
    module = seed_run["module"]
    visual = module.visual
    rows, elements = visual.max_chunk_rows, visual.chunk_elements
    try:
        visual.max_chunk_rows = 3
        # heads 2 x 3 rows x 216 keys: 3 rows of a full frame, or 3 rows of 2-3 windows (64 patches) per chunk
        visual.chunk_elements = 2 * 3 * 216
        for name, case in seed_run["cases"].items():
            grid = tuple(case["grid_thw"][0].tolist())
            for blocks, queries, head_reduce in _calls(grid)[::3]:
                _assert_maps(name, case, blocks, queries, head_reduce, _run(module, case, blocks, queries, head_reduce))
    finally:
        visual.max_chunk_rows, visual.chunk_elements = rows, elements


def test_windowed_block_map_stays_inside_the_query_window(seed_run):
    """One query patch: a windowed block's map is zero outside that patch's window (the window ids
    agree with transformers' cu_window_seqlens), a full block's covers its frame; each head sums to 1."""
    module = seed_run["module"]
    for name, case in seed_run["cases"].items():
        t, h, w = case["grid_thw"][0].tolist()
        query = (t - 1) * h * w + (h // 2) * w + w // 2
        out = _run(module, case, [0, 1, 2, 3], [query], "keep")
        expected_windows = torch.zeros(t * h * w, dtype=torch.long)
        expected_windows[case["raster"]] = torch.repeat_interleave(
            torch.arange(case["cu_window"].numel() - 1), case["cu_window"][1:] - case["cu_window"][:-1])
        assert torch.equal(out["vision.windows"], expected_windows), name
        in_window = out["vision.windows"] == out["vision.windows"][query]
        frame = torch.zeros(t * h * w, dtype=torch.bool)
        frame[(t - 1) * h * w:] = True
        for b in range(4):
            m = out[f"vision.{b}"]
            torch.testing.assert_close(m.sum(1), torch.ones(m.size(0)), atol=1e-5, rtol=0)
            support = frame if b in seed_run["fullatt"] else in_window
            assert (m[:, ~support] == 0).all(), (name, b)
            assert (m[:, support] > 0).all(), (name, b)


@pytest.mark.parametrize("blocks, queries, head_reduce, message", [
    ([4], [], "keep", "vision block 4 out of range"),
    ([-1], [], "keep", "vision block -1 out of range"),
    ([0], [10 ** 6], "keep", "query_patches must lie in"),
    ([0], [-1], "mean", "query_patches must lie in"),
    ([0], [], "median", "head_reduce must be one of"),
])
def test_bad_arguments_raise_attnmap_errors(seed_run, blocks, queries, head_reduce, message):
    case = next(iter(seed_run["cases"].values()))
    # In-process, a scripted raise surfaces as torch.jit.Error carrying the original message.
    with pytest.raises((RuntimeError, torch.jit.Error), match="attnmap: " + message):
        _run(seed_run["module"], case, blocks, queries, head_reduce)
    with pytest.raises((RuntimeError, torch.jit.Error), match="attnmap: query_patches must be int64"):
        seed_run["module"].vision_attention(case["pixel_values"], case["grid_thw"], [0], torch.tensor([1.0]), "keep")
