"""attnmap run as a user runs it: the files it writes, and one clear line + exit code per bad input."""
import hashlib
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from attnmap_tools.testing import hf_reference as ref
from conftest import missing_build_output

PROMPT = "What is in the picture?"


def run(bin_path, *args):
    return subprocess.run([bin_path] + [str(a) for a in args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "photo.jpg"
    ref.synthetic_image(150, 230, seed=5).save(path, quality=95)
    return path


def test_run_writes_every_documented_output(attnmap_bin, tiny_model, image, tmp_path):
    out = tmp_path / "out"
    proc = run(attnmap_bin, "run", "--model", tiny_model["model"], "--image", image, "--prompt", PROMPT,
               "--out", out, "--device", "cpu", "--layers", "0-2", "--colormap", "viridis", "--blur", "2")
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["attention.json", "grid.jpg", "layer_00.jpg", "layer_01.jpg", "layer_02.jpg", "maps.npy",
                     "viewer.html"]
    doc = json.loads((out / "attention.json").read_text())
    maps = np.load(out / "maps.npy")
    grid = doc["grid"]
    assert maps.shape == (3, grid["merged_h"], grid["merged_w"]) and maps.dtype == np.float32
    assert [l["layer"] for l in doc["layers"]] == [0, 1, 2]
    for key in ["schema_version", "attnmap_version", "model", "options", "device", "dtype", "image", "prompt",
                "tokens", "image_token_span", "query_positions", "maps", "focus_layer", "prediction", "timings_ms"]:
        assert key in doc, key
    assert doc["prompt"] == PROMPT and doc["device"] == "cpu" and doc["dtype"] == "float32"
    assert "peak_device_memory_mib" not in doc  # CUDA only
    assert doc["model"]["sha256"] == hashlib.sha256(pathlib.Path(tiny_model["model"]).read_bytes()).hexdigest()
    assert len(doc["tokens"]["ids"]) == len(doc["tokens"]["strings"])
    span = doc["image_token_span"]
    assert span["end"] - span["start"] == grid["merged_h"] * grid["merged_w"]
    for layer, m in zip(doc["layers"], maps):
        assert layer["min"] == pytest.approx(float(m.min()), abs=1e-7)
        assert layer["max"] == pytest.approx(float(m.max()), abs=1e-7)
    with Image.open(image) as original:
        for name in ["layer_00.jpg", "layer_02.jpg"]:
            with Image.open(out / name) as im:
                assert im.size == original.size and im.format == "JPEG"
    with Image.open(out / "grid.jpg") as im:
        assert im.format == "JPEG"
    assert set(doc["timings_ms"]) == {"load_model", "decode", "preprocess", "tokenize", "forward", "maps", "render",
                                      "write", "total"}
    timings = doc["timings_ms"]
    assert timings["total"] == pytest.approx(sum(ms for stage, ms in timings.items() if stage != "total"))


def _key_tree(value):
    """The keys of a JSON document, nested (lists: the keys of their first element)."""
    if isinstance(value, dict):
        return {k: _key_tree(v) for k, v in value.items()}
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [_key_tree(value[0])]
    return None


def test_compare_fixtures_write_what_attnmap_run_writes(attnmap_bin, tiny_model, image, tmp_path):
    """The fixture writer (used by every compare test) must stay the schema attnmap writes and reads."""
    from attnmap_tools.testing import make_compare_fixtures as fx

    out = tmp_path / "real"
    proc = run(attnmap_bin, "run", "--model", tiny_model["model"], "--image", image, "--prompt", PROMPT,
               "--out", out, "--device", "cpu", "--no-images", "--no-viewer", "--layers", "0")
    assert proc.returncode == 0, proc.stderr
    real = json.loads((out / "attention.json").read_text())
    # The script as CI uses it, then read back by the C++ reader (compare) without complaint.
    fixture = tmp_path / "fixture"
    made = subprocess.run([sys.executable, "-m", "attnmap_tools.testing.make_compare_fixtures", "run", str(fixture)],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    same = run(attnmap_bin, "compare", fixture, fixture)
    assert same.returncode == 0, same.stdout + same.stderr
    made_doc = json.loads((fixture / "attention.json").read_text())
    real_keys, fixture_keys = _key_tree(real), _key_tree(made_doc)
    # The export's metadata is the model's own document; the fixture records only what compare reads of it.
    real_keys["model"].pop("metadata"), fixture_keys["model"].pop("metadata")
    # The run adds load_model; a batch item does not.
    real_keys["timings_ms"].pop("load_model")
    assert fixture_keys == real_keys
    assert made_doc["schema_version"] == real["schema_version"] == fx.ATTENTION_SCHEMA_VERSION


def test_schema_version_has_one_source():
    """Python's fixture constant is checked against the C++ constant attnmap writes and reads."""
    import re

    from attnmap_tools.testing import make_compare_fixtures as fx

    header = pathlib.Path(__file__).resolve().parents[2] / "include" / "attnmap" / "run_folder.hpp"
    found = re.findall(r"kAttentionSchemaVersion\s*=\s*(\d+)\s*;", header.read_text())
    assert found == [str(fx.ATTENTION_SCHEMA_VERSION)], (header, found)


def test_same_inputs_give_bit_identical_maps(attnmap_bin, tiny_model, image, tmp_path):
    for name in ["a", "b"]:
        proc = run(attnmap_bin, "run", "--model", tiny_model["model"], "--image", image, "--prompt", PROMPT,
                   "--out", tmp_path / name, "--device", "cpu", "--no-images")
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "a" / "maps.npy").read_bytes() == (tmp_path / "b" / "maps.npy").read_bytes()
    same = run(attnmap_bin, "compare", tmp_path / "a", tmp_path / "b")
    assert same.returncode == 0, same.stdout + same.stderr
    # A different query moves the maps: compare must notice and name a layer.
    proc = run(attnmap_bin, "run", "--model", tiny_model["model"], "--image", image, "--prompt", PROMPT,
               "--out", tmp_path / "c", "--device", "cpu", "--no-images", "--query", "last")
    assert proc.returncode == 0, proc.stderr
    moved = run(attnmap_bin, "compare", tmp_path / "a", tmp_path / "c")
    assert moved.returncode == 1 and "layer" in moved.stdout, moved.stdout + moved.stderr


def test_info_describes_the_model(attnmap_bin, tiny_model):
    proc = run(attnmap_bin, "info", "--model", tiny_model["model"])
    assert proc.returncode == 0, proc.stderr
    assert "decoder" in proc.stdout and "vision tower" in proc.stdout and "max_pixels" in proc.stdout
    build_line = proc.stdout.splitlines()[-1]
    assert build_line.startswith("this attnmap") and "libtorch" in build_line, build_line
    assert "CPU only" in build_line or "CUDA" in build_line, build_line
    meta = json.loads(run(attnmap_bin, "info", "--model", tiny_model["model"], "--json").stdout)
    assert meta["format"] == "attnmap-model"


def _bad_files(tmp_path):
    truncated = tmp_path / "truncated.jpg"
    ref.synthetic_image(100, 100).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:300])
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (20, 60), "white").save(tiny)
    thin = tmp_path / "thin.png"
    Image.new("RGB", (6000, 29), "white").save(thin)
    return {"missing": tmp_path / "nope.png", "truncated": truncated, "text": text, "tiny": tiny, "thin": thin}


