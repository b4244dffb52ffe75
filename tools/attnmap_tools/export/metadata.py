"""attnmap/metadata.json (format_version 2, see docs/design.md): everything C++ needs to know about
the model, read from the checkpoint, never hard-coded on the C++ side."""
import json
import re
from typing import List, Optional

import torch

from .. import __version__
from .chat_template import DEFAULT_SYSTEM_PROMPT
from .config import ModelConfig

FORMAT = "attnmap-model"
# 2: forward takes named inputs and returns named outputs (docs/design.md). attnmap refuses other versions.
FORMAT_VERSION = 2

DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}

_RESAMPLE_NAMES = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}

# transformers' Qwen2VLImageProcessor class defaults, used when preprocessor_config.json lacks a key.
PREPROCESS_DEFAULTS = {
    "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
    "min_pixels": 56 * 56, "max_pixels": 28 * 28 * 1280,
    "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
    "rescale_factor": 1 / 255, "resample": "bicubic", "do_convert_rgb": True,
}


def preprocess_section(pp: Optional[dict]) -> dict:
    out = dict(PREPROCESS_DEFAULTS)
    if not pp:
        return out
    for key in ("patch_size", "temporal_patch_size", "merge_size", "image_mean", "image_std",
                "rescale_factor", "do_convert_rgb"):
        if pp.get(key) is not None:
            out[key] = pp[key]
    # As in the HF image processor: size.{shortest,longest}_edge, overridden by min_pixels/max_pixels.
    size = pp.get("size") or {}
    if size.get("shortest_edge") is not None:
        out["min_pixels"] = size["shortest_edge"]
    if size.get("longest_edge") is not None:
        out["max_pixels"] = size["longest_edge"]
    if pp.get("min_pixels") is not None:
        out["min_pixels"] = pp["min_pixels"]
    if pp.get("max_pixels") is not None:
        out["max_pixels"] = pp["max_pixels"]
    resample = pp.get("resample", 3)
    out["resample"] = _RESAMPLE_NAMES.get(resample, str(resample)) if isinstance(resample, int) else str(resample)
    out["min_pixels"] = int(out["min_pixels"])
    out["max_pixels"] = int(out["max_pixels"])
    out["image_mean"] = [float(x) for x in out["image_mean"]]
    out["image_std"] = [float(x) for x in out["image_std"]]
    out["rescale_factor"] = float(out["rescale_factor"])
    return out


# transformers' Qwen2VLVideoProcessor class defaults (v5), used for what its config dict lacks.
VIDEO_DEFAULTS = {
    "min_pixels": 128 * 28 * 28, "max_pixels": 28 * 28 * 768, "min_frames": 4, "max_frames": 768,
    "fps": None, "num_frames": None, "do_sample_frames": False,
}


def video_section(vp: Optional[dict], source: str, tokens_per_second: Optional[float]) -> dict:
    """metadata "video" (docs/video.md): the video processor's settings as transformers builds it from
    `vp` (read_video_processor_config) and the M-RoPE time scale: "temporal_positions" "seconds" with
    the vision config's tokens_per_second (Qwen2.5-VL: temporal patch k at int(k * tokens_per_second *
    second_per_grid_t)), or "index" with tokens_per_second null (Qwen2-VL: at k, whatever the frame
    rate; transformers' Qwen2VLModel.get_rope_index). The patch, merge, mean, std and
    rescale values are the image processor's keys of the same dict (the "preprocess" section when the
    dict is preprocessor_config.json)."""
    out = dict(VIDEO_DEFAULTS)
    pre = preprocess_section(vp)
    for key in ("patch_size", "temporal_patch_size", "merge_size", "image_mean", "image_std", "rescale_factor",
                "resample", "do_convert_rgb"):
        out[key] = pre[key]
    vp = vp or {}
    # Qwen2VLVideoProcessor.__init__: its class `size` unless the dict has one, then min/max_pixels over it.
    size = vp.get("size") or {"shortest_edge": out["min_pixels"], "longest_edge": out["max_pixels"]}
    out["min_pixels"] = int(vp["min_pixels"] if vp.get("min_pixels") is not None else size.get("shortest_edge"))
    out["max_pixels"] = int(vp["max_pixels"] if vp.get("max_pixels") is not None else size.get("longest_edge"))
    for key in ("min_frames", "max_frames", "num_frames"):
        if vp.get(key) is not None:
            out[key] = int(vp[key])
    if vp.get("fps") is not None:
        out["fps"] = float(vp["fps"])
    if vp.get("do_sample_frames") is not None:
        out["do_sample_frames"] = bool(vp["do_sample_frames"])
    out["source"] = source
    out["tokens_per_second"] = None if tokens_per_second is None else float(tokens_per_second)
    out["temporal_positions"] = "index" if tokens_per_second is None else "seconds"
    return out


def special_token_ids(tokenizer_json: bytes) -> dict:
    added = {t["content"]: t["id"] for t in json.loads(tokenizer_json).get("added_tokens", [])}
    wanted = {"im_start_token_id": "<|im_start|>", "im_end_token_id": "<|im_end|>",
              "endoftext_token_id": "<|endoftext|>"}
    return {key: added.get(tok) for key, tok in wanted.items()}


