"""metadata "generation" (end ids, repetition penalty) read from generation_config.json, or defaulted.

Checked against what transformers' generate() itself reads from the same folder, and on the bundled
demo checkpoint (no generation_config.json: the defaults), whose files are only read.
"""
import hashlib
import json
import pathlib

import pytest

from attnmap_tools.export import exporter
from attnmap_tools.export.checkpoint import read_generation_config, read_raw_config, read_tokenizer_json
from attnmap_tools.export.metadata import generation_section, special_token_ids
from attnmap_tools.testing import REPO_ROOT

DEMO = REPO_ROOT / "models" / "demo-qwen2_5_vl"
QWEN_TOKENS = {"im_end_token_id": 151645, "endoftext_token_id": 151643}


def _section(folder: pathlib.Path) -> dict:
    return generation_section(read_generation_config(folder), read_raw_config(folder),
                              special_token_ids(read_tokenizer_json(folder)))


def test_released_generation_config_is_read():
    released = {"bos_token_id": 151643, "pad_token_id": 151643, "do_sample": True,
                "eos_token_id": [151645, 151643], "repetition_penalty": 1.05, "temperature": 0.1, "top_p": 0.001,
                "top_k": 1}
    assert generation_section(released, {"eos_token_id": 151645}, QWEN_TOKENS) == {
        "source": "generation_config.json", "eos_token_ids": [151645, 151643], "repetition_penalty": 1.05,
        "do_sample": True, "temperature": 0.1, "top_p": 0.001, "top_k": 1}


def test_single_eos_id_and_unset_fields():
    got = generation_section({"eos_token_id": 151645}, {}, QWEN_TOKENS)
    assert got == {"source": "generation_config.json", "eos_token_ids": [151645], "repetition_penalty": 1.0,
                   "do_sample": False, "temperature": None, "top_p": None, "top_k": None}


def test_defaults_without_the_file():
    # config.json's eos first (what transformers would stop on), then <|im_end|>, <|endoftext|>, no repeats.
    assert generation_section(None, {"eos_token_id": 151645}, QWEN_TOKENS)["eos_token_ids"] == [151645, 151643]
    assert generation_section(None, {"text_config": {"eos_token_id": 7}}, QWEN_TOKENS)["eos_token_ids"] == \
        [7, 151645, 151643]
    assert generation_section(None, {}, QWEN_TOKENS) == {
        "source": "defaults", "eos_token_ids": [151645, 151643], "repetition_penalty": 1.0, "do_sample": False,
        "temperature": None, "top_p": None, "top_k": None}


def test_file_without_eos_falls_back_to_the_defaults():
    got = generation_section({"repetition_penalty": 1.1}, {"eos_token_id": 151645}, QWEN_TOKENS)
    assert got["eos_token_ids"] == [151645, 151643] and got["repetition_penalty"] == 1.1


def test_demo_checkpoint_has_no_generation_config_and_gets_the_defaults(tmp_path):
    assert not (DEMO / "generation_config.json").exists()
    before = hashlib.sha256((DEMO / "model.safetensors").read_bytes()).hexdigest()
    tokens = special_token_ids(read_tokenizer_json(DEMO))
    section = _section(DEMO)
    assert section["source"] == "defaults"
    assert section["eos_token_ids"] == [tokens["im_end_token_id"], tokens["endoftext_token_id"]] == [343, 341]
    assert section["repetition_penalty"] == 1.0
    # The export writes the same section; the demo folder is only read.
    out = tmp_path / "demo.pt"
    meta = exporter.export(str(DEMO), str(out), "fp32", log=lambda *a, **k: None)
    assert meta["generation"] == section
    assert hashlib.sha256((DEMO / "model.safetensors").read_bytes()).hexdigest() == before


def test_bad_generation_config_is_a_checkpoint_error(tmp_path):
    from attnmap_tools.export.checkpoint import CheckpointError

    (tmp_path / "generation_config.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="generation_config.json"):
        read_generation_config(tmp_path)


def test_eos_ids_equal_what_transformers_generate_reads(tmp_path):
    """The file as transformers' GenerationConfig loads it: the same end ids and penalty."""
    from transformers import GenerationConfig

    from attnmap_tools.testing.tiny import RELEASED_GENERATION_CONFIG

    (tmp_path / "generation_config.json").write_text(json.dumps(RELEASED_GENERATION_CONFIG))
    hf = GenerationConfig.from_pretrained(str(tmp_path))
    section = generation_section(read_generation_config(tmp_path), {}, QWEN_TOKENS)
    assert section["eos_token_ids"] == list(hf.eos_token_id)
    assert section["repetition_penalty"] == hf.repetition_penalty
