"""Tiny random Qwen3-VL (model_type qwen3_vl) checkpoint folders, laid out like the hub's, for tests.

The weights come from transformers' own Qwen3VLForConditionalGeneration, re-drawn with larger spreads
than its init (near-uniform attention would make parity tests vacuous). `layout` picks the key names
of the safetensors file: "hub" (what save_pretrained and the released Qwen3-VL files use:
model.language_model.*, model.visual.*, lm_head.weight) or "legacy" (model.*, visual.*, the older
Qwen2-VL-era naming), so both are exported.

The processor files are the released checkpoints' (Qwen3-VL-2B/4B/8B-Instruct): preprocessor_config.json
(patch 16, merge 2, mean/std 0.5, pixels between 65536 and 16777216), video_preprocessor_config.json
(the same patch, merge and mean/std; pixels between 4096 and 25165824 over the whole clip; the rest
Qwen3VLVideoProcessor's class defaults: fps 2, frames 4-768), the Qwen tokenizer fixture and Qwen3-VL's
chat template, whose non-tool path inserts no system turn unless the conversation has one.
"""
import json
import pathlib
from typing import Optional

from .tiny import TOKENIZER_CONFIG, tokenizer_json_text

PREPROCESSOR_CONFIG = {
    "size": {"longest_edge": 16777216, "shortest_edge": 65536},
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "processor_class": "Qwen3VLProcessor",
    "image_processor_type": "Qwen2VLImageProcessorFast",
}

# The released video_preprocessor_config.json: the image one's patch, merge and mean/std, its own size
# (over frames x height x width) and processor type.
VIDEO_PREPROCESSOR_CONFIG = {
    **{k: v for k, v in PREPROCESSOR_CONFIG.items() if k != "image_processor_type"},
    "size": {"longest_edge": 25165824, "shortest_edge": 4096},
    "video_processor_type": "Qwen3VLVideoProcessor",
}

# The released Qwen3-VL Instruct template without its tool-calling branches (attnmap prompts have no
# tools): a system turn only when the first message is one, then the turns, then the generation prompt.
QWEN3_VL_CHAT_TEMPLATE = (
    "{%- if messages[0].role == 'system' %}"
    "{{- '<|im_start|>system\\n' }}"
    "{%- if messages[0].content is string %}{{- messages[0].content }}"
    "{%- else %}{%- for content in messages[0].content %}{%- if 'text' in content %}{{- content.text }}"
    "{%- endif %}{%- endfor %}{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- set image_count = namespace(value=0) %}{%- set video_count = namespace(value=0) %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'user' or message.role == 'assistant' %}"
    "{{- '<|im_start|>' + message.role + '\\n' }}"
    "{%- if message.content is string %}{{- message.content }}"
    "{%- else %}{%- for content in message.content %}"
    "{%- if content.type == 'image' or 'image' in content or 'image_url' in content %}"
    "{%- set image_count.value = image_count.value + 1 %}"
    "{%- if add_vision_id %}Picture {{ image_count.value }}: {% endif -%}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{%- elif content.type == 'video' or 'video' in content %}"
    "{%- set video_count.value = video_count.value + 1 %}"
    "{%- if add_vision_id %}Video {{ video_count.value }}: {% endif -%}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{%- elif 'text' in content %}{{- content.text }}"
    "{%- endif %}{%- endfor %}{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def tiny_config_dict(tie_word_embeddings: bool = True, vocab_size: int = 151936) -> dict:
    text = dict(
        vocab_size=vocab_size, hidden_size=64, intermediate_size=96, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, head_dim=24, rms_norm_eps=1e-6,
        max_position_embeddings=4096, attention_bias=False,
        # head_dim 24 != hidden/heads 16, as in the released 4B (explicit head_dim); mrope sums to 12.
        rope_parameters={"rope_type": "default", "rope_theta": 5000000.0, "mrope_section": [4, 4, 4],
                         "mrope_interleaved": True},
        bos_token_id=151643, eos_token_id=151645, tie_word_embeddings=tie_word_embeddings,
    )
    vision = dict(
        depth=4, hidden_size=32, intermediate_size=48, num_heads=2, in_channels=3, patch_size=16,
        spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=64, num_position_embeddings=36,
        deepstack_visual_indexes=[0, 2], hidden_act="gelu_pytorch_tanh",
    )
    return dict(text_config=text, vision_config=vision, image_token_id=151655, video_token_id=151656,
                vision_start_token_id=151652, vision_end_token_id=151653,
                tie_word_embeddings=tie_word_embeddings)


# Qwen/Qwen3-VL-2B-Instruct's config.json dimensions (the benchmarks' real width; depths cut by the caller).
SHAPE_2B_TEXT = dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16,
                     num_key_value_heads=8, head_dim=128,
                     rope_parameters={"rope_type": "default", "rope_theta": 5000000.0, "mrope_section": [24, 20, 20],
                                      "mrope_interleaved": True})
SHAPE_2B_VISION = dict(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16, out_hidden_size=2048,
                       num_position_embeddings=2304, deepstack_visual_indexes=[5, 11, 17])


