"""`attnmap compare` on hostile run/batch folders: every damaged maps.npy, attention.json or
summary.jsonl is exit 2 with one line naming the file (and, for JSON, the field), never exit 70
(internal error) or 6 (out of memory from believing a forged header).

The fixture run has 4 layers of 6x8 cells (tools/make_compare_fixtures.py defaults).
"""
import json
import struct

import numpy as np
import pytest

from attnmap_tools.testing import make_compare_fixtures as fx
from conftest import run_compare

compare = run_compare


def assert_one_line_exit_2(proc, *needles):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("attnmap: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def npy_bytes(header: str, data: bytes = b"", version: tuple[int, int] = (1, 0), header_len: int | None = None) -> bytes:
    """A .npy file with an arbitrary header dict text (padded like numpy) and data."""
    text = header.encode("latin1")
    if version[0] == 1:
        pad = (64 - (10 + len(text) + 1) % 64) % 64
        text = text + b" " * pad + b"\n"
        length = struct.pack("<H", len(text) if header_len is None else header_len)
    else:
        pad = (64 - (12 + len(text) + 1) % 64) % 64
        text = text + b" " * pad + b"\n"
        length = struct.pack("<I", len(text) if header_len is None else header_len)
    return b"\x93NUMPY" + bytes(version) + length + text + data


GOOD_DATA = np.zeros((4, 6, 8), dtype=np.float32).tobytes()


def header(shape: str, descr: str = "<f4", fortran: str = "False") -> str:
    return "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)


HOSTILE_NPY = {
    # The shapes of issue 12.
    "shape_not_a_number": (npy_bytes(header("(4, 9, x)"), GOOD_DATA), "shape"),
    "negative_dimension": (npy_bytes(header("(-4, 9, 6)"), GOOD_DATA), "shape"),
    "product_overflows": (npy_bytes(header("(4000000000, 4000000000, 4)"), GOOD_DATA), "shape"),
    "huge_allocation": (npy_bytes(header("(100000, 100000, 4)"), GOOD_DATA), "(100000, 100000, 4)"),
    "dimension_over_int64": (npy_bytes(header("(99999999999999999999999, 6, 8)"), GOOD_DATA), "shape"),
    "many_dimensions": (npy_bytes(header("(" + "1, " * 100 + ")"), GOOD_DATA), "shape"),
    "wrong_shape": (npy_bytes(header("(4, 8, 6)"), GOOD_DATA), "shape"),
    "two_dimensions": (npy_bytes(header("(24, 8)"), GOOD_DATA), "shape"),
    "scalar": (npy_bytes(header("()"), GOOD_DATA[:4]), "shape"),
    "empty_array": (npy_bytes(header("(0, 6, 8)")), "shape"),
    # dtype and order.
    "complex_dtype": (npy_bytes(header("(4, 6, 8)", descr="<c8"), GOOD_DATA * 2), "<c8"),
    "big_endian": (npy_bytes(header("(4, 6, 8)", descr=">f4"), GOOD_DATA), ">f4"),
    "integer_maps": (npy_bytes(header("(4, 6, 8)", descr="<i4"), GOOD_DATA), "float"),
    "object_dtype": (npy_bytes(header("(4, 6, 8)", descr="|O"), GOOD_DATA), "|O"),
    "fortran_order": (npy_bytes(header("(4, 6, 8)", fortran="True"), GOOD_DATA), "Fortran"),
    "fortran_order_garbage": (npy_bytes(header("(4, 6, 8)", fortran="Maybe"), GOOD_DATA), "fortran_order"),
    # Sizes against the file.
    "data_truncated": (npy_bytes(header("(4, 6, 8)"), GOOD_DATA[:100]), "truncated"),
    "data_too_long": (npy_bytes(header("(4, 6, 8)"), GOOD_DATA + b"\0" * 64), "bytes"),
    "header_length_past_end": (npy_bytes(header("(4, 6, 8)"), b"", header_len=60000), "header"),
    "v2_header_length_4GiB": (npy_bytes(header("(4, 6, 8)"), GOOD_DATA, version=(2, 0), header_len=0xFFFFFFFF),
                              "header"),
    "header_length_zero": (npy_bytes("", GOOD_DATA, header_len=0), "header"),
    "unknown_version": (npy_bytes(header("(4, 6, 8)"), GOOD_DATA, version=(9, 0)), "version"),
    # Header dict syntax.
    "not_a_dict": (npy_bytes("hello world", GOOD_DATA), "header"),
    "unterminated_dict": (npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 6, 8)", GOOD_DATA), "header"),
    "missing_shape": (npy_bytes("{'descr': '<f4', 'fortran_order': False}", GOOD_DATA), "shape"),
    "missing_descr": (npy_bytes("{'fortran_order': False, 'shape': (4, 6, 8)}", GOOD_DATA), "descr"),
    "unterminated_shape": (npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 6, 8}", GOOD_DATA), "header"),
    "unterminated_string": (npy_bytes("{'descr': '<f4, 'fortran_order': False, 'shape': (4, 6, 8)}", GOOD_DATA), "header"),
    "shape_is_string": (npy_bytes(header("'4, 6, 8'"), GOOD_DATA), "shape"),
    "magic_only": (b"\x93NUMPY", ""),
    "empty_file": (b"", ""),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_NPY))
