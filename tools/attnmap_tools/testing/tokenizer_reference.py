#!/usr/bin/env python3
"""Regenerate the tokenizer test fixtures from Hugging Face `tokenizers` (the oracle).

Used by tests/cpp/tokenizer_test.cpp and tests/python/test_tokenize_cli.py. Writes into
tests/data/tokenizer/:
  qwen_tokenizer.json.gz  the tokenizer.json under test, verbatim (gzip, mtime 0: reproducible bytes)
  corpus.jsonl.gz         hand-picked strings: {"text", "ids", "decoded", "nfc"}
  random.jsonl.gz         seeded random strings: {"text", "ids"}
  flags_variant.json      added_tokens with lstrip/rstrip/single_word/normalized set, and
                          {"text", "ids"} cases that HF produced with those tokens swapped in
  decode.json             id sequences and HF's decode of them (skip_special_tokens false and true)
  versions.json           the tokenizers version that produced the ids

    python3 -m attnmap_tools.testing.tokenizer_reference --tokenizer /path/to/tokenizer.json

The ids are never produced by attnmap itself: only `tokenizers` (pinned in tools/requirements.txt).
"""
import argparse
import gzip
import json
import pathlib
import random
import unicodedata

import tokenizers
from tokenizers import Tokenizer

from attnmap_tools.testing import TOKENIZER_FIXTURE

OUT = TOKENIZER_FIXTURE.parent
RANDOM_SEED = 20250101
RANDOM_COUNT = 2500

IMAGE_PAD_RUN = 64


def chat(user_text, pads=IMAGE_PAD_RUN):
    # The Qwen2.5-VL chat template for one image and one user turn, rendered as the C++ prompt builder does.
    return ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
            "<|vision_start|>" + "<|image_pad|>" * pads + "<|vision_end|>" + user_text +
            "<|im_end|>\n<|im_start|>assistant\n")


def hand_picked(added_tokens):
    c = [
        "", " ", "  ", "\n", "\r\n", "\t", "a", "Hello world", "Hello, world!", " Hello", "Hello ",
        "The quick brown fox jumps over the lazy dog.",
        "I'M HERE, WE'VE GOT IT, THEY'LL COME, HE'D GO, IT'S, DON'T, YOU'RE",
        "i'm here, we've got it, they'll come, he'd go, it's, don't, you're",
        "I'm I'M i'M I'm'S 'll 'LL 'Ll ''s '''", "rock'n'roll o'clock y'all",
        "1234567890", "3.14159", "1,000,000", "v1.2.3-rc4", "x=42; y=-7e10", "٠١٢٣٤٥٦٧٨٩ ०१२३४५६७८९ ①②③ Ⅻ ½",
        "你好，世界！", "我爱北京天安门。今天天气很好，我们去公园散步吧。", "机器学习是人工智能的一个分支",
        "日本語のテキストです。カタカナとひらがなと漢字。", "ｶﾀｶﾅ半角", "東京タワーは333メートルです",
        "한국어 텍스트입니다. 안녕하세요!", "مرحبا بالعالم", "السلام عليكم ورحمة الله وبركاته",
        "नमस्ते दुनिया", "हिन्दी में लिखा गया वाक्य।", "Привет, мир!", "ЁЖИК в ТУМАНЕ", "Ελληνικά γράμματα",
        "עברית כתובה מימין לשמאל", "ภาษาไทย", "Tiếng Việt có dấu", "Zürich Straße Ærøskøbing",
        "😀", "😀😃😄", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇺🇸🇯🇵🇩🇪", "❤️", "a😀b", "👩🏾‍💻 codes",
        "e\u0301", "Cafe\u0301", "A\u030a", "\u1e9b\u0323", "n\u0303o", "\u0041\u0301\u0302", "한\u1100\u1161",
        "\u212b", "\u2126", "e\u0301\u0301\u0301", "\u0065\u0327\u0306",
        "ＡＢＣ１２３！？", "ｈｅｌｌｏ　ｗｏｒｌｄ", "全角スペース　です",
        "   leading", "trailing   ", "a  b   c    d", "a\tb\t\tc", "line1\nline2\n\nline4", "crlf\r\nline\r\n",
        "\n\n\n", "   \n   ", " \t \n \r\n ", "x \n y", "end with newline\n", "spaces then newline   \n",
        "\u00a0nbsp\u00a0", "ideographic\u3000space", "thin\u2009space", "nel\u0085line", "\u2028\u2029",
        "zero\u200bwidth", "bom\ufeffhere", "mongolian\u180evs", "\u180e \u180e.", "x \u180e\u180e y", "\u2028\u180e\n", "\x0b\x0c vt ff", "\x1c\x1d\x1e\x1f",
        "def f(x):\n    return x ** 2\n", "int main() { return 0; }\n",
        "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}", "    if x:\n        pass",
        "https://example.com/path?query=1&b=2#frag", "mailto:someone@example.org", "C:\\Users\\me\\file.txt",
        "<div class=\"x\">text</div>", "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}", "$ ls -la | grep foo",
        "SELECT * FROM t WHERE a = 'x';", "#!/bin/bash\necho \"$HOME\"", "a--b...c!!!d???", "(parens) [brackets] {braces}",
        "!!!", "...", "---", "???", "'", "''", "\"", "`code`", "~~~", "@@@", "#hashtag", "@mention",
        "<|not_special|>", "<|im_start", "im_start|>", "<|im_start|", "<| im_start |>", "<|IM_START|>",
        "<|endoftext|><|endoftext|>", "x<|im_end|>y", " <|im_end|> ", "<tool_call>{}</tool_call>",
        "<think>\nhmm\n</think>\n\nanswer", "<|image_pad|>" * 5, "<|vision_start|><|vision_end|>",
        chat("Describe this image."), chat("这张图片里有什么？", 16), chat("", 1), chat("What's in it?\n", 256),
        "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n",
        "The year 2024 had 366 days.", "$1,234.56 and €99,99", "50% off!!!", "10:30pm", "2024-01-01T00:00:00Z",
        "αβγ ΑΒΓ", "ǅungla", "ﬁne ﬂow", "İstanbul ı", "ß ẞ", "Ⅳ ⅳ", "\u017fs 's 'ſ 'ſs x'ſll", "'K \u212a 'ſt",
        "𝕳𝖊𝖑𝖑𝖔", "𝟙𝟚𝟛", "\U0001F600\U0001F64F", "\U00020000\U0002A6D6", "ab\u0300\u0301cd",
    ]
    for tok in added_tokens:
        c += [tok, "a" + tok + "b", " " + tok + " ", tok + tok, "\n" + tok + "\n"]
    words = ["hello", "Hello", "HELLO", "world", "token", "tokenizer", "attention", "heatmap", "Qwen",
             "vision", "language", "model", "the", "The", "internationalization", "antidisestablishmentarianism"]
    for w in words:
        c += [w, " " + w, w + ".", w + "'s", w.upper() + "'S", "  " + w + "  "]
    for n in range(0, 130, 7):
        c.append(" " * n + "x" + "\n" * (n % 5) + "\t" * (n % 3))
    for i in range(30):
        c.append("".join(chr(0x4E00 + (i * 37 + k * 101) % 20000) for k in range(i + 1)))
    return c


