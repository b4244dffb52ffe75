"""`--query word:WORD` against HF tokenizers' offsets, end to end through `attnmap run --dump-inputs`.

The tiny model carries the real Qwen tokenizer (tests/data/tokenizer/qwen_tokenizer.json.gz), whose byte-level
BPE splits many characters (emoji, CJK, letters such as U+01C5) across tokens. The oracle: the tokens
of the prompt whose HF offsets (characters of the prompt) overlap the first ASCII-case-insensitive
occurrence of WORD, as README documents ("the prompt tokens that spell WORD").
"""
import gzip
import subprocess

import numpy as np
import pytest

from attnmap_tools.testing import TOKENIZER_FIXTURE
from attnmap_tools.testing import hf_reference as ref

TOKENIZER = TOKENIZER_FIXTURE
VISION_END = "<|vision_end|>"

CASES = [
    # (prompt, word): issue 12's characters split across tokens first.
    ("the star ⭐ here", "⭐"),
    ("a cup of ☕ please", "☕"),
    ("the letter ǅ is a digraph", "ǅ"),
    ("the star ⭐ here", "star"),
    ("the star ⭐ here", "here"),
    # CJK, Korean, emoji with ZWJ sequences, flags, skin tones.
    ("图片里的猫在哪里？", "猫"),
    ("图片里的猫在哪里？", "哪里"),
    ("日本語のテキスト", "テキスト"),
    ("이 사진에 고양이가 있나요", "고양이"),
    ("my family 👨‍👩‍👧 at home", "👨‍👩‍👧"),
    ("my family 👨‍👩‍👧 at home", "👩"),
    ("flags 🇯🇵 and 🇫🇷 here", "🇫🇷"),
    ("wave 👋🏽 hello", "👋🏽"),
    # Combining marks (already NFC: no precomposed form), and one that NFC composes.
    ("the q\u0307 sign and more", "q\u0307"),
    ("café au lait", "café"),
    ("cafe\u0301 au lait", "cafe\u0301"),
    # Arabic and Devanagari (marks and viramas inside words).
    ("أين القطة في الصورة؟", "القطة"),
    ("बिल्ली कहाँ है?", "बिल्ली"),
    ("बिल्ली कहाँ है?", "कहाँ"),
    # Latin with spaces and punctuation; case-insensitive; first occurrence only.
    ("What color is the circle?", "circle"),
    ("What color is the circle?", "CIRCLE?"),
    ("Is it red, green or blue?", "red, green"),
    ("the dog and the other dog", "dog"),
    ("  spaced   out  ", "spaced   out"),
    ("naïve résumé", "résumé"),
]


@pytest.fixture(scope="module")
def hf():
    from tokenizers import Tokenizer
    return Tokenizer.from_str(gzip.decompress(TOKENIZER.read_bytes()).decode("utf-8"))


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "photo.png"
    ref.synthetic_image(56, 56, seed=3).save(path)
    return path


def ascii_lower(s: str) -> str:
    return "".join(c.lower() if c.isascii() else c for c in s)


def expected_token_indices(hf, prompt: str, word: str) -> list[int]:
    enc = hf.encode(prompt, add_special_tokens=False)
    at = ascii_lower(prompt).find(ascii_lower(word))
    assert at >= 0, (prompt, word)
    end = at + len(word)
    return [k for k, (s, e) in enumerate(enc.offsets) if s < end and e > at]


@pytest.mark.parametrize("prompt, word", CASES)
def test_word_rows_are_the_tokens_hf_offsets_put_under_the_word(attnmap_bin, tiny_model, image, hf, tmp_path,
                                                                 prompt, word):
    dump = tmp_path / "inputs"
    proc = subprocess.run([attnmap_bin, "run", "--model", str(tiny_model["model"]), "--image", str(image),
                           "--prompt", prompt, "--query", "word:" + word, "--out", str(tmp_path / "out"),
                           "--device", "cpu", "--layers", "0", "--no-predict", "--no-images",
                           "--dump-inputs", str(dump)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    ids = np.load(dump / "input_ids.npy").tolist()
    rows = np.load(dump / "query_positions.npy").tolist()

    prompt_ids = hf.encode(prompt, add_special_tokens=False).ids
    start = ids.index(hf.token_to_id(VISION_END)) + 1
    assert ids[start:start + len(prompt_ids)] == prompt_ids  # the user's text follows the image
    expected = [start + k for k in expected_token_indices(hf, prompt, word)]
    assert rows == expected, [hf.id_to_token(ids[r]) for r in rows]