def test_hostile_maps_npy_is_exit_2_naming_the_file(tmp_path, case):
    data, words = HOSTILE_NPY[case]
    base = fx.write_run(tmp_path / "base")
    cand = fx.copy_tree(base, tmp_path / "cand")
    (cand / "maps.npy").write_bytes(data)
    assert_one_line_exit_2(compare(base, cand), str(cand / "maps.npy"), words)


def test_float64_maps_of_the_right_shape_still_compare(tmp_path):
    base = fx.write_run(tmp_path / "base")
    cand = fx.copy_tree(base, tmp_path / "cand")
    np.save(cand / "maps.npy", np.load(base / "maps.npy").astype(np.float64))
    proc = compare(base, cand)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def edit(doc: dict, path: str, value):
    """Sets doc[a][b]... for path 'a.b' (numeric parts index lists); value DELETE removes the key."""
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key = int(last) if isinstance(node, list) else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value


DELETE = object()

HOSTILE_JSON = {
    "prompt_missing": ("prompt", DELETE, "prompt"),
    "prompt_number": ("prompt", 7, "prompt"),
    "grid_string": ("grid", "6x8", "grid"),
    "grid_merged_h_missing": ("grid.merged_h", DELETE, "grid.merged_h"),
    "grid_merged_w_float": ("grid.merged_w", 8.5, "grid.merged_w"),
    "grid_merged_h_string": ("grid.merged_h", "6", "grid.merged_h"),
    "grid_h_null": ("grid.h", None, "grid.h"),
    "grid_t_string": ("grid.t", "1", "grid.t"),
    "grid_negative": ("grid.merged_h", -6, "grid"),
    "grid_huge": ("grid.merged_h", 2**62, "grid"),
    "grid_over_int64": ("grid.merged_w", 2**64 + 1, "grid.merged_w"),
    "layers_missing": ("layers", DELETE, "layers"),
    "layers_object": ("layers", {"layer": 0}, "layers"),
    "layers_of_numbers": ("layers", [0, 1, 2, 3], "layers"),
    "layer_string": ("layers.1.layer", "1", "layers[].layer"),
    "layer_huge": ("layers.1.layer", 2**40, "layer"),
    "layer_negative": ("layers.1.layer", -1, "layer"),
    "layer_duplicate": ("layers.1.layer", 0, "layer"),
    "layers_huge_array": ("layers", [{"layer": i} for i in range(200000)], "layers"),
    "num_hidden_layers_string": ("model.metadata", {"text": {"num_hidden_layers": "36"}}, "num_hidden_layers"),
    "num_hidden_layers_huge": ("model.metadata", {"text": {"num_hidden_layers": 2**40}}, "num_hidden_layers"),
    "num_hidden_layers_negative": ("model.metadata", {"text": {"num_hidden_layers": -3}}, "num_hidden_layers"),
    "model_metadata_string": ("model.metadata", "qwen", "model.metadata"),
    "schema_version_string": ("schema_version", "1", "schema_version"),
    "schema_version_missing": ("schema_version", DELETE, "schema_version"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_JSON))
@pytest.mark.parametrize("layers_flag", [None, "0-3"])
def test_hostile_attention_json_is_exit_2_naming_file_and_field(tmp_path, case, layers_flag):
    field, value, words = HOSTILE_JSON[case]
    base = fx.write_run(tmp_path / "base")
    cand = fx.copy_tree(base, tmp_path / "cand")
    doc = json.loads((cand / "attention.json").read_text())
    edit(doc, field, value)
    (cand / "attention.json").write_text(json.dumps(doc))
    args = [base, cand] + (["--layers", layers_flag] if layers_flag else [])
    assert_one_line_exit_2(compare(*args), str(cand / "attention.json"), words)


@pytest.mark.parametrize("text", [
    "",
    "[]",
    "null",
    "\"a string\"",
    "[" * 100000 + "]" * 100000,
    "{\"schema_version\": 1, " * 3,
    "\xff\xfe garbage",
], ids=["empty", "array", "null", "string", "deep_nesting", "unterminated", "latin1_garbage"])
def test_attention_json_that_is_not_an_object_is_exit_2(tmp_path, text):
    base = fx.write_run(tmp_path / "base")
    cand = fx.copy_tree(base, tmp_path / "cand")
    (cand / "attention.json").write_bytes(text.encode("latin1"))
    assert_one_line_exit_2(compare(base, cand), str(cand / "attention.json"))


