"""Shared oracle code for the Python tests: tiny checkpoints, HF processor inputs, transformers' eager
attentions, and running an exported attnmap file in a fresh process.

Run as a script (`python3 .../hf_reference.py run-exported MODEL.pt REQUEST.pt RESULT.pt`, by file
path, which `run_exported` does) it loads the TorchScript file with torch.jit.load only (no
attnmap_tools import), so the comparison proves the saved file is self-contained.
"""
import json
import os
import pathlib
import subprocess
import sys
from typing import Dict, List, Optional

import numpy as np
import torch

THREADS = 2


def make_checkpoint(out_dir, seed: int, tied: bool = True, extra_config: Optional[dict] = None,
                    generation_config: Optional[dict] = None, family: str = "qwen2_5_vl") -> str:
    from attnmap_tools.testing import TOKENIZER_FIXTURE
    from attnmap_tools.testing.tiny import make_tiny_checkpoint

    return make_tiny_checkpoint(str(out_dir), seed=seed, tie_word_embeddings=tied,
                                tokenizer_json=str(TOKENIZER_FIXTURE), extra_config=extra_config,
                                generation_config=generation_config, family=family)


def checkpoint_family(ckpt) -> str:
    """config.json's model_type: qwen2_5_vl or qwen2_vl (the test oracles pick transformers' classes by it)."""
    return json.loads((pathlib.Path(ckpt) / "config.json").read_text())["model_type"]


def export_checkpoint(ckpt, out_pt, dtype: str = "fp32", extra_args: Optional[List[str]] = None) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (as a user would: `attnmap-export` is this module's main)."""
    cmd = [sys.executable, "-m", "attnmap_tools.export", "--checkpoint", str(ckpt), "--out", str(out_pt),
           "--dtype", dtype, "--threads", str(THREADS)] + list(extra_args or [])
    return subprocess.run(cmd, capture_output=True, text=True, env=_env())


def _env() -> dict:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(THREADS))
    return env


def load_processor(ckpt):
    """The HF processor of the checkpoint's family (Qwen2_5_VLProcessor, or Qwen2VLProcessor for
    qwen2_vl) with the PIL image processor (transformers 5's `backend="pil"`).

    AutoProcessor also insists on the video processor, which needs torchvision; images never use it,
    so the processor is assembled from its parts with the video slot left empty.
    """
    from transformers import AutoTokenizer
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from attnmap_tools.export.checkpoint import read_chat_template
    from attnmap_tools.testing.processor import ImageOnlyProcessor, ImageOnlyQwen2VLProcessor

    ckpt = pathlib.Path(ckpt)
    template, _ = read_chat_template(ckpt)  # chat_template.jinja / .json / tokenizer_config.json
    processor_class = ImageOnlyQwen2VLProcessor if checkpoint_family(ckpt) == "qwen2_vl" else ImageOnlyProcessor
    return processor_class(image_processor=Qwen2VLImageProcessorPil.from_pretrained(str(ckpt)),
                              tokenizer=AutoTokenizer.from_pretrained(str(ckpt)), video_processor=None,
                              chat_template=template)


def load_video_processor(ckpt):
    """The HF Qwen2.5-VL processor with its video processor (torchvision backend, as transformers has
    no other for videos) and the PIL image processor. torchvision imports through the shim."""
    from attnmap_tools.testing.torchvision_shim import import_torchvision

    import_torchvision()
    from transformers import AutoTokenizer, Qwen2_5_VLProcessor, Qwen2VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    from attnmap_tools.export.checkpoint import read_chat_template

    ckpt = pathlib.Path(ckpt)
    template, _ = read_chat_template(ckpt)
    # Qwen2VLProcessor (family qwen2_vl) makes no second_per_grid_ts: its positions are not time-scaled.
    processor_class = Qwen2VLProcessor if checkpoint_family(ckpt) == "qwen2_vl" else Qwen2_5_VLProcessor
    return processor_class(image_processor=Qwen2VLImageProcessorPil.from_pretrained(str(ckpt)),
                               tokenizer=AutoTokenizer.from_pretrained(str(ckpt)),
                               video_processor=Qwen2VLVideoProcessor.from_pretrained(str(ckpt)),
                               chat_template=template)