@pytest.mark.parametrize("case, code, words", [
    ("missing", 3, "nope.png"),
    ("truncated", 3, "truncated.jpg"),
    ("text", 3, "notes.jpg"),
    ("tiny", 3, "tiny.png"),
    ("thin", 3, "thin.png"),
])
def test_bad_images_fail_with_one_clear_line(attnmap_bin, tiny_model, tmp_path, case, code, words):
    image = _bad_files(tmp_path)[case]
    out = tmp_path / "out"
    proc = run(attnmap_bin, "run", "--model", tiny_model["model"], "--image", image, "--prompt", PROMPT,
               "--out", out, "--device", "cpu")
    assert proc.returncode == code, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if "error" in l]
    assert len(lines) == 1 and words in lines[0], proc.stderr
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("args, code, words", [
    (["--prompt", "   "], 3, "prompt is empty"),
    (["--layers", "99"], 2, "--layers"),
    (["--heads", "17"], 2, "--heads"),
    (["--query", "5000"], 2, "--query"),
    (["--query", "word:zebra"], 2, "zebra"),
    (["--colormap", "rainbow"], 2, "rainbow"),
])
def test_bad_options_fail_with_one_clear_line(attnmap_bin, tiny_model, image, tmp_path, args, code, words):
    base = {"--prompt": PROMPT}
    argv = ["run", "--model", tiny_model["model"], "--image", image, "--out", tmp_path / "out", "--device", "cpu"]
    if "--prompt" not in args:
        argv += ["--prompt", PROMPT]
    proc = run(attnmap_bin, *(argv + args))
    assert proc.returncode == code, proc.stderr
    assert words in proc.stderr
    assert not (tmp_path / "out" / "attention.json").exists()


def test_unusable_gpu_fails_with_exit_6_and_the_way_out(attnmap_bin, tiny_model, image, tmp_path):
    # cuda:7: no CUDA at all here; on a machine with fewer GPUs, an index out of range. Either way, exit 6.
    proc = run(attnmap_bin, "run", "--model", tiny_model["model"], "--image", image, "--prompt", PROMPT,
               "--out", tmp_path / "out", "--device", "cuda:7")
    assert proc.returncode == 6, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if "error" in l]
    assert len(lines) == 1 and "--device cuda:7" in lines[0], proc.stderr
    assert "--device cpu" in lines[0] or "visible" in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()


