"""The transformers oracles of the qwen3_vl tests: tiny checkpoints, the HF Qwen3-VL processor (images,
and videos with load_video_processor / build_video_inputs), the eager model, its image and DeepStack
features. The rest (image inputs, forward, positions, running an export) is hf_reference's, which is
family-neutral.

The video oracle needs torchvision: a test that uses it calls
torchvision_shim.import_torchvision() before this module (which imports transformers) is imported."""
import pathlib
from typing import Dict, List, Optional, Tuple

import torch
from transformers import Qwen3VLProcessor


class ImageOnlyQwen3VLProcessor(Qwen3VLProcessor):
    """Qwen3VLProcessor without a video processor (it needs torchvision); image/text code is stock."""

    def check_argument_for_proper_class(self, argument_name, argument):
        if argument_name == "video_processor" and argument is None:
            return None
        return super().check_argument_for_proper_class(argument_name, argument)


def make_checkpoint(out_dir, seed: int, tied: bool = True, layout: str = "hub") -> str:
    from . import TOKENIZER_FIXTURE
    from .qwen3_vl_tiny import make_qwen3_vl_checkpoint

    return make_qwen3_vl_checkpoint(str(out_dir), seed=seed, tie_word_embeddings=tied, layout=layout,
                                    tokenizer_json=str(TOKENIZER_FIXTURE))


def load_processor(ckpt):
    from transformers import AutoTokenizer
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from ..export.checkpoint import read_chat_template

    ckpt = pathlib.Path(ckpt)
    template, _ = read_chat_template(ckpt)
    return ImageOnlyQwen3VLProcessor(image_processor=Qwen2VLImageProcessorPil.from_pretrained(str(ckpt)),
                                     tokenizer=AutoTokenizer.from_pretrained(str(ckpt)), video_processor=None,
                                     chat_template=template)


def load_hf_model(ckpt):
    """The eager oracle; from the hub-layout folder (transformers reads that one as saved)."""
    from transformers import Qwen3VLForConditionalGeneration

    model = Qwen3VLForConditionalGeneration.from_pretrained(str(ckpt), attn_implementation="eager",
                                                            dtype=torch.float32)
    return model.eval()


def hf_image_features(model, inputs) -> Tuple[torch.Tensor, List[torch.Tensor]]:
    """(merged features of all images, DeepStack features per level), as the decoder receives them."""
    with torch.no_grad():
        out = model.model.get_image_features(inputs["pixel_values"], inputs["image_grid_thw"])
    merged = torch.cat(out.pooler_output, dim=0).float()
    return merged, [torch.cat(level, dim=0).float() for level in out.deepstack_features]


def image_and_video_inputs(processor, image, video_grid, text: str, seed: int) -> Dict[str, torch.Tensor]:
    """One prompt with an image and a video as Qwen3-VL lays them out: the image, then per temporal patch
    of the video a "<t seconds>" text and its own <|vision_start|> pads <|vision_end|>, then the text.
    The image goes through the HF image processor; the video's patch rows are random (this checks the
    model, not video preprocessing). mm_token_type_ids as the processor makes them (1 image, 2 video)."""
    tok = processor.tokenizer
    image_part = processor.image_processor(images=[image], return_tensors="pt")
    merge = processor.image_processor.merge_size
    image_tokens = int(image_part["image_grid_thw"][0].prod()) // (merge * merge)
    t, h, w = video_grid
    frame_tokens = h * w // (merge * merge)
    video = "".join(f"<{0.5 + k:.1f} seconds><|vision_start|>" + "<|video_pad|>" * frame_tokens + "<|vision_end|>"
                    for k in range(t))
    prompt = ("<|im_start|>user\n<|vision_start|>" + "<|image_pad|>" * image_tokens + "<|vision_end|>" + video
              + text + "<|im_end|>\n<|im_start|>assistant\n")
    ids = torch.tensor([tok(prompt, add_special_tokens=False)["input_ids"]])
    types = torch.zeros_like(ids, dtype=torch.int32)
    types[ids == tok.convert_tokens_to_ids("<|image_pad|>")] = 1
    types[ids == tok.convert_tokens_to_ids("<|video_pad|>")] = 2
    gen = torch.Generator().manual_seed(seed)
    width = image_part["pixel_values"].shape[1]
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "mm_token_type_ids": types,
            "pixel_values": image_part["pixel_values"], "image_grid_thw": image_part["image_grid_thw"],
            "pixel_values_videos": torch.randn(t * h * w, width, generator=gen),
            "video_grid_thw": torch.tensor([list(video_grid)])}


