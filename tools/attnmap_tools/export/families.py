"""The model families the exporter knows, by the checkpoint's config.json `model_type`.

A family is what differs between architectures: the scriptable module, how config.json is read and
how the checkpoint's tensors are copied into the module. Everything else (tokenizer, chat template,
preprocessor, metadata, saving) is shared by the exporter. Adding a family is one entry here plus its
module; attnmap's C++ side has the matching registry (src/model/family_registry.cpp).
"""
import dataclasses
import pathlib
from typing import Callable, Dict, Optional

import torch

from .checkpoint import load_weights
from .config import ConfigError, ModelConfig, parse_config, parse_qwen2_vl_config
from .model import AttnMapQwen2_5_VL, AttnMapQwen2_VL
from .qwen3_vl_family import finish_qwen3_vl_metadata, load_qwen3_vl_weights
from .qwen3_vl_config import parse_qwen3_vl_config
from .qwen3_vl_model import AttnMapQwen3VL


@dataclasses.dataclass(frozen=True)
class Family:
    name: str  # the metadata's model_family, read by attnmap's C++ family registry
    module_class: Callable[[ModelConfig], torch.nn.Module]
    read_config: Callable[[dict], ModelConfig]
    load_weights: Callable[[torch.nn.Module, pathlib.Path, ModelConfig], None]
    # Family-specific changes to the metadata build_metadata wrote (metadata, config), or None.
    finish_metadata: Optional[Callable[[dict, object], None]] = None
    # The transformers video processor whose settings metadata "video" records (metadata.VIDEO_PROCESSORS).
    video_processor: str = "qwen2_vl"


def _load_qwen2_5_vl_weights(module: torch.nn.Module, ckpt: pathlib.Path, cfg: ModelConfig) -> None:
    load_weights(module, ckpt, tied=cfg.text.tie_word_embeddings, what="Qwen2.5-VL")


def _load_qwen2_vl_weights(module: torch.nn.Module, ckpt: pathlib.Path, cfg: ModelConfig) -> None:
    # The same hub layouts (visual.* / model.* / lm_head.weight, or model.visual.* / model.language_model.*);
    # the tower's own names (norm1.bias, mlp.fc1, merger.ln_q.bias) are the module's parameter names.
    load_weights(module, ckpt, tied=cfg.text.tie_word_embeddings, what="Qwen2-VL")


FAMILIES: Dict[str, Family] = {
    "qwen2_5_vl": Family("qwen2_5_vl", AttnMapQwen2_5_VL, parse_config, _load_qwen2_5_vl_weights),
    "qwen2_vl": Family("qwen2_vl", AttnMapQwen2_VL, parse_qwen2_vl_config, _load_qwen2_vl_weights),
    "qwen3_vl": Family("qwen3_vl", AttnMapQwen3VL, parse_qwen3_vl_config, load_qwen3_vl_weights,
                       finish_qwen3_vl_metadata, video_processor="qwen3_vl"),
}


def family_for(raw_config: dict) -> Family:
    """The family of a config.json; ConfigError naming the supported model types for any other."""
    model_type = raw_config.get("model_type")
    family = FAMILIES.get(model_type) if isinstance(model_type, str) else None
    if family is None:
        raise ConfigError(f"config.json has model_type {model_type!r}; attnmap supports only "
                          f"{', '.join(sorted(FAMILIES))}")
    return family
