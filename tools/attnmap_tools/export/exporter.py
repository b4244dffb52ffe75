"""`attnmap-export`: Hugging Face Qwen2.5-VL or Qwen2-VL checkpoint folder -> attnmap TorchScript file."""
import argparse
import contextlib
import json
import os
import pathlib
import sys
import tempfile
import time
import warnings
from typing import List, Optional

import torch

from .checkpoint import (CheckpointError, read_chat_template, read_generation_config, read_preprocessor_config,
                         read_video_processor_config,
                         read_raw_config, read_tokenizer_json)
from .config import ConfigError, ModelConfig
from .families import Family, family_for
from .metadata import build_metadata, count_parameters, generation_section, special_token_ids, video_section

MIN_TORCH = (2, 1)
DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
          "fp16": torch.float16, "float16": torch.float16}


class ExportError(RuntimeError):
    pass


def check_torch_version(version: str = torch.__version__) -> None:
    parts = version.split("+")[0].split(".")
    try:
        major, minor = int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return
    if (major, minor) < MIN_TORCH:
        raise ExportError(f"torch {version} is too old to export: use torch >= {MIN_TORCH[0]}.{MIN_TORCH[1]} "
                          "and no newer than the libtorch that will load the file (attnmap's build)")


@contextlib.contextmanager
def _quiet_jit():
    # torch.jit is deprecated upstream but it is the format libtorch loads; its warnings are noise here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*(jit|TorchScript|torchscript).*")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        yield


def build_module(family: Family, cfg: ModelConfig, ckpt: pathlib.Path, dtype: torch.dtype) -> torch.nn.Module:
    # Built on the meta device and materialised in the target dtype: no random init, and no float32
    # copy of a bf16 checkpoint (a 7B model would need 30 GB otherwise).
    with torch.device("meta"):
        module = family.module_class(cfg)
    module = module.to(dtype).to_empty(device="cpu")
    family.load_weights(module, ckpt, cfg)
    return module.eval()


def model_name(raw: dict, ckpt: pathlib.Path) -> str:
    name = raw.get("_name_or_path")
    if isinstance(name, str) and name.strip():
        return name.rstrip("/").split("/")[-1]
    return ckpt.resolve().name


def transformers_version() -> Optional[str]:
    try:
        from importlib.metadata import version

        return version("transformers")
    except Exception:
        return None


def _current_umask() -> int:
    # Python can only read the umask by setting it; set it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def export(checkpoint: str, out: str, dtype: str = "fp32", focus_layer: Optional[int] = None,
           log=print) -> dict:
    """Export and return the metadata written. Raises CheckpointError/ConfigError/ExportError."""
    check_torch_version()
    if dtype not in DTYPES:
        raise ExportError(f"unknown dtype {dtype!r}; use bf16, fp16 or fp32")
    torch_dtype = DTYPES[dtype]
    ckpt = pathlib.Path(checkpoint)
    if not ckpt.is_dir():
        raise CheckpointError(f"{ckpt}: not a folder")
    t0 = time.time()
    raw = read_raw_config(ckpt)
    family = family_for(raw)
    cfg = family.read_config(raw)
    if focus_layer is None:
        focus_layer = cfg.focus_layer
    if focus_layer is not None and not 0 <= focus_layer < cfg.text.num_hidden_layers:
        raise ExportError(f"focus layer {focus_layer} out of range [0, {cfg.text.num_hidden_layers - 1}]")
    tokenizer_json = read_tokenizer_json(ckpt)
    template, _ = read_chat_template(ckpt)
    preprocessor = read_preprocessor_config(ckpt)
    module = build_module(family, cfg, ckpt, torch_dtype)
    log(f"loaded weights from {ckpt} in {time.time() - t0:.1f}s")
    generation = generation_section(read_generation_config(ckpt), raw, special_token_ids(tokenizer_json))
    video_dict, video_source = read_video_processor_config(ckpt)
    video = video_section(video_dict, video_source, cfg.vision.tokens_per_second, family.video_processor)
    meta = build_metadata(cfg, family.name, model_name(raw, ckpt), torch_dtype, tokenizer_json, template,
                          preprocessor, count_parameters(module), focus_layer, transformers_version(),
                          generation, video)
    if family.finish_metadata is not None:
        family.finish_metadata(meta, cfg)
    extra = {"attnmap/metadata.json": json.dumps(meta, indent=2).encode("utf-8"),
             "attnmap/tokenizer.json": tokenizer_json,
             "attnmap/chat_template.jinja": template.encode("utf-8")}
    with _quiet_jit():
        scripted = torch.jit.script(module)
    out_path = pathlib.Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # Write next to the destination and rename, so readers never see a half-written file.
    fd, tmp = tempfile.mkstemp(prefix=out_path.name + ".", suffix=".tmp", dir=str(out_path.parent))
    os.close(fd)
    try:
        with _quiet_jit():
            torch.jit.save(scripted, tmp, _extra_files=extra)
        # mkstemp makes the file 0600; an export is shared (the bundled demo model of an installed
        # attnmap), so give it what open() would have: 0666 minus the umask.
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, out_path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    log(f"wrote {out_path} ({out_path.stat().st_size / 2**20:.1f} MiB, {meta['dtype']}) "
        f"in {time.time() - t0:.1f}s")
    return meta


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="attnmap-export", description="Export a Hugging Face Qwen2.5-VL or Qwen2-VL checkpoint to an attnmap model file.")
    ap.add_argument("--checkpoint", required=True, help="HF checkpoint folder (config.json, *.safetensors, ...)")
    ap.add_argument("--out", required=True, help="output .pt file")
    ap.add_argument("--dtype", default="fp32", choices=["bf16", "fp16", "fp32"],
                    help="dtype of the stored weights (C++ can still cast at load time)")
    ap.add_argument("--focus-layer", type=int, default=None,
                    help="decoder layer to record as focus_layer (default: config.json attnmap_focus_layer)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    args = ap.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        export(args.checkpoint, args.out, args.dtype, args.focus_layer)
    except (CheckpointError, ConfigError, ExportError) as e:
        print(f"export.py: error: {e}", file=sys.stderr)
        return 2
    return 0
