"""attnmap_tools.export: a Hugging Face Qwen2.5-VL checkpoint folder -> one attnmap TorchScript file.

The product users run (`attnmap-export`, `python3 -m attnmap_tools.export`): config and checkpoint
reading, the scriptable model (vision tower, M-RoPE decoder, chunked fp32 attention rows), metadata and
the exporter. See docs/export.md and docs/design.md.
"""
