"""Family qwen3_vl (dense Qwen3-VL): the export's parity with transformers' eager Qwen3-VL (the oracle).

Tiny random checkpoints (two seeds; tied and untied embeddings; the hub's key layout
model.language_model.* / model.visual.* and the older model.* / visual.*) are exported with
attnmap-export, the .pt is run in a fresh process and its attention rows, logits, merged image
features and DeepStack features are compared with Qwen3VLForConditionalGeneration(attn_implementation=
"eager") fed what the HF Qwen3-VL processor makes of non-square images (one and two per prompt).
One prompt also holds an image and a two-frame video (random patch rows, "<t seconds>" text per
temporal patch): DeepStack onto the image and the video rows. Also: other families' configs (qwen3_vl_moe, qwen3_5) are refused naming the supported ones.
"""
import json

import pytest
import torch

from attnmap_tools.export.config import ConfigError
from attnmap_tools.export.families import family_for
from attnmap_tools.testing import hf_reference as R
from attnmap_tools.testing import qwen3_vl_reference as Q
from attnmap_tools.testing.positions import get_rope_index

ATOL = 1e-5

SEEDS = {
    0: {"tied": True, "layout": "hub", "cases": {
        "wide": ([(200, 300)], "Describe this image."),
        "two_images": ([(260, 180), (150, 330)], "Compare the two pictures, please."),
    }, "video": ((2, 8, 12), "What happens in the video?")},
    1: {"tied": False, "layout": "legacy", "cases": {
        "tall": ([(330, 170)], "What is in the picture?"),
    }},
}


def _calls(seq_len: int, image_rows):
    everything = list(range(seq_len))
    some = sorted(set([seq_len - 1, seq_len - 3, 0] + image_rows[:3] + image_rows[-2:]))
    return [
        dict(layers=[0, 1, 2, 3], query_positions=everything, head_reduce="keep", mean_queries=False, return_logits=True),
        dict(layers=[3, 1], query_positions=some, head_reduce="mean", mean_queries=False, return_logits=False),
        dict(layers=[2, 0], query_positions=some, head_reduce="max", mean_queries=True, return_logits=False,
             chunk_rows=3),
    ]


@pytest.fixture(scope="module", params=sorted(SEEDS), ids=lambda s: f"seed{s}")
def seed_run(request, tmp_path_factory):
    seed = request.param
    spec = SEEDS[seed]
    work = tmp_path_factory.mktemp(f"qwen3_vl_seed{seed}")
    torch.manual_seed(seed)
    torch.set_num_threads(R.THREADS)
    # The oracle reads the hub layout; the export reads the layout under test (same seed, same weights).
    hub = Q.make_checkpoint(work / "hub", seed=seed, tied=spec["tied"], layout="hub")
    ckpt = hub if spec["layout"] == "hub" else Q.make_checkpoint(work / "ckpt", seed=seed, tied=spec["tied"],
                                                                 layout=spec["layout"])
    model_pt = work / "model.pt"
    proc = R.export_checkpoint(ckpt, model_pt)
    assert proc.returncode == 0, proc.stderr
    processor = Q.load_processor(hub)
    hf = Q.load_hf_model(hub)
    cases, jobs = {}, []
    for name, (sizes, text) in spec["cases"].items():
        images = [R.synthetic_image(h, w, seed=seed * 10 + i) for i, (h, w) in enumerate(sizes)]
        inputs = R.build_inputs(processor, images, text)
        positions = R.hf_position_ids(hf, inputs)
        attentions, logits = R.hf_forward(hf, inputs)
        ids = inputs["input_ids"][0].tolist()
        image_rows = [i for i, t in enumerate(ids) if t == hf.config.image_token_id]
        calls = _calls(len(ids), image_rows)
        cases[name] = dict(inputs=inputs, positions=positions, attentions=attentions, logits=logits, calls=calls,
                           features=Q.hf_image_features(hf, inputs), job=len(jobs))
        jobs.append(R.make_job(inputs, positions, calls))
    if "video" in spec:
        # An image and a two-temporal-patch video in one prompt: DeepStack onto both kinds of rows.
        grid, text = spec["video"]
        inputs = Q.image_and_video_inputs(processor, R.synthetic_image(200, 280, seed=seed), grid, text, seed)
        positions = R.hf_position_ids(hf, inputs)
        attentions, logits = R.hf_forward(hf, inputs)
        calls = _calls(inputs["input_ids"].shape[1], [])[:1]
        cases["image_and_video"] = dict(inputs=inputs, positions=positions, attentions=attentions, logits=logits,
                                        calls=calls, features=Q.hf_image_features(hf, inputs), job=len(jobs))
        jobs.append(R.make_job(inputs, positions, calls))
    # The module cast to bf16 (what C++ does for --dtype bf16), on the first case.
    bf16_case = next(iter(cases))
    bf16_inputs = cases[bf16_case]["inputs"]
    bf16_call = dict(layers=[0, 1, 2, 3], query_positions=list(range(bf16_inputs["input_ids"].shape[1])),
                     head_reduce="keep", mean_queries=False, return_logits=True)
    jobs.append(R.make_job(bf16_inputs, cases[bf16_case]["positions"], [bf16_call], dtype="bfloat16"))
    results = R.run_exported(model_pt, jobs, work)
    for case in cases.values():
        case["ours"] = results[case["job"]]
    return dict(seed=seed, cases=cases, hf=hf, model_pt=model_pt, ckpt=ckpt, bf16=(bf16_case, results[-1][0]))


