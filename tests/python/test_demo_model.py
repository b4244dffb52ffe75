"""The bundled demo model answers held-out scene questions and its focus map points at the asked shape.

Held-out scenes come from the generator with seed HELD_OUT_SEED (training uses seed 0); the truth (answer
word, bounding box) comes from the generator, never from stored expectations. The same scoring
(demo.focus.score) is applied to two producers of (prediction, map) records:
  * the transformers reference (attnmap_tools.demo.evaluate's Evaluator) on the checkpoint folder;
  * the C++ CLI (`$ATTNMAP_BIN run`) on the exported model `$ATTNMAP_DEMO_MODEL` (skipped until both exist).
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

from attnmap_tools.demo import focus, scenes
from conftest import missing_build_output

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "models" / "demo-qwen2_5_vl"
HELD_OUT_SEED = 777
COUNT = 100
MIN_ACCURACY = 0.95
MIN_HIT_RATE = 0.90
# The committed checkpoint meets both targets (docs/demo_model.md has its figures). Set this to False (the target
# tests then become non-strict xfails that still report the figures) only for a checkpoint that misses them.
CHECKPOINT_MEETS_TARGETS = True
below_targets = pytest.mark.xfail(not CHECKPOINT_MEETS_TARGETS, strict=False,
                                  reason="shipped demo checkpoint is below the accuracy / hit-rate targets")


def focus_layer() -> int:
    return int(json.loads((CHECKPOINT / "config.json").read_text())["attnmap_focus_layer"])


def check_targets(records: list[focus.Record], who: str) -> None:
    result = focus.score(records)
    print(f"{who}: {result}")
    assert result.n >= 100
    assert result.accuracy >= MIN_ACCURACY, f"{who}: {result}"
    assert result.hit_rate >= MIN_HIT_RATE, f"{who}: {result}"


def test_scoring_logic_on_constructed_maps():
    """hit() follows the map-cell contract: cell (r, c) covers x in [c*W/mw, (c+1)*W/mw), y likewise."""
    for i in range(20):
        scene = scenes.make_scene(HELD_OUT_SEED + 1, i)
        width, height = scene.image.size
        mh, mw = 8, 9
        x0, y0, x1, y1 = scene.bbox
        centre = np.zeros((mh, mw), np.float32)
        centre[int((y0 + y1) / 2 * mh / height), int((x0 + x1) / 2 * mw / width)] = 1.0
        assert focus.hit(scene.image.size, scene.bbox, centre)
        # The cell farthest from the box can never touch it (boxes are at most 1/3 of the shorter side).
        far = np.zeros((mh, mw), np.float32)
        far[0 if (y0 + y1) / 2 > height / 2 else mh - 1, 0 if (x0 + x1) / 2 > width / 2 else mw - 1] = 1.0
        assert not focus.hit(scene.image.size, scene.bbox, far)
        good = focus.Record(scene, scene.answer, centre)
        bad = focus.Record(scene, "nothing", far)
        assert focus.score([good, bad]).accuracy == 0.5
        assert focus.score([good, bad]).hit_rate == 0.5


def reference_records(count: int) -> list[focus.Record]:
    torch = pytest.importorskip("torch")
    from attnmap_tools.demo.evaluate import Evaluator

    torch.set_num_threads(1)
    ev = Evaluator(CHECKPOINT)
    return [ev.run(scenes.make_scene(HELD_OUT_SEED, i)) for i in range(count)]


@below_targets
@pytest.mark.skipif(not (CHECKPOINT / "model.safetensors").exists(), reason="demo checkpoint not present")
def test_reference_model_on_held_out_scenes():
    check_targets(reference_records(COUNT), "transformers reference")


def _cli_paths():
    binary, model = os.environ.get("ATTNMAP_BIN"), os.environ.get("ATTNMAP_DEMO_MODEL")
    if not binary or not pathlib.Path(binary).exists():
        missing_build_output("ATTNMAP_BIN not set or missing")
    if not model or not pathlib.Path(model).exists():
        missing_build_output("ATTNMAP_DEMO_MODEL not set or missing (the build exports it from the checkpoint)")
    return binary, model


def run_cli(binary: str, model: str, scene: scenes.Scene, layer: int, work: pathlib.Path) -> focus.Record:
    image = work / "scene.png"  # PNG: the CLI sees exactly the generator's pixels
    scene.image.save(image)
    out = work / "out"
    cmd = [binary, "run", "--model", model, "--image", str(image), "--prompt", scene.question, "--out", str(out),
           "--layers", str(layer), "--query", "prompt", "--device", "cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
    meta = json.loads((out / "attention.json").read_text())
    maps = np.load(out / "maps.npy")
    grid = meta["grid"]
    assert meta["focus_layer"] == layer
    assert [entry["layer"] for entry in meta["layers"]] == [layer]
    assert maps.dtype == np.float32 and maps.shape == (1, grid["merged_h"], grid["merged_w"])
    assert (grid["merged_h"], grid["merged_w"]) == (grid["h"] // 2, grid["w"] // 2)
    assert (meta["image"]["width"], meta["image"]["height"]) == scene.image.size
    return focus.Record(scene, meta["prediction"]["text"], maps[0])


@pytest.fixture(scope="module")
def cli_records(tmp_path_factory):
    binary, model = _cli_paths()
    layer = focus_layer()
    records = []
    for i in range(COUNT):
        work = tmp_path_factory.mktemp(f"scene{i:03d}")
        records.append(run_cli(binary, model, scenes.make_scene(HELD_OUT_SEED, i), layer, work))
    return records


@below_targets
def test_cli_on_held_out_scenes(cli_records):
    check_targets(cli_records, "attnmap CLI")


def test_cli_agrees_with_transformers(cli_records):
    """Independent of how good the model is: the C++ pipeline must reproduce the reference's answer token
    and map (same argmax cell, close values) on (nearly) every scene."""
    reference = reference_records(COUNT)
    same_answer = sum(c.predicted == r.predicted for c, r in zip(cli_records, reference))
    same_argmax = sum(int(np.argmax(c.amap)) == int(np.argmax(r.amap)) for c, r in zip(cli_records, reference))
    close = sum(c.amap.shape == r.amap.shape and np.allclose(c.amap, r.amap, atol=2e-3)
                for c, r in zip(cli_records, reference))
    print(f"CLI vs transformers on {COUNT} scenes: answer {same_answer}, argmax cell {same_argmax}, maps close {close}")
    assert same_answer >= 0.98 * COUNT and same_argmax >= 0.98 * COUNT and close >= 0.95 * COUNT
