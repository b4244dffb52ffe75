"""Model hyper-parameters read from a Hugging Face Qwen2.5-VL or Qwen2-VL config.json.

Both families share the decoder (Qwen2 with M-RoPE), so the text parameters are read by one function;
the vision towers differ (vision_config keys, norms, MLP, windows) and have one reader each.
transformers 5 nests the text parameters under `text_config` (and may keep top-level copies); older
files keep them at the top level, with RoPE settings in `rope_scaling` and `rope_theta`. Both are read.
"""
import dataclasses
from typing import List, Optional

class ConfigError(ValueError):
    """The checkpoint's config.json cannot be exported (wrong model type, unsupported settings)."""


@dataclasses.dataclass
class TextConfig:
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    vocab_size: int
    rms_norm_eps: float
    rope_theta: float
    mrope_section: List[int]
    tie_word_embeddings: bool

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


@dataclasses.dataclass
class VisionConfig:
    depth: int
    hidden_size: int
    num_heads: int
    intermediate_size: int
    patch_size: int
    temporal_patch_size: int
    spatial_merge_size: int
    window_size: int
    fullatt_block_indexes: List[int]
    out_hidden_size: int
    in_channels: int
    rope_theta: float
    # The M-RoPE time scale of videos: temporal patch k sits at int(k * tokens_per_second *
    # second_per_grid_t) (Qwen2.5-VL); None: at k, the temporal patch index (Qwen2-VL).
    tokens_per_second: Optional[float]
    # What differs between the towers of the families (defaults: Qwen2.5-VL's). norm: "rms" (RMSNorm,
    # no bias) or "layer" (LayerNorm with bias) in the blocks and the merger's ln_q; mlp: "swiglu"
    # (gate/up/down) or "fc" (fc1, activation, fc2); window_size 0: no window attention (every block
    # attends within its whole frame; fullatt_block_indexes then lists every block).
    norm: str = "rms"
    mlp: str = "swiglu"
    hidden_act: str = "silu"


# The vision activations the exported module implements, by transformers' ACT2FN name.
VISION_ACTIVATIONS = ("silu", "quick_gelu", "gelu")


@dataclasses.dataclass
class ModelConfig:
    text: TextConfig
    vision: VisionConfig
    image_token_id: int
    video_token_id: int
    vision_start_token_id: int
    vision_end_token_id: int
    name_or_path: Optional[str]
    focus_layer: Optional[int]


def _rope_dict(d: dict) -> dict:
    rope = d.get("rope_parameters") or d.get("rope_scaling") or {}
    return rope if isinstance(rope, dict) else {}


def _pick(keys, sources, default=None):
    for src in sources:
        for key in keys:
            if key in src and src[key] is not None:
                return src[key]
    return default


class _TextSources:
    """Where a decoder parameter is read from, and the checks every Qwen decoder shares. Nested values
    win over top-level copies: transformers 5 reads text parameters from text_config."""

    def __init__(self, raw: dict, decoder_name: str):
        self.raw = raw
        self.text_raw = raw.get("text_config") or {}
        self.sources = [self.text_raw, raw]
        self.rope = {**_rope_dict(raw), **_rope_dict(self.text_raw)}
        self.decoder_name = decoder_name

    def get(self, key, default=None):
        return _pick([key], self.sources, default)

    def need(self, key):
        value = self.get(key)
        if value is None:
            raise ConfigError(f"config.json: text parameter {key!r} is missing")
        return value

    def check_common(self, heads: int) -> int:
        """silu, a default/mrope rope type and a whole number of query heads per kv head; returns the kv heads."""
        act = self.get("hidden_act", "silu")
        if act != "silu":
            raise ConfigError(f"config.json: text hidden_act {act!r} is not supported (the {self.decoder_name} "
                              f"decoder uses silu)")
        rope_type = self.rope.get("rope_type", self.rope.get("type", "default"))
        if rope_type not in ("default", "mrope"):
            raise ConfigError(f"config.json: rope type {rope_type!r} is not supported (expected default/mrope)")
        kv = int(self.get("num_key_value_heads", heads))
        if heads % kv:
            raise ConfigError(f"config.json: num_attention_heads {heads} not divisible by num_key_value_heads {kv}")
        return kv

    def tie_word_embeddings(self) -> bool:
        return bool(self.raw.get("tie_word_embeddings", False) or self.text_raw.get("tie_word_embeddings", False))


def _parse_text(raw: dict) -> TextConfig:
    """The decoder's parameters (the same Qwen2 decoder in both families)."""
    src = _TextSources(raw, "Qwen2")
    tsrc, rope, need = src.sources, src.rope, src.need
    hidden = int(need("hidden_size"))
    heads = int(need("num_attention_heads"))
    if hidden % heads:
        raise ConfigError(f"config.json: hidden_size {hidden} is not divisible by num_attention_heads {heads}")
    explicit_head_dim = _pick(["head_dim"], tsrc)
    if explicit_head_dim is not None and int(explicit_head_dim) != hidden // heads:
        raise ConfigError(f"config.json: head_dim {explicit_head_dim} != hidden_size/num_attention_heads "
                          f"({hidden // heads}); the Qwen2 decoder derives head_dim from the hidden size")
    kv = src.check_common(heads)
    if _pick(["use_sliding_window"], tsrc, False):
        raise ConfigError("config.json: use_sliding_window=true is not supported")
    mrope = [int(x) for x in rope.get("mrope_section", [16, 24, 24])]
    if 2 * sum(mrope) != hidden // heads:
        raise ConfigError(f"config.json: mrope_section {mrope} must sum to head_dim/2 = {hidden // heads // 2}")
    tie = src.tie_word_embeddings()
    text = TextConfig(
        hidden_size=hidden, num_hidden_layers=int(need("num_hidden_layers")), num_attention_heads=heads,
        num_key_value_heads=kv, intermediate_size=int(need("intermediate_size")),
        vocab_size=int(need("vocab_size")), rms_norm_eps=float(_pick(["rms_norm_eps"], tsrc, 1e-5)),
        rope_theta=float(rope.get("rope_theta", _pick(["rope_theta"], tsrc, 1000000.0))),
        mrope_section=mrope, tie_word_embeddings=tie)
    return text