def shaped_config_dict(shape: str, text_layers: Optional[int] = None, vision_layers: Optional[int] = None) -> dict:
    """tiny_config_dict ("tiny") or the released 2B's widths ("2b", tied), with the depths cut to
    text_layers / vision_layers (DeepStack levels kept below the new depth: the last ones)."""
    cfg = tiny_config_dict(tie_word_embeddings=True)
    if shape == "2b":
        cfg["text_config"].update(SHAPE_2B_TEXT)
        cfg["vision_config"].update(SHAPE_2B_VISION)
    elif shape != "tiny":
        raise ValueError(f"shape must be tiny or 2b, got {shape!r}")
    if text_layers:
        cfg["text_config"]["num_hidden_layers"] = text_layers
    if vision_layers:
        v = cfg["vision_config"]
        levels = len(v["deepstack_visual_indexes"])
        v["depth"] = vision_layers
        v["deepstack_visual_indexes"] = [i for i in v["deepstack_visual_indexes"] if i < vision_layers] or \
            list(range(max(0, vision_layers - levels), vision_layers))
    return cfg


def _reinit_(model, seed: int) -> None:
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            is_norm = ("norm" in name) and ("proj" not in name)
            if is_norm and name.endswith("weight"):
                std, mean = 0.2, 1.0  # gains != 1 so a missing multiply shows up
            elif "q_proj.weight" in name or "k_proj.weight" in name or "attn.qkv.weight" in name:
                std, mean = (0.25 if "attn.qkv" in name else 0.22), 0.0
            elif "embed_tokens" in name or "lm_head" in name:
                std, mean = 0.5, 0.0
            elif "pos_embed" in name:
                std, mean = 0.5, 0.0  # so the interpolated position embeddings matter
            elif name.endswith("bias"):
                std, mean = 0.1, 0.0
            else:
                std, mean = 0.12, 0.0
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * std + mean)


def legacy_key(key: str) -> str:
    """model.language_model.X -> model.X, model.visual.X -> visual.X (the older hub naming)."""
    if key.startswith("model.language_model."):
        return "model." + key[len("model.language_model."):]
    if key.startswith("model.visual."):
        return key[len("model."):]
    return key


def make_qwen3_vl_checkpoint(out_dir: str, seed: int = 0, tie_word_embeddings: bool = True,
                             layout: str = "hub", tokenizer_json: Optional[str] = None,
                             config_dict: Optional[dict] = None) -> str:
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    if layout not in ("hub", "legacy"):
        raise ValueError(f"layout must be hub or legacy, got {layout!r}")
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = Qwen3VLConfig(**(config_dict or tiny_config_dict(tie_word_embeddings)))
    model = Qwen3VLForConditionalGeneration(config).to(torch.float32)
    _reinit_(model, seed)
    if tie_word_embeddings:
        model.tie_weights()
    model.save_pretrained(str(out), safe_serialization=True)
    if layout == "legacy":
        files = sorted(out.glob("*.safetensors"))
        assert len(files) == 1, files
        tensors = load_file(str(files[0]))
        save_file({legacy_key(k): v.contiguous() for k, v in tensors.items()}, str(files[0]),
                  metadata={"format": "pt"})
    (out / "tokenizer.json").write_bytes(tokenizer_json_text(tokenizer_json))
    (out / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG, indent=2))
    (out / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR_CONFIG, indent=2))
    (out / "video_preprocessor_config.json").write_text(json.dumps(VIDEO_PREPROCESSOR_CONFIG, indent=2))
    (out / "chat_template.json").write_text(json.dumps({"chat_template": QWEN3_VL_CHAT_TEMPLATE}, indent=2))
    return str(out)


def main() -> int:
    """python3 -m attnmap_tools.testing.qwen3_vl_tiny --out-checkpoint DIR [--seed N] [--untied] [--layout legacy]
    [--shape 2b --text-layers N --vision-layers N]"""
    import argparse

    ap = argparse.ArgumentParser(description="Write a tiny random Qwen3-VL checkpoint folder (tests, demos).")
    ap.add_argument("--out-checkpoint", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--untied", action="store_true", help="separate lm_head instead of tied embeddings")
    ap.add_argument("--layout", choices=["hub", "legacy"], default="hub", help="safetensors key names")
    ap.add_argument("--tokenizer-json", default=None,
                    help="tokenizer.json to copy (default: tests/data/tokenizer/qwen_tokenizer.json.gz)")
    ap.add_argument("--shape", choices=["tiny", "2b"], default="tiny",
                    help="2b: Qwen3-VL-2B's widths (tied embeddings), for benchmarks")
    ap.add_argument("--text-layers", type=int, default=None, help="decoder layers (default: the shape's)")
    ap.add_argument("--vision-layers", type=int, default=None, help="vision blocks (default: the shape's)")
    args = ap.parse_args()
    config = None
    if args.shape != "tiny" or args.text_layers or args.vision_layers:
        config = shaped_config_dict(args.shape, args.text_layers, args.vision_layers)
        config["tie_word_embeddings"] = config["text_config"]["tie_word_embeddings"] = not args.untied
    out = make_qwen3_vl_checkpoint(args.out_checkpoint, args.seed, not args.untied, args.layout, args.tokenizer_json,
                                   config)
    print(f"wrote {args.shape} Qwen3-VL checkpoint to {out}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
