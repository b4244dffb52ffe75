"""`attnmap run --answer` (the C++ generation loop) against transformers.

Tiny random checkpoints are exported with attnmap-export; images are written to PNG files and the
oracle is fed exactly what the HF processor makes of them. The oracle is transformers' eager
Qwen2.5-VL (Qwen2-VL for the qwen2_vl seed) in float32: `generate(do_sample=False, output_attentions=True, return_dict_in_generate=True)`
for the answer and its rows, a plain forward for the prompt and baseline maps. Checked, per case and
decoding mode (the checkpoint's repetition penalty, --raw-argmax):
- attention.json's answer ids, probabilities and positions;
- answer_maps.npy[k, l] = the image columns of transformers' step-k row of layer l, reduced over heads
  (mean, max, one head) and laid out on the merged grid, within 1e-5;
- maps.npy for the answer queries (answer, answer:I, answer:WORD, the word found in the raw bytes of
  the answer's tokens with GPT-2's byte table, independently of attnmap) and for a prompt query;
- relative_maps.npy = map / (baseline map + 1e-6), both maps from transformers;
- the per-layer top-1% share, from the transformers map.
"""
import json
import math
import os
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from attnmap_tools.testing import hf_reference as R
from attnmap_tools.testing.tiny import RELEASED_GENERATION_CONFIG

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

BIN = os.environ.get("ATTNMAP_BIN", "")
ATOL = 1e-5
MAX_NEW = 10
EPSILON = 1e-6
BASELINE = "Write a general description of the image."
# seed -> (tied, released generation_config, [(image (h, w), prompt)], family). Every grid has a partial
# vision window (Qwen2.5-VL) and is non-square; the prompts are Latin, CJK and emoji.
SEEDS = {
    0: (True, True, [((168, 252), "Describe this image."), ((100, 130), "这张图片里有什么？")], "qwen2_5_vl"),
    1: (False, False, [((230, 90), "What is this? 🐱🌈")], "qwen2_5_vl"),
    2: (True, True, [((100, 130), "Describe this image. 🐱")], "qwen2_vl"),
}
HEADS = ["mean", "max", "1"]


