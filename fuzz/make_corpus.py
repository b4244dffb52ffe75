#!/usr/bin/env python3
"""Writes the small seed corpora under fuzz/corpus/<harness>/ (committed; re-run to regenerate).

Run with the project's venv: .venv/bin/python fuzz/make_corpus.py
"""
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent
CORPUS = ROOT / "corpus"


def put(harness, name, data):
    d = CORPUS / harness
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def tokenizer():
    texts = ["Hello world", "What color is the circle?", "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>"
             "Describe.<|im_end|>\n<|im_start|>assistant\n", "  leading spaces\t\ttabs\r\n", "数字 123456 和 émoji 🙂👍🏽",
             "Ａｃｃｅｎｔ: e\u0301 cafe\u0301", "don't I'll we've", "x" * 64]
    for i, t in enumerate(texts):
        put("tokenizer", f"encode_{i}", b"\x00" + t.encode())
    put("tokenizer", "encode_invalid_utf8", b"\x00ab\xff\xfe\xc3(")
    ids = [151644, 872, 198, 9707, 1879, 151645, 151655, 0, 151642]
    put("tokenizer", "decode_ids", b"\x01" + b"".join(struct.pack("<i", i) for i in ids))
    put("tokenizer", "decode_skip", b"\x05" + b"".join(struct.pack("<i", i) for i in ids))
    put("tokenizer", "decode_raw", b"\x03" + struct.pack("<iii", -1, 2**31 - 1, 151700))


def png_bytes(img, **kw):
    b = io.BytesIO()
    img.save(b, "PNG", **kw)
    return b.getvalue()