def test_grids_are_non_square(seed_run):
    for case in seed_run["cases"].values():
        for t, h, w in case["inputs"]["image_grid_thw"].tolist():
            assert t == 1 and h != w


def test_positions_are_qwen2_5_s_for_images(seed_run):
    """Qwen3-VL's get_rope_index gives images the same positions as Qwen2.5-VL's (the C++ port's)."""
    for name, case in seed_run["cases"].items():
        if "video_grid_thw" in case["inputs"]:
            continue  # a video's temporal patches are separate grids there (test_qwen3_vl_video.py)
        ids = case["inputs"]["input_ids"][0].tolist()
        mine, _ = get_rope_index(ids, case["inputs"]["image_grid_thw"].tolist(),
                                 seed_run["hf"].config.image_token_id)
        assert torch.equal(torch.tensor(mine), case["positions"]), name


def test_all_layers_all_rows_match_transformers(seed_run):
    for name, case in seed_run["cases"].items():
        ours = case["ours"][0]["rows"]
        assert len(ours) == 4
        for layer, (theirs, mine) in enumerate(zip(case["attentions"], ours)):
            assert mine.dtype == torch.float32 and mine.shape == theirs.shape, (name, layer)
            err = (mine - theirs).abs().max().item()
            assert err <= ATOL, f"{name} layer {layer}: max |diff| {err:.3g}"


def test_logits_and_next_token_match_transformers(seed_run):
    for name, case in seed_run["cases"].items():
        mine, theirs = case["ours"][0]["logits"], case["logits"]
        assert mine.dtype == torch.float32 and mine.shape == theirs.shape
        err = (mine - theirs).abs().max().item()
        assert err <= ATOL * max(1.0, theirs.abs().max().item()), f"{name}: {err:.3g}"
        assert mine.argmax() == theirs.argmax()


def test_reductions_and_chunks_match_transformers(seed_run):
    for name, case in seed_run["cases"].items():
        for call, result in list(zip(case["calls"], case["ours"]))[1:len(case["calls"])]:
            rows = torch.tensor(call["query_positions"])
            for layer, mine in zip(call["layers"], result["rows"]):
                theirs = R.reduce_rows(case["attentions"][layer], rows, call["head_reduce"], call["mean_queries"])
                err = (mine - theirs).abs().max().item()
                assert err <= ATOL, f"{name} layer {layer} {call['head_reduce']}: {err:.3g}"


def test_bf16_module_runs_close_to_fp32_reference(seed_run):
    name, result = seed_run["bf16"]
    case = seed_run["cases"][name]
    for theirs, mine in zip(case["attentions"], result["rows"]):
        assert mine.dtype == torch.float32 and torch.isfinite(mine).all()
        assert torch.allclose(mine.sum(-1), torch.ones(mine.shape[:2]), atol=1e-3)
        assert (mine - theirs).abs().max().item() < 0.1
    logits = result["logits"]
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    assert (logits - case["logits"]).abs().max().item() < 0.1 * case["logits"].abs().max().item()


def test_vision_and_deepstack_features_match_transformers(seed_run):
    module = torch.jit.load(str(seed_run["model_pt"]))
    for name, case in seed_run["cases"].items():
        merged, deepstack = case["features"]
        mine = case["ours"][-1]["vision_features"]
        assert mine.shape == merged.shape
        assert (mine - merged).abs().max().item() <= ATOL, name
        with torch.no_grad():
            levels = module.deepstack_features(case["inputs"]["pixel_values"], case["inputs"]["image_grid_thw"])
        assert len(levels) == len(deepstack) == 2
        for level, (a, b) in enumerate(zip(levels, deepstack)):
            assert (a - b).abs().max().item() <= ATOL, (name, level)


def test_metadata_names_the_family_and_its_preprocessing(seed_run):
    extra = {"attnmap/metadata.json": ""}
    torch.jit.load(str(seed_run["model_pt"]), _extra_files=extra)
    meta = json.loads(extra["attnmap/metadata.json"])
    assert meta["model_family"] == "qwen3_vl"
    assert meta["vision"]["patch_size"] == 16 and meta["vision"]["spatial_merge_size"] == 2
    assert meta["vision"]["deepstack_visual_indexes"] == [0, 2]
    assert meta["preprocess"]["image_mean"] == [0.5, 0.5, 0.5] and meta["preprocess"]["image_std"] == [0.5, 0.5, 0.5]
    assert meta["preprocess"]["min_pixels"] == 65536 and meta["preprocess"]["max_pixels"] == 16777216
    assert meta["chat"] == {"default_system_prompt": "", "default_system_turn": False}


