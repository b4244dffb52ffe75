"""Write a tiny random Qwen2.5-VL or Qwen2-VL checkpoint folder, laid out like a hub checkpoint.

The weights come from transformers' own Qwen2_5_VLForConditionalGeneration (Qwen2VLForConditionalGeneration
for family qwen2_vl) so the folder is exactly
what `from_pretrained` expects; they are re-drawn with larger spreads than the default init because
near-uniform attention (std 0.02) would make attention-parity tests almost vacuous.
"""
import gzip
import json
import os
import pathlib
import shutil
from typing import Optional

from ..export.chat_template import QWEN2_5_VL_CHAT_TEMPLATE
from . import TOKENIZER_FIXTURE

# Preprocessing as in the real checkpoints' preprocessor_config.json.
PREPROCESSOR_CONFIG = {
    "min_pixels": 3136,
    "max_pixels": 12845056,
    "patch_size": 14,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "image_processor_type": "Qwen2VLImageProcessor",
    "processor_class": "Qwen2_5_VLProcessor",
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
}

TOKENIZER_CONFIG = {
    "add_bos_token": False,
    "add_prefix_space": False,
    "bos_token": None,
    "eos_token": "<|im_end|>",
    "pad_token": "<|endoftext|>",
    "unk_token": None,
    "errors": "replace",
    "model_max_length": 32768,
    "split_special_tokens": False,
    "clean_up_tokenization_spaces": False,
    "tokenizer_class": "Qwen2Tokenizer",
}

# generation_config.json in the shape the released Qwen2.5-VL instruct checkpoints ship it: two end ids
# (<|im_end|>, <|endoftext|>) and repetition_penalty 1.05, which transformers' generate() applies even
# with do_sample=False. The sampling fields are what the hub files set; attnmap only records them.
RELEASED_GENERATION_CONFIG = {
    "bos_token_id": 151643,
    "pad_token_id": 151643,
    "do_sample": True,
    "eos_token_id": [151645, 151643],
    "repetition_penalty": 1.05,
    "temperature": 0.1,
    "top_p": 0.001,
    "top_k": 1,
}


FAMILIES = ("qwen2_5_vl", "qwen2_vl")


def tiny_config_dict(tie_word_embeddings: bool = True, vocab_size: int = 151936, family: str = "qwen2_5_vl") -> dict:
    """family qwen2_vl: the same decoder; a Qwen2-VL tower (embed_dim, mlp_ratio, hidden_size = output
    width, quick_gelu, no windows) of the same tiny widths."""
    text = dict(
        vocab_size=vocab_size, hidden_size=64, intermediate_size=96, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6, max_position_embeddings=4096,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
        bos_token_id=151643, eos_token_id=151645,
    )
    vision = dict(
        depth=4, hidden_size=32, intermediate_size=48, num_heads=2, in_channels=3, patch_size=14,
        spatial_merge_size=2, temporal_patch_size=2, tokens_per_second=2, window_size=112,
        out_hidden_size=64, fullatt_block_indexes=[1, 3],
    )
    if family == "qwen2_vl":
        vision = dict(depth=4, embed_dim=32, mlp_ratio=3, hidden_size=64, num_heads=2, in_channels=3, patch_size=14,
                      spatial_merge_size=2, temporal_patch_size=2, hidden_act="quick_gelu")
    elif family != "qwen2_5_vl":
        raise ValueError(f"unknown family {family!r}; use one of {', '.join(FAMILIES)}")
    return dict(text_config=text, vision_config=vision, image_token_id=151655, video_token_id=151656,
                vision_start_token_id=151652, vision_end_token_id=151653,
                tie_word_embeddings=tie_word_embeddings)


def _reinit_(model, seed: int) -> None:
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") and (".norm1." in name or ".norm2." in name or "ln_q" in name):
                std, mean = 0.1, 0.0  # LayerNorm biases (Qwen2-VL's tower)
            elif name.endswith("norm.weight") or ".norm1." in name or ".norm2." in name or "ln_q" in name \
                    or name.endswith("layernorm.weight"):
                std, mean = 0.2, 1.0  # norm gains != 1 so a missing weight multiply shows up
            elif "q_proj.weight" in name or "k_proj.weight" in name or "attn.qkv.weight" in name:
                # Peaky but not one-hot attention: max probabilities spread over ~0.2-0.9.
                std, mean = (0.25 if "attn.qkv" in name else 0.22), 0.0
            elif "embed_tokens" in name or "lm_head" in name:
                std, mean = 0.5, 0.0
            elif name.endswith("bias"):
                std, mean = 0.1, 0.0
            else:
                std, mean = 0.12, 0.0
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * std + mean)


def tokenizer_json_text(tokenizer_json: Optional[str] = None) -> bytes:
    """The real Qwen tokenizer: an explicit path, else the project's compressed test fixture."""
    if tokenizer_json:
        p = pathlib.Path(tokenizer_json)
    else:
        p = TOKENIZER_FIXTURE
    data = p.read_bytes()
    return gzip.decompress(data) if p.suffix == ".gz" else data


def make_tiny_checkpoint(out_dir: str, seed: int = 0, tie_word_embeddings: bool = True,
                         tokenizer_json: Optional[str] = None, extra_config: Optional[dict] = None,
                         generation_config: Optional[dict] = None, family: str = "qwen2_5_vl") -> str:
    """generation_config: written as generation_config.json instead of the one transformers derives
    from config.json (e.g. RELEASED_GENERATION_CONFIG). family: qwen2_5_vl or qwen2_vl."""
    import torch
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLConfig,
                              Qwen2VLForConditionalGeneration)

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config_class, model_class = ((Qwen2VLConfig, Qwen2VLForConditionalGeneration) if family == "qwen2_vl" else
                                 (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration))
    config = config_class(**tiny_config_dict(tie_word_embeddings, family=family))
    model = model_class(config).to(torch.float32)
    _reinit_(model, seed)
    if tie_word_embeddings:
        model.tie_weights()
    model.save_pretrained(str(out), safe_serialization=True)
    if extra_config:
        cfg_path = out / "config.json"
        cfg = json.loads(cfg_path.read_text())
        cfg.update(extra_config)
        cfg_path.write_text(json.dumps(cfg, indent=2))
    if generation_config is not None:
        (out / "generation_config.json").write_text(json.dumps(generation_config, indent=2))
    write_processor_files(out, tokenizer_json, family)
    return str(out)


def write_processor_files(out: pathlib.Path, tokenizer_json: Optional[str] = None,
                          family: str = "qwen2_5_vl") -> None:
    """The non-weight files of a hub checkpoint: real Qwen tokenizer, tokenizer config, the real
    checkpoints' preprocessor config (Qwen2-VL's names its own processor class) and the stock chat
    template (the same text in both families)."""
    out = pathlib.Path(out)
    (out / "tokenizer.json").write_bytes(tokenizer_json_text(tokenizer_json))
    (out / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG, indent=2))
    preprocessor = dict(PREPROCESSOR_CONFIG)
    if family == "qwen2_vl":
        preprocessor["processor_class"] = "Qwen2VLProcessor"
    (out / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
    (out / "chat_template.json").write_text(json.dumps({"chat_template": QWEN2_5_VL_CHAT_TEMPLATE}, indent=2))