def test_running_out_of_memory_exits_6_with_the_way_out(attnmap_bin, tmp_path):
    import resource

    demo = os.environ.get("ATTNMAP_DEMO_MODEL")
    if not demo or not os.path.exists(demo):
        missing_build_output("the demo model is not built (ATTNMAP_DEMO_MODEL)")
    if "CPU only" not in run(attnmap_bin, "info", "--model", demo).stdout.splitlines()[-1]:
        pytest.skip("a CUDA libtorch reserves address space that a CPU-side limit would trip over")
    small = tmp_path / "small.png"
    Image.new("RGB", (224, 224), (90, 120, 200)).save(small)
    big = tmp_path / "big.png"  # 15,876 image tokens: ~1.3 GB at peak with the demo model
    Image.new("RGB", (3528, 3528), (90, 120, 200)).save(big)
    # Address space: a small run needs 700-800 MiB (libtorch, the demo, the FFmpeg libraries videoio maps);
    # the big image still fails at 1,300 MiB (measured on the 2-core VM).
    cap = 1200 << 20

    def limited():
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    def attempt(image, out):
        return subprocess.run([attnmap_bin, "run", "--model", demo, "--image", str(image), "--prompt", "What is it?",
                               "--out", str(out), "--device", "cpu", "--no-images", "--max-pixels", "12446784"],
                              capture_output=True, text=True, preexec_fn=limited)

    ok = attempt(small, tmp_path / "small")
    assert ok.returncode == 0, ok.stderr  # the cap leaves room for a normal run
    oom = attempt(big, tmp_path / "big")
    assert oom.returncode == 6, oom.stderr
    lines = [l for l in oom.stderr.splitlines() if "error" in l]
    assert len(lines) == 1 and "out of memory" in lines[0] and "--max-pixels" in lines[0], oom.stderr
    assert not (tmp_path / "big").exists() or not any((tmp_path / "big").iterdir())


def test_bad_model_files_fail_with_exit_4(attnmap_bin, image, tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00" * 1000)
    import torch

    plain = tmp_path / "plain.pt"
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(plain))
    for model, words in [(tmp_path / "missing.pt", "does not exist"), (garbage, "garbage.pt"),
                         (plain, "not an attnmap export")]:
        proc = run(attnmap_bin, "run", "--model", model, "--image", image, "--prompt", PROMPT,
                   "--out", tmp_path / "out", "--device", "cpu")
        assert proc.returncode == 4, proc.stderr
        assert words in proc.stderr


def _with_format_version(tiny_model, version, path):
    import torch

    extra = {"attnmap/metadata.json": "", "attnmap/tokenizer.json": ""}
    module = torch.jit.load(str(tiny_model["model"]), _extra_files=extra)
    meta = json.loads(extra["attnmap/metadata.json"])
    meta["format_version"] = version
    extra["attnmap/metadata.json"] = json.dumps(meta)
    torch.jit.save(module, str(path), _extra_files=extra)
    return path


def test_other_format_version_is_refused_with_the_fix(attnmap_bin, tiny_model, image, tmp_path):
    future = _with_format_version(tiny_model, 99, tmp_path / "future.pt")
    proc = run(attnmap_bin, "run", "--model", future, "--image", image, "--prompt", PROMPT,
               "--out", tmp_path / "out", "--device", "cpu")
    assert proc.returncode == 4 and "format version 99" in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "upgrade attnmap" in errors[0], proc.stderr


def test_format_version_1_is_refused_with_the_re_export_command(attnmap_bin, tiny_model, image, tmp_path):
    old = _with_format_version(tiny_model, 1, tmp_path / "old.pt")
    for command in (["run", "--model", old, "--image", image, "--prompt", PROMPT, "--out", tmp_path / "out",
                     "--device", "cpu"], ["info", "--model", old]):
        proc = run(attnmap_bin, *command)
        assert proc.returncode == 4, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if "error" in line]  # `run` logs "loading model" first
        assert len(lines) == 1, proc.stderr
        assert f"model '{old}' is an attnmap export of format version 1" in lines[0]
        assert f"attnmap-export --checkpoint <hugging-face-folder> --out {old}" in lines[0]
    assert not (tmp_path / "out").exists()


def test_unwritable_output_fails_with_exit_5(attnmap_bin, tiny_model, image, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = run(attnmap_bin, "run", "--model", tiny_model["model"], "--image", image, "--prompt", PROMPT,
               "--out", blocker / "sub", "--device", "cpu")
    assert proc.returncode == 5, proc.stderr
    assert "sub" in proc.stderr


def test_bf16_on_cpu_runs_and_stays_close_to_fp32(attnmap_bin, tiny_model, image, tmp_path):
    maps = {}
    for dtype in ["fp32", "bf16"]:
        proc = run(attnmap_bin, "run", "--model", tiny_model["model"], "--image", image, "--prompt", PROMPT,
                   "--out", tmp_path / dtype, "--device", "cpu", "--dtype", dtype, "--no-images")
        assert proc.returncode == 0, proc.stderr
        # The metadata's names (docs/design.md), not the --dtype spelling.
        expected = {"fp32": "float32", "bf16": "bfloat16"}[dtype]
        assert json.loads((tmp_path / dtype / "attention.json").read_text())["dtype"] == expected
        maps[dtype] = np.load(tmp_path / dtype / "maps.npy").astype(np.float64)
    a, b = maps["fp32"].ravel(), maps["bf16"].ravel()
    assert np.isfinite(b).all()
    assert a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) > 0.98
