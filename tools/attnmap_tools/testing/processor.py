"""The stock HF Qwen2.5-VL and Qwen2-VL processors, image and text only."""
from transformers import Qwen2_5_VLProcessor, Qwen2VLProcessor


class _NoVideoProcessor:
    """Without a video processor: the video processor class needs torchvision, which images never use.
    AutoProcessor insists on it, so callers assemble these from their parts with `video_processor=None`.
    Image/text processing is the stock code."""

    def check_argument_for_proper_class(self, argument_name, argument):
        if argument_name == "video_processor" and argument is None:
            return None
        return super().check_argument_for_proper_class(argument_name, argument)


class ImageOnlyProcessor(_NoVideoProcessor, Qwen2_5_VLProcessor):
    """Qwen2_5_VLProcessor without a video processor."""


class ImageOnlyQwen2VLProcessor(_NoVideoProcessor, Qwen2VLProcessor):
    """Qwen2VLProcessor (family qwen2_vl) without a video processor."""
