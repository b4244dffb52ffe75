"""Random-weight Qwen2.5-VL checkpoints in the real 3B/7B shapes, for benchmarks.

The folder is laid out like the hub's Qwen/Qwen2.5-VL-7B-Instruct: a flat config.json as the hub ships
it (text parameters at the top level, `rope_scaling` {type mrope}), sharded safetensors with the hub's
key names (`visual.*`, `model.*`, `lm_head.weight`), the real Qwen tokenizer, preprocessor config and
chat template (from tiny.py). Any transformers that reads the hub checkpoints reads this one.

Tensors are drawn one at a time and streamed into the safetensors files, so writing a 16 GB 7B
checkpoint needs RAM for the largest tensor only (the 1 GB embedding), never a model in memory.
Linear/conv/embedding weights and biases ~ N(0, std), RMSNorm gains 1 (as transformers' own init).
"""
import json
import pathlib
import struct
import time
from typing import Dict, List, Optional, Tuple

import torch

from ..export.config import parse_config
from .tiny import tiny_config_dict, write_processor_files

# Text parameters of the hub config.json files (docs: /work/shared/docs/qwen2_5_vl_spec.md section 6).
TEXT_SHAPES = {
    "7b": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
               num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False, max_window_layers=28),
    "3b": dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
               num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True, max_window_layers=70),
}
# The vision tower is the same in every Qwen2.5-VL size; out_hidden_size follows the text width.
VISION = dict(depth=32, hidden_act="silu", hidden_size=1280, intermediate_size=3420, num_heads=16, in_chans=3,
              patch_size=14, spatial_merge_size=2, spatial_patch_size=14, window_size=112,
              fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2, temporal_patch_size=2)
TOKENS = dict(bos_token_id=151643, eos_token_id=151645, vision_start_token_id=151652, vision_end_token_id=151653,
              vision_token_id=151654, image_token_id=151655, video_token_id=151656)
DTYPES = {"bf16": (torch.bfloat16, "BF16", "bfloat16"), "fp16": (torch.float16, "F16", "float16"),
          "fp32": (torch.float32, "F32", "float32")}
SHAPES = ("7b", "3b", "tiny")


def _tiny_shape() -> Tuple[dict, dict]:
    """tiny.py's test dimensions, in the hub's flat layout."""
    d = tiny_config_dict(tie_word_embeddings=True)
    text = dict(d["text_config"])
    rope = text.pop("rope_parameters")
    text.update(rope_theta=rope["rope_theta"], mrope_section=rope["mrope_section"],
                tie_word_embeddings=d["tie_word_embeddings"], max_window_layers=text["num_hidden_layers"])
    for key in ("bos_token_id", "eos_token_id"):
        text.pop(key, None)
    vision = dict(d["vision_config"])
    vision["in_chans"] = vision.pop("in_channels")
    vision.update(hidden_act="silu", spatial_patch_size=vision["patch_size"])
    return text, vision


