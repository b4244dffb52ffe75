"""`attnmap tokenize` against HF tokenizers, called directly (not through recorded ids)."""
import gzip
import json
import os
import subprocess

import pytest
from attnmap_tools.testing import TOKENIZER_FIXTURE
from conftest import missing_build_output

FIXTURE = TOKENIZER_FIXTURE
BIN = os.environ.get("ATTNMAP_BIN")


@pytest.fixture(autouse=True)
def _needs_binary():
    if not BIN:
        missing_build_output("ATTNMAP_BIN names the built attnmap binary (CTest sets it)")


TEXTS = [
    "Hello world",
    "<|im_start|>user\n<|vision_start|><|image_pad|><|image_pad|><|vision_end|>What's this?<|im_end|>\n",
    "你好，世界！ 日本語 한국어 Привет 👨‍👩‍👧 e\u0301",
    "  spaces\t\ttabs\r\nand 12345 digits   ",
    "<|not_special|> I'M WE'VE",
]


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    path.write_bytes(gzip.decompress(FIXTURE.read_bytes()))
    return path


@pytest.fixture(scope="module")
def hf(tokenizer_json):
    from tokenizers import Tokenizer
    return Tokenizer.from_file(str(tokenizer_json))


def run(*args):
    return subprocess.run([BIN, "tokenize", *args], capture_output=True, timeout=120)


@pytest.mark.parametrize("text", TEXTS)
def test_ids_match_hf(tokenizer_json, hf, text):
    r = run("--tokenizer", str(tokenizer_json), "--text", text)
    assert r.returncode == 0, r.stderr.decode()
    assert json.loads(r.stdout) == hf.encode(text).ids


def test_decode_prints_ids_tokens_and_text(tokenizer_json, hf):
    text = TEXTS[1] + TEXTS[2]
    r = run("--tokenizer", str(tokenizer_json), "--text", text, "--decode")
    assert r.returncode == 0, r.stderr.decode()
    out = json.loads(r.stdout)
    enc = hf.encode(text)
    assert out == {"ids": enc.ids, "tokens": enc.tokens,
                   "decoded": hf.decode(enc.ids, skip_special_tokens=False)}


def test_text_file(tokenizer_json, hf, tmp_path):
    text = "line one\nline two\r\n\n" * 50
    (tmp_path / "t.txt").write_bytes(text.encode())
    r = run("--tokenizer", str(tokenizer_json), "--text-file", str(tmp_path / "t.txt"))
    assert r.returncode == 0, r.stderr.decode()
    assert json.loads(r.stdout) == hf.encode(text).ids


def test_invalid_utf8_is_an_input_error_with_offset(tokenizer_json, tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"caf\xc3 ok")
    r = run("--tokenizer", str(tokenizer_json), "--text-file", str(tmp_path / "bad.txt"))
    assert r.returncode == 3
    err = r.stderr.decode()
    assert err.startswith("attnmap: error: ") and err.count("\n") == 1
    assert "byte offset 3" in err
    assert r.stdout == b""


def test_missing_tokenizer_is_an_input_error(tmp_path):
    r = run("--tokenizer", str(tmp_path / "nope.json"), "--text", "x")
    assert r.returncode == 3
    assert str(tmp_path / "nope.json") in r.stderr.decode()


def test_usage_errors_exit_2(tokenizer_json):
    assert run("--tokenizer", str(tokenizer_json)).returncode == 2  # no text
    assert run("--text", "x").returncode == 2  # no tokenizer


def test_model_file_embedded_tokenizer(tokenizer_json, hf, tmp_path):
    torch = pytest.importorskip("torch")
    model = torch.jit.script(torch.nn.Identity())
    good, bare = tmp_path / "model.pt", tmp_path / "bare.pt"
    torch.jit.save(model, str(good), _extra_files={"attnmap/tokenizer.json": tokenizer_json.read_bytes()})
    torch.jit.save(model, str(bare))
    r = run("--model", str(good), "--text", TEXTS[1])
    assert r.returncode == 0, r.stderr.decode()
    assert json.loads(r.stdout) == hf.encode(TEXTS[1]).ids
    r = run("--model", str(bare), "--text", "x")
    assert r.returncode == 4
    assert "attnmap/tokenizer.json" in r.stderr.decode()
    r = run("--model", str(tokenizer_json), "--text", "x")  # not a zip archive
    assert r.returncode == 4 and r.stderr.decode().count("\n") == 1
