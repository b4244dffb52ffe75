"""attnmap batch as users run it over folders: bad items are reported and never sink the run,
--resume continues a killed run, --shard splits exactly, and items equal what `run` writes."""
import json
import pathlib
import subprocess
import time

import numpy as np
import pytest
from PIL import Image

from attnmap_tools.testing import hf_reference as ref
from conftest import missing_build_output

PROMPT = "What is in the picture?"


def batch(bin_path, model, *args):
    cmd = [bin_path, "batch", "--model", str(model), "--device", "cpu", "--no-progress"] + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True)


def write_manifest(path, entries):
    """A batch manifest: one JSON object per line."""
    path.write_text("".join(json.dumps(entry) + "\n" for entry in entries))


def summary(out, name="summary.jsonl"):
    return {line["id"]: line for line in map(json.loads, (out / name).read_text().splitlines())}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    (root / "sub").mkdir()
    ref.synthetic_image(120, 160, seed=1).save(root / "a.png")
    ref.synthetic_image(200, 90, seed=2).save(root / "sub" / "b.jpg", quality=95)
    ref.synthetic_image(64, 64, seed=3).save(root / "c.webp", lossless=True)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    Image.new("RGB", (10, 10)).save(root / "small.png")
    (root / "notes.txt").write_text("ignored: not an image extension")
    return root


GOOD = {"a", "b", "c"}
BAD = {"broken", "small"}


def test_bad_items_are_reported_and_the_rest_written(attnmap_bin, tiny_model, folder, tmp_path):
    out = tmp_path / "out"
    proc = batch(attnmap_bin, tiny_model["model"], "--images", folder, "--out", out, "--prompt", PROMPT,
                 "--layers", "0,2")
    assert proc.returncode == 1, proc.stderr  # some items failed
    lines = summary(out)
    assert set(lines) == GOOD | BAD
    for item in GOOD:
        assert lines[item]["status"] == "ok" and lines[item]["error"] is None
        assert (out / item / "attention.json").exists() and (out / item / "grid.jpg").exists()
        assert np.load(out / item / "maps.npy").shape[0] == 2
    assert "broken.jpg" in lines["broken"]["error"]
    assert "small.png" in lines["small"]["error"]
    for item in BAD:
        assert lines[item]["status"] == "error"
        assert not (out / item / "attention.json").exists()
    assert "3 ok, 2 failed" in proc.stderr


