"""attnmap-export on checkpoint variants and broken checkpoints: both hub key layouts, sharded
weights, flat (pre-v5) config.json, metadata contents, extra files, focus layer, clear errors."""
import json
import pathlib
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from attnmap_tools.testing import hf_reference as R
from attnmap_tools.export import exporter
from attnmap_tools.export.checkpoint import CheckpointError
from attnmap_tools.export.config import ConfigError

# torch.jit.load warns that TorchScript is deprecated; it is still the format libtorch loads.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# The design doc's metadata schema (docs/design.md): section -> keys.
SCHEMA = {
    "text": ["hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
             "intermediate_size", "vocab_size", "rms_norm_eps", "rope_theta", "mrope_section",
             "tie_word_embeddings"],
    "vision": ["depth", "hidden_size", "num_heads", "intermediate_size", "patch_size", "temporal_patch_size",
               "spatial_merge_size", "window_size", "fullatt_block_indexes", "out_hidden_size", "in_channels",
               "norm", "mlp", "hidden_act"],
    "tokens": ["image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id",
               "im_start_token_id", "im_end_token_id", "endoftext_token_id"],
    "chat": ["default_system_prompt"],
    "preprocess": ["patch_size", "temporal_patch_size", "merge_size", "min_pixels", "max_pixels", "image_mean",
                   "image_std", "rescale_factor", "resample", "do_convert_rgb"],
    "parameters": ["vision", "text", "total"],
    "exporter": ["attnmap_tools", "torch", "transformers"],
    "generation": ["source", "eos_token_ids", "repetition_penalty", "do_sample", "temperature", "top_p", "top_k"],
    "video": ["patch_size", "temporal_patch_size", "merge_size", "min_pixels", "max_pixels", "image_mean", "image_std",
              "rescale_factor", "resample", "do_convert_rgb", "min_frames", "max_frames", "fps", "num_frames",
              "do_sample_frames", "source", "tokens_per_second", "temporal_positions", "frame_sampling",
              "pixel_budget", "timestamp_text", "cap_pixels_per_frame", "max_video_tokens"],
}
TOP = ["format", "format_version", "model_family", "model_name", "dtype", "exporter", "text", "vision", "tokens",
       "chat", "preprocess", "parameters", "focus_layer", "generation", "video"]


def _quiet(*_args, **_kwargs):
    pass


def _load(pt):
    extra = {"attnmap/metadata.json": "", "attnmap/tokenizer.json": "", "attnmap/chat_template.jinja": ""}
    module = torch.jit.load(str(pt), map_location="cpu", _extra_files=extra)
    return module, extra


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    torch.set_num_threads(R.THREADS)
    work = tmp_path_factory.mktemp("ckpt_variants")
    ckpt = pathlib.Path(R.make_checkpoint(work / "ckpt", seed=2, tied=False, extra_config={"attnmap_focus_layer": 1}))
    pt = work / "base.pt"
    exporter.export(str(ckpt), str(pt), "fp32", log=_quiet)
    return dict(work=work, ckpt=ckpt, pt=pt)


def _copy_without_weights(src: pathlib.Path, dst: pathlib.Path) -> pathlib.Path:
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if not f.name.endswith(".safetensors"):
            shutil.copy(f, dst / f.name)
    return dst