def default_system_prompt(template: str) -> str:
    """The literal system prompt the template inserts when the conversation has none."""
    m = re.search(r"<\|im_start\|>system\n([^{}<]*)<\|im_end\|>", template)
    return m.group(1) if m else DEFAULT_SYSTEM_PROMPT


def _id_list(value) -> List[int]:
    """An id or a list of ids (generation_config.json and config.json allow both) -> list of ints."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value if v is not None]
    return [int(value)]


def generation_section(generation_config: Optional[dict], raw_config: dict, tokens: dict) -> dict:
    """metadata "generation" (docs/design.md, "Generation"): what greedy generation needs.

    From generation_config.json when the checkpoint has one (what transformers' generate() reads):
    its eos_token_id (id or list) and repetition_penalty. Without it: the end ids are config.json's
    eos_token_id (top level or text_config) then <|im_end|> and <|endoftext|> (the released
    checkpoints' [151645, 151643]), and repetition_penalty 1.0. do_sample/temperature/top_p/top_k are
    recorded for information only (null when not set): attnmap decodes greedily.
    """
    text_raw = raw_config.get("text_config") or {}
    if generation_config is not None and generation_config.get("eos_token_id") is not None:
        eos = _id_list(generation_config["eos_token_id"])
    else:
        eos = _id_list(raw_config.get("eos_token_id", text_raw.get("eos_token_id")))
        eos += [t for t in (tokens.get("im_end_token_id"), tokens.get("endoftext_token_id")) if t is not None]
    seen = set()
    eos = [e for e in eos if not (e in seen or seen.add(e))]  # dedupe, order kept
    g = generation_config or {}

    def opt(key, kind):
        return None if g.get(key) is None else kind(g[key])

    penalty = g.get("repetition_penalty")
    return {"source": "generation_config.json" if generation_config is not None else "defaults",
            "eos_token_ids": eos,
            "repetition_penalty": 1.0 if penalty is None else float(penalty),
            "do_sample": bool(g.get("do_sample", False)),
            "temperature": opt("temperature", float), "top_p": opt("top_p", float), "top_k": opt("top_k", int)}


def count_parameters(module: torch.nn.Module) -> dict:
    vision = sum(p.numel() for n, p in module.named_parameters() if n.startswith("visual."))
    total = sum(p.numel() for p in module.parameters())
    return {"vision": vision, "text": total - vision, "total": total}


def build_metadata(cfg: ModelConfig, family: str, model_name: str, dtype: torch.dtype, tokenizer_json: bytes,
                   template: str, preprocessor: Optional[dict], parameters: dict,
                   focus_layer: Optional[int], transformers_version: Optional[str],
                   generation: Optional[dict] = None, video: Optional[dict] = None) -> dict:
    """generation: generation_section(...) of the checkpoint; None gives the defaults (no
    generation_config.json, no config.json end id). video: video_section(...); None gives the video
    processor defaults over `preprocessor`."""
    t, v = cfg.text, cfg.vision
    tokens = {"image_token_id": cfg.image_token_id, "video_token_id": cfg.video_token_id,
              "vision_start_token_id": cfg.vision_start_token_id, "vision_end_token_id": cfg.vision_end_token_id}
    tokens.update(special_token_ids(tokenizer_json))
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_family": family,
        "model_name": model_name,
        "dtype": DTYPE_NAMES[dtype],
        "exporter": {"attnmap_tools": __version__, "torch": torch.__version__.split("+")[0],
                     "transformers": transformers_version},
        "text": {"hidden_size": t.hidden_size, "num_hidden_layers": t.num_hidden_layers,
                 "num_attention_heads": t.num_attention_heads, "num_key_value_heads": t.num_key_value_heads,
                 "head_dim": t.head_dim, "intermediate_size": t.intermediate_size, "vocab_size": t.vocab_size,
                 "rms_norm_eps": t.rms_norm_eps, "rope_theta": t.rope_theta,
                 "mrope_section": list(t.mrope_section), "tie_word_embeddings": t.tie_word_embeddings},
        "vision": {"depth": v.depth, "hidden_size": v.hidden_size, "num_heads": v.num_heads,
                   "intermediate_size": v.intermediate_size, "patch_size": v.patch_size,
                   "temporal_patch_size": v.temporal_patch_size, "spatial_merge_size": v.spatial_merge_size,
                   "window_size": v.window_size, "fullatt_block_indexes": list(v.fullatt_block_indexes),
                   "out_hidden_size": v.out_hidden_size, "in_channels": v.in_channels,
                   "norm": v.norm, "mlp": v.mlp, "hidden_act": v.hidden_act},
        "tokens": tokens,
        "chat": {"default_system_prompt": default_system_prompt(template)},
        "preprocess": preprocess_section(preprocessor),
        "parameters": parameters,
        "focus_layer": focus_layer,
        "generation": generation if generation is not None else generation_section(None, {}, tokens),
        "video": video if video is not None else video_section(preprocessor, "preprocessor_config.json",
                                                               v.tokens_per_second),
    }
