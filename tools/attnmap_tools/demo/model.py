"""The demo model's configuration, its processor, and writing/reading the checkpoint folder.

The model is the stock transformers Qwen2_5_VLForConditionalGeneration (windowed + full-attention vision
blocks, PatchMerger, M-RoPE decoder, tied embeddings as in the 3B) with tiny dimensions; only the token ids
differ from Qwen's because the vocabulary is our own.
"""
from __future__ import annotations

import json
import pathlib

from transformers import (PreTrainedTokenizerFast, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration,
                          Qwen2_5_VLProcessor)
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from ..testing.processor import ImageOnlyProcessor
from . import tokenizer as demo_tok

OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
MIN_PIXELS = 4 * 28 * 28      # 3136, Qwen's value
MAX_PIXELS = 64 * 28 * 28     # 50176: at most ~64 image tokens, keeps CPU training within minutes
FOCUS_LAYER = 0               # 0-based decoder layer whose map is trained to point at the asked shape
VOCAB_PAD = 64                # embedding rows rounded up like Qwen's (151665 tokens -> 151936 rows)


def preprocessor_config() -> dict:
    return {
        "do_convert_rgb": True, "do_normalize": True, "do_rescale": True, "do_resize": True,
        "image_mean": OPENAI_CLIP_MEAN, "image_std": OPENAI_CLIP_STD,
        "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor",
        "min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS,
        "size": {"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS},
        "merge_size": 2, "patch_size": 14, "temporal_patch_size": 2,
        "resample": 3, "rescale_factor": 0.00392156862745098,
    }


def model_config(tokenizer_json: dict) -> Qwen2_5_VLConfig:
    ids = demo_tok.token_ids(tokenizer_json)
    n_tokens = len(tokenizer_json["model"]["vocab"]) + len(tokenizer_json["added_tokens"])
    vocab_size = -(-n_tokens // VOCAB_PAD) * VOCAB_PAD
    text = dict(
        vocab_size=vocab_size, hidden_size=128, intermediate_size=384, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, hidden_act="silu", max_position_embeddings=4096,
        rms_norm_eps=1e-6, use_sliding_window=False, attention_dropout=0.0,
        # head_dim 32 -> 16 rotary frequencies split t/h/w like Qwen's [16, 24, 24] of 64.
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [4, 6, 6]},
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=True,
    )
    vision = dict(
        depth=4, hidden_size=64, intermediate_size=128, num_heads=2, hidden_act="silu", in_channels=3,
        patch_size=14, spatial_merge_size=2, temporal_patch_size=2, tokens_per_second=2, window_size=112,
        fullatt_block_indexes=[1, 3], out_hidden_size=128,
    )
    cfg = Qwen2_5_VLConfig(
        text_config=text, vision_config=vision, tie_word_embeddings=True,
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
    )
    cfg.attnmap_focus_layer = FOCUS_LAYER
    return cfg


def write_tokenizer_files(out: pathlib.Path, tokenizer_json: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokenizer.json").write_text(json.dumps(tokenizer_json, ensure_ascii=False, indent=2) + "\n")
    cfg = demo_tok.tokenizer_config(tokenizer_json)
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, ensure_ascii=False, indent=2) + "\n")
    (out / "chat_template.json").write_text(json.dumps({"chat_template": demo_tok.CHAT_TEMPLATE}, indent=2) + "\n")
    (out / "preprocessor_config.json").write_text(json.dumps(preprocessor_config(), indent=2) + "\n")


def load_processor(folder: pathlib.Path) -> Qwen2_5_VLProcessor:
    """The HF processor for the checkpoint, with the PIL image backend (what the C++ preprocessing mirrors)."""
    folder = pathlib.Path(folder)
    tok = PreTrainedTokenizerFast.from_pretrained(str(folder))
    pp = json.loads((folder / "preprocessor_config.json").read_text())
    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=pp["min_pixels"], max_pixels=pp["max_pixels"], patch_size=pp["patch_size"],
        temporal_patch_size=pp["temporal_patch_size"], merge_size=pp["merge_size"],
        image_mean=pp["image_mean"], image_std=pp["image_std"])
    template = json.loads((folder / "chat_template.json").read_text())["chat_template"]
    return ImageOnlyProcessor(image_processor=image_processor, tokenizer=tok, chat_template=template)


def load_model(folder: pathlib.Path) -> Qwen2_5_VLForConditionalGeneration:
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(folder), attn_implementation="eager")
    return model.eval()


def prompt_text(processor: Qwen2_5_VLProcessor, question: str) -> str:
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