def test_video_rows_get_their_features(seed_run):
    if "image_and_video" not in seed_run["cases"]:
        pytest.skip("this seed has no video case")
    case = seed_run["cases"]["image_and_video"]
    video_tokens = int((case["inputs"]["input_ids"] == seed_run["hf"].config.video_token_id).sum())
    assert video_tokens == 2 * 8 * 12 // 4
    # Each temporal patch is its own t = 1 grid after its timestamp text: its rows share the time
    # position p of their start, which is also their first row/column position.
    rows = (case["inputs"]["input_ids"][0] == seed_run["hf"].config.video_token_id).nonzero().flatten()
    t, hh = case["positions"][0, rows], case["positions"][1, rows]
    frames = t.reshape(2, -1)
    assert all(len(set(f.tolist())) == 1 for f in frames) and frames[0, 0] < frames[1, 0]
    assert torch.equal(frames[:, 0], hh.reshape(2, -1).min(1).values)


@pytest.mark.parametrize("model_type", ["qwen3_vl_moe", "qwen3_5", "qwen3_vl_text"])
def test_other_qwen3_families_are_refused_naming_the_supported_ones(model_type):
    with pytest.raises(ConfigError) as err:
        family_for({"model_type": model_type})
    message = str(err.value)
    assert "\n" not in message and model_type in message
    assert "qwen2_5_vl" in message and "qwen3_vl" in message


# config.json as the hub ships Qwen3-VL-4B-Instruct (nested text/vision configs, rope_scaling with the
# interleaved M-RoPE sections, head_dim 128 on a 2560 width, tied embeddings at the top level).
HUB_4B = {
    "model_type": "qwen3_vl", "architectures": ["Qwen3VLForConditionalGeneration"], "tie_word_embeddings": True,
    "image_token_id": 151655, "video_token_id": 151656, "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "text_config": {"model_type": "qwen3_vl_text", "hidden_size": 2560, "intermediate_size": 9728,
                    "num_hidden_layers": 36, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
                    "hidden_act": "silu", "rms_norm_eps": 1e-6, "vocab_size": 151936, "attention_bias": False,
                    "rope_theta": 5000000, "tie_word_embeddings": True,
                    "rope_scaling": {"mrope_interleaved": True, "mrope_section": [24, 20, 20], "rope_type": "default"}},
    "vision_config": {"model_type": "qwen3_vl", "depth": 24, "hidden_size": 1024, "intermediate_size": 4096,
                      "num_heads": 16, "hidden_act": "gelu_pytorch_tanh", "in_channels": 3, "patch_size": 16,
                      "spatial_merge_size": 2, "temporal_patch_size": 2, "out_hidden_size": 2560,
                      "num_position_embeddings": 2304, "deepstack_visual_indexes": [5, 11, 17]},
}


def test_hub_config_is_read():
    from attnmap_tools.export.qwen3_vl_config import parse_qwen3_vl_config

    cfg = family_for(HUB_4B).read_config(HUB_4B)
    assert cfg is not None and family_for(HUB_4B).name == "qwen3_vl"
    cfg = parse_qwen3_vl_config(HUB_4B)
    t, v = cfg.text, cfg.vision
    assert (t.head_dim, t.num_attention_heads, t.hidden_size, t.mrope_section) == (128, 32, 2560, [24, 20, 20])
    assert t.rope_theta == 5000000.0 and t.tie_word_embeddings and not t.attention_bias and t.qk_norm
    assert (v.depth, v.patch_size, v.deepstack_visual_indexes, v.num_position_embeddings) == (24, 16, [5, 11, 17], 2304)
    assert v.window_size == 0 and v.fullatt_block_indexes == list(range(24))


@pytest.mark.parametrize("change, message", [
    ({"text_config": dict(HUB_4B["text_config"], rope_scaling={"mrope_interleaved": False, "mrope_section": [24, 20, 20]})},
     "mrope_interleaved=false is not supported"),
    ({"text_config": dict(HUB_4B["text_config"], hidden_act="gelu")}, "text hidden_act 'gelu' is not supported"),
    ({"vision_config": dict(HUB_4B["vision_config"], hidden_act="silu")}, "vision hidden_act 'silu' is not supported"),
    ({"vision_config": dict(HUB_4B["vision_config"], num_position_embeddings=2300)}, "is not a square"),
    ({"vision_config": dict(HUB_4B["vision_config"], deepstack_visual_indexes=[5, 24])}, "out of range for depth 24"),
    ({"vision_config": dict(HUB_4B["vision_config"], out_hidden_size=2048)}, "out_hidden_size 2048 != text hidden_size 2560"),
])
def test_unsupported_settings_are_refused_in_one_line(change, message):
    from attnmap_tools.export.qwen3_vl_config import parse_qwen3_vl_config

    with pytest.raises(ConfigError, match=message) as err:
        parse_qwen3_vl_config(dict(HUB_4B, **change))
    assert "\n" not in str(err.value)