def build_video_inputs(processor, frames: np.ndarray, text: str, fps: Optional[float] = None,
                       sample_fps: Optional[float] = None, num_frames: Optional[int] = None,
                       min_pixels: Optional[int] = None, max_pixels: Optional[int] = None) -> Dict[str, torch.Tensor]:
    """What the HF processor makes of a video given as decoded frames uint8 [T, H, W, 3]: with `fps`
    (the container's) its metadata; with sample_fps or num_frames the video processor samples the
    frames (do_sample_frames); min/max_pixels override the video processor's size."""
    from transformers.video_utils import VideoMetadata

    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]}]
    prompt = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    kwargs = {"cap_pixels_per_frame": False}
    if sample_fps is not None or num_frames is not None:
        kwargs["do_sample_frames"] = True
        if sample_fps is not None:
            kwargs["fps"] = sample_fps
        if num_frames is not None:
            kwargs["num_frames"] = num_frames
    if min_pixels is not None or max_pixels is not None:
        size = dict(processor.video_processor.size)
        if min_pixels is not None:
            size["shortest_edge"] = min_pixels
        if max_pixels is not None:
            size["longest_edge"] = max_pixels
        kwargs["size"] = {"shortest_edge": size["shortest_edge"], "longest_edge": size["longest_edge"]}
    metadata = VideoMetadata(total_num_frames=int(frames.shape[0]), fps=fps, frames_indices=None)
    inputs = processor(text=[prompt], videos=[frames], video_metadata=[metadata], videos_kwargs=kwargs,
                       return_tensors="pt")
    return {k: v for k, v in inputs.items()}


