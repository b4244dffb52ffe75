"""attnmap/metadata.json (format_version 2, see docs/design.md): everything C++ needs to know about
the model, read from the checkpoint, never hard-coded on the C++ side."""
import json
import re
from typing import List, Optional

import torch

from .. import __version__
from .chat_template import DEFAULT_SYSTEM_PROMPT
from .config import ConfigError, ModelConfig

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


# The video processors transformers builds, by name: "qwen2_vl" is Qwen2VLVideoProcessor (Qwen2-VL and
# Qwen2.5-VL), "qwen3_vl" Qwen3VLVideoProcessor (with Qwen3VLProcessor's timestamp text). Each: its class
# defaults (v5) in the section's key names, used for what the checkpoint's dict lacks, and how it works
# where the two differ (docs/video.md): frame sampling, what min/max_pixels bound, the prompt text.
VIDEO_PROCESSORS = {
    "qwen2_vl": {
        "defaults": {
            **{key: PREPROCESS_DEFAULTS[key] for key in ("patch_size", "temporal_patch_size", "merge_size",
                                                         "image_mean", "image_std", "rescale_factor", "resample",
                                                         "do_convert_rgb")},
            "min_pixels": 128 * 28 * 28, "max_pixels": 28 * 28 * 768, "min_frames": 4, "max_frames": 768,
            "fps": None, "num_frames": None, "do_sample_frames": False,
            # None in the class: _preprocess then warns and takes False.
            "cap_pixels_per_frame": False, "max_video_tokens": 128000,
        },
        # Qwen2VLVideoProcessor.__init__: the dict's min_pixels/max_pixels override its size.
        "pixel_keys": True,
        # Qwen2VLVideoProcessor.sample_frames: a whole number of temporal patches at a fixed stride.
        "frame_sampling": "stride",
        # smart_resize(h, w, ...): min/max_pixels bound one frame.
        "pixel_budget": "frame",
        "timestamp_text": None,
        # The M-RoPE time axis: "seconds" with the vision config's tokens_per_second, else "index".
        "temporal_positions": None,
    },
    "qwen3_vl": {
        "defaults": {
            "patch_size": 16, "temporal_patch_size": 2, "merge_size": 2,
            "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],  # IMAGENET_STANDARD_MEAN / _STD
            "rescale_factor": 1 / 255, "resample": "bicubic", "do_convert_rgb": True,
            "min_pixels": 128 * 32 * 32, "max_pixels": 32 * 32 * 768, "min_frames": 4, "max_frames": 768,
            "fps": 2.0, "num_frames": None, "do_sample_frames": True,
            # None in the class: _preprocess then warns and takes False.
            "cap_pixels_per_frame": False, "max_video_tokens": 768,
        },
        # Qwen3VLVideoProcessor has no min_pixels/max_pixels keys: only its size bounds the pixels.
        "pixel_keys": False,
        # Qwen3VLVideoProcessor.sample_frames: n = int(total / fps_video * fps), clamped to
        # min(max(n, min_frames), max_frames, total); indices np.linspace(0, total - 1, n).round().
        "frame_sampling": "linspace",
        # smart_resize(num_frames, h, w, temporal_factor, ...): min/max_pixels bound frames * h * w.
        "pixel_budget": "clip",
        # Qwen3VLProcessor.replace_video_token: f"<{t:.1f} seconds>" before each temporal patch's
        # <|vision_start|> pads <|vision_end|>.
        "timestamp_text": {"before": "<", "after": " seconds>", "decimals": 1},
        "temporal_positions": "frame_runs",
    },
}


