"""The transformers oracles of the qwen3_vl tests: tiny checkpoints, the HF Qwen3-VL processor (images),
the eager model, its image and DeepStack features. The rest (inputs, forward, positions, running an
export) is hf_reference's, which is family-neutral."""
import pathlib
from typing import Dict, List, Tuple

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
