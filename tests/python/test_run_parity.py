"""attnmap run against transformers: the raw maps equal the same reduction of transformers' eager
attentions (output_attentions=True), and the model inputs equal what the HF processor makes. Every
test runs on a tiny Qwen2.5-VL export and on a tiny Qwen2-VL one (family qwen2_vl, its own processor
and model class as the oracle)."""
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest
import torch

from attnmap_tools.testing import hf_reference as ref

BIN = os.environ.get("ATTNMAP_BIN", "")
PROMPT = "Where is the red door? Describe it."
# (height, width): merged grids 5x7 (partial 4x4 windows) and 9x6 (more than one window both ways).
SIZES = [(140, 196), (252, 168)]


@pytest.fixture(scope="module", params=["qwen2_5_vl", "qwen2_vl"])
def tiny(request, tmp_path_factory, tiny_model):
    work = tmp_path_factory.mktemp(f"run_parity_{request.param}")
    if request.param == "qwen2_5_vl":
        ckpt, model_pt = tiny_model["checkpoint"], tiny_model["model"]
    else:
        ckpt, model_pt = ref.seeded_export(work / "export", 12, tied=False, family=request.param)
    processor = ref.load_processor(ckpt)
    hf_model = ref.load_hf_model(ckpt)
    cases = []
    for i, (h, w) in enumerate(SIZES):
        image_path = work / f"image_{h}x{w}.png"
        ref.synthetic_image(h, w, seed=i).save(image_path)
        from PIL import Image

        inputs = ref.build_inputs(processor, [Image.open(image_path).convert("RGB")], PROMPT)
        attentions, logits = ref.hf_forward(hf_model, inputs)
        cases.append({"image": image_path, "inputs": inputs, "attentions": attentions, "logits": logits,
                      "positions": ref.hf_position_ids(hf_model, inputs)})
    assert hf_model.config.model_type == request.param
    return {"work": work, "model": model_pt, "cases": cases, "processor": processor, "config": hf_model.config,
            "family": request.param}