def image():
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8))
    put("image", "rgb.png", png_bytes(rgb))
    put("image", "gray.png", png_bytes(rgb.convert("L")))
    put("image", "rgba.png", png_bytes(rgb.convert("RGBA")))
    put("image", "palette_trns.png", png_bytes(rgb.convert("P", palette=Image.ADAPTIVE, colors=8), transparency=0))
    put("image", "rgb_trns.png", png_bytes(rgb, transparency=(1, 2, 3)))
    put("image", "gray16.png", png_bytes(Image.fromarray((rng.integers(0, 65535, (28, 28))).astype(np.uint16))))
    b = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90
    rgb.save(b, "JPEG", quality=50, exif=exif.tobytes())
    put("image", "exif6.jpg", b.getvalue())
    put("image", "truncated.jpg", b.getvalue()[: len(b.getvalue()) // 2])
    b = io.BytesIO()
    rgb.resize((32, 28)).save(b, "BMP")
    put("image", "small.bmp", b.getvalue())
    put("image", "truncated.png", png_bytes(rgb)[:60])
    put("image", "tiny_1x1.png", png_bytes(Image.new("RGB", (1, 1))))
    put("image", "not_an_image.jpg", b"this is text, not a JPEG\n")


def npy():
    def save(name, arr):
        b = io.BytesIO()
        np.save(b, arr)
        put("npy", name, b.getvalue())
    save("f32_3d.npy", np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    save("f64_1d.npy", np.linspace(0, 1, 5))
    save("i64_scalar.npy", np.array(7, dtype=np.int64))
    save("u8_2d.npy", np.ones((2, 2), dtype=np.uint8))
    save("i32_empty.npy", np.zeros((0, 3), dtype=np.int32))
    save("fortran.npy", np.asfortranarray(np.ones((2, 3), dtype=np.float32)))
    save("big_endian.npy", np.ones(3, dtype=">f4"))
    good = io.BytesIO()
    np.save(good, np.ones((2, 2), dtype=np.float32))
    put("npy", "truncated_data.npy", good.getvalue()[:-3])
    put("npy", "truncated_header.npy", good.getvalue()[:20])
    v2 = bytearray(good.getvalue())
    header = v2[10:]
    put("npy", "version2.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", 118) + bytes(header))


def attention_json():
    doc = {
        "schema_version": 1, "attnmap_version": "0.1.0",
        "model": {"path": "models/demo.pt", "sha256": "00", "model_family": "qwen2_5_vl",
                  "metadata": {"text": {"num_hidden_layers": 4}}},
        "image": {"path": "in.png", "width": 64, "height": 48, "resized_width": 56, "resized_height": 56},
        "grid": {"t": 1, "h": 4, "w": 4, "merged_h": 2, "merged_w": 2},
        "prompt": "What color is the circle?",
        "layers": [{"layer": 0, "min": 0.0, "max": 0.01, "sum": 0.4, "entropy": 5.1},
                   {"layer": 3, "min": 0.0, "max": 0.02, "sum": 0.5, "entropy": 4.9}],
        "maps": {"file": "maps.npy", "shape": [2, 2, 2], "dtype": "float32"},
        "focus_layer": None,
    }
    put("attention_json", "valid.json", json.dumps(doc))
    put("attention_json", "truncated.json", json.dumps(doc)[:150])
    bad = dict(doc, layers=[{"layer": 1}, {"layer": 1}])
    put("attention_json", "duplicate_layer.json", json.dumps(bad))
    put("attention_json", "schema2.json", json.dumps(dict(doc, schema_version=2)))
    put("attention_json", "grid_strings.json", json.dumps(dict(doc, grid={"merged_h": "2", "merged_w": 2})))
    # --answer, --baseline-prompt and the viewer's record: the optional objects the reader checks too
    answer = {"text": "Red.", "stopped_on_eos": True, "max_new_tokens": 32, "repetition_penalty": 1.05,
              "tokens": [{"id": 6033, "token": "Red", "text": "Red", "probability": 0.9, "position": 20},
                         {"id": 13, "token": ".", "text": ".", "probability": 0.8, "position": 21}],
              "query_tokens": [0], "strip_labels": "text",
              "maps": {"file": "answer_maps.npy", "shape": [2, 2, 2, 2], "dtype": "float32"}}
    baseline = {"prompt": "Write a general description of the image.", "token_ids": [1, 2], "query_positions": [1],
                "epsilon": 1e-6, "layers": [{"layer": 0, "min": 0.0, "max": 0.1, "sum": 0.5, "entropy": 1.0,
                                             "top1_share": 0.3}],
                "relative_maps": {"file": "relative_maps.npy", "shape": [2, 2, 2], "dtype": "float32"}}
    viewer = {"file": "viewer.html", "detail": "full", "html_bytes": 1000, "notes": []}
    put("attention_json", "answer_baseline_viewer.json",
        json.dumps(dict(doc, answer=answer, baseline=baseline, viewer=viewer)))
    put("attention_json", "answer_tokens_not_objects.json", json.dumps(dict(doc, answer=dict(answer, tokens=[1, 2]))))


def summary_jsonl():
    lines = [{"id": "a", "image": "a.png", "prompt": "p", "status": "ok", "output": "a", "timings_ms": {"total": 3}},
             {"id": "item", "image": "b.png", "prompt": "p", "status": "error", "error": "image 'b.png': x" * 20},
             {"id": 5, "status": "error"}, {"id": "c", "status": "error", "error": None}]
    put("summary_jsonl", "mixed.jsonl", "\n".join(json.dumps(l) for l in lines) + "\n{not json\n")
    put("summary_jsonl", "item_error.jsonl", json.dumps({"id": "item", "status": "error", "error": "out of memory"}) + "\n")


def manifest():
    lines = [{"image": "a.png", "prompt": "What color?", "id": "first"}, {"image": "sub/a.png"},
             {"image": "/abs/b.jpg", "id": 12}, {"image": "c.png", "id": "../escape"}, {"image": "d.png", "id": ""}]
    put("manifest", "manifest.jsonl", b"\x00" + ("\n".join(json.dumps(l) for l in lines) + "\n\n").encode())
    put("manifest", "bad_line.jsonl", b"\x00" + b'{"image": "a.png"}\n{"prompt": "no image"}\n')
    put("manifest", "list.txt", b"\x01# comment\na.png\nsub/a.png\r\n/abs/a.png \n\n..\n")


if __name__ == "__main__":
    for make in (tokenizer, image, npy, attention_json, summary_jsonl, manifest):
        make()