def long_texts():
    parts = ["The quick brown fox jumps over the lazy dog. ", "我爱北京天安门。", "日本語のテキスト、",
             "안녕하세요 ", "Привет, мир! ", "مرحبا بالعالم ", "नमस्ते दुनिया ", "😀👨‍👩‍👧 ", "x = 123456;\n",
             "    indented\r\n", "https://example.com/a?b=c ", "I'M WE'VE ", "e\u0301 ", "\t\t", "  \n\n"]
    rng = random.Random(7)
    out = []
    while sum(len(p.encode()) for p in out) < 100_000:
        out.append(rng.choice(parts))
    return ["".join(out), "漢字" * 20000, " " * 50000, "a" * 20000, "\n" * 10000 + "x"]


def random_strings(count, seed):
    rng = random.Random(seed)
    pools = [
        [chr(c) for c in range(0x20, 0x7F)],
        list("0123456789"),
        list(" \t\n\r\x0b\x0c") + ["\r\n", "  ", "\u00a0", "\u0085", "\u1680", "\u2000", "\u2009", "\u200a",
                                   "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\u200b", "\u180e", "\ufeff",
                                   "\x1c", "\x1f"],
        list("'\"!?.,;:-_()[]{}<>/\\|@#$%^&*+=~`") + ["'s", "'S", "'ll", "'LL", "'ve", "'M", "'d", "'t", "'re", "'ſ"],
        [chr(c) for c in range(0x4E00, 0x9FFF)],
        [chr(c) for c in range(0x3041, 0x3097)] + [chr(c) for c in range(0x30A1, 0x30FB)],
        [chr(c) for c in range(0xAC00, 0xD7A4)],
        [chr(c) for c in range(0x0400, 0x0460)] + [chr(c) for c in range(0x0391, 0x03CA)],
        [chr(c) for c in range(0x0621, 0x064B)] + [chr(c) for c in range(0x0905, 0x0940)],
        [chr(c) for c in range(0x0300, 0x0370)] + ["\u0323", "\u0327", "\u093f", "\u0952", "\u1161", "\u11a8"],
        ["😀", "👍", "🏽", "\u200d", "👩", "💻", "❤", "\ufe0f", "🇺", "🇸", "🏳", "🌈", "✨", "🤖"],
        [chr(c) for c in range(0xFF01, 0xFF5F)] + ["\u212a", "\u212b", "\u2126", "\u017f", "\u0130", "\u00df", "ǅ", "ﬁ",
                                                   "½", "²", "①", "Ⅻ", "٣", "०", "𝟙", "\U00020001"],
        ["<|im_start|>", "<|im_end|>", "<|image_pad|>", "<|endoftext|>", "<think>", "<|not_special|>", "<|", "|>"],
    ]
    weights = [30, 8, 14, 10, 8, 4, 4, 5, 4, 6, 5, 4, 2]
    out = []
    for i in range(count):
        n = rng.randint(0, 40)
        local = [rng.randint(0, 3) * w for w in weights] if i % 3 else weights
        if sum(local) == 0:
            local = weights
        out.append("".join(rng.choice(rng.choices(pools, local)[0]) for _ in range(n)))
    return out