def load_video_processor(ckpt):
    """Qwen3VLProcessor with its video processor (Qwen3VLVideoProcessor.from_pretrained: torchvision
    backend, as transformers has no other for videos) and the PIL image processor. torchvision imports
    through the shim, which must run before transformers is first imported (torchvision_shim.py)."""
    from .torchvision_shim import import_torchvision

    import_torchvision()
    from transformers import AutoTokenizer
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    from ..export.checkpoint import read_chat_template

    ckpt = pathlib.Path(ckpt)
    template, _ = read_chat_template(ckpt)
    return Qwen3VLProcessor(image_processor=Qwen2VLImageProcessorPil.from_pretrained(str(ckpt)),
                            tokenizer=AutoTokenizer.from_pretrained(str(ckpt)),
                            video_processor=Qwen3VLVideoProcessor.from_pretrained(str(ckpt)),
                            chat_template=template)


def build_video_inputs(processor, frames, text: str, fps: Optional[float] = None,
                       sample_fps: Optional[float] = None, num_frames: Optional[int] = None) -> Dict[str, torch.Tensor]:
    """What Qwen3VLProcessor (load_video_processor) makes of one video, decoded frames uint8 [T, H, W, 3],
    in a user turn before `text`: input_ids with a "<t seconds>" text and <|vision_start|> pads
    <|vision_end|> per temporal patch (inside the template's own <|vision_start|> ... <|vision_end|>),
    attention_mask, mm_token_type_ids (2 on the video pads), pixel_values_videos, video_grid_thw.

    fps None: a frame list (attnmap --frames), taken whole: do_sample_frames False, metadata fps None
    (the processor's timestamps then take 24 fps) and frames_indices 0..T-1.
    fps given: a clip (attnmap --video) whose container has T frames at `fps`: the video processor
    samples them (do_sample_frames True) at sample_fps frames per second (None: its own fps, 2 for the
    released processor) or, with num_frames, that many (fps sampling then off).
    cap_pixels_per_frame is passed as False, the processor's behaviour when unset, without its warning."""
    import numpy as np
    from transformers.video_utils import VideoMetadata

    frames = np.asarray(frames)
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]}]
    prompt = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    total = int(frames.shape[0])
    kwargs = {"cap_pixels_per_frame": False}
    if fps is None:
        if sample_fps is not None or num_frames is not None:
            raise ValueError("a frame list is taken whole: sample_fps / num_frames need the clip's fps")
        kwargs["do_sample_frames"] = False
        metadata = VideoMetadata(total_num_frames=total, fps=None, frames_indices=list(range(total)))
    else:
        if sample_fps is not None and num_frames is not None:
            raise ValueError("sample_fps and num_frames are exclusive")
        kwargs["do_sample_frames"] = True
        if num_frames is not None:
            kwargs.update(num_frames=int(num_frames), fps=None)  # fps None: not the processor's default 2
        elif sample_fps is not None:
            kwargs["fps"] = float(sample_fps)
        metadata = VideoMetadata(total_num_frames=total, fps=float(fps))
    inputs = processor(text=[prompt], videos=[frames], video_metadata=[metadata], videos_kwargs=kwargs,
                       return_tensors="pt")
    return {k: v for k, v in inputs.items()}

