"""`attnmap compare` end to end on synthetic run and batch folders (attnmap_tools.testing.make_compare_fixtures).

Expected figures follow from the perturbations, not from the tool's own output.
"""
import json
import shutil

import numpy as np
import pytest

from attnmap_tools.testing import make_compare_fixtures as fx
from conftest import run_compare

compare = run_compare


def assert_usage_error(proc, *needles):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("attnmap: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def fail_lines(stdout):
    return [line for line in stdout.splitlines() if line.strip().startswith("FAIL")]


@pytest.fixture
def runs(tmp_path):
    base = fx.write_run(tmp_path / "run" / "base")
    cand = fx.copy_tree(base, tmp_path / "run" / "cand")
    return base, cand


@pytest.fixture
def batches(tmp_path):
    base = fx.write_batch(tmp_path / "batch" / "base", ids=["a", "b", "c"])
    cand = fx.copy_tree(base, tmp_path / "batch" / "cand")
    return base, cand


# --- identical inputs ---------------------------------------------------------------------------

def test_identical_run_folders_pass(runs):
    proc = compare(*runs)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS" in proc.stdout
    assert not fail_lines(proc.stdout)


@pytest.mark.parametrize("metric", ["max-abs", "cosine", "iou-top-k", "peak-shift"])
def test_identical_batch_folders_pass_under_every_metric(batches, metric):
    proc = compare(*batches, "--metric", metric)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- a perturbed map fails, naming the item and layer --------------------------------------------

def test_perturbed_run_layer_fails_and_is_named(runs, tmp_path):
    base, cand = runs
    fx.perturb(cand, layer=2, add=1e-3, cell=(0, 0))
    report = tmp_path / "report.json"
    proc = compare(base, cand, "--report", report)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = fail_lines(proc.stdout)
    assert lines and all("layer 2" in line for line in lines), proc.stdout
    doc = json.loads(report.read_text())
    assert doc["pass"] is False
    (item,) = doc["items"]
    figures = {entry["layer"]: entry for entry in item["layers"]}
    assert [layer for layer, entry in figures.items() if not entry["pass"]] == [2]
    assert figures[2]["max_abs"] == pytest.approx(1e-3, rel=1e-3)
    assert figures[2]["cells_outside"] == 1
    assert figures[0]["max_abs"] == 0.0


def test_perturbed_batch_item_fails_and_is_named(batches, tmp_path):
    base, cand = batches
    fx.perturb(cand / "b", layer=3, add=5e-3, cell=(4, 6))
    report = tmp_path / "report.json"
    proc = compare(base, cand, "--report", report)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = fail_lines(proc.stdout)
    assert lines and all("item b" in line and "layer 3" in line for line in lines), proc.stdout
    doc = json.loads(report.read_text())
    assert doc["summary"] == {"items": 3, "items_failed": 1, "layers_compared": 12, "layers_failed": 1,
                              "answers_compared": 0, "answers_changed": 0, "answers_one_sided": 0,
                              "answer_maps_compared": 0, "answer_maps_failed": 0}
    assert (doc["worst_items"][0]["id"], doc["worst_items"][0]["layer"]) == ("b", 3)
    assert doc["worst_items"][0]["pass"] is False
    assert doc["worst_layers"][0]["layer"] == 3 and doc["worst_layers"][0]["id"] == "b"
    items = {item["id"]: item for item in doc["items"]}
    assert items["a"]["pass"] and items["c"]["pass"] and not items["b"]["pass"]


def test_max_abs_respects_atol_and_rtol(runs):
    base, cand = runs
    # Background cell (0,0) is < 0.01, so the bound with the defaults is < 1e-6 + 1e-6.
    fx.perturb(cand, layer=1, add=5e-4, cell=(0, 0))
    assert compare(base, cand).returncode == 1
    assert compare(base, cand, "--atol", "1e-3").returncode == 0
    # Relative part alone: 5e-4 <= rtol * |b| needs rtol >= 5e-4 / 0.01 = 0.05 at the largest background.
    assert compare(base, cand, "--atol", "0", "--rtol", "0.01").returncode == 1
    b0 = float(np.load(base / "maps.npy")[1, 0, 0])
    assert compare(base, cand, "--atol", "0", "--rtol", str(1.01 * 5e-4 / b0)).returncode == 0


def test_nan_in_candidate_fails(runs):
    base, cand = runs
    fx.perturb(cand, layer=0, set_cells={(1, 1): float("nan")})
    for metric in ("max-abs", "cosine"):
        proc = compare(base, cand, "--metric", metric)
        assert proc.returncode == 1, (metric, proc.stdout, proc.stderr)


# --- each metric ------------------------------------------------------------------------------------

def test_scaled_map_passes_cosine_but_fails_max_abs(runs, tmp_path):
    base, cand = runs
    fx.perturb(cand, layer=1, scale=2.0)
    assert compare(base, cand).returncode == 1
    report = tmp_path / "r.json"
    proc = compare(base, cand, "--metric", "cosine", "--report", report)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    layer1 = [l for l in json.loads(report.read_text())["items"][0]["layers"] if l["layer"] == 1][0]
    assert layer1["cosine"] == pytest.approx(1.0, abs=1e-6)


def test_changed_map_fails_cosine(runs):
    base, cand = runs
    # Swapping the dominant peak with a background cell leaves two nearly orthogonal maps.
    fx.perturb(cand, layer=0, move_peak=(3, 3))
    assert compare(base, cand, "--metric", "cosine").returncode == 1
    assert compare(base, cand, "--metric", "cosine", "--min-cosine", "-1").returncode == 0


def test_peak_moved_three_cells_fails_peak_shift_of_one(runs, tmp_path):
    base, cand = runs
    fx.perturb(cand, layer=2, move_peak=(0, 3))
    report = tmp_path / "r.json"
    proc = compare(base, cand, "--metric", "peak-shift", "--max-peak-shift", "1", "--report", report)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert any("layer 2" in line for line in fail_lines(proc.stdout)), proc.stdout
    layer2 = [l for l in json.loads(report.read_text())["items"][0]["layers"] if l["layer"] == 2][0]
    assert layer2["peak_shift"] == pytest.approx(3.0)
    assert layer2["baseline_peak"] == list(fx.PEAK_CELL)
    assert layer2["candidate_peak"] == [fx.PEAK_CELL[0], fx.PEAK_CELL[1] + 3]
    assert compare(base, cand, "--metric", "peak-shift", "--max-peak-shift", "3").returncode == 0
    assert compare(base, cand, "--metric", "peak-shift", "--max-peak-shift", "2.9").returncode == 1


def test_peak_shift_is_euclidean(runs, tmp_path):
    base, cand = runs
    fx.perturb(cand, layer=0, move_peak=(3, 4))
    assert compare(base, cand, "--metric", "peak-shift", "--max-peak-shift", "5").returncode == 0
    assert compare(base, cand, "--metric", "peak-shift", "--max-peak-shift", "4.99").returncode == 1


def test_top_k_iou(tmp_path):
    # 4x5 = 20 cells with distinct values 20..1; top 20% = 4 cells = raster cells 0..3.
    base_map = np.arange(20, 0, -1, dtype=np.float32).reshape(1, 4, 5)
    base = fx.write_run(tmp_path / "base", maps=base_map, layers=[0])
    cand_map = base_map.copy()
    cand_map[0, 0, 0] = cand_map[0, 0, 1] = 0  # candidate top 4 = cells 2..5: overlap {2,3}, union 6 -> IoU 1/3
    cand = fx.write_run(tmp_path / "cand", maps=cand_map, layers=[0])
    report = tmp_path / "r.json"
    proc = compare(base, cand, "--metric", "iou-top-k", "--top-k", "20", "--min-iou", "0.5", "--report", report)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert json.loads(report.read_text())["items"][0]["layers"][0]["iou_top_k"] == pytest.approx(1 / 3)
    assert compare(base, cand, "--metric", "iou-top-k", "--top-k", "20", "--min-iou", "0.33").returncode == 0
    # Top 50% = 10 cells: candidate keeps 8 of them plus cells 10,11 -> IoU 8/12.
    assert compare(base, cand, "--metric", "iou-top-k", "--top-k", "50", "--min-iou", "0.66").returncode == 0
    assert compare(base, cand, "--metric", "iou-top-k", "--top-k", "50", "--min-iou", "0.67").returncode == 1


# --- --layers ----------------------------------------------------------------------------------

def test_layers_filter_skips_unselected_layers(runs, tmp_path):
    base, cand = runs
    fx.perturb(cand, layer=2, add=1e-2)
    assert compare(base, cand, "--layers", "0,1,3").returncode == 0
    assert compare(base, cand, "--layers", "1-2").returncode == 1
    report = tmp_path / "r.json"
    compare(base, cand, "--layers", "3,0", "--report", report)
    assert [l["layer"] for l in json.loads(report.read_text())["items"][0]["layers"]] == [3, 0]


def test_layers_out_of_range_is_usage_error(runs):
    assert_usage_error(compare(*runs, "--layers", "0,9"), "9", "0-3")
    assert_usage_error(compare(*runs, "--layers", "3-1"), "3-1")


# --- input errors name the item -----------------------------------------------------------------

def test_missing_item_in_candidate(batches):
    base, cand = batches
    shutil.rmtree(cand / "b")
    assert_usage_error(compare(base, cand), "'b'", "candidate")


def test_extra_item_in_candidate(batches):
    base, cand = batches
    fx.write_run(cand / "d")
    assert_usage_error(compare(base, cand), "'d'", "baseline")


def test_incomplete_item_is_missing(batches):
    base, cand = batches
    (cand / "c" / "attention.json").unlink()
    assert_usage_error(compare(base, cand), "'c'", "incomplete")


def test_grid_mismatch(batches):
    base, cand = batches
    shutil.rmtree(cand / "a")
    fx.write_run(cand / "a", merged_h=6, merged_w=7, seed=0)
    assert_usage_error(compare(base, cand), "item 'a'", "grids differ", "6x8", "6x7")


def test_layer_mismatch(batches):
    base, cand = batches
    shutil.rmtree(cand / "c")
    fx.write_run(cand / "c", layers=[0, 1, 2], seed=2)
    assert_usage_error(compare(base, cand), "item 'c'", "layers differ", "0-3", "0-2")
    # The layers both sides recorded still compare; item c's maps for 0-2 are unchanged (same seed).
    assert compare(base, cand, "--layers", "0-2").returncode == 0
    assert_usage_error(compare(base, cand, "--layers", "3"), "item 'c'", "layer 3")


def test_different_prompts(batches):
    base, cand = batches
    fx.edit_json(cand / "b", prompt="Where is the dog?")
    assert_usage_error(compare(base, cand), "item 'b'", "prompts differ", "Where is the dog?")


def test_corrupt_maps_npy(runs):
    base, cand = runs
    (cand / "maps.npy").write_bytes(b"not numpy")
    assert_usage_error(compare(base, cand), str(cand / "maps.npy"))


def test_maps_npy_shape_disagrees_with_attention_json(runs):
    base, cand = runs
    np.save(cand / "maps.npy", np.zeros((4, 6, 9), dtype=np.float32))
    assert_usage_error(compare(base, cand), "maps.npy", "shape")


def test_corrupt_attention_json(runs):
    base, cand = runs
    (cand / "attention.json").write_text("{ not json")
    assert_usage_error(compare(base, cand), str(cand / "attention.json"), "JSON")


def test_wrong_schema_version(runs):
    base, cand = runs
    fx.edit_json(cand, schema_version=2)
    assert_usage_error(compare(base, cand), "schema_version")


def test_run_versus_batch_and_missing_folder(runs, batches, tmp_path):
    assert_usage_error(compare(runs[0], batches[1]), "single-run", "batch")
    assert_usage_error(compare(runs[0], tmp_path / "nope"), str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    assert_usage_error(compare(runs[0], tmp_path / "empty"), "neither a run folder")


def test_threshold_flag_of_another_metric_is_usage_error(runs):
    assert_usage_error(compare(*runs, "--metric", "cosine", "--atol", "1e-3"), "--atol", "max-abs")
    assert_usage_error(compare(*runs, "--min-cosine", "2", "--metric", "cosine"), "--min-cosine")
    assert_usage_error(compare(*runs, "--report", "r.txt"), ".json", ".md")
    assert compare(*runs, "--metric", "bogus").returncode == 2


# --- reports ------------------------------------------------------------------------------------

def test_json_report_fields(batches, tmp_path):
    base, cand = batches
    fx.perturb(cand / "a", layer=0, add=1.0)
    report = tmp_path / "out" / "report.json"
    assert compare(base, cand, "--report", report).returncode == 1
    doc = json.loads(report.read_text())
    assert doc["report"] == "attnmap compare" and doc["schema_version"] == 1
    assert doc["kind"] == "batch" and doc["pass"] is False
    assert doc["baseline"] == str(base) and doc["candidate"] == str(cand)
    assert doc["options"]["metric"] == "max-abs"
    assert doc["options"]["atol"] == 1e-6 and doc["options"]["rtol"] == 1e-4
    assert set(doc["options"]) >= {"min_cosine", "top_k_percent", "min_iou", "max_peak_shift", "layers", "report",
                                   "diff_images"}
    assert set(doc["summary"]) == {"items", "items_failed", "layers_compared", "layers_failed", "answers_compared",
                                   "answers_changed", "answers_one_sided", "answer_maps_compared", "answer_maps_failed"}
    assert doc["options"]["allow_answer_change"] is False
    assert all(item["answer"] is None for item in doc["items"]), "no run was made with --answer"
    assert [item["id"] for item in doc["items"]] == ["a", "b", "c"]
    for item in doc["items"]:
        assert item["grid"] == {"merged_h": 6, "merged_w": 8}
        assert [l["layer"] for l in item["layers"]] == [0, 1, 2, 3]
        for layer in item["layers"]:
            assert set(layer) == {"layer", "pass", "max_abs", "tolerance_ratio", "cells_outside", "cosine", "iou_top_k",
                                  "peak_shift", "baseline_peak", "candidate_peak"}
    assert len(doc["worst_items"]) == 3 and len(doc["worst_layers"]) == 4
    assert doc["worst_items"][0] == {"id": "a", "layer": 0, "value": pytest.approx(1.0, rel=1e-6), "pass": False}


def test_markdown_report_has_table(batches, tmp_path):
    base, cand = batches
    fx.perturb(cand / "c", layer=1, add=0.25)
    report = tmp_path / "report.md"
    assert compare(base, cand, "--report", report).returncode == 1
    text = report.read_text()
    assert text.startswith("# attnmap compare: FAIL")
    header = "| item | layer | max-abs | tolerance ratio | cosine | IoU top-k | peak shift (cells) | result |"
    assert header in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and line.count("|") == 9 and "item" not in line]
    assert len(rows) == 12
    failing = [row for row in rows if "FAIL" in row]
    assert len(failing) == 1 and failing[0].startswith("| c | 1 | 2.500e-01 |"), failing


def test_report_written_on_pass_too(runs, tmp_path):
    report = tmp_path / "r.json"
    assert compare(*runs, "--report", report).returncode == 0
    assert json.loads(report.read_text())["pass"] is True


# --- diff images ------------------------------------------------------------------------------

def jpeg_size(path):
    from PIL import Image
    with Image.open(path) as image:
        assert image.format == "JPEG"
        return image.size


def expected_image_size(merged_h, merged_w):
    # docs/compare.md: cell = ceil(256 / max(h, w)); width 3 panels + 4 margins of 8; height 28 + 20 + panel + 8.
    cell = max(1, -(-256 // max(merged_h, merged_w)))
    return 3 * merged_w * cell + 32, merged_h * cell + 56


def test_diff_images_for_failing_items_and_layers_only(batches, tmp_path):
    base, cand = batches
    fx.perturb(cand / "b", layer=1, add=1e-2)
    fx.perturb(cand / "b", layer=3, add=1e-2)
    out = tmp_path / "diffs"
    assert compare(base, cand, "--diff-images", out).returncode == 1
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["b/layer_01.jpg", "b/layer_03.jpg"]
    for name in written:
        assert jpeg_size(out / name) == expected_image_size(6, 8) == (800, 248)


def test_diff_images_single_run_and_other_grid(tmp_path):
    base = fx.write_run(tmp_path / "base", merged_h=17, merged_w=23)
    cand = fx.copy_tree(base, tmp_path / "cand")
    fx.perturb(cand, layer=2, add=1e-2)
    out = tmp_path / "diffs"
    assert compare(base, cand, "--diff-images", out).returncode == 1
    assert sorted(p.name for p in out.iterdir()) == ["layer_02.jpg"]
    assert jpeg_size(out / "layer_02.jpg") == expected_image_size(17, 23) == (3 * 23 * 12 + 32, 17 * 12 + 56)


def test_no_diff_images_when_passing(runs, tmp_path):
    out = tmp_path / "diffs"
    assert compare(*runs, "--diff-images", out).returncode == 0
    assert not out.exists() or not any(out.rglob("*.jpg"))


# --- unwritable outputs name the option to change ------------------------------------------------

def test_unwritable_report_names_report_option(runs, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    proc = compare(*runs, "--report", blocker / "r.json")
    assert_usage_error(proc, str(blocker), "--report")
    assert "--out" not in proc.stderr


def test_unwritable_diff_images_names_diff_images_option(runs, tmp_path):
    base, cand = runs
    fx.perturb(cand, layer=1, add=1.0)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    proc = compare(base, cand, "--diff-images", blocker)
    assert_usage_error(proc, str(blocker), "--diff-images")
    assert "--out" not in proc.stderr


# --- answers (`run --answer`): the demo model's greedy answer, compared token by token ------------

def demo_model():
    import os
    from conftest import missing_build_output
    demo = os.environ.get("ATTNMAP_DEMO_MODEL")
    if not demo or not os.path.exists(demo):
        missing_build_output("the demo model is not built (ATTNMAP_DEMO_MODEL)")
    return demo


@pytest.fixture(scope="module")
def answered_runs(tmp_path_factory):
    """Two `attnmap run --answer` folders of the demo circle scene (layers 0 and 3, at most 4 answer tokens),
    made once; tests copy them."""
    import os
    import pathlib
    import subprocess
    demo = demo_model()
    binary = os.environ.get("ATTNMAP_BIN") or str(pathlib.Path(__file__).resolve().parents[2] / "build" / "attnmap")
    examples = pathlib.Path(__file__).resolve().parents[2] / "examples"
    work = tmp_path_factory.mktemp("answered_runs")
    outs = []
    for name in ("base", "cand"):
        out = work / name
        proc = subprocess.run([binary, "run", "--model", demo, "--device", "cpu", "--image", str(examples / "scene_circle.png"),
                               "--prompt", (examples / "scene_circle.txt").read_text().strip(), "--out", str(out),
                               "--answer", "--max-new-tokens", "4", "--layers", "0,3", "--no-images"],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        outs.append(out)
    return outs


@pytest.fixture
def answer_pair(answered_runs, tmp_path):
    return fx.copy_tree(answered_runs[0], tmp_path / "base"), fx.copy_tree(answered_runs[1], tmp_path / "cand")


def answer_of(run_dir):
    return json.loads((run_dir / "attention.json").read_text())["answer"]


def test_identical_answer_runs_pass_and_report_every_answer_token(answer_pair, tmp_path):
    base, cand = answer_pair
    tokens = answer_of(base)["tokens"]
    assert len(tokens) >= 2, "the demo model should answer in at least two tokens"
    report = tmp_path / "r.json"
    proc = compare(base, cand, "--report", report)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "answers:" in proc.stdout and not fail_lines(proc.stdout)
    doc = json.loads(report.read_text())
    assert doc["summary"]["answers_compared"] == 1 and doc["summary"]["answers_changed"] == 0
    assert doc["summary"]["answer_maps_compared"] == 2 * len(tokens)
    answer = doc["items"][0]["answer"]
    assert answer["status"] == "same" and answer["changed"] is False and answer["pass"] is True
    assert answer["first_difference"] is None and answer["baseline_text"] == answer["candidate_text"]
    assert [t["id"] for t in answer["tokens"]] == [t["id"] for t in tokens]
    assert all([l["layer"] for l in t["layers"]] == [0, 3] and t["pass"] for t in answer["tokens"])


def test_perturbed_answer_map_fails_naming_token_and_layer(answer_pair, tmp_path):
    base, cand = answer_pair
    maps = np.load(cand / "answer_maps.npy")
    maps[1, 1, 0, 0] += np.float32(1e-2)  # answer token 1, second recorded layer (3)
    np.save(cand / "answer_maps.npy", maps)
    report = tmp_path / "r.json"
    md = tmp_path / "r.md"
    proc = compare(base, cand, "--report", report)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    token_text = answer_of(base)["tokens"][1]["text"]
    (line,) = fail_lines(proc.stdout)
    assert "item run" in line and "token 1" in line and "layer 3" in line and token_text.strip() in line, line
    doc = json.loads(report.read_text())
    assert doc["pass"] is False and doc["summary"]["answer_maps_failed"] == 1
    assert doc["summary"]["layers_failed"] == 0, "the prompt maps are unchanged"
    answer = doc["items"][0]["answer"]
    assert answer["worst"]["token"] == 1 and answer["worst"]["layer"] == 3 and answer["worst"]["pass"] is False
    assert answer["worst"]["value"] == pytest.approx(1e-2, rel=1e-3)
    assert [t["pass"] for t in answer["tokens"]] == [k != 1 for k in range(len(answer["tokens"]))]
    assert compare(base, cand, "--report", md).returncode == 1
    text = md.read_text()
    assert "## Answers" in text
    (row,) = [r for r in text.splitlines() if r.startswith("| run | answer the same")]
    assert "| 3 |" in row and "**FAIL**" in row, row
    # The maps' own thresholds decide, as for the prompt maps.
    assert compare(base, cand, "--atol", "0.02").returncode == 0


def test_changed_answer_fails_with_both_texts_and_first_difference(answer_pair, tmp_path):
    base, cand = answer_pair
    doc = json.loads((cand / "attention.json").read_text())
    answer = doc["answer"]
    answer["tokens"][1]["id"] += 1
    answer["tokens"][1]["text"] = " zebra"
    answer["text"] = "".join(t["text"] for t in answer["tokens"])
    (cand / "attention.json").write_text(json.dumps(doc))
    report = tmp_path / "r.json"
    proc = compare(base, cand, "--report", report)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (line,) = fail_lines(proc.stdout)
    assert "answer changed at token 1" in line, line
    assert f'baseline:  "{answer_of(base)["text"]}"' in proc.stdout
    assert f'candidate: "{answer["text"]}"' in proc.stdout
    item = json.loads(report.read_text())["items"][0]
    assert item["pass"] is False
    assert item["answer"]["changed"] is True and item["answer"]["status"] == "changed"
    assert item["answer"]["first_difference"] == 1
    assert item["answer"]["candidate_text"] == answer["text"] and item["answer"]["tokens"] == []
    assert all(l["pass"] for l in item["layers"]), "the prompt maps still compare"
    # Allowed: reported, not failed.
    proc = compare(base, cand, "--allow-answer-change")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "answer changed at token 1" in proc.stdout


def test_answer_on_one_side_only_fails_with_the_fix(answer_pair, tmp_path):
    base, cand = answer_pair
    doc = json.loads((cand / "attention.json").read_text())
    del doc["answer"]
    (cand / "attention.json").write_text(json.dumps(doc))
    (cand / "answer_maps.npy").unlink()
    for args, message in (((base, cand), "baseline has an answer, candidate has none"),
                          ((cand, base), "candidate has an answer, baseline has none")):
        proc = compare(*args, "--allow-answer-change")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        (line,) = fail_lines(proc.stdout)
        assert message in line and "compare runs made with the same --answer" in line, line
    report = tmp_path / "r.json"
    compare(base, cand, "--report", report)
    answer = json.loads(report.read_text())["items"][0]["answer"]
    assert answer["status"] == "baseline-only" and answer["candidate_text"] is None and answer["pass"] is False


def test_answer_maps_npy_of_the_wrong_shape_is_one_line_input_error(answer_pair):
    base, cand = answer_pair
    maps = np.load(cand / "answer_maps.npy")
    np.save(cand / "answer_maps.npy", maps[:, :1])
    assert_usage_error(compare(base, cand), str(cand / "answer_maps.npy"), "shape")
    (cand / "answer_maps.npy").unlink()
    assert_usage_error(compare(base, cand), str(cand / "answer_maps.npy"))


def test_synthetic_answers_in_a_batch(batches, tmp_path):
    """Without the model: fixture answers on every item; item b's answer changes, item c's token 0 map moves."""
    base, cand = batches
    for side in (base, cand):
        for item in ("a", "b", "c"):
            fx.add_answer(side / item)
    fx.add_answer(cand / "b", ids=(9707, 14, 151645), texts=("green", "!", ""))
    maps = np.load(cand / "c" / "answer_maps.npy")
    maps[0, 2, 3, 3] += np.float32(0.5)
    np.save(cand / "c" / "answer_maps.npy", maps)
    report = tmp_path / "r.json"
    diffs = tmp_path / "diffs"
    proc = compare(base, cand, "--report", report, "--diff-images", diffs)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads(report.read_text())
    assert doc["summary"]["items_failed"] == 2 and doc["summary"]["layers_failed"] == 0
    assert doc["summary"]["answers_changed"] == 1 and doc["summary"]["answer_maps_failed"] == 1
    assert doc["summary"]["answer_maps_compared"] == 2 * 3 * 4
    items = {item["id"]: item for item in doc["items"]}
    assert items["b"]["answer"]["first_difference"] == 1
    assert (items["c"]["answer"]["worst"]["token"], items["c"]["answer"]["worst"]["layer"]) == (0, 2)
    assert items["a"]["pass"] and items["a"]["answer"]["status"] == "same"
    answer_lines = proc.stdout.split("answers:\n")[1].splitlines()
    assert answer_lines[0].startswith("  FAIL  item b  answer changed at token 1"), proc.stdout
    assert any(l.startswith("  FAIL  item c  token 0 \"green\"  layer 2") for l in answer_lines), proc.stdout
    assert not diffs.exists() or not any(diffs.rglob("*")), "diff images are for prompt maps only"
