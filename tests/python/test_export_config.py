"""config.json / preprocessor_config.json parsing checked against transformers' own config classes."""
import json

import pytest

from attnmap_tools.export.config import ConfigError, parse_config, parse_qwen2_vl_config
from attnmap_tools.export.families import family_for
from attnmap_tools.export.metadata import preprocess_section

# The layout of the hub's Qwen/Qwen2.5-VL-3B-Instruct config.json (flat text parameters, rope_scaling).
HUB_3B = {
    "architectures": ["Qwen2_5_VLForConditionalGeneration"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "eos_token_id": 151645, "vision_start_token_id": 151652, "vision_end_token_id": 151653,
    "vision_token_id": 151654, "image_token_id": 151655, "video_token_id": 151656, "hidden_act": "silu",
    "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 11008, "max_position_embeddings": 128000,
    "max_window_layers": 70, "model_type": "qwen2_5_vl", "num_attention_heads": 16, "num_hidden_layers": 36,
    "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
    "tie_word_embeddings": True, "torch_dtype": "bfloat16", "use_cache": True, "use_sliding_window": False,
    "vision_config": {"depth": 32, "hidden_act": "silu", "hidden_size": 1280, "intermediate_size": 3420,
                      "num_heads": 16, "in_chans": 3, "out_hidden_size": 2048, "patch_size": 14,
                      "spatial_merge_size": 2, "spatial_patch_size": 14, "window_size": 112,
                      "fullatt_block_indexes": [7, 15, 23, 31], "tokens_per_second": 2, "temporal_patch_size": 2},
    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}, "vocab_size": 151936,
}


# The layout of the hub's Qwen/Qwen2-VL-*-Instruct config.json files: flat text parameters, rope_scaling,
# a vision_config with embed_dim / mlp_ratio / in_chans, hidden_size = the tower's output width, and no
# hidden_act (transformers' default quick_gelu). Text shapes of 2B, 7B and 72B.
QWEN2_VL_TEXT = {
    "2B": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
               num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True, max_window_layers=28),
    "7B": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
               num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False, max_window_layers=28),
    "72B": dict(hidden_size=8192, intermediate_size=29568, num_hidden_layers=80, num_attention_heads=64,
                num_key_value_heads=8, vocab_size=152064, tie_word_embeddings=False, max_window_layers=80),
}
# Their parameter counts (the hub's safetensors totals: 2.21 B, 8.29 B, 73.4 B), bf16 bytes = 2x.
QWEN2_VL_PARAMETERS = {"2B": 2_208_985_600, "7B": 8_291_375_616, "72B": 73_405_560_320}


def hub_qwen2_vl(size):
    text = QWEN2_VL_TEXT[size]
    return {
        "architectures": ["Qwen2VLForConditionalGeneration"], "attention_dropout": 0.0, "bos_token_id": 151643,
        "eos_token_id": 151645, "vision_start_token_id": 151652, "vision_end_token_id": 151653,
        "vision_token_id": 151654, "image_token_id": 151655, "video_token_id": 151656, "hidden_act": "silu",
        "initializer_range": 0.02, "max_position_embeddings": 32768, "model_type": "qwen2_vl",
        "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768, "torch_dtype": "bfloat16",
        "use_cache": True, "use_sliding_window": False, **text,
        "vision_config": {"depth": 32, "embed_dim": 1280, "mlp_ratio": 4, "num_heads": 16, "in_chans": 3,
                          "hidden_size": text["hidden_size"], "patch_size": 14, "spatial_merge_size": 2,
                          "spatial_patch_size": 14, "temporal_patch_size": 2},
        "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
    }


def _hf_view(raw):
    """What transformers makes of the same dict (text params, RoPE, vision)."""
    from transformers import Qwen2_5_VLConfig

    cfg = Qwen2_5_VLConfig(**json.loads(json.dumps(raw)))
    t, v = cfg.text_config, cfg.vision_config
    return dict(hidden=t.hidden_size, layers=t.num_hidden_layers, heads=t.num_attention_heads,
                kv=t.num_key_value_heads, inter=t.intermediate_size, vocab=t.vocab_size, eps=t.rms_norm_eps,
                theta=t.rope_parameters["rope_theta"], mrope=list(t.rope_parameters["mrope_section"]),
                tie=cfg.tie_word_embeddings, depth=v.depth, vhidden=v.hidden_size, vheads=v.num_heads,
                vinter=v.intermediate_size, full=list(v.fullatt_block_indexes), out=v.out_hidden_size,
                window=v.window_size, image=cfg.image_token_id)


