"""attnmap demo: synthetic shape scenes, a tiny Qwen2.5-VL trained on them, and its checks.

Modules: scenes (ground truth), tokenizer (byte-level BPE with Qwen's pipeline), model (config and
processor), focus (the focus-layer map and the hit/accuracy scoring shared by evaluate.py and the tests),
train and evaluate (scripts: `python3 -m attnmap_tools.demo.train`, `.evaluate`, `.make_examples`).
"""