def video_section(vp: Optional[dict], source: str, tokens_per_second: Optional[float],
                  processor: str = "qwen2_vl") -> dict:
    """metadata "video" (docs/video.md): the settings of the video processor `processor` (a
    VIDEO_PROCESSORS name) as transformers builds it from `vp` (read_video_processor_config) over its
    class defaults, how it samples frames ("frame_sampling"), what its pixel bounds bound
    ("pixel_budget": one frame, or the whole clip), the text before each temporal patch
    ("timestamp_text", null for none), and the M-RoPE time axis ("temporal_positions"):
    - qwen2_vl with the vision config's tokens_per_second: "seconds" (Qwen2.5-VL: temporal patch k at
      int(k * tokens_per_second * second_per_grid_t));
    - qwen2_vl with tokens_per_second None: "index" (Qwen2-VL: at k, whatever the frame rate;
      Qwen2VLModel.get_rope_index);
    - qwen3_vl: "frame_runs", tokens_per_second null (each temporal patch is its own t=1 grid at the
      text position where its run of video pads begins; Qwen3VLModel.get_rope_index).
    The patch, merge, mean, std and rescale values are those keys of the same dict (the image
    processor's when the dict is preprocessor_config.json)."""
    if processor not in VIDEO_PROCESSORS:
        raise ValueError(f"unknown video processor {processor!r} (known: {', '.join(VIDEO_PROCESSORS)})")
    spec = VIDEO_PROCESSORS[processor]
    out = dict(spec["defaults"])
    vp = vp or {}
    for key in ("patch_size", "temporal_patch_size", "merge_size", "image_mean", "image_std", "rescale_factor",
                "do_convert_rgb", "min_frames", "max_frames", "num_frames", "fps", "do_sample_frames"):
        if vp.get(key) is not None:  # transformers: a None value is the class default
            out[key] = vp[key]
    if vp.get("resample") is not None:
        resample = vp["resample"]
        out["resample"] = _RESAMPLE_NAMES.get(resample, str(resample)) if isinstance(resample, int) else str(resample)
    size = vp.get("size") or {"shortest_edge": out["min_pixels"], "longest_edge": out["max_pixels"]}
    if spec["pixel_keys"]:
        # Qwen2VLVideoProcessor.__init__: its class `size` unless the dict has one, then min/max_pixels over it.
        min_pixels = vp["min_pixels"] if vp.get("min_pixels") is not None else size.get("shortest_edge")
        max_pixels = vp["max_pixels"] if vp.get("max_pixels") is not None else size.get("longest_edge")
    else:  # Qwen3VLVideoProcessor: the dict's size as it is.
        min_pixels, max_pixels = size.get("shortest_edge"), size.get("longest_edge")
    if not min_pixels or not max_pixels:
        raise ConfigError(f"{source}: the video processor's size {size} lacks shortest_edge or longest_edge "
                          "(transformers' video processor refuses every video without both)")
    out["min_pixels"], out["max_pixels"] = int(min_pixels), int(max_pixels)
    for key in ("patch_size", "temporal_patch_size", "merge_size", "min_frames", "max_frames"):
        out[key] = int(out[key])
    out["num_frames"] = None if out["num_frames"] is None else int(out["num_frames"])
    out["fps"] = None if out["fps"] is None else float(out["fps"])
    out["do_sample_frames"] = bool(out["do_sample_frames"])
    out["do_convert_rgb"] = bool(out["do_convert_rgb"])
    out["image_mean"] = [float(x) for x in out["image_mean"]]
    out["image_std"] = [float(x) for x in out["image_std"]]
    out["rescale_factor"] = float(out["rescale_factor"])
    out["source"] = source
    out["frame_sampling"] = spec["frame_sampling"]
    out["pixel_budget"] = spec["pixel_budget"]
    out["timestamp_text"] = None if spec["timestamp_text"] is None else dict(spec["timestamp_text"])
    # Each processor's resize applies its own cap when cap_pixels_per_frame is set (Qwen2-VL: a share of
    # 90% of max_video_tokens per frame; Qwen3-VL: max_video_tokens per frame over the clip); attnmap's
    # preprocess_video does the same.
    out["cap_pixels_per_frame"] = bool(vp.get("cap_pixels_per_frame") or False)  # None acts as False
    out["max_video_tokens"] = int(vp["max_video_tokens"] if vp.get("max_video_tokens") is not None
                                  else out["max_video_tokens"])
    if spec["temporal_positions"] is not None:
        out["tokens_per_second"] = None
        out["temporal_positions"] = spec["temporal_positions"]
    else:
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