def _our_view(raw):
    c = parse_config(raw)
    t, v = c.text, c.vision
    return dict(hidden=t.hidden_size, layers=t.num_hidden_layers, heads=t.num_attention_heads,
                kv=t.num_key_value_heads, inter=t.intermediate_size, vocab=t.vocab_size, eps=t.rms_norm_eps,
                theta=t.rope_theta, mrope=t.mrope_section, tie=t.tie_word_embeddings, depth=v.depth,
                vhidden=v.hidden_size, vheads=v.num_heads, vinter=v.intermediate_size, full=v.fullatt_block_indexes,
                out=v.out_hidden_size, window=v.window_size, image=c.image_token_id)


def _nested(raw):
    """The same model as transformers 5 saves it: text parameters under text_config."""
    from transformers import Qwen2_5_VLConfig

    return json.loads(Qwen2_5_VLConfig(**json.loads(json.dumps(raw))).to_json_string())


def test_hub_flat_config_matches_transformers():
    assert _our_view(HUB_3B) == _hf_view(HUB_3B)
    assert parse_config(HUB_3B).vision.in_channels == 3


def test_v5_nested_config_matches_transformers():
    nested = _nested(HUB_3B)
    assert "text_config" in nested
    assert _our_view(nested) == _hf_view(nested) == _hf_view(HUB_3B)


def test_untied_7b_style_config():
    raw = dict(HUB_3B, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
               num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False,
               vision_config=dict(HUB_3B["vision_config"], out_hidden_size=3584))
    assert _our_view(raw) == _hf_view(raw)
    assert parse_config(raw).text.head_dim == 128