def test_very_large_attention_json_is_refused_without_reading_it(tmp_path):
    base = fx.write_run(tmp_path / "base")
    cand = fx.copy_tree(base, tmp_path / "cand")
    with open(cand / "attention.json", "r+b") as f:
        f.truncate(300 * 1024 * 1024)  # sparse: costs no disk
    assert_one_line_exit_2(compare(base, cand), str(cand / "attention.json"), "MiB")


# --- summary.jsonl of batch folders --------------------------------------------------------------

@pytest.mark.parametrize("line", [
    {"id": "b", "status": 5},
    {"id": "b", "status": ["error"]},
    {"id": "b", "status": "error", "error": 12},
    {"id": "b", "status": "error", "error": {"nested": True}},
    {"id": 3, "status": "error"},
    {"id": None},
    [1, 2, 3],
    "just a string",
])
def test_ill_typed_summary_lines_do_not_hide_the_real_error(tmp_path, line):
    base = fx.write_batch(tmp_path / "base", ids=["a", "b"])
    cand = fx.copy_tree(base, tmp_path / "cand")
    import shutil
    shutil.rmtree(cand / "b")
    with open(cand / "summary.jsonl", "a") as f:
        f.write(json.dumps(line) + "\n")
    assert_one_line_exit_2(compare(base, cand), "'b'")


def test_summary_error_text_with_newlines_stays_one_line(tmp_path):
    base = fx.write_batch(tmp_path / "base", ids=["a", "b"])
    cand = fx.copy_tree(base, tmp_path / "cand")
    import shutil
    shutil.rmtree(cand / "b")
    with open(cand / "summary.jsonl", "a") as f:
        f.write(json.dumps({"id": "b", "status": "error", "error": "first\nsecond\r\nthird"}) + "\n")
    assert_one_line_exit_2(compare(base, cand), "'b'", "failed in the batch")


def test_garbage_summary_jsonl_is_ignored_when_items_match(tmp_path):
    base = fx.write_batch(tmp_path / "base", ids=["a", "b"])
    cand = fx.copy_tree(base, tmp_path / "cand")
    (cand / "summary.jsonl").write_bytes(b"\x00\xff{{{\n" + b"x" * (3 * 1024 * 1024) + b"\n[\n")
    proc = compare(base, cand)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hostile_maps_npy_in_a_batch_item_names_the_item_file(tmp_path):
    base = fx.write_batch(tmp_path / "base", ids=["a", "b"])
    cand = fx.copy_tree(base, tmp_path / "cand")
    (cand / "b" / "maps.npy").write_bytes(npy_bytes(header("(100000, 100000, 4)"), GOOD_DATA))
    assert_one_line_exit_2(compare(base, cand), str(cand / "b" / "maps.npy"))


# --- answer_maps.npy of runs made with --answer (fixture answers: 3 tokens, so [3, 4, 6, 8]) -------

GOOD_ANSWER_DATA = np.zeros((3, 4, 6, 8), dtype=np.float32).tobytes()

HOSTILE_ANSWER_NPY = {
    **HOSTILE_NPY,  # the forged headers of maps.npy, none of which is an answer_maps.npy header either
    "answer_huge_allocation": (npy_bytes(header("(2000000000, 4, 6, 8)"), GOOD_ANSWER_DATA), "(2000000000, 4, 6, 8)"),
    "answer_tokens_disagree": (npy_bytes(header("(4, 3, 6, 8)"), GOOD_ANSWER_DATA), "shape"),
    "answer_prompt_shape": (npy_bytes(header("(4, 6, 8)"), GOOD_DATA), "shape"),
    "answer_integer": (npy_bytes(header("(3, 4, 6, 8)", descr="<i4"), GOOD_ANSWER_DATA), "float"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ANSWER_NPY))
def test_hostile_answer_maps_npy_is_exit_2_naming_the_file(tmp_path, case):
    data, words = HOSTILE_ANSWER_NPY[case]
    base = fx.write_run(tmp_path / "base")
    fx.add_answer(base)
    cand = fx.copy_tree(base, tmp_path / "cand")
    (cand / "answer_maps.npy").write_bytes(data)
    assert_one_line_exit_2(compare(base, cand), str(cand / "answer_maps.npy"), words)


@pytest.mark.parametrize("field, value", [
    ("answer.maps.shape", [9, 4, 6, 8]),
    ("answer.tokens", [{"id": 1}]),
    ("answer.tokens.0.id", "9707"),
    ("answer.tokens", {"id": 1}),
])
def test_answer_record_disagreeing_with_itself_is_exit_2_naming_attention_json(tmp_path, field, value):
    base = fx.write_run(tmp_path / "base")
    fx.add_answer(base)
    cand = fx.copy_tree(base, tmp_path / "cand")
    doc = json.loads((cand / "attention.json").read_text())
    edit(doc, field, value)
    (cand / "attention.json").write_text(json.dumps(doc))
    assert_one_line_exit_2(compare(base, cand), str(cand / "attention.json"), "answer")
