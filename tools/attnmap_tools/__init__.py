"""attnmap_tools: export Hugging Face Qwen2.5-VL checkpoints to the attnmap TorchScript format."""
__version__ = "0.1.0"