def run_cli(args):
    assert BIN, "ATTNMAP_BIN must name the built attnmap binary (CTest sets it)"
    proc = subprocess.run([BIN, "run", "--device", "cpu"] + [str(a) for a in args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc


def hf_generate(hf, inputs, penalty):
    kwargs = {} if penalty is None else {"repetition_penalty": penalty}
    with torch.no_grad():
        g = hf.generate(**inputs, do_sample=False, max_new_tokens=MAX_NEW, output_attentions=True, output_logits=True,
                        return_dict_in_generate=True, **kwargs)
    seq = inputs["input_ids"].shape[1]
    return {"ids": g.sequences[0, seq:].tolist(), "logits": [x[0].double() for x in g.logits],
            "rows": [[layer[0, :, -1, :].double() for layer in step] for step in g.attentions]}


def to_map(row, heads, image_cols, grid):
    """[H, S'] row -> [merged_h, merged_w] of the requested head reduction."""
    if heads == "mean":
        r = row.mean(0)
    elif heads == "max":
        r = row.amax(0)
    else:
        r = row[int(heads)]
    return r[image_cols].reshape(grid).numpy()


def prompt_rows(ids, config, processor):
    vision_end = ids.index(config.vision_end_token_id)
    im_end = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    return list(range(vision_end + 1, ids.index(im_end, vision_end)))


def gpt2_byte_decoder():
    """GPT-2's byte-level alphabet (the published table byte-level BPE tokenizers use), inverted."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def token_bytes(processor, token_id):
    token = processor.tokenizer.convert_ids_to_tokens(token_id)
    return bytes(gpt2_byte_decoder()[c] for c in token)


def top1_share(m):
    flat = np.sort(np.clip(m.astype(np.float64).ravel(), 0, None))[::-1]
    k = max(1, math.ceil(0.01 * flat.size))
    return flat[:k].sum() / flat.sum()


@pytest.fixture(scope="module", params=sorted(SEEDS), ids=lambda s: f"seed{s}")
def seed_case(request, tmp_path_factory):
    seed = request.param
    tied, released, cases, family = SEEDS[seed]
    work = tmp_path_factory.mktemp(f"answer_cli_seed{seed}")
    ckpt, pt = R.seeded_export(work, seed, tied=tied,
                               generation_config=RELEASED_GENERATION_CONFIG if released else None, family=family)
    processor = R.load_processor(ckpt)
    hf = R.load_hf_model(ckpt)
    out = []
    for i, ((h, w), text) in enumerate(cases):
        image = work / f"image{i}.png"
        R.synthetic_image(h, w, seed=seed * 10 + i).save(image)
        pil = Image.open(image).convert("RGB")
        inputs = R.build_inputs(processor, [pil], text)
        baseline_inputs = R.build_inputs(processor, [pil], BASELINE)
        out.append({"image": image, "text": text, "inputs": inputs,
                    "default": hf_generate(hf, inputs, None), "raw": hf_generate(hf, inputs, 1.0),
                    "forward": R.hf_forward(hf, inputs)[0], "baseline": R.hf_forward(hf, baseline_inputs)[0],
                    "baseline_ids": baseline_inputs["input_ids"][0].tolist()})
    return {"work": work, "pt": pt, "processor": processor, "config": hf.config, "cases": out,
            "released": released, "family": family}


def family_independent(seed_case):
    """The answer queries and the baseline are family-independent C++, checked on the Qwen2.5-VL seeds;
    the Qwen2-VL seed checks the answer and its maps (CI time)."""
    if seed_case["family"] != "qwen2_5_vl":
        pytest.skip("family-independent: checked on the Qwen2.5-VL seeds")


def grid_of(case, config):
    _, h, w = case["inputs"]["image_grid_thw"][0].tolist()
    merge = config.vision_config.spatial_merge_size
    return (h // merge, w // merge)


def image_cols(ids, config):
    return [i for i, t in enumerate(ids) if t == config.image_token_id]


def run_answer(seed_case, i, mode, heads, extra=()):
    out = seed_case["work"] / f"run_{i}_{mode}_{heads}_{len(extra)}_{abs(hash(tuple(extra))) % 10000}"
    args = ["--model", seed_case["pt"], "--image", seed_case["cases"][i]["image"], "--prompt",
            seed_case["cases"][i]["text"], "--out", out, "--answer", "--max-new-tokens", MAX_NEW, "--heads", heads]
    if mode == "raw":
        args.append("--raw-argmax")
    run_cli(args + list(extra))
    doc = json.loads((out / "attention.json").read_text())
    return out, doc


def test_answer_ids_and_maps_equal_transformers_generate(seed_case):
    config = seed_case["config"]
    worst = 0.0
    for i, case in enumerate(seed_case["cases"]):
        ids = case["inputs"]["input_ids"][0].tolist()
        cols, grid = image_cols(ids, config), grid_of(case, config)
        for mode in ("default", "raw"):
            theirs = case[mode]
            for heads in HEADS:
                out, doc = run_answer(seed_case, i, mode, heads)
                answer = doc["answer"]
                assert [t["id"] for t in answer["tokens"]] == theirs["ids"], (i, mode, heads)
                assert answer["stopped_on_eos"] == (len(theirs["ids"]) < MAX_NEW)
                penalty = 1.05 if (mode == "default" and seed_case["released"]) else 1.0
                assert answer["repetition_penalty"] == pytest.approx(penalty)
                for k, t in enumerate(answer["tokens"]):
                    assert t["position"] == len(ids) + k
                    p = torch.softmax(theirs["logits"][k], 0)[t["id"]].item()
                    assert t["probability"] == pytest.approx(p, abs=1e-5)
                maps = np.load(out / "answer_maps.npy")
                assert maps.dtype == np.float32
                assert list(maps.shape) == [len(theirs["ids"]), config.text_config.num_hidden_layers, *grid]
                assert answer["maps"]["shape"] == list(maps.shape)
                for k, step in enumerate(theirs["rows"]):
                    for layer, row in enumerate(step):
                        assert row.shape[-1] == len(ids) + k
                        err = np.abs(maps[k, layer] - to_map(row, heads, cols, grid)).max()
                        worst = max(worst, err)
                        assert err <= ATOL, (i, mode, heads, k, layer, err)
                # The default query with --answer is "answer": the mean of every answer token's map.
                assert doc["options"]["query"] == "answer"
                np.testing.assert_allclose(np.load(out / "maps.npy"), maps.mean(0), atol=1e-6)
                for layer in range(config.text_config.num_hidden_layers):
                    assert (out / f"answer_strip_layer_{layer:02d}.jpg").stat().st_size > 0
    print(f"worst |answer map diff| {worst:.3g}")


def test_answer_queries_select_the_right_tokens(seed_case):
    family_independent(seed_case)
    config, processor = seed_case["config"], seed_case["processor"]
    case = seed_case["cases"][0]
    ids = case["inputs"]["input_ids"][0].tolist()
    cols, grid = image_cols(ids, config), grid_of(case, config)
    theirs = case["default"]
    answer_ids = theirs["ids"]
    layer = config.text_config.num_hidden_layers - 1

    def expected(tokens):
        return np.mean([to_map(theirs["rows"][k][layer], "mean", cols, grid) for k in tokens], axis=0)

    out, doc = run_answer(seed_case, 0, "default", "mean", ["--query", "answer:-1", "--layers", str(layer)])
    assert doc["answer"]["query_tokens"] == [len(answer_ids) - 1]
    np.testing.assert_allclose(np.load(out / "maps.npy")[0], expected([len(answer_ids) - 1]), atol=ATOL)

    # A word spelled by an answer token (and whatever tokens its first occurrence overlaps): the first
    # token whose bytes are whole UTF-8 characters, not only whitespace.
    pieces = [token_bytes(processor, t) for t in answer_ids]
    text = b"".join(pieces)

    def readable(piece):
        try:
            return piece.decode("utf-8").strip() != ""
        except UnicodeDecodeError:
            return False

    found = [p.strip() for p in pieces if readable(p)]
    assert found, f"no answer token is a whole word: {pieces!r}"
    word = found[0]
    at = text.lower().find(word.lower())
    ends = np.cumsum([len(p) for p in pieces])
    starts = ends - [len(p) for p in pieces]
    hits = [k for k in range(len(pieces)) if starts[k] < at + len(word) and ends[k] > at]
    out, doc = run_answer(seed_case, 0, "default", "mean", ["--query", "answer:" + word.decode(), "--layers", str(layer)])
    assert doc["answer"]["query_tokens"] == hits
    assert doc["query_positions"] == [len(ids) + k for k in hits]
    np.testing.assert_allclose(np.load(out / "maps.npy")[0], expected(hits), atol=ATOL)


def test_prompt_query_and_relative_maps_with_answer(seed_case):
    family_independent(seed_case)
    config, processor = seed_case["config"], seed_case["processor"]
    for i, case in enumerate(seed_case["cases"]):
        ids = case["inputs"]["input_ids"][0].tolist()
        cols, grid = image_cols(ids, config), grid_of(case, config)
        rows = prompt_rows(ids, config, processor)
        base_ids = case["baseline_ids"]
        base_cols, base_rows = image_cols(base_ids, config), prompt_rows(base_ids, config, processor)
        for query, base in (("prompt", base_rows), ("answer", [len(base_ids) - 1])):
            out, doc = run_answer(seed_case, i, "default", "mean", ["--query", query, "--baseline-prompt"])
            assert doc["baseline"]["prompt"] == BASELINE and doc["baseline"]["token_ids"] == base_ids
            assert doc["baseline"]["query_positions"] == base
            maps, relative = np.load(out / "maps.npy"), np.load(out / "relative_maps.npy")
            for layer, att in enumerate(case["forward"]):
                if query == "prompt":
                    mine = att[:, rows, :].double().mean(0).mean(0)[cols].reshape(grid).numpy()
                    np.testing.assert_allclose(maps[layer], mine, atol=ATOL)
                mine = maps[layer].astype(np.float64)
                base_map = case["baseline"][layer][:, base, :].double().mean(0).mean(0)[base_cols].reshape(grid).numpy()
                np.testing.assert_allclose(relative[layer], mine / (base_map + EPSILON), rtol=1e-4)
                assert doc["layers"][layer]["top1_share"] == pytest.approx(top1_share(mine), rel=1e-6)
                assert doc["baseline"]["layers"][layer]["top1_share"] == pytest.approx(top1_share(base_map), rel=1e-4)
                assert (out / f"relative_layer_{layer:02d}.jpg").stat().st_size > 0


def test_answer_query_without_a_word_of_the_answer_is_one_line(seed_case):
    family_independent(seed_case)
    case = seed_case["cases"][0]
    proc = subprocess.run([BIN, "run", "--device", "cpu", "--model", str(seed_case["pt"]), "--image",
                           str(case["image"]), "--prompt", case["text"], "--out", str(seed_case["work"] / "noword"),
                           "--query", "answer:zzzqqq", "--max-new-tokens", "3"], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert "answer:zzzqqq" in line and "does not contain" in line
    assert not (seed_case["work"] / "noword" / "attention.json").exists()
