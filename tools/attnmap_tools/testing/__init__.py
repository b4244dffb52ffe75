"""attnmap_tools.testing: what the tests and benchmarks build on, never needed to export a model.

tiny / random_checkpoint (random Qwen2.5-VL checkpoints), positions (pure-Python M-RoPE positions),
processor (the HF processor without a video processor), hf_reference (the transformers oracles of the
tests), tokenizer_reference and the make_* fixture scripts (`python3 -m attnmap_tools.testing.NAME`).

The fixtures live in the source tree (tests/data), so this subpackage works from a checkout (the
editable install that scripts/bootstrap.sh makes), not from a copied wheel.
"""
import pathlib

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]
TEST_DATA = REPO_ROOT / "tests" / "data"
# The one copy of the real Qwen2.5-VL tokenizer.json (gzip), shared by the C++ and Python tests.
TOKENIZER_FIXTURE = TEST_DATA / "tokenizer" / "qwen_tokenizer.json.gz"
