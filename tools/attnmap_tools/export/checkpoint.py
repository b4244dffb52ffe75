"""Reading a Hugging Face Qwen2.5-VL or Qwen2-VL checkpoint folder: config, weights (safetensors, sharded or not)
and the files that travel with the export. Weights are read with `safetensors` directly so that
exporting does not depend on the installed transformers version.
"""
import json
import pathlib
import warnings
from typing import Dict, List, Optional, Tuple

import torch

from .chat_template import QWEN2_5_VL_CHAT_TEMPLATE


class CheckpointError(ValueError):
    """The folder is not a usable checkpoint; the message names the file or tensor."""


def read_raw_config(ckpt: pathlib.Path) -> dict:
    """config.json as written; its model_type picks the family (families.py) that parses it."""
    path = ckpt / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{ckpt}: no config.json (expected a Hugging Face Qwen2.5-VL or Qwen2-VL checkpoint folder)")
    return json.loads(path.read_text(encoding="utf-8"))


def weight_files(ckpt: pathlib.Path) -> List[pathlib.Path]:
    index = ckpt / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
        files = sorted({ckpt / name for name in weight_map.values()})
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise CheckpointError(f"{index.name} lists shards that are missing: {', '.join(missing)}")
        return files
    files = sorted(ckpt.glob("*.safetensors"))
    if not files:
        hint = " (found PyTorch .bin files: convert them to safetensors first)" if list(ckpt.glob("*.bin")) else ""
        raise CheckpointError(f"{ckpt}: no *.safetensors weights{hint}")
    return files


def canonical_key(key: str) -> str:
    """Map both hub layouts onto the original one: visual.*, model.* (decoder), lm_head.weight."""
    if key.startswith("model.visual."):
        return key[len("model."):]
    if key.startswith("model.language_model."):
        return "model." + key[len("model.language_model."):]
    return key


class WeightIndex:
    """Canonical key -> (file, stored key), opened lazily one tensor at a time (no full copy in RAM)."""

    def __init__(self, files: List[pathlib.Path]):
        from safetensors import safe_open

        self._handles = {f: safe_open(str(f), framework="pt") for f in files}
        self.where: Dict[str, Tuple[pathlib.Path, str]] = {}
        for f, handle in self._handles.items():
            for key in handle.keys():
                self.where[canonical_key(key)] = (f, key)

    def shape(self, key: str) -> List[int]:
        f, stored = self.where[key]
        return list(self._handles[f].get_slice(stored).get_shape())

    def tensor(self, key: str) -> torch.Tensor:
        f, stored = self.where[key]
        return self._handles[f].get_tensor(stored)


def load_weights(module: torch.nn.Module, ckpt: pathlib.Path, tied: bool, what: str = "Qwen2.5-VL") -> None:
    """Copy every parameter of `module` from the checkpoint, converting dtype; raise on any missing
    or mismatched tensor (all of them listed), warn about checkpoint tensors we do not use."""
    index = WeightIndex(weight_files(ckpt))
    problems: List[str] = []
    used = set()
    params = dict(module.named_parameters())
    plan = []
    for name, param in params.items():
        if name == "lm_head.weight" and tied:
            used.add(name)
            continue
        expected = list(param.shape)
        if name not in index.where:
            problems.append(f"missing tensor {name} (expected shape {expected})")
            continue
        found = index.shape(name)
        if found != expected:
            problems.append(f"tensor {name}: expected shape {expected}, found {found}")
            continue
        used.add(name)
        plan.append((name, param))
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise CheckpointError(f"{ckpt}: weights do not match a {what} model with this config.json:\n  "
                              + "\n  ".join(shown))
    with torch.no_grad():
        for name, param in plan:
            param.copy_(index.tensor(name).to(param.dtype))
    unused = sorted(k for k in index.where if k not in used and not k.endswith("rotary_emb.inv_freq"))
    if unused:
        warnings.warn(f"{len(unused)} checkpoint tensors are not used by the attnmap model, e.g. "
                      f"{', '.join(unused[:5])}")


def read_tokenizer_json(ckpt: pathlib.Path) -> bytes:
    path = ckpt / "tokenizer.json"
    if not path.is_file():
        raise CheckpointError(f"{ckpt}: no tokenizer.json (the fast tokenizer file is required)")
    return path.read_bytes()


def read_chat_template(ckpt: pathlib.Path) -> Tuple[str, str]:
    """(template, where it came from). Falls back to the stock Qwen2.5-VL template (Qwen2-VL's is the
    same) with a warning."""
    jinja = ckpt / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8"), jinja.name
    for name in ("chat_template.json", "tokenizer_config.json"):
        path = ckpt / name
        if path.is_file():
            template = json.loads(path.read_text(encoding="utf-8")).get("chat_template")
            if isinstance(template, list):  # named templates: [{"name": "default", "template": ...}, ...]
                named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
                template = named.get("default") or next(iter(named.values()), None)
            if isinstance(template, str) and template:
                return template, name
    warnings.warn(f"{ckpt}: no chat template found; embedding the stock Qwen2.5-VL template")
    return QWEN2_5_VL_CHAT_TEMPLATE, "builtin"


def read_preprocessor_config(ckpt: pathlib.Path) -> Optional[dict]:
    path = ckpt / "preprocessor_config.json"
    if not path.is_file():
        warnings.warn(f"{ckpt}: no preprocessor_config.json; using transformers' Qwen2-VL image processor defaults")
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def read_video_processor_config(ckpt: pathlib.Path) -> Tuple[Optional[dict], str]:
    """The dict transformers' video processor is built from, found as AutoVideoProcessor finds it
    (transformers 5, video_processing_utils): processor_config.json's "video_processor", else
    video_preprocessor_config.json, else preprocessor_config.json (the released Qwen2.5-VL checkpoints
    have only the last, so their videos take the image bounds). Returns (dict or None, file name)."""
    nested = ckpt / "processor_config.json"
    if nested.is_file():
        data = json.loads(nested.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("video_processor"), dict):
            return data["video_processor"], "processor_config.json"
    for name in ("video_preprocessor_config.json", "preprocessor_config.json"):
        path = ckpt / name
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise CheckpointError(f"{path}: expected a JSON object")
            return data, name
    return None, "defaults"


def read_generation_config(ckpt: pathlib.Path) -> Optional[dict]:
    """generation_config.json (end ids, repetition penalty of the released checkpoints), or None."""
    path = ckpt / "generation_config.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data