def run_cli(args, check=True):
    assert BIN, "ATTNMAP_BIN must name the built attnmap binary (CTest sets it)"
    proc = subprocess.run([BIN, "run", "--device", "cpu"] + [str(a) for a in args], capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def reference_rows(case, spec, processor, config):
    """Query rows computed from HF's own input_ids, independently of attnmap's prompt code."""
    ids = case["inputs"]["input_ids"][0].tolist()
    n = len(ids)
    image_positions = [i for i, t in enumerate(ids) if t == config.image_token_id]
    vision_end = ids.index(config.vision_end_token_id)
    im_end = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    prompt_end = ids.index(im_end, vision_end)
    if spec == "prompt":
        return list(range(vision_end + 1, prompt_end))
    if spec == "last":
        return [n - 1]
    if spec == "all":
        return list(range(image_positions[-1] + 1, n))
    if spec.startswith("word:"):
        word = spec[5:].lower()
        enc = processor.tokenizer(PROMPT, return_offsets_mapping=True, add_special_tokens=False)
        start = PROMPT.lower().index(word)
        hits = [k for k, (a, b) in enumerate(enc["offset_mapping"]) if a < start + len(word) and b > start]
        assert enc["input_ids"] == ids[vision_end + 1:prompt_end]
        return [vision_end + 1 + k for k in hits]
    return [int(x) % n for x in spec.split(",")]


def reference_maps(case, rows, heads, config):
    ids = case["inputs"]["input_ids"][0]
    image_cols = (ids == config.image_token_id).nonzero().flatten()
    grid = case["inputs"]["image_grid_thw"][0].tolist()
    merge = config.vision_config.spatial_merge_size
    maps = []
    for att in case["attentions"]:
        a = att[:, rows, :].double()  # [H, Q, S]
        if heads == "mean":
            a = a.mean(0)
        elif heads == "max":
            a = a.amax(0)
        else:
            a = a[int(heads)]
        maps.append(a.mean(0)[image_cols].reshape(grid[1] // merge, grid[2] // merge))
    return torch.stack(maps).numpy()


@pytest.mark.parametrize("case_index", range(len(SIZES)))
def test_inputs_equal_hf_processor(tiny, case_index, tmp_path):
    case = tiny["cases"][case_index]
    run_cli(["--model", tiny["model"], "--image", case["image"], "--prompt", PROMPT, "--out", tmp_path / "out",
             "--dump-inputs", tmp_path / "inputs", "--no-images", "--layers", "0"])
    dump = tmp_path / "inputs"
    np.testing.assert_array_equal(np.load(dump / "input_ids.npy"), case["inputs"]["input_ids"][0].numpy())
    np.testing.assert_array_equal(np.load(dump / "image_grid_thw.npy"), case["inputs"]["image_grid_thw"].numpy())
    np.testing.assert_allclose(np.load(dump / "pixel_values.npy"), case["inputs"]["pixel_values"].numpy(),
                               atol=1e-6, rtol=0)
    np.testing.assert_array_equal(np.load(dump / "position_ids.npy"), case["positions"].numpy())


# The query rows are family-independent C++ (checked on Qwen2.5-VL); Qwen2-VL's maps are checked for
# these two (CI time).
QWEN2_VL_QUERIES = ("prompt", "3,7,-1")


@pytest.mark.parametrize("query", ["prompt", "last", "all", "3,7,-1", "word:door"])
def test_maps_equal_transformers_for_each_query(tiny, query, tmp_path):
    if tiny["family"] == "qwen2_vl" and query not in QWEN2_VL_QUERIES:
        pytest.skip("query selection is family-independent: checked on the Qwen2.5-VL export")
    for k, case in enumerate(tiny["cases"]):
        out = tmp_path / f"out{k}"
        run_cli(["--model", tiny["model"], "--image", case["image"], "--prompt", PROMPT, "--out", out,
                 "--query", query, "--no-images"])
        rows = reference_rows(case, query, tiny["processor"], tiny["config"])
        doc = json.loads((out / "attention.json").read_text())
        assert doc["query_positions"] == rows
        expected = reference_maps(case, rows, "mean", tiny["config"])
        got = np.load(out / "maps.npy")
        assert got.dtype == np.float32 and got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("heads", ["max", "1"])
def test_maps_equal_transformers_for_head_reductions(tiny, heads, tmp_path):
    case = tiny["cases"][1]
    run_cli(["--model", tiny["model"], "--image", case["image"], "--prompt", PROMPT, "--out", tmp_path,
             "--heads", heads, "--layers", "1,3", "--no-images"])
    rows = reference_rows(case, "prompt", tiny["processor"], tiny["config"])
    expected = reference_maps(case, rows, heads, tiny["config"])[[1, 3]]
    np.testing.assert_allclose(np.load(tmp_path / "maps.npy"), expected, atol=1e-5, rtol=0)


def test_prediction_is_transformers_greedy_token(tiny, tmp_path):
    case = tiny["cases"][0]
    run_cli(["--model", tiny["model"], "--image", case["image"], "--prompt", PROMPT, "--out", tmp_path,
             "--no-images", "--layers", "0"])
    doc = json.loads((tmp_path / "attention.json").read_text())
    assert doc["prediction"]["token_id"] == int(case["logits"].argmax())
    expected_p = torch.softmax(case["logits"].double(), 0).max().item()
    assert abs(doc["prediction"]["probability"] - expected_p) < 1e-4


def test_info_names_the_family_and_its_parts(tiny):
    proc = subprocess.run([BIN, "info", "--model", str(tiny["model"])], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = {line[:14].strip(): line[14:] for line in proc.stdout.splitlines()}
    assert f"({tiny['family']}, format v2" in lines["name"]
    if tiny["family"] == "qwen2_vl":
        assert lines["family"] == ("qwen2_vl: vision LayerNorm, fc1/quick_gelu/fc2 MLP, no window attention; "
                                   "decoder Qwen2 with M-RoPE; video positions by temporal patch")
        assert lines["vision tower"].endswith("no windows (full attention in every block)")
    else:
        assert lines["family"] == ("qwen2_5_vl: vision RMSNorm, SwiGLU (silu) MLP, window attention; "
                                   "decoder Qwen2 with M-RoPE; video positions by time (tokens_per_second)")
        assert lines["vision tower"].endswith("window 112 px, full attention at [1,3]")