def _tensors(ckpt: pathlib.Path) -> dict:
    with safe_open(str(ckpt / "model.safetensors"), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def test_metadata_follows_the_design_schema(base):
    _, extra = _load(base["pt"])
    meta = json.loads(extra["attnmap/metadata.json"])
    assert sorted(meta) == sorted(TOP)
    for section, keys in SCHEMA.items():
        assert sorted(meta[section]) == sorted(keys), section
    assert meta["format"] == "attnmap-model" and meta["format_version"] == 2
    assert meta["model_family"] == "qwen2_5_vl" and meta["dtype"] == "float32"
    assert meta["model_name"] == "ckpt"
    assert meta["focus_layer"] == 1
    cfg = json.loads((base["ckpt"] / "config.json").read_text())
    text, vision = cfg["text_config"], cfg["vision_config"]
    assert meta["text"]["head_dim"] == text["hidden_size"] // text["num_attention_heads"]
    assert meta["text"]["mrope_section"] == text["rope_parameters"]["mrope_section"]
    assert meta["text"]["tie_word_embeddings"] is False
    assert meta["vision"]["fullatt_block_indexes"] == vision["fullatt_block_indexes"]
    assert meta["tokens"] == {"image_token_id": 151655, "video_token_id": 151656, "vision_start_token_id": 151652,
                              "vision_end_token_id": 151653, "im_start_token_id": 151644, "im_end_token_id": 151645,
                              "endoftext_token_id": 151643}
    assert meta["chat"]["default_system_prompt"] == "You are a helpful assistant."
    pre = meta["preprocess"]
    assert (pre["min_pixels"], pre["max_pixels"], pre["resample"]) == (3136, 12845056, "bicubic")
    assert pre["image_mean"] == [0.48145466, 0.4578275, 0.40821073]
    # Parameter counts from the checkpoint tensors themselves.
    tensors = _tensors(base["ckpt"])
    vision_count = sum(t.numel() for k, t in tensors.items() if k.startswith("visual."))
    total = sum(t.numel() for t in tensors.values())
    assert meta["parameters"] == {"vision": vision_count, "text": total - vision_count, "total": total}


def test_extra_files_are_verbatim(base):
    _, extra = _load(base["pt"])
    assert extra["attnmap/tokenizer.json"] == (base["ckpt"] / "tokenizer.json").read_bytes()
    template = json.loads((base["ckpt"] / "chat_template.json").read_text())["chat_template"]
    assert extra["attnmap/chat_template.jinja"].decode() == template


def test_new_key_layout_sharded_flat_config_gives_identical_model(base):
    """model.visual.* / model.language_model.* keys, two shards with an index, pre-v5 flat config."""
    dst = _copy_without_weights(base["ckpt"], base["work"] / "variant")
    renamed = {}
    for key, t in _tensors(base["ckpt"]).items():
        if key.startswith("visual."):
            key = "model." + key
        elif key.startswith("model."):
            key = "model.language_model." + key[len("model."):]
        renamed[key] = t
    keys = sorted(renamed)
    shards = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    weight_map = {}
    for name, part in shards.items():
        save_file({k: renamed[k].contiguous() for k in part}, str(dst / name))
        weight_map.update({k: name for k in part})
    (dst / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    cfg = json.loads((dst / "config.json").read_text())
    text = cfg.pop("text_config")
    rope = text.pop("rope_parameters")
    cfg.update(text)
    cfg["rope_theta"] = rope["rope_theta"]
    cfg["rope_scaling"] = {"type": "mrope", "mrope_section": rope["mrope_section"]}
    cfg["model_type"] = "qwen2_5_vl"
    (dst / "config.json").write_text(json.dumps(cfg))
    pt = base["work"] / "variant.pt"
    exporter.export(str(dst), str(pt), "fp32", log=_quiet)
    a, extra_a = _load(base["pt"])
    b, extra_b = _load(pt)
    sa, sb = a.state_dict(), b.state_dict()
    assert sorted(sa) == sorted(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    meta_a = json.loads(extra_a["attnmap/metadata.json"])
    meta_b = json.loads(extra_b["attnmap/metadata.json"])
    meta_a.pop("model_name"), meta_b.pop("model_name")
    assert meta_a == meta_b


def test_bf16_export_runs_text_only_prompt(base):
    pt = base["work"] / "bf16.pt"
    exporter.export(str(base["ckpt"]), str(pt), "bf16", focus_layer=3, log=_quiet)
    module, extra = _load(pt)
    meta = json.loads(extra["attnmap/metadata.json"])
    assert meta["dtype"] == "bfloat16" and meta["focus_layer"] == 3  # the flag beats config.json
    assert all(p.dtype == torch.bfloat16 for p in module.parameters())
    ids = torch.tensor([151644, 872, 198, 9707, 1879, 151645, 198, 151644, 77091, 198])
    pos = torch.arange(len(ids)).expand(3, -1).contiguous()
    out = module(_inputs(ids, torch.zeros(0, 1176), torch.zeros(0, 3, dtype=torch.long), pos), [2],
                 torch.tensor([len(ids) - 1]), "mean", True, True)
    assert sorted(out) == ["layers.2", "logits"]
    rows, logits = [out["layers.2"]], out["logits"]
    assert rows[0].dtype == torch.float32 and rows[0].shape == (1, 1, len(ids))
    assert abs(rows[0].sum().item() - 1.0) < 1e-3
    assert logits.dtype == torch.float32 and logits.shape == (151936,) and torch.isfinite(logits).all()


def _inputs(input_ids, pixel_values, image_grid_thw, position_ids):
    return {"input_ids": input_ids, "pixel_values": pixel_values, "image_grid_thw": image_grid_thw,
            "position_ids": position_ids}


def test_forward_returns_only_the_outputs_asked_for(base):
    module, extra = _load(base["pt"])
    heads = json.loads(extra["attnmap/metadata.json"])["text"]["num_attention_heads"]
    ids = torch.tensor([1, 2, 3])
    pos = torch.arange(3).expand(3, -1).contiguous()
    inputs = _inputs(ids, torch.zeros(0, 1176), torch.zeros(0, 3, dtype=torch.long), pos)
    out = module(inputs, [3, 1], torch.tensor([2]), "keep", False, False)
    assert sorted(out) == ["layers.1", "layers.3"]
    assert out["layers.3"].shape == (heads, 1, 3)
    assert list(module(inputs, [], torch.zeros(0, dtype=torch.long), "max", True, True)) == ["logits"]


def test_forward_rejects_bad_arguments(base):
    module, _ = _load(base["pt"])
    ids = torch.tensor([1, 2, 3])
    pos = torch.arange(3).expand(3, -1).contiguous()
    none_px, none_grid = torch.zeros(0, 1176), torch.zeros(0, 3, dtype=torch.long)
    inputs = _inputs(ids, none_px, none_grid, pos)
    with pytest.raises(Exception, match="layer 4 out of range"):
        module(inputs, [4], torch.tensor([2]), "keep", False, False)
    with pytest.raises(Exception, match="query_positions"):
        module(inputs, [0], torch.tensor([3]), "keep", False, False)
    with pytest.raises(Exception, match="head_reduce must be one of keep, mean, max, got 'sum'"):
        module(inputs, [0], torch.tensor([2]), "sum", False, False)
    with pytest.raises(Exception, match="image tokens"):
        module(_inputs(torch.tensor([1, 151655, 3]), none_px, none_grid, pos), [0], torch.tensor([2]), "keep",
               False, False)
    missing = {k: v for k, v in inputs.items() if k != "position_ids"}
    with pytest.raises(Exception, match="inputs has no 'position_ids'"):
        module(missing, [0], torch.tensor([2]), "keep", False, False)
    with pytest.raises(Exception, match="inputs has an unknown key 'attention_mask'"):
        module(dict(inputs, attention_mask=torch.ones(3)), [0], torch.tensor([2]), "keep", False, False)


@pytest.mark.parametrize("model_type", ["llava", "qwen3_vl_moe", "qwen3_5"])
def test_other_model_type_is_refused_naming_the_supported_ones(base, tmp_path, model_type):
    dst = tmp_path / model_type
    dst.mkdir()
    (dst / "config.json").write_text(json.dumps({"model_type": model_type}))
    with pytest.raises(ConfigError) as err:
        exporter.export(str(dst), str(tmp_path / "x.pt"), log=_quiet)
    assert str(err.value) == f"config.json has model_type '{model_type}'; attnmap supports only qwen2_5_vl, qwen2_vl, qwen3_vl"
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.parametrize("model_type", ["qwen3_vl_moe", "qwen3_5"])
def test_unsupported_model_type_is_one_line_from_the_cli(tmp_path, model_type):
    dst = tmp_path / model_type
    dst.mkdir()
    (dst / "config.json").write_text(json.dumps({"model_type": model_type}))
    proc = subprocess.run([sys.executable, "-m", "attnmap_tools.export", "--checkpoint", str(dst),
                           "--out", str(tmp_path / "x.pt")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"export.py: error: config.json has model_type '{model_type}'; attnmap supports only qwen2_5_vl, qwen2_vl, qwen3_vl"]


def test_qwen2_vl_hub_layouts_give_identical_models(tmp_path):
    """A tiny Qwen2-VL checkpoint as transformers 5 saves it, and the same weights in the released
    checkpoints' layout (flat config.json with rope_scaling and vision_config in_chans, no hidden_act;
    model.visual.* / model.language_model.* keys in two shards), export to the same module and metadata;
    the metadata names the family and its tower. A Qwen2-VL tensor missing is named."""
    torch.set_num_threads(R.THREADS)
    ckpt = pathlib.Path(R.make_checkpoint(tmp_path / "ckpt", seed=4, tied=False, family="qwen2_vl"))
    pt = tmp_path / "saved.pt"
    meta = exporter.export(str(ckpt), str(pt), "fp32", log=_quiet)
    assert meta["model_family"] == "qwen2_vl"
    assert sorted(meta) == sorted(TOP)
    for section, keys in SCHEMA.items():
        assert sorted(meta[section]) == sorted(keys), section
    assert (meta["vision"]["norm"], meta["vision"]["mlp"], meta["vision"]["hidden_act"]) == ("layer", "fc", "quick_gelu")
    assert meta["vision"]["window_size"] == 0 and meta["vision"]["fullatt_block_indexes"] == [0, 1, 2, 3]
    assert (meta["video"]["temporal_positions"], meta["video"]["tokens_per_second"]) == ("index", None)
    assert (meta["video"]["frame_sampling"], meta["video"]["pixel_budget"], meta["video"]["timestamp_text"]) == \
        ("stride", "frame", None)

    dst = _copy_without_weights(ckpt, tmp_path / "hub")
    renamed = {}
    for key, t in _tensors(ckpt).items():
        if key.startswith("visual."):
            key = "model." + key
        elif key.startswith("model."):
            key = "model.language_model." + key[len("model."):]
        renamed[key] = t
    assert "model.visual.blocks.0.norm1.bias" in renamed and "model.visual.merger.ln_q.bias" in renamed
    keys = sorted(renamed)
    shards = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    weight_map = {}
    for name, part in shards.items():
        save_file({k: renamed[k].contiguous() for k in part}, str(dst / name))
        weight_map.update({k: name for k in part})
    (dst / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    cfg = json.loads((dst / "config.json").read_text())
    text = cfg.pop("text_config")
    rope = text.pop("rope_parameters")
    assert text.pop("model_type") == "qwen2_vl_text"
    cfg.update(text)
    cfg["rope_theta"] = rope["rope_theta"]
    cfg["rope_scaling"] = {"type": "mrope", "mrope_section": rope["mrope_section"]}
    vision = cfg["vision_config"]
    vision["in_chans"] = vision.pop("in_channels")
    assert vision.pop("hidden_act") == "quick_gelu"  # the hub files leave it to the default
    vision.pop("rope_parameters")
    vision.pop("model_type")
    (dst / "config.json").write_text(json.dumps(cfg))
    pt_hub = tmp_path / "hub.pt"
    meta_hub = exporter.export(str(dst), str(pt_hub), "fp32", log=_quiet)
    a, b = _load(pt)[0].state_dict(), _load(pt_hub)[0].state_dict()
    assert sorted(a) == sorted(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    meta.pop("model_name"), meta_hub.pop("model_name")
    assert meta == meta_hub

    broken = _copy_without_weights(ckpt, tmp_path / "broken")
    tensors = _tensors(ckpt)
    del tensors["visual.blocks.2.norm2.bias"]
    save_file(tensors, str(broken / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"weights do not match a Qwen2-VL model with this config.json:\n"
                                              r"  missing tensor visual.blocks.2.norm2.bias \(expected shape \[32\]\)"):
        exporter.export(str(broken), str(tmp_path / "x.pt"), log=_quiet)


def test_missing_and_mismatched_tensors_are_named(base, tmp_path):
    dst = _copy_without_weights(base["ckpt"], tmp_path / "broken")
    tensors = _tensors(base["ckpt"])
    del tensors["model.layers.1.self_attn.q_proj.bias"]
    tensors["visual.merger.mlp.2.weight"] = torch.zeros(5, 7)
    save_file(tensors, str(dst / "model.safetensors"))
    with pytest.raises(CheckpointError) as err:
        exporter.export(str(dst), str(tmp_path / "x.pt"), log=_quiet)
    msg = str(err.value)
    assert "missing tensor model.layers.1.self_attn.q_proj.bias (expected shape [64])" in msg
    assert "tensor visual.merger.mlp.2.weight: expected shape [64, 128], found [5, 7]" in msg


def test_cli_error_exit_code_keeps_previous_output(base, tmp_path):
    dst = _copy_without_weights(base["ckpt"], tmp_path / "noweights")
    out = tmp_path / "model.pt"
    out.write_bytes(b"previous")
    proc = R.export_checkpoint(dst, out)
    assert proc.returncode == 2
    assert "no *.safetensors weights" in proc.stderr and "Traceback" not in proc.stderr
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "noweights"]


def test_focus_layer_out_of_range(base, tmp_path):
    with pytest.raises(exporter.ExportError, match="focus layer 4 out of range"):
        exporter.export(str(base["ckpt"]), str(tmp_path / "x.pt"), focus_layer=4, log=_quiet)


def test_old_torch_is_refused():
    with pytest.raises(exporter.ExportError, match=r"torch >= 2\.1"):
        exporter.check_torch_version("2.0.1+cu118")
    exporter.check_torch_version("2.1.0")
    exporter.check_torch_version(torch.__version__)


def test_exported_file_is_readable_by_others_as_umask_allows(base, tmp_path):
    # An installed attnmap's bundled model must be readable by every user (0644 under umask 022),
    # not 0600 like the private temporary file the export is written through.
    import os
    import stat

    old = os.umask(0o022)
    try:
        pt = tmp_path / "shared.pt"
        exporter.export(str(base["ckpt"]), str(pt), "fp32", log=_quiet)
        assert stat.S_IMODE(pt.stat().st_mode) == 0o644
        os.umask(0o027)
        exporter.export(str(base["ckpt"]), str(pt), "fp32", log=_quiet)
        assert stat.S_IMODE(pt.stat().st_mode) == 0o640
    finally:
        os.umask(old)