@pytest.mark.parametrize("change, message", [
    ({"rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 20]}}, "mrope_section"),
    ({"use_sliding_window": True}, "use_sliding_window"),
    ({"hidden_act": "gelu"}, "hidden_act"),
])
def test_unsupported_configs_are_refused(change, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(dict(HUB_3B, **change))


@pytest.mark.parametrize("model_type", ["qwen3_vl_moe", "qwen3_5", "qwen3_vl_text", "llava", None])
def test_the_family_registry_refuses_other_model_types_naming_the_supported_ones(model_type):
    with pytest.raises(ConfigError) as err:
        family_for(dict(HUB_3B, model_type=model_type))
    assert str(err.value) == f"config.json has model_type {model_type!r}; attnmap supports only qwen2_5_vl, qwen2_vl, qwen3_vl"


def test_the_family_registry_knows_qwen2_5_vl_and_qwen2_vl():
    family = family_for(HUB_3B)
    assert family.name == "qwen2_5_vl" and family.read_config(HUB_3B).text.num_hidden_layers == 36
    raw = hub_qwen2_vl("2B")
    family = family_for(raw)
    assert family.name == "qwen2_vl" and family.read_config(raw).vision.norm == "layer"


def _hf_qwen2_vl_view(raw):
    from transformers import Qwen2VLConfig

    cfg = Qwen2VLConfig(**json.loads(json.dumps(raw)))
    t, v = cfg.text_config, cfg.vision_config
    return dict(hidden=t.hidden_size, layers=t.num_hidden_layers, heads=t.num_attention_heads,
                kv=t.num_key_value_heads, inter=t.intermediate_size, vocab=t.vocab_size, eps=t.rms_norm_eps,
                theta=t.rope_parameters["rope_theta"], mrope=list(t.rope_parameters["mrope_section"]),
                tie=cfg.tie_word_embeddings, depth=v.depth, vhidden=v.embed_dim, vheads=v.num_heads,
                vinter=int(v.embed_dim * v.mlp_ratio), out=v.hidden_size, act=v.hidden_act,
                vtheta=v.rope_parameters["rope_theta"], patch=v.patch_size, channels=v.in_channels,
                image=cfg.image_token_id, video=cfg.video_token_id)


def _our_qwen2_vl_view(raw):
    c = parse_qwen2_vl_config(raw)
    t, v = c.text, c.vision
    return dict(hidden=t.hidden_size, layers=t.num_hidden_layers, heads=t.num_attention_heads,
                kv=t.num_key_value_heads, inter=t.intermediate_size, vocab=t.vocab_size, eps=t.rms_norm_eps,
                theta=t.rope_theta, mrope=t.mrope_section, tie=t.tie_word_embeddings, depth=v.depth,
                vhidden=v.hidden_size, vheads=v.num_heads, vinter=v.intermediate_size, out=v.out_hidden_size,
                act=v.hidden_act, vtheta=v.rope_theta, patch=v.patch_size, channels=v.in_channels,
                image=c.image_token_id, video=c.video_token_id)


@pytest.mark.parametrize("size", sorted(QWEN2_VL_TEXT))
def test_qwen2_vl_hub_configs_match_transformers_flat_and_nested(size):
    """The released Qwen2-VL config.json layouts (flat, pre-v5) and their transformers 5 re-save
    (text_config nested) read as transformers reads them; the tower has no windows and every block is
    full attention; videos are not time-scaled."""
    from transformers import Qwen2VLConfig

    raw = hub_qwen2_vl(size)
    nested = json.loads(Qwen2VLConfig(**json.loads(json.dumps(raw))).to_json_string())
    assert "text_config" in nested
    assert _our_qwen2_vl_view(raw) == _hf_qwen2_vl_view(raw) == _our_qwen2_vl_view(nested) == _hf_qwen2_vl_view(nested)
    v = parse_qwen2_vl_config(raw).vision
    assert (v.window_size, v.fullatt_block_indexes, v.tokens_per_second) == (0, list(range(32)), None)
    assert (v.norm, v.mlp, v.hidden_act) == ("layer", "fc", "quick_gelu")


@pytest.mark.parametrize("size", sorted(QWEN2_VL_TEXT))
def test_qwen2_vl_released_shapes_have_the_hub_parameter_counts(size):
    """The module built from each released config (on the meta device: no memory) has the hub
    checkpoint's parameter count, so the sizes in docs/export.md (2 bytes each in bf16) follow."""
    import torch

    from attnmap_tools.export.model import AttnMapQwen2_VL

    cfg = parse_qwen2_vl_config(hub_qwen2_vl(size))
    with torch.device("meta"):
        module = AttnMapQwen2_VL(cfg)
    tied = cfg.text.tie_word_embeddings
    assert sum(p.numel() for p in module.parameters()) == QWEN2_VL_PARAMETERS[size]
    assert module.lm_head.weight.numel() == (0 if tied else cfg.text.vocab_size * cfg.text.hidden_size)


@pytest.mark.parametrize("change, message", [
    ({"hidden_act": "relu"}, "vision hidden_act 'relu' is not supported"),
    ({"hidden_size": 1024}, "vision output size 1024 != text hidden_size 1536"),
    ({"num_heads": 7}, "not divisible by num_heads"),
])
def test_unsupported_qwen2_vl_vision_configs_are_refused(change, message):
    raw = hub_qwen2_vl("2B")
    raw["vision_config"].update(change)
    with pytest.raises(ConfigError, match=message):
        parse_qwen2_vl_config(raw)


@pytest.mark.parametrize("pp", [
    {"min_pixels": 3136, "max_pixels": 12845056, "size": {"shortest_edge": 100, "longest_edge": 200}},
    {"size": {"shortest_edge": 6272, "longest_edge": 1003520}},
    {},
])
def test_preprocess_pixel_limits_match_hf_image_processor(pp, tmp_path):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    (tmp_path / "preprocessor_config.json").write_text(json.dumps(dict(pp, image_processor_type="Qwen2VLImageProcessor")))
    hf = Qwen2VLImageProcessorPil.from_pretrained(str(tmp_path))
    ours = preprocess_section(pp)
    assert (ours["min_pixels"], ours["max_pixels"]) == (hf.size.shortest_edge, hf.size.longest_edge)
    assert ours["patch_size"] == hf.patch_size and ours["merge_size"] == hf.merge_size
    assert ours["temporal_patch_size"] == hf.temporal_patch_size
    assert ours["image_mean"] == pytest.approx(list(hf.image_mean))
    assert ours["image_std"] == pytest.approx(list(hf.image_std))
    assert ours["rescale_factor"] == pytest.approx(hf.rescale_factor)
    assert ours["resample"] == "bicubic" and int(hf.resample) == 3