def synthetic_image(height: int, width: int, seed: int = 0):
    """A smooth colour field plus noise: structured enough that patches differ, deterministic."""
    from PIL import Image

    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([np.sin(x / (7 + c) + c) * np.cos(y / (11 + 2 * c)) for c in range(3)], axis=-1)
    img = (base * 0.5 + 0.5) * 200 + rng.rand(height, width, 3) * 55
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def moving_square_frames(count: int, height: int, width: int, seed: int) -> np.ndarray:
    """uint8 [count, height, width, 3]: a red square crossing synthetic_image backgrounds left to right."""
    frames = []
    for k in range(count):
        img = np.asarray(synthetic_image(height, width, seed=seed + k)).copy()
        side = max(8, min(height, width) // 4)
        x = int((width - side) * k / max(1, count - 1))
        y = (height - side) // 2
        img[y:y + side, x:x + side] = [230, 40, 30]
        frames.append(img)
    return np.stack(frames)


def pyav_frames(path):
    """Every frame as PyAV decodes it (RGB uint8 [T, H, W, 3]), the container's frame count and average
    rate: what transformers' PyAV reader hands its video processor."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
        return frames, int(stream.frames), float(stream.average_rate)


def build_inputs(processor, images: List, text: str) -> Dict[str, torch.Tensor]:
    content = [{"type": "image", "image": im} for im in images] + [{"type": "text", "text": text}]
    messages = [{"role": "user", "content": content}]
    inputs = processor.apply_chat_template(messages, tokenize=True, add_generation_prompt=True,
                                           return_dict=True, return_tensors="pt")
    return {k: v for k, v in inputs.items()}


def load_hf_model(ckpt):
    """transformers' eager model of the checkpoint's family, float32."""
    from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2VLForConditionalGeneration

    model_class = (Qwen2VLForConditionalGeneration if checkpoint_family(ckpt) == "qwen2_vl" else
                   Qwen2_5_VLForConditionalGeneration)
    model = model_class.from_pretrained(str(ckpt), attn_implementation="eager",
                                                               dtype=torch.float32)
    return model.eval()


def hf_position_ids(model, inputs) -> torch.Tensor:
    """transformers' own M-RoPE positions, [3, S] for the single batch row."""
    pos, _ = model.model.get_rope_index(inputs["input_ids"], mm_token_type_ids=inputs["mm_token_type_ids"],
                                        image_grid_thw=inputs.get("image_grid_thw"),
                                        video_grid_thw=inputs.get("video_grid_thw"),
                                        second_per_grid_ts=inputs.get("second_per_grid_ts"),
                                        attention_mask=inputs.get("attention_mask"))
    return pos[:, 0]


def hf_forward(model, inputs):
    """(attentions: list over layers of float32 [H, S, S], last-position logits float32 [vocab])."""
    with torch.no_grad():
        out = model(**inputs, output_attentions=True, return_dict=True)
    assert out.attentions is not None and len(out.attentions) == model.config.text_config.num_hidden_layers
    return [a[0].float() for a in out.attentions], out.logits[0, -1].float()


def hf_image_features(model, inputs) -> torch.Tensor:
    """Merged image features of all images, concatenated (what is scattered into the image pads)."""
    with torch.no_grad():
        out = model.model.get_image_features(inputs["pixel_values"], inputs["image_grid_thw"])
    return torch.cat(out.pooler_output, dim=0).float()


def reduce_rows(att: torch.Tensor, rows: torch.Tensor, head_reduce: str, mean_queries: bool) -> torch.Tensor:
    """The contract's reductions applied to HF's full attention [H, S, S] -> [H', Q', S]."""
    r = att[:, rows, :].double()
    if head_reduce == "mean":
        r = r.mean(0, keepdim=True)
    elif head_reduce == "max":
        r = r.amax(0, keepdim=True)
    if mean_queries:
        r = r.mean(1, keepdim=True)
    return r.float()


def make_job(inputs: Dict[str, torch.Tensor], position_ids: torch.Tensor, calls: List[dict],
             dtype: Optional[str] = None) -> dict:
    """One input for the exported model plus the forward() calls to make on it. A call is a dict with
    layers, query_positions, head_reduce, mean_queries, return_logits and optionally chunk_rows
    (shrinks the attention-row chunk so the chunked path is exercised)."""
    job = {"input_ids": inputs["input_ids"][0],
           "pixel_values": inputs.get("pixel_values", torch.zeros(0, 1176)),
           "image_grid_thw": inputs.get("image_grid_thw", torch.zeros(0, 3, dtype=torch.long)),
           "position_ids": position_ids, "calls": calls, "dtype": dtype}
    if "pixel_values_videos" in inputs:
        job["pixel_values_videos"] = inputs["pixel_values_videos"]
        job["video_grid_thw"] = inputs["video_grid_thw"]
    return job


def seeded_export(work, seed: int, tied: bool = True, generation_config: Optional[dict] = None,
                  family: str = "qwen2_5_vl"):
    """The start of every parity fixture: seed torch, make a tiny random checkpoint of `family` in
    work/ckpt and export it with the real CLI to work/model.pt. Returns (checkpoint folder, model path)."""
    work = pathlib.Path(work)
    torch.manual_seed(seed)
    torch.set_num_threads(THREADS)
    ckpt = make_checkpoint(work / "ckpt", seed=seed, tied=tied, generation_config=generation_config, family=family)
    model_pt = work / "model.pt"
    proc = export_checkpoint(ckpt, model_pt)
    assert proc.returncode == 0, proc.stderr
    return ckpt, model_pt


def run_exported(model_pt, jobs: List[dict], workdir) -> List[List[dict]]:
    """Run the jobs against an exported file in one fresh Python process; returns, per job and call,
    {"rows": [per-layer tensors], "logits": tensor}, then (jobs with images) one more entry
    {"vision_features": the exported vision_features() output}."""
    workdir = pathlib.Path(workdir)
    req_path, res_path = workdir / "request.pt", workdir / "result.pt"
    torch.save(jobs, req_path)
    proc = subprocess.run([sys.executable, __file__, "run-exported", str(model_pt), str(req_path), str(res_path)],
                          capture_output=True, text=True, env=_env())
    if proc.returncode != 0:
        raise RuntimeError(f"exported model run failed:\n{proc.stdout}\n{proc.stderr}")
    return torch.load(res_path)


def _run_exported_main(model_pt: str, req_path: str, res_path: str) -> int:
    torch.set_num_threads(THREADS)
    results = []
    for job in torch.load(req_path):
        extra = {"attnmap/metadata.json": ""}
        module = torch.jit.load(model_pt, map_location="cpu", _extra_files=extra)
        assert json.loads(extra["attnmap/metadata.json"])["format"] == "attnmap-model"
        if job["dtype"]:
            module = module.to(getattr(torch, job["dtype"]))  # what C++ does for --dtype
        attn_modules = [m for n, m in module.named_modules() if n.endswith(".self_attn")]
        default_rows = attn_modules[0].max_chunk_rows
        out = []
        with torch.no_grad():
            for call in job["calls"]:
                for attn in attn_modules:
                    attn.max_chunk_rows = call.get("chunk_rows") or default_rows
                inputs = {name: job[name] for name in ("input_ids", "pixel_values", "image_grid_thw", "position_ids",
                                                       "pixel_values_videos", "video_grid_thw") if name in job}
                named = module(inputs, call["layers"], torch.tensor(call["query_positions"], dtype=torch.long),
                               call["head_reduce"], call["mean_queries"], call["return_logits"])
                out.append({"rows": [named[f"layers.{layer}"] for layer in call["layers"]],
                            "logits": named.get("logits", torch.empty(0))})
            if job["image_grid_thw"].numel():
                out.append({"vision_features": module.vision_features(job["pixel_values"], job["image_grid_thw"])})
        results.append(out)
    torch.save(results, res_path)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "run-exported":
        sys.exit(_run_exported_main(*sys.argv[2:]))
    print(__doc__)
    sys.exit(2)
