"""Family qwen3_vl end to end: `attnmap run` (and `info`) on an exported tiny Qwen3-VL against transformers.

One tiny random Qwen3-VL checkpoint (hub key layout, untied embeddings) is exported; PNG images of
non-square sizes are fed to the CLI and, through PIL, to the HF Qwen3-VL processor. Checked:
- the CLI's inputs (--dump-inputs) equal the processor's: input_ids (no system turn by default, as
  Qwen3-VL's template; one with --system-prompt), image_grid_thw, pixel_values (patch 16, mean/std
  0.5, min_pixels 65536 from the metadata) and get_rope_index's position_ids;
- maps.npy equals transformers' eager attentions (prompt and last queries, every layer) within 1e-5
  and the prediction is its greedy token;
- --answer: the answer ids equal transformers' greedy generate and answer_maps.npy its step rows;
- the exported vision_attention equals transformers' eager vision attention (all blocks full);
- `attnmap info` names the family.
"""
import json
import os
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from transformers.vision_utils import get_vision_position_ids

from attnmap_tools.testing import hf_reference as R
from attnmap_tools.testing import qwen3_vl_reference as Q
from attnmap_tools.testing.vision_reference import capture_vision_attention

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

BIN = os.environ.get("ATTNMAP_BIN", "")
ATOL = 1e-5
PROMPT = "Where is the red door? Describe it."
SYSTEM = "You are a careful assistant."
SIZES = [(200, 300), (330, 170)]  # merged grids 7x11 and 12x6 after the min_pixels resize
MAX_NEW = 6


def run_cli(*args, command="run"):
    assert BIN, "ATTNMAP_BIN must name the built attnmap binary (CTest sets it)"
    extra = ["--device", "cpu"] if command == "run" else []
    proc = subprocess.run([BIN, command] + extra + [str(a) for a in args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    work = tmp_path_factory.mktemp("qwen3_vl_run")
    torch.manual_seed(5)
    torch.set_num_threads(R.THREADS)
    ckpt = Q.make_checkpoint(work / "ckpt", seed=5, tied=False)
    model_pt = work / "model.pt"
    proc = R.export_checkpoint(ckpt, model_pt)
    assert proc.returncode == 0, proc.stderr
    processor = Q.load_processor(ckpt)
    hf = Q.load_hf_model(ckpt)
    cases = []
    for i, (h, w) in enumerate(SIZES):
        image = work / f"image_{h}x{w}.png"
        R.synthetic_image(h, w, seed=i).save(image)
        inputs = R.build_inputs(processor, [Image.open(image).convert("RGB")], PROMPT)
        attentions, logits = R.hf_forward(hf, inputs)
        cases.append({"image": image, "inputs": inputs, "attentions": attentions, "logits": logits,
                      "positions": R.hf_position_ids(hf, inputs)})
    return {"work": work, "model": model_pt, "cases": cases, "processor": processor, "hf": hf}


def test_info_names_the_family(tiny):
    out = run_cli("--model", tiny["model"], command="info").stdout
    assert "(qwen3_vl, format v2" in out
    assert ("family        qwen3_vl: vision LayerNorm, fc1/gelu_pytorch_tanh/fc2 MLP, no window attention, learned "
            "position embeddings, DeepStack from blocks [0,2]; decoder Qwen3 (q/k RMSNorm) with interleaved M-RoPE") in out
    assert "not supported" not in out  # videos too (their info line: test_qwen3_vl_video.py)


@pytest.mark.parametrize("case_index", range(len(SIZES)))
def test_inputs_equal_hf_processor(tiny, case_index, tmp_path):
    case = tiny["cases"][case_index]
    ids = case["inputs"]["input_ids"][0]
    assert ids[0].item() == tiny["processor"].tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert tiny["processor"].tokenizer.decode(ids[:3]).startswith("<|im_start|>user")  # no system turn
    run_cli("--model", tiny["model"], "--image", case["image"], "--prompt", PROMPT, "--out", tmp_path / "out",
            "--dump-inputs", tmp_path / "inputs", "--no-images", "--layers", "0")
    dump = tmp_path / "inputs"
    np.testing.assert_array_equal(np.load(dump / "input_ids.npy"), ids.numpy())
    np.testing.assert_array_equal(np.load(dump / "image_grid_thw.npy"), case["inputs"]["image_grid_thw"].numpy())
    np.testing.assert_allclose(np.load(dump / "pixel_values.npy"), case["inputs"]["pixel_values"].numpy(),
                               atol=1e-6, rtol=0)
    np.testing.assert_array_equal(np.load(dump / "position_ids.npy"), case["positions"].numpy())


def test_system_prompt_adds_the_system_turn(tiny, tmp_path):
    case = tiny["cases"][0]
    messages = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": [{"type": "image", "image": Image.open(case["image"]).convert("RGB")},
                                             {"type": "text", "text": PROMPT}]}]
    expected = tiny["processor"].apply_chat_template(messages, tokenize=True, add_generation_prompt=True,
                                                     return_dict=True, return_tensors="pt")["input_ids"][0]
    run_cli("--model", tiny["model"], "--image", case["image"], "--prompt", PROMPT, "--system-prompt", SYSTEM,
            "--out", tmp_path / "out", "--dump-inputs", tmp_path / "inputs", "--no-images", "--layers", "0")
    np.testing.assert_array_equal(np.load(tmp_path / "inputs" / "input_ids.npy"), expected.numpy())


