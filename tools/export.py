#!/usr/bin/env python3
"""Export a Hugging Face Qwen2.5-VL checkpoint folder to an attnmap TorchScript model file.

    python3 tools/export.py --checkpoint DIR --out model.pt [--dtype bf16|fp16|fp32] [--focus-layer N]

See docs/export.md.
"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from attnmap_tools.exporter import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