# Flags swapped into a copy of the real tokenizer so that HF's lstrip/rstrip/single_word/normalized
# handling is exercised; the C++ test applies the same replacement from this file.
FLAG_TOKENS = [
    {"content": "<|im_start|>", "lstrip": True, "rstrip": False, "single_word": False, "normalized": False},
    {"content": "<|im_end|>", "lstrip": False, "rstrip": True, "single_word": False, "normalized": False},
    {"content": "<think>", "lstrip": True, "rstrip": True, "single_word": False, "normalized": False},
    {"content": "magic", "lstrip": False, "rstrip": False, "single_word": True, "normalized": False},
    {"content": "Caf\u00e9", "lstrip": False, "rstrip": False, "single_word": False, "normalized": True},
]
FLAG_TEXTS = [
    "a <|im_start|> b", "a  \n<|im_start|>b", "x<|im_end|>  \n y", "x <|im_end|>\n", "q \t<think> \n r",
    "magic", "a magic b", "amagic", "magicb", "magic!", "_magic", "é magic", "Cafe\u0301 au lait", "Caf\u00e9",
    "NotCafe\u0301s", "  <|im_start|>  <|im_end|>  ", "<think><think>", "magic magic magic",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
]


def variant_json(tok_json):
    data = json.loads(tok_json)
    by_content = {t["content"]: t for t in data["added_tokens"]}
    next_id = max(t["id"] for t in data["added_tokens"]) + 1
    for f in FLAG_TOKENS:
        if f["content"] in by_content:
            by_content[f["content"]].update(f)
        else:
            data["added_tokens"].append(dict(f, id=next_id, special=False))
            next_id += 1
    return json.dumps(data)


def write_jsonl_gz(path, rows):
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        for r in rows:
            gz.write((json.dumps(r, ensure_ascii=False) + "\n").encode("utf-8"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokenizer", default="/work/shared/data/qwen-tokenizer/tokenizer.json")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    raw = pathlib.Path(args.tokenizer).read_bytes()
    with open(out / "qwen_tokenizer.json.gz", "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0,
                                                                         filename="", compresslevel=9) as gz:
        gz.write(raw)
    tok = Tokenizer.from_str(raw.decode("utf-8"))
    added = [t["content"] for t in json.loads(raw)["added_tokens"]]

    rows = []
    for text in hand_picked(added) + long_texts():
        ids = tok.encode(text).ids
        rows.append({"text": text, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False),
                     "nfc": unicodedata.normalize("NFC", text)})
    write_jsonl_gz(out / "corpus.jsonl.gz", rows)

    rand = [{"text": s, "ids": tok.encode(s).ids} for s in random_strings(RANDOM_COUNT, RANDOM_SEED)]
    write_jsonl_gz(out / "random.jsonl.gz", rand)

    vtok = Tokenizer.from_str(variant_json(raw.decode("utf-8")))
    variant = {"added_tokens": FLAG_TOKENS,
               "cases": [{"text": t, "ids": vtok.encode(t).ids,
                          "decoded": vtok.decode(vtok.encode(t).ids, skip_special_tokens=False)} for t in FLAG_TEXTS]}
    (out / "flags_variant.json").write_text(json.dumps(variant, ensure_ascii=False, indent=1) + "\n")
    decode_ids = [[136], [9707, 136, 9707], [151644, 9707, 151645], [33975, 25, 220, 151655, 151655], [],
                  [144], [145, 9707], [151643, 151667, 151668]]
    decode_rows = [{"ids": d, "decoded": tok.decode(d, skip_special_tokens=False),
                    "decoded_skip_special": tok.decode(d, skip_special_tokens=True)} for d in decode_ids]
    (out / "decode.json").write_text(json.dumps(decode_rows, ensure_ascii=False, indent=1) + "\n")
    (out / "versions.json").write_text(json.dumps({"tokenizers": tokenizers.__version__,
                                                   "corpus": len(rows), "random": len(rand)}, indent=1) + "\n")
    print(f"wrote {len(rows)} corpus strings, {len(rand)} random strings to {out}")


if __name__ == "__main__":
    main()