def _model_config(raw: dict, text: TextConfig, vision: VisionConfig) -> ModelConfig:
    """The checks and token ids both families share."""
    text_raw = raw.get("text_config") or {}
    if vision.out_hidden_size != text.hidden_size:
        raise ConfigError(f"config.json: vision output size {vision.out_hidden_size} != text hidden_size "
                          f"{text.hidden_size}")
    if vision.hidden_size % vision.num_heads:
        raise ConfigError("config.json: vision hidden_size is not divisible by num_heads")

    def token(key, default):
        return int(_pick([key], [raw, text_raw], default))

    focus = raw.get("attnmap_focus_layer")
    return ModelConfig(
        text=text, vision=vision, image_token_id=token("image_token_id", 151655),
        video_token_id=token("video_token_id", 151656),
        vision_start_token_id=token("vision_start_token_id", 151652),
        vision_end_token_id=token("vision_end_token_id", 151653),
        name_or_path=raw.get("_name_or_path"), focus_layer=None if focus is None else int(focus))


def parse_config(raw: dict) -> ModelConfig:
    """The config reader of family qwen2_5_vl; families.family_for has already checked model_type."""
    text = _parse_text(raw)
    v = raw.get("vision_config") or {}
    vrope = _rope_dict(v)
    vact = v.get("hidden_act", "silu")
    if vact != "silu":
        raise ConfigError(f"config.json: vision hidden_act {vact!r} is not supported (Qwen2.5-VL uses silu)")
    # Defaults are those of transformers' Qwen2_5_VLVisionConfig.
    vision = VisionConfig(
        depth=int(v.get("depth", 32)), hidden_size=int(v.get("hidden_size", 3584)),
        num_heads=int(v.get("num_heads", 16)), intermediate_size=int(v.get("intermediate_size", 3420)),
        patch_size=int(v.get("patch_size", 14)), temporal_patch_size=int(v.get("temporal_patch_size", 2)),
        spatial_merge_size=int(v.get("spatial_merge_size", 2)), window_size=int(v.get("window_size", 112)),
        fullatt_block_indexes=[int(i) for i in v.get("fullatt_block_indexes", [7, 15, 23, 31])],
        out_hidden_size=int(v.get("out_hidden_size", 3584)),
        in_channels=int(v.get("in_channels", v.get("in_chans", 3))),  # hub files say in_chans
        rope_theta=float(vrope.get("rope_theta", 10000.0)),
        tokens_per_second=float(v.get("tokens_per_second", 4)))
    return _model_config(raw, text, vision)


def parse_qwen2_vl_config(raw: dict) -> ModelConfig:
    """The config reader of family qwen2_vl. Its vision_config names the tower width `embed_dim`, the
    MLP width `embed_dim * mlp_ratio` and the output width `hidden_size` (Qwen2.5-VL's hidden_size,
    intermediate_size and out_hidden_size); the tower has LayerNorms, an fc1/act/fc2 MLP and no window
    attention, and its videos' temporal positions are not scaled by time (transformers'
    Qwen2VLModel.get_rope_index)."""
    text = _parse_text(raw)
    v = raw.get("vision_config") or {}
    vrope = _rope_dict(v)
    vact = v.get("hidden_act", "quick_gelu")
    if vact not in VISION_ACTIVATIONS:
        raise ConfigError(f"config.json: vision hidden_act {vact!r} is not supported (supported: "
                          f"{', '.join(VISION_ACTIVATIONS)})")
    # Defaults are those of transformers' Qwen2VLVisionConfig.
    embed_dim = int(v.get("embed_dim", 1280))
    depth = int(v.get("depth", 32))
    mlp_ratio = v.get("mlp_ratio", 4)
    vision = VisionConfig(
        depth=depth, hidden_size=embed_dim, num_heads=int(v.get("num_heads", 16)),
        intermediate_size=int(embed_dim * mlp_ratio),  # transformers: int(embed_dim * mlp_ratio)
        patch_size=int(v.get("patch_size", 14)), temporal_patch_size=int(v.get("temporal_patch_size", 2)),
        spatial_merge_size=int(v.get("spatial_merge_size", 2)), window_size=0,
        fullatt_block_indexes=list(range(depth)),
        out_hidden_size=int(v.get("hidden_size", 3584)),
        in_channels=int(v.get("in_channels", v.get("in_chans", 3))),
        rope_theta=float(vrope.get("rope_theta", 10000.0)),
        tokens_per_second=None, norm="layer", mlp="fc", hidden_act=vact)
    return _model_config(raw, text, vision)
