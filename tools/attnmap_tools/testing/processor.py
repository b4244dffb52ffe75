"""The stock HF Qwen2.5-VL processor, image and text only."""
from transformers import Qwen2_5_VLProcessor


class ImageOnlyProcessor(Qwen2_5_VLProcessor):
    """Qwen2_5_VLProcessor without a video processor: the video processor class needs torchvision, which
    is not installed (nor needed: attnmap has no videos). AutoProcessor insists on it, so callers assemble
    this one from its parts with `video_processor=None`. Image/text processing is the stock code."""

    def check_argument_for_proper_class(self, argument_name, argument):
        if argument_name == "video_processor" and argument is None:
            return None
        return super().check_argument_for_proper_class(argument_name, argument)