def _image_cols(case, config):
    return (case["inputs"]["input_ids"][0] == config.image_token_id).nonzero().flatten()


def _grid(case, config):
    _, h, w = case["inputs"]["image_grid_thw"][0].tolist()
    merge = config.vision_config.spatial_merge_size
    return (h // merge, w // merge)


@pytest.mark.parametrize("query", ["prompt", "last"])
def test_maps_equal_transformers(tiny, query, tmp_path):
    config = tiny["hf"].config
    for k, case in enumerate(tiny["cases"]):
        out = tmp_path / f"out{k}"
        run_cli("--model", tiny["model"], "--image", case["image"], "--prompt", PROMPT, "--out", out,
                "--query", query, "--no-images")
        rows = json.loads((out / "attention.json").read_text())["query_positions"]
        ids = case["inputs"]["input_ids"][0].tolist()
        if query == "last":
            assert rows == [len(ids) - 1]
        else:
            vision_end = ids.index(config.vision_end_token_id)
            assert rows == list(range(vision_end + 1, ids.index(tiny["processor"].tokenizer.convert_tokens_to_ids(
                "<|im_end|>"), vision_end)))
        cols = _image_cols(case, config)
        expected = np.stack([a[:, rows, :].double().mean(0).mean(0)[cols].reshape(_grid(case, config)).numpy()
                             for a in case["attentions"]])
        got = np.load(out / "maps.npy")
        assert got.dtype == np.float32 and got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)


def test_prediction_is_transformers_greedy_token(tiny, tmp_path):
    case = tiny["cases"][1]
    run_cli("--model", tiny["model"], "--image", case["image"], "--prompt", PROMPT, "--out", tmp_path,
            "--no-images", "--layers", "0")
    doc = json.loads((tmp_path / "attention.json").read_text())
    assert doc["prediction"]["token_id"] == int(case["logits"].argmax())


def test_answer_equals_transformers_greedy_generate(tiny, tmp_path):
    config = tiny["hf"].config
    case = tiny["cases"][0]
    with torch.no_grad():
        g = tiny["hf"].generate(**case["inputs"], do_sample=False, max_new_tokens=MAX_NEW, output_attentions=True,
                                return_dict_in_generate=True, repetition_penalty=1.0)
    seq = case["inputs"]["input_ids"].shape[1]
    their_ids = g.sequences[0, seq:].tolist()
    run_cli("--model", tiny["model"], "--image", case["image"], "--prompt", PROMPT, "--out", tmp_path, "--answer",
            "--max-new-tokens", MAX_NEW, "--raw-argmax", "--no-images")
    doc = json.loads((tmp_path / "attention.json").read_text())
    assert [t["id"] for t in doc["answer"]["tokens"]] == their_ids
    maps = np.load(tmp_path / "answer_maps.npy")
    cols, grid = _image_cols(case, config), _grid(case, config)
    assert list(maps.shape) == [len(their_ids), config.text_config.num_hidden_layers, *grid]
    for k, step in enumerate(g.attentions):
        for layer, att in enumerate(step):
            row = att[0, :, -1, :].double().mean(0)
            np.testing.assert_allclose(maps[k, layer], row[cols].reshape(grid).numpy(), atol=ATOL, rtol=0)


def test_vision_attention_equals_transformers(tiny):
    config = tiny["hf"].config
    case = tiny["cases"][0]
    pixel_values, grid_thw = case["inputs"]["pixel_values"], case["inputs"]["image_grid_thw"]
    captured = capture_vision_attention(tiny["hf"], pixel_values, grid_thw)
    _, h, w = grid_thw[0].tolist()
    pos = get_vision_position_ids(grid_thw, config.vision_config.spatial_merge_size)
    raster = pos[:, 0] * w + pos[:, 1]  # HF row (merge-block order) -> raster patch
    queries = torch.tensor([0, 5, h * w - 1, w + 3])
    module = torch.jit.load(str(tiny["model"]))
    blocks = list(range(config.vision_config.depth))
    with torch.no_grad():
        ours = module.vision_attention(pixel_values, grid_thw, blocks, queries, "keep")
    assert ours["vision.windows"].tolist() == [0] * (h * w)
    order = torch.argsort(raster)  # raster patch -> HF row
    for b in blocks:
        (dense,) = captured[b]  # one frame: one full-attention call
        assert dense.shape[-1] == h * w
        rows = dense.double()[:, order][:, :, order]  # raster x raster
        expected = rows[:, queries, :].mean(1)
        assert (ours[f"vision.{b}"].double() - expected).abs().max().item() <= ATOL, b