def test_all_good_exits_zero_and_matches_run(attnmap_bin, tiny_model, folder, tmp_path):
    manifest = tmp_path / "items.jsonl"
    write_manifest(manifest, [
        {"image": str(folder / "a.png"), "prompt": "Where is the sky?", "id": "first"},
        {"image": str(folder / "sub" / "b.jpg"), "prompt": PROMPT, "id": "second"},
    ])
    out = tmp_path / "out"
    proc = batch(attnmap_bin, tiny_model["model"], "--images", manifest, "--out", out, "--no-images")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "first" / "attention.json").read_text())["prompt"] == "Where is the sky?"
    single = tmp_path / "single"
    run = subprocess.run([attnmap_bin, "run", "--model", str(tiny_model["model"]), "--device", "cpu",
                          "--image", str(folder / "a.png"), "--prompt", "Where is the sky?", "--out", str(single),
                          "--no-images"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (single / "maps.npy").read_bytes() == (out / "first" / "maps.npy").read_bytes()
    # One timings dictionary per item: summary.jsonl carries exactly what attention.json carries.
    lines = summary(out)
    for item in ("first", "second"):
        doc = json.loads((out / item / "attention.json").read_text())
        assert lines[item]["timings_ms"] == doc["timings_ms"], item
        assert set(doc["timings_ms"]) == {"decode", "preprocess", "tokenize", "forward", "maps", "render", "write",
                                          "total"}


def test_resume_skips_complete_items_and_redoes_half_written_ones(attnmap_bin, tiny_model, folder, tmp_path):
    out = tmp_path / "out"
    batch(attnmap_bin, tiny_model["model"], "--images", folder, "--out", out, "--prompt", PROMPT, "--no-images")
    # A kill between maps.npy and attention.json leaves an item without its completion marker.
    (out / "b" / "attention.json").unlink()
    stamp = (out / "a" / "attention.json").stat().st_mtime_ns
    proc = batch(attnmap_bin, tiny_model["model"], "--images", folder, "--out", out, "--prompt", PROMPT,
                 "--no-images", "--resume")
    lines = summary(out)
    assert lines["a"]["status"] == "skipped" and lines["c"]["status"] == "skipped"
    assert lines["b"]["status"] == "ok" and (out / "b" / "attention.json").exists()
    assert (out / "a" / "attention.json").stat().st_mtime_ns == stamp
    assert lines["broken"]["status"] == "error"  # failed items are retried, and fail again
    assert proc.returncode == 1


def test_shards_partition_the_items_exactly(attnmap_bin, tiny_model, folder, tmp_path):
    out = tmp_path / "out"
    seen = []
    for k in range(3):
        batch(attnmap_bin, tiny_model["model"], "--images", folder, "--out", out, "--prompt", PROMPT,
              "--no-images", "--layers", "0", "--shard", f"{k}/3")
        seen.append(set(summary(out, f"summary.shard-{k}-of-3.jsonl")))
    assert set().union(*seen) == GOOD | BAD
    assert sum(len(s) for s in seen) == len(GOOD | BAD)


def test_usage_errors(attnmap_bin, tiny_model, folder, tmp_path):
    proc = batch(attnmap_bin, tiny_model["model"], "--images", folder, "--out", tmp_path, "--prompt", PROMPT,
                 "--shard", "3/3")
    assert proc.returncode == 2 and "--shard" in proc.stderr
    proc = batch(attnmap_bin, tiny_model["model"], "--images", tmp_path / "missing", "--out", tmp_path,
                 "--prompt", PROMPT)
    assert proc.returncode == 3 and "missing" in proc.stderr


def test_interrupted_batch_leaves_no_temporary_files_and_resumes(attnmap_bin, tiny_model, tmp_path):
    import signal
    import time

    images = tmp_path / "many"
    images.mkdir()
    for i in range(12):
        ref.synthetic_image(280, 280, seed=i).save(images / f"img{i:02d}.png")
    out = tmp_path / "out"
    cmd = [attnmap_bin, "batch", "--model", str(tiny_model["model"]), "--device", "cpu", "--no-progress",
           "--images", str(images), "--out", str(out), "--prompt", PROMPT]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(out.glob("*/attention.json"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    assert [p for p in out.rglob("*") if ".tmp." in p.name] == []
    done = {p.parent.name for p in out.glob("*/attention.json")}
    assert 0 < len(done) < 12, "interrupt the run mid-way"
    resumed = batch(attnmap_bin, tiny_model["model"], "--images", images, "--out", out, "--prompt", PROMPT,
                    "--resume")
    assert resumed.returncode == 0, resumed.stderr
    lines = summary(out)
    assert {i for i, l in lines.items() if l["status"] == "skipped"} == done
    assert all(l["status"] in ("ok", "skipped") for l in lines.values()) and len(lines) == 12


def test_an_item_that_runs_out_of_memory_is_reported_and_the_rest_are_written(attnmap_bin, tmp_path):
    import os
    import resource

    demo = os.environ.get("ATTNMAP_DEMO_MODEL")
    if not demo or not os.path.exists(demo):
        missing_build_output("the demo model is not built (ATTNMAP_DEMO_MODEL)")
    info = subprocess.run([attnmap_bin, "info", "--model", demo], capture_output=True, text=True).stdout
    if "CPU only" not in info.splitlines()[-1]:
        pytest.skip("a CUDA libtorch reserves address space that a CPU-side limit would trip over")
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (224, 224), (90, 120, 200)).save(images / "a_small.png")
    Image.new("RGB", (3528, 3528), (90, 120, 200)).save(images / "b_huge.png")  # 15,876 image tokens
    Image.new("RGB", (300, 200), (200, 120, 90)).save(images / "c_small.png")
    # Address space: room for the small items, not for the huge one. A small item alone needs 700-800 MiB
    # (libtorch, and since videos the FFmpeg libraries OpenCV's videoio maps); a batch adds its threads'
    # stacks and malloc arenas, so 900 MiB failed the small items now and then. The huge item still fails
    # at 1,300 MiB (measured on the 2-core VM).
    cap = 1200 << 20

    def limited():
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    out = tmp_path / "out"
    proc = subprocess.run([attnmap_bin, "batch", "--model", demo, "--images", str(images), "--prompt", PROMPT,
                           "--out", str(out), "--device", "cpu", "--no-images", "--no-progress",
                           "--max-pixels", "12446784"], capture_output=True, text=True, preexec_fn=limited)
    assert proc.returncode == 1, proc.stderr
    lines = {l["id"]: l for l in map(json.loads, (out / "summary.jsonl").read_text().splitlines())}
    assert lines["a_small"]["status"] == "ok" and lines["c_small"]["status"] == "ok"
    assert lines["b_huge"]["status"] == "error"
    assert "out of memory" in lines["b_huge"]["error"] and "--max-pixels" in lines["b_huge"]["error"]
    assert (out / "c_small" / "attention.json").exists() and not (out / "b_huge" / "attention.json").exists()


# --- output folders: one per item, never shared, never outside --out (issue 12) ---------------------

def _folders(out):
    return sorted(p.name for p in out.iterdir() if p.is_dir())


def test_clashing_stems_each_get_their_own_folder_in_every_shard(attnmap_bin, tiny_model, tmp_path):
    images = tmp_path / "images"
    (images / "more").mkdir(parents=True)
    for i, name in enumerate(["cat.png", "cat-2.png", "more/cat.png", "more/cat-2.png", "cat-3.png"]):
        ref.synthetic_image(60, 60, seed=i).save(images / name)
    out = tmp_path / "out"
    proc = batch(attnmap_bin, tiny_model["model"], "--images", images, "--out", out, "--prompt", PROMPT,
                 "--no-images", "--layers", "0")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(l) for l in (out / "summary.jsonl").read_text().splitlines()]
    assert len(lines) == 5 and len({l["id"] for l in lines}) == 5 and len({l["output"] for l in lines}) == 5
    assert len(_folders(out)) == 5
    for line in lines:  # each folder holds the result of its own image
        doc = json.loads((out / line["id"] / "attention.json").read_text())
        assert doc["image"]["path"] == line["image"]
    # Images that own a name keep it; the clashing ones get the first free suffix.
    by_image = {pathlib.Path(l["image"]).relative_to(images).as_posix(): l["id"] for l in lines}
    assert by_image["cat.png"] == "cat" and by_image["cat-2.png"] == "cat-2" and by_image["cat-3.png"] == "cat-3"
    # Shards agree with the whole run, so --resume and N jobs find the same folders.
    sharded = tmp_path / "sharded"
    for k in range(2):
        batch(attnmap_bin, tiny_model["model"], "--images", images, "--out", sharded, "--prompt", PROMPT,
              "--no-images", "--layers", "0", "--shard", f"{k}/2")
    ids = set()
    for k in range(2):
        ids |= set(summary(sharded, f"summary.shard-{k}-of-2.jsonl"))
    assert ids == {l["id"] for l in lines}


def test_generated_ids_never_take_an_explicit_id(attnmap_bin, tiny_model, folder, tmp_path):
    manifest = tmp_path / "items.jsonl"
    write_manifest(manifest, [
        {"image": str(folder / "a.png")},                 # stem "a" ...
        {"image": str(folder / "c.webp"), "id": "a"},     # ... but "a" is this line's explicit id
        {"image": str(folder / "sub" / "b.jpg"), "id": "a-2"},
    ])
    out = tmp_path / "out"
    proc = batch(attnmap_bin, tiny_model["model"], "--images", manifest, "--out", out, "--prompt", PROMPT,
                 "--no-images", "--layers", "0")
    assert proc.returncode == 0, proc.stderr
    lines = summary(out)
    assert lines["a"]["image"].endswith("c.webp") and lines["a-2"]["image"].endswith("b.jpg")
    assert lines["a-3"]["image"].endswith("a.png")
    assert _folders(out) == ["a", "a-2", "a-3"]


def test_two_manifest_lines_with_one_id_are_refused_before_any_work(attnmap_bin, folder, tmp_path):
    manifest = tmp_path / "items.jsonl"
    write_manifest(manifest, [
        {"image": str(folder / "a.png"), "id": "dup"},
        {"image": str(folder / "c.webp"), "id": "dup"},
        {"image": str(folder / "sub" / "b.jpg"), "id": "dup-2"},
    ])
    out = tmp_path / "out"
    # A model that does not exist: the manifest is checked before the (slow) model load.
    proc = batch(attnmap_bin, tmp_path / "no-such-model.pt", "--images", manifest, "--out", out, "--prompt", PROMPT)
    assert proc.returncode == 3, proc.stderr
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 1 and "line 1" in errors[0] and "line 2" in errors[0] and "dup" in errors[0]
    assert not out.exists()


def test_bad_manifest_is_reported_before_the_model_is_loaded(attnmap_bin, tmp_path):
    manifest = tmp_path / "items.jsonl"
    manifest.write_text("{not json\n")
    proc = batch(attnmap_bin, tmp_path / "no-such-model.pt", "--images", manifest, "--out", tmp_path / "out",
                 "--prompt", PROMPT)
    assert proc.returncode == 3 and "manifest" in proc.stderr and "no-such-model" not in proc.stderr
    taken = tmp_path / "a-file"
    taken.write_text("")
    proc = batch(attnmap_bin, tmp_path / "no-such-model.pt", "--images", tmp_path, "--out", taken / "out",
                 "--prompt", PROMPT)
    assert proc.returncode in (3, 5) and "no-such-model" not in proc.stderr, proc.stderr


def test_ids_never_make_hidden_folders_or_leave_out(attnmap_bin, tiny_model, folder, tmp_path):
    manifest = tmp_path / "items.jsonl"
    write_manifest(manifest, [
        {"image": str(folder / "a.png"), "id": "../escape"},
        {"image": str(folder / "c.webp"), "id": ".hidden"},
        {"image": str(folder / "sub" / "b.jpg"), "id": ".."},
    ])
    out = tmp_path / "work" / "out"
    proc = batch(attnmap_bin, tiny_model["model"], "--images", manifest, "--out", out, "--prompt", PROMPT,
                 "--no-images", "--layers", "0")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["out"]
    names = _folders(out)
    assert len(names) == 3 and not any(n.startswith(".") for n in names), names
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_an_overlong_id_fails_its_item_with_the_fix(attnmap_bin, tiny_model, folder, tmp_path):
    manifest = tmp_path / "items.jsonl"
    write_manifest(manifest, [
        {"image": str(folder / "a.png"), "id": "x" * 300},
        {"image": str(folder / "c.webp"), "id": "fine"},
    ])
    out = tmp_path / "out"
    proc = batch(attnmap_bin, tiny_model["model"], "--images", manifest, "--out", out, "--prompt", PROMPT,
                 "--no-images", "--layers", "0")
    assert proc.returncode == 1, proc.stderr
    lines = summary(out)
    assert lines["fine"]["status"] == "ok"
    error = lines["x" * 300]["error"]
    assert "--out" not in error and "shorter" in error and "id" in error, error


@pytest.mark.parametrize("source", ["folder", "manifest"])
def test_an_item_named_like_the_summary_does_not_replace_it(attnmap_bin, tiny_model, folder, tmp_path, source):
    images = tmp_path / "images"
    images.mkdir()
    ref.synthetic_image(60, 60, seed=1).save(images / "summary.jsonl.png")
    ref.synthetic_image(60, 60, seed=2).save(images / "index.html.png")
    ref.synthetic_image(60, 60, seed=3).save(images / "plain.png")
    if source == "manifest":
        listing = tmp_path / "items.jsonl"
        write_manifest(listing, [
            {"image": str(images / "plain.png"), "id": "summary.jsonl"},
            {"image": str(images / "plain.png"), "id": "summary.shard-0-of-2.jsonl"},
            {"image": str(images / "plain.png"), "id": "index.html"},
        ])
    else:
        listing = images
    out = tmp_path / "out"
    proc = batch(attnmap_bin, tiny_model["model"], "--images", listing, "--out", out, "--prompt", PROMPT,
                 "--no-images", "--layers", "0")
    assert proc.returncode == 0, proc.stderr
    assert (out / "summary.jsonl").is_file()
    lines = summary(out)
    assert len(lines) == 3 and all(l["status"] == "ok" for l in lines.values())
    for item in lines:
        assert not item.startswith("summary") and not item.startswith("index."), item
        assert (out / item / "attention.json").is_file()


def test_a_dangling_symlink_is_a_failed_item(attnmap_bin, tiny_model, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    ref.synthetic_image(60, 60, seed=1).save(images / "a.png")
    (images / "ghost.png").symlink_to(images / "gone.png")
    out = tmp_path / "out"
    proc = batch(attnmap_bin, tiny_model["model"], "--images", images, "--out", out, "--prompt", PROMPT,
                 "--no-images", "--layers", "0")
    assert proc.returncode == 1, proc.stderr
    lines = summary(out)
    assert lines["a"]["status"] == "ok"
    assert lines["ghost"]["status"] == "error" and "ghost.png" in lines["ghost"]["error"]


# --- leftovers: temporaries of dead writers, partial summaries (issue 12) -----------------------------

def test_resume_sweeps_temporaries_of_dead_writers_and_keeps_live_ones(attnmap_bin, tiny_model, folder, tmp_path):
    import os
    import socket

    out = tmp_path / "out"
    args = ["--images", folder, "--out", out, "--prompt", PROMPT, "--no-images", "--layers", "0"]
    batch(attnmap_bin, tiny_model["model"], *args)
    dead = subprocess.Popen(["true"])
    dead.wait()
    live = subprocess.Popen(["sleep", "120"])
    host = socket.gethostname()
    try:
        # What a SIGKILLed writer leaves (src/io/atomic_file.cpp names temporaries .NAME.tmp.HOST.PID.N).
        stale = [out / "a" / f".maps.npy.tmp.{host}.{dead.pid}.0", out / f".summary.jsonl.tmp.{host}.{dead.pid}.7"]
        kept = [out / "c" / f".maps.npy.tmp.{host}.{live.pid}.3",        # a concurrent shard still writing
                out / "c" / f".maps.npy.tmp.other-node.{dead.pid}.1",     # another host: its PIDs are not ours
                out / "c" / "notes.tmp.txt"]                              # not a temporary of ours
        # A dead PID written just now may be a live writer in another PID namespace: kept too.
        kept.append(out / "c" / f".grid.jpg.tmp.{host}.{dead.pid}.5")
        minutes_ago = time.time() - 300
        for p in stale + kept:
            p.write_bytes(b"half")
            if p != kept[-1]:
                os.utime(p, (minutes_ago, minutes_ago))
        proc = batch(attnmap_bin, tiny_model["model"], *args, "--resume")
        assert proc.returncode == 1, proc.stderr  # the broken items fail again
        assert [p.name for p in stale if p.exists()] == []
        assert [p.name for p in kept if not p.exists()] == []
    finally:
        live.kill()
        live.wait()


def test_a_full_disk_exits_5_and_leaves_no_partial_summary(attnmap_bin, tiny_model, folder, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(disk)], capture_output=True,
                           text=True)
    if mount.returncode != 0:
        pytest.skip("needs root to mount a small tmpfs: " + mount.stderr.strip())
    try:
        out = disk / "out"
        out.mkdir()
        with open(disk / "filler", "wb", buffering=0) as f:  # fill the disk up
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        proc = batch(attnmap_bin, tiny_model["model"], "--images", folder, "--out", out, "--prompt", PROMPT,
                     "--no-images", "--layers", "0")
        assert proc.returncode == 5, proc.stderr
        assert "summary.jsonl" in proc.stderr and "space" in proc.stderr
        leftovers = [p.name for p in out.rglob("*") if p.is_file()]
        assert leftovers == [], leftovers
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_clashing_ids_with_control_characters_stay_one_line(attnmap_bin, folder, tmp_path):
    # "a\n" and "a\r" both become the folder a_: the error quotes them escaped, on one line.
    manifest = tmp_path / "items.jsonl"
    write_manifest(manifest, [
        {"image": str(folder / "a.png"), "id": "a\n"},
        {"image": str(folder / "c.webp"), "id": "a\r"},
    ])
    proc = batch(attnmap_bin, tmp_path / "no-such-model.pt", "--images", manifest, "--out", tmp_path / "out",
                 "--prompt", PROMPT)
    assert proc.returncode == 3, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert '"a\\n"' in proc.stderr and '"a\\r"' in proc.stderr


def test_answer_batch_reports_answers_and_one_item_lacking_the_word_costs_no_other(attnmap_bin, tmp_path):
    """`batch --query answer:green` over the demo scenes: the demo model answers the circle scenes
    "green..." and the shape scene "triangle...", so that item alone fails (exit 2 is per item, the
    batch goes on) and the others carry their answer in the summary and answer_maps.npy."""
    import os

    demo = os.environ.get("ATTNMAP_DEMO_MODEL")
    if not demo or not os.path.exists(demo):
        missing_build_output("the demo model is not built (ATTNMAP_DEMO_MODEL)")
    examples = pathlib.Path(__file__).resolve().parents[2] / "examples"
    manifest = tmp_path / "scenes.jsonl"
    write_manifest(manifest, [{"image": str(examples / f"scene_{s}.png"), "prompt": (examples / f"scene_{s}.txt").read_text().strip()}
                              for s in ("circle", "shape", "triangle")])
    out = tmp_path / "out"
    proc = batch(attnmap_bin, demo, "--images", manifest, "--out", out, "--query", "answer:green",
                 "--max-new-tokens", 3, "--layers", "0,3")
    assert proc.returncode != 0  # one item failed
    lines = summary(out)
    assert lines["scene_shape"]["status"] == "error"
    assert "does not contain 'green'" in lines["scene_shape"]["error"]
    assert not (out / "scene_shape" / "attention.json").exists()
    for ok in ("scene_circle", "scene_triangle"):
        line = lines[ok]
        assert line["status"] == "ok", line
        doc = json.loads((out / ok / "attention.json").read_text())
        assert line["answer"] == doc["answer"]["text"] and "green" in line["answer"]
        maps = np.load(out / ok / "answer_maps.npy")
        assert maps.shape[:2] == (len(doc["answer"]["tokens"]), 2)
        assert (out / ok / "answer_strip_layer_03.jpg").exists()
