"""What family qwen3_vl adds to the shared exporter: weight loading and its metadata entries."""
import pathlib

import torch

from .checkpoint import load_weights


def load_qwen3_vl_weights(module: torch.nn.Module, ckpt: pathlib.Path, cfg) -> None:
    # Both hub layouts (model.visual.* / model.language_model.* / lm_head.weight as the released
    # files have them, or visual.* / model.*) map onto the module's names (checkpoint.canonical_key).
    load_weights(module, ckpt, tied=cfg.text.tie_word_embeddings, what="Qwen3-VL")


def finish_qwen3_vl_metadata(meta: dict, cfg) -> None:
    """Qwen3-VL's chat template inserts no system turn unless the conversation has one, so the prompt
    builder must not either (chat.default_system_turn false); the tower's own parameters. The "video"
    section build_metadata wrote is Qwen3VLVideoProcessor's (the family's video_processor "qwen3_vl"
    in families.py): linspace frame sampling, pixel bounds over the whole clip, a "<t seconds>" text
    before each temporal patch and temporal patches as their own position runs (frame_runs)."""
    meta["chat"] = {"default_system_prompt": "", "default_system_turn": False}
    v = cfg.vision
    meta["vision"].update({"num_position_embeddings": v.num_position_embeddings,
                           "deepstack_visual_indexes": list(v.deepstack_visual_indexes),
                           "hidden_act": v.hidden_act, "norm": v.norm, "mlp": v.mlp})
    meta["text"]["qk_norm"] = True
    meta["text"]["mrope_interleaved"] = True
    meta["text"]["attention_bias"] = cfg.text.attention_bias