def hub_config(shape: str, dtype: str = "bf16", text_layers: Optional[int] = None,
               vision_layers: Optional[int] = None, seed: int = 0, std: float = 0.02) -> dict:
    """config.json as the hub ships it for that size, with the depth overrides applied."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; use one of {', '.join(SHAPES)}")
    if shape == "tiny":
        text, vision = _tiny_shape()
    else:
        text = dict(TEXT_SHAPES[shape], rope_theta=1000000.0, mrope_section=[16, 24, 24],
                    max_position_embeddings=128000)
        vision = dict(VISION, out_hidden_size=text["hidden_size"])
    if text_layers is not None:
        if text_layers < 1:
            raise ValueError("--text-layers must be >= 1")
        text["num_hidden_layers"] = text_layers
        text["max_window_layers"] = min(text["max_window_layers"], text_layers)
    if vision_layers is not None:
        if vision_layers < 1:
            raise ValueError("--vision-layers must be >= 1")
        vision["depth"] = vision_layers
        # Keep the full-attention blocks that still exist; a tower needs at least one.
        kept = [i for i in vision["fullatt_block_indexes"] if i < vision_layers]
        vision["fullatt_block_indexes"] = kept or [vision_layers - 1]
    mrope = text.pop("mrope_section")
    name = f"random-qwen2_5_vl-{shape}" + ("" if text_layers is None and vision_layers is None else
                                          f"-t{text['num_hidden_layers']}-v{vision['depth']}")
    return {
        "_name_or_path": name,
        "architectures": ["Qwen2_5_VLForConditionalGeneration"],
        "attention_dropout": 0.0,
        **TOKENS,
        "hidden_act": "silu",
        "initializer_range": 0.02,
        "model_type": "qwen2_5_vl",
        "rms_norm_eps": 1e-06,
        "sliding_window": 32768,
        "torch_dtype": DTYPES[dtype][2],
        "use_cache": True,
        "use_sliding_window": False,
        **text,
        "vision_config": vision,
        "rope_scaling": {"type": "mrope", "mrope_section": mrope},
        "attnmap_random_weights": {"shape": shape, "seed": seed, "std": std},
    }


def tensor_plan(config: dict) -> List[Tuple[str, List[int]]]:
    """(hub key, shape) of every stored tensor, in module order. Taken from attnmap's own module built
    on the meta device (its parameter names are the hub keys export.py loads); a tied lm_head is not
    stored, as on the hub."""
    from ..export.model import AttnMapQwen2_5_VL

    cfg = parse_config(config)
    with torch.device("meta"):
        module = AttnMapQwen2_5_VL(cfg)
    plan = []
    for name, p in module.named_parameters():
        if name == "lm_head.weight" and cfg.text.tie_word_embeddings:
            continue
        plan.append((name, list(p.shape)))
    return plan


def _is_norm_gain(name: str, shape: List[int]) -> bool:
    return len(shape) == 1 and ("norm" in name or "ln_q" in name)


def shard_plan(plan: List[Tuple[str, List[int]]], itemsize: int, max_shard_bytes: int) -> List[List[Tuple[str, List[int]]]]:
    shards: List[List[Tuple[str, List[int]]]] = [[]]
    size = 0
    for name, shape in plan:
        nbytes = itemsize * _numel(shape)
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append((name, shape))
        size += nbytes
    return shards


def _numel(shape: List[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _write_safetensors(path: pathlib.Path, tensors: List[Tuple[str, List[int]]], st_dtype: str, itemsize: int,
                       make) -> int:
    """Streams a safetensors file: 8-byte header length, JSON header, then each tensor's bytes as
    `make(name, shape)` produces it. Returns the bytes of tensor data written."""
    header: Dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in tensors:
        nbytes = itemsize * _numel(shape)
        header[name] = {"dtype": st_dtype, "shape": shape, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-len(blob) % 8)  # tensor data starts 8-byte aligned
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for name, shape in tensors:
            t = make(name, shape).contiguous().cpu()
            f.write(t.view(torch.uint8).numpy().data)
            del t
    tmp.replace(path)
    return offset


def make_random_checkpoint(out_dir: str, shape: str = "7b", dtype: str = "bf16", text_layers: Optional[int] = None,
                           vision_layers: Optional[int] = None, seed: int = 0, std: float = 0.02,
                           device: str = "cpu", max_shard_bytes: int = 4 << 30,
                           tokenizer_json: Optional[str] = None, log=print) -> dict:
    """Writes the folder; returns {"parameters", "bytes", "files", "config"}."""
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use bf16, fp16 or fp32")
    torch_dtype, st_dtype, _ = DTYPES[dtype]
    itemsize = torch.empty(0, dtype=torch_dtype).element_size()
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for old in list(out.glob("model*.safetensors")) + list(out.glob("model.safetensors.index.json")):
        old.unlink()  # a previous, differently sharded checkpoint must not leave stray shards
    config = hub_config(shape, dtype, text_layers, vision_layers, seed, std)
    plan = tensor_plan(config)
    gen = torch.Generator(device=device).manual_seed(seed)

    def make(name: str, shp: List[int]) -> torch.Tensor:
        if _is_norm_gain(name, shp):
            return torch.ones(shp, dtype=torch_dtype)
        return torch.empty(shp, dtype=torch_dtype, device=device).normal_(0.0, std, generator=gen)

    shards = shard_plan(plan, itemsize, max_shard_bytes)
    names = (["model.safetensors"] if len(shards) == 1 else
             [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))])
    total = 0
    t0 = time.time()
    weight_map = {}
    for fname, tensors in zip(names, shards):
        total += _write_safetensors(out / fname, tensors, st_dtype, itemsize, make)
        weight_map.update({n: fname for n, _ in tensors})
        log(f"  {fname}: {len(tensors)} tensors, {total / 2**30:.2f} GiB written so far ({time.time() - t0:.0f} s)")
    if len(shards) > 1:
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    (out / "config.json").write_text(json.dumps(config, indent=2))
    write_processor_files(out, tokenizer_json)
    params = sum(_numel(s) for _, s in plan)
    return {"parameters": params, "bytes": total, "files": names, "config": config}
