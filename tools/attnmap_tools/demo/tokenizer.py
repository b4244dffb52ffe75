"""A small byte-level BPE tokenizer with exactly Qwen2's pipeline, plus the Qwen2.5-VL chat template.

Same normalizer / pre-tokenizer / decoder / added-token names as Qwen's tokenizer.json, so the C++
tokenizer is exercised on the real structure; only the vocabulary is tiny (256 bytes + merges learned on the
demo's own text) and the added tokens follow it at ids vocab_size .. vocab_size+21.
"""
from __future__ import annotations

import json

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from .scenes import ANSWER_WORDS, all_questions

QWEN_SPLIT_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."

# Qwen2.5-VL's added tokens, in Qwen's order (151643..151664 there); `special` as in Qwen's tokenizer.json.
ADDED_TOKENS = [
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
    ("<|object_ref_start|>", True), ("<|object_ref_end|>", True), ("<|box_start|>", True),
    ("<|box_end|>", True), ("<|quad_start|>", True), ("<|quad_end|>", True),
    ("<|vision_start|>", True), ("<|vision_end|>", True), ("<|vision_pad|>", True),
    ("<|image_pad|>", True), ("<|video_pad|>", True),
    ("<tool_call>", False), ("</tool_call>", False), ("<|fim_prefix|>", False), ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False), ("<|fim_pad|>", False), ("<|repo_name|>", False), ("<|file_sep|>", False),
]

# The Qwen2-VL / Qwen2.5-VL chat template, verbatim from the released checkpoints' chat_template.json.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in "
    "content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] "
    "== 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content "
    "%}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}"
    "<|im_start|>assistant\n{% endif %}"
)


def _training_text() -> list[str]:
    # The answer words appear alone (the assistant turn starts right after "\n", so they carry no leading
    # space) and inside questions (with a leading space); repeat them so every one gets fully merged.
    words = list(ANSWER_WORDS)
    text = [DEFAULT_SYSTEM_PROMPT, "system\n", "user\n", "assistant\n", "\n", "Picture 1: ", "Video 1: "]
    text += all_questions() * 4 + words * 20 + [" ".join(words)] * 20
    return text


def _pipeline(tok: Tokenizer) -> None:
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_SPLIT_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)


def build_tokenizer_json() -> dict:
    """Train the BPE and return a tokenizer.json dict laid out like Qwen's."""
    tok = Tokenizer(models.BPE())
    _pipeline(tok)
    trainer = trainers.BpeTrainer(vocab_size=1024, min_frequency=1, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_training_text(), trainer)
    trained = json.loads(tok.to_str())
    vocab = trained["model"]["vocab"]
    n = len(vocab)
    assert sorted(vocab.values()) == list(range(n))
    sep = {"add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": n + i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": special}
            for i, (c, special) in enumerate(ADDED_TOKENS)
        ],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN_SPLIT_REGEX}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", **sep},
        ]},
        "post_processor": {"type": "ByteLevel", **sep},
        "decoder": {"type": "ByteLevel", **sep},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": trained["model"]["merges"]},
    }


def tokenizer_config(tokenizer_json: dict) -> dict:
    """tokenizer_config.json in the shape of Qwen2.5-VL's (ids are ours)."""
    added = {str(t["id"]): {k: t[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word", "special")}
             for t in tokenizer_json["added_tokens"]}
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": [c for c, s in ADDED_TOKENS[1:14]],
        "bos_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 32768,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


def token_ids(tokenizer_json: dict) -> dict[str, int]:
    """Ids of the added tokens by name."""
    return {t["content"]: t["id"] for t in tokenizer_json["added_tokens"]}


def check_answer_words(tok: Tokenizer) -> dict[str, int]:
    """Every answer word must be one token when it starts the assistant turn (no leading space), and one
    token inside a question (leading space; training routes the answer position to it). Returns word -> id."""
    ids = {}
    for word in ANSWER_WORDS:
        enc = tok.encode(word, add_special_tokens=False).ids
        assert len(enc) == 1, f"answer word {word!r} is {len(enc)} tokens: {enc}"
        assert len(tok.encode(" " + word, add_special_tokens=False).ids) == 1, f"' {word}' is not one token"
        ids[word] = enc[0]
    return ids
