"""Model hyper-parameters of family qwen3_vl (transformers' `qwen3_vl` model_type, dense Qwen3-VL).

The released files nest the text parameters under `text_config` (rope_scaling / rope_parameters with
mrope_section and mrope_interleaved) and the tower's under `vision_config`. Defaults are those of
transformers 5's Qwen3VLTextConfig / Qwen3VLVisionConfig.

The dataclasses carry the attribute names the shared code reads (text.py's DecoderLayer, metadata.py):
the decoder's `head_dim` is explicit here (Qwen3-VL-4B has 32 heads of 128 on a 2560 width), and the
tower's window fields say "no windows" (every block is full attention).
"""
import dataclasses
from typing import List, Optional

from .config import ConfigError, _TextSources, _pick, _rope_dict


@dataclasses.dataclass
class Qwen3VLTextConfig:
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    rms_norm_eps: float
    rope_theta: float
    mrope_section: List[int]
    tie_word_embeddings: bool
    attention_bias: bool = False
    qk_norm: bool = True


@dataclasses.dataclass
class Qwen3VLVisionConfig:
    depth: int
    hidden_size: int
    num_heads: int
    intermediate_size: int
    patch_size: int
    temporal_patch_size: int
    spatial_merge_size: int
    out_hidden_size: int
    in_channels: int
    rope_theta: float
    num_position_embeddings: int
    deepstack_visual_indexes: List[int]
    hidden_act: str
    # What metadata.py records for every tower: no windows, all blocks full attention.
    window_size: int = 0
    fullatt_block_indexes: List[int] = dataclasses.field(default_factory=list)
    # Videos are not time-scaled: each temporal patch is its own position run (metadata video
    # "temporal_positions" "frame_runs", tokens_per_second null).
    tokens_per_second: Optional[float] = None
    # metadata vision.norm / vision.mlp in the words of the other windowless tower (Qwen2-VL's):
    # LayerNorm blocks, an fc1/act/fc2 MLP.
    norm: str = "layer"
    mlp: str = "fc"


@dataclasses.dataclass
class Qwen3VLConfig:
    text: Qwen3VLTextConfig
    vision: Qwen3VLVisionConfig
    image_token_id: int
    video_token_id: int
    vision_start_token_id: int
    vision_end_token_id: int
    name_or_path: Optional[str]
    focus_layer: Optional[int]


# transformers' ACT2FN names of the tower MLP that the module implements (qwen3_vl_vision.py).
VISION_ACTS = ("gelu_pytorch_tanh", "gelu")


def parse_qwen3_vl_config(raw: dict) -> Qwen3VLConfig:
    """The config reader of family qwen3_vl; families.family_for has already checked model_type."""
    src = _TextSources(raw, "Qwen3")
    text_raw, tsrc, rope, need = src.text_raw, src.sources, src.rope, src.need
    hidden = int(need("hidden_size"))
    heads = int(need("num_attention_heads"))
    head_dim = int(_pick(["head_dim"], tsrc, 128))
    kv = src.check_common(heads)
    if rope.get("mrope_interleaved") is False:
        raise ConfigError("config.json: mrope_interleaved=false is not supported (Qwen3-VL interleaves M-RoPE)")
    mrope = [int(x) for x in rope.get("mrope_section", [24, 20, 20])]
    if len(mrope) != 3 or sum(mrope) != head_dim // 2:
        raise ConfigError(f"config.json: mrope_section {mrope} must be 3 numbers summing to head_dim/2 = {head_dim // 2}")
    tie = src.tie_word_embeddings()
    text = Qwen3VLTextConfig(
        hidden_size=hidden, num_hidden_layers=int(need("num_hidden_layers")), num_attention_heads=heads,
        num_key_value_heads=kv, head_dim=head_dim, intermediate_size=int(need("intermediate_size")),
        vocab_size=int(need("vocab_size")), rms_norm_eps=float(_pick(["rms_norm_eps"], tsrc, 1e-6)),
        rope_theta=float(rope.get("rope_theta", _pick(["rope_theta"], tsrc, 500000.0))),
        mrope_section=mrope, tie_word_embeddings=tie,
        attention_bias=bool(_pick(["attention_bias"], tsrc, False)))

    v = raw.get("vision_config") or {}
    vrope = _rope_dict(v)
    vact = v.get("hidden_act", "gelu_pytorch_tanh")
    if vact not in VISION_ACTS:
        raise ConfigError(f"config.json: vision hidden_act {vact!r} is not supported ({', '.join(VISION_ACTS)})")
    depth = int(v.get("depth", 27))
    deepstack = [int(i) for i in v.get("deepstack_visual_indexes", [8, 16, 24])]
    vision = Qwen3VLVisionConfig(
        depth=depth, hidden_size=int(v.get("hidden_size", 1152)), num_heads=int(v.get("num_heads", 16)),
        intermediate_size=int(v.get("intermediate_size", 4304)), patch_size=int(v.get("patch_size", 16)),
        temporal_patch_size=int(v.get("temporal_patch_size", 2)),
        spatial_merge_size=int(v.get("spatial_merge_size", 2)),
        out_hidden_size=int(v.get("out_hidden_size", 3584)), in_channels=int(v.get("in_channels", 3)),
        rope_theta=float(vrope.get("rope_theta", 10000.0)),
        num_position_embeddings=int(v.get("num_position_embeddings", 2304)),
        deepstack_visual_indexes=deepstack, hidden_act=vact,
        fullatt_block_indexes=list(range(depth)))
    if vision.out_hidden_size != text.hidden_size:
        raise ConfigError(f"config.json: vision out_hidden_size {vision.out_hidden_size} != text hidden_size "
                          f"{text.hidden_size}")
    if vision.hidden_size % vision.num_heads:
        raise ConfigError("config.json: vision hidden_size is not divisible by num_heads")
    side = int(vision.num_position_embeddings ** 0.5)
    if side * side != vision.num_position_embeddings:
        raise ConfigError(f"config.json: vision num_position_embeddings {vision.num_position_embeddings} is not a square")
    if any(i < 0 or i >= depth for i in deepstack):
        raise ConfigError(f"config.json: deepstack_visual_indexes {deepstack} out of range for depth {depth}")
    if len(deepstack) > text.num_hidden_layers:
        raise ConfigError(f"config.json: {len(deepstack)} deepstack levels for {text.num_hidden_layers} decoder layers")

    def token(key, default):
        return int(_pick([key], [raw, text_raw], default))

    focus = raw.get("attnmap_focus_layer")
    return Qwen3VLConfig(
        text=text, vision=vision, image_token_id=token("image_token_id", 151655),
        video_token_id=token("video_token_id", 151656),
        vision_start_token_id=token("vision_start_token_id", 151652),
        vision_end_token_id=token("vision_end_token_id", 151653),
        name_or_path=raw.get("_name_or_path"), focus_layer=None if focus is None else int(focus))
