"""attnmap run on videos against transformers: frames given as PNG files (--frames) and a lossless
clip (--video, sampled by --fps / --num-frames) go through the HF processor's video path
(Qwen2VLVideoProcessor, torchvision backend) and the eager model; the C++ inputs (ids,
pixel_values_videos, video_grid_thw, M-RoPE positions with their time axis) and every layer's 4-D map
[layers, t, h, w] must equal them (maps within 1e-5, fp32). A Qwen2-VL export (family qwen2_vl, whose
temporal positions are the temporal patch index, not time-scaled) is checked on the frame cases against
Qwen2VLProcessor and Qwen2VLForConditionalGeneration."""
# transformers decides at import whether torchvision exists: the shim comes first (torchvision_shim.py).
from attnmap_tools.testing.torchvision_shim import import_torchvision

import_torchvision()

import json  # noqa: E402
import os  # noqa: E402
import pathlib  # noqa: E402
import subprocess  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from attnmap_tools.testing import hf_reference as ref  # noqa: E402

BIN = os.environ.get("ATTNMAP_BIN", "")
PROMPT = "Which way does the square move? 向左还是向右?"
# (frames, height, width): an odd count (the last temporal patch repeats the last frame) and an even
# one; merged grids with partial vision windows.
FRAME_CASES = [(5, 98, 150), (4, 140, 84)]
SEEDS = [5, 23]




def run_cli(args, check=True):
    assert BIN, "ATTNMAP_BIN must name the built attnmap binary (CTest sets it)"
    proc = subprocess.run([BIN, "run", "--device", "cpu"] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def reference_maps(inputs, attentions, config):
    """Mean over heads and over the prompt's rows of HF's eager attention, video columns laid out
    [t, h, w] from HF's own video_grid_thw."""
    ids = inputs["input_ids"][0]
    video_cols = (ids == config.video_token_id).nonzero().flatten()
    vision_end = int((ids == config.vision_end_token_id).nonzero()[0])
    im_end = next(i for i in range(vision_end, len(ids)) if int(ids[i]) == 151645)  # the user turn's end
    rows = list(range(vision_end + 1, im_end))
    t, h, w = inputs["video_grid_thw"][0].tolist()
    merge = config.vision_config.spatial_merge_size
    maps = []
    for att in attentions:
        a = att[:, rows, :].double().mean(0).mean(0)[video_cols]
        maps.append(a.reshape(t, h // merge, w // merge).float())
    return torch.stack(maps)


def check_run(out, dump, inputs, hf_model):
    attentions, _ = ref.hf_forward(hf_model, inputs)
    ids = np.load(dump / "input_ids.npy")
    assert ids.tolist() == inputs["input_ids"][0].tolist()
    pv = np.load(dump / "pixel_values_videos.npy")
    assert pv.shape == tuple(inputs["pixel_values_videos"].shape)
    assert np.array_equal(pv, inputs["pixel_values_videos"].numpy()), \
        f"pixel_values_videos differ by {np.abs(pv - inputs['pixel_values_videos'].numpy()).max()}"
    assert np.load(dump / "video_grid_thw.npy").tolist() == inputs["video_grid_thw"].tolist()
    positions = ref.hf_position_ids(hf_model, inputs)
    assert np.load(dump / "position_ids.npy").tolist() == positions.tolist()
    maps = np.load(out / "maps.npy")
    expected = reference_maps(inputs, attentions, hf_model.config).numpy()
    assert maps.shape == expected.shape
    np.testing.assert_allclose(maps, expected, atol=1e-5, rtol=0)
    return json.loads((out / "attention.json").read_text())


@pytest.fixture(scope="module", params=SEEDS)
def tiny(request, tmp_path_factory):
    work = tmp_path_factory.mktemp(f"video_parity_{request.param}")
    ckpt, model_pt = ref.seeded_export(work, seed=request.param)
    return {"work": work, "ckpt": ckpt, "model": model_pt, "processor": ref.load_video_processor(ckpt),
            "hf": ref.load_hf_model(ckpt)}


@pytest.fixture(scope="module")
def tiny_qwen2_vl(tmp_path_factory):
    work = tmp_path_factory.mktemp("video_parity_qwen2_vl")
    ckpt, model_pt = ref.seeded_export(work, seed=6, family="qwen2_vl")
    return {"work": work, "ckpt": ckpt, "model": model_pt, "processor": ref.load_video_processor(ckpt),
            "hf": ref.load_hf_model(ckpt), "family": "qwen2_vl"}


@pytest.mark.parametrize("count,height,width", FRAME_CASES)
def test_frames_match_transformers(tiny, count, height, width):
    _check_frames(tiny, count, height, width)


@pytest.mark.parametrize("count,height,width", FRAME_CASES)
def test_qwen2_vl_frames_match_transformers(tiny_qwen2_vl, count, height, width):
    """Qwen2-VL: the processor makes no second_per_grid_ts and temporal patch k sits at time position k
    (at 24 fps Qwen2.5-VL's would be int(k * 2 * 2/24): 0, 0, 0); everything else as Qwen2.5-VL."""
    record = _check_frames(tiny_qwen2_vl, count, height, width)
    assert record["video"]["time_interval"] == 1.0
    assert [p["time_position"] for p in record["video"]["temporal_patches"]] == list(range(3 if count == 5 else 2))


def _check_frames(tiny, count, height, width):
    work = tiny["work"] / f"frames_{count}_{height}x{width}"
    frames_dir = work / "frames"
    frames_dir.mkdir(parents=True)
    frames = ref.moving_square_frames(count, height, width, seed=count)
    for k, frame in enumerate(frames):
        Image.fromarray(frame).save(frames_dir / f"frame_{k:03d}.png")
    out, dump = work / "out", work / "dump"
    run_cli(["--model", tiny["model"], "--frames", frames_dir, "--prompt", PROMPT, "--out", out,
             "--dump-inputs", dump, "--layers", "all", "--no-viewer"])
    # transformers: a frame list is taken whole, at its 24 fps default.
    inputs = ref.build_video_inputs(tiny["processor"], frames, PROMPT)
    if tiny.get("family") == "qwen2_vl":
        assert "second_per_grid_ts" not in inputs
    else:
        assert inputs["second_per_grid_ts"].tolist() == pytest.approx([2 / 24])
    record = check_run(out, dump, inputs, tiny["hf"])
    video = record["video"]
    assert video["source"] == "frames" and video["frame_indices"] == list(range(count))
    t = int(inputs["video_grid_thw"][0, 0])
    assert len(video["temporal_patches"]) == t
    assert video["temporal_patches"][-1]["frames"] == ([count - 2, count - 1] if count % 2 == 0 else [count - 1] * 2)
    assert record["maps"]["shape"] == list(np.load(out / "maps.npy").shape)
    for layer in range(len(record["layers"])):
        assert (out / f"layer_{layer:02d}.jpg").is_file()
        with Image.open(out / f"layer_{layer:02d}.gif") as gif:  # one animation frame per temporal patch
            assert gif.n_frames == t and gif.info["loop"] == 0
            assert gif.info["duration"] == max(100, round(1000 * video["second_per_grid_t"]))
    return record


def test_frames_bad_input_is_one_line(tiny):
    work = tiny["work"] / "bad_frames"
    work.mkdir()
    a = work / "a.png"
    b = work / "b.png"
    Image.fromarray(ref.moving_square_frames(1, 60, 80, 0)[0]).save(a)
    Image.fromarray(ref.moving_square_frames(1, 64, 80, 0)[0]).save(b)
    proc = run_cli(["--model", tiny["model"], "--frames", f"{a},{b}", "--prompt", PROMPT, "--out", work / "out"],
                   check=False)
    assert proc.returncode == 3, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and str(b) in errors[0], proc.stderr
    assert not (work / "out").exists() or not any((work / "out").iterdir())
    proc = run_cli(["--model", tiny["model"], "--frames", f"{a},{a}", "--fps", "2", "--prompt", PROMPT,
                    "--out", work / "out"], check=False)
    assert proc.returncode == 2 and "--frames" in proc.stderr


@pytest.mark.parametrize("video_config", [None, {"min_pixels": 1000, "max_pixels": 40000, "min_frames": 2,
                                                 "max_frames": 64, "fps": 3.0, "do_sample_frames": True,
                                                 "cap_pixels_per_frame": True, "max_video_tokens": 500}])
def test_export_records_the_video_processor_transformers_builds(tmp_path, video_config):
    """metadata "video" equals Qwen2VLVideoProcessor.from_pretrained(checkpoint): from
    preprocessor_config.json alone (the released checkpoints) and from a video_preprocessor_config.json."""
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    from attnmap_tools.export.checkpoint import read_video_processor_config
    from attnmap_tools.export.metadata import video_section

    ckpt = pathlib.Path(ref.make_checkpoint(tmp_path / "ckpt", seed=1))
    if video_config is not None:
        (ckpt / "video_preprocessor_config.json").write_text(json.dumps(video_config))
    vp = Qwen2VLVideoProcessor.from_pretrained(str(ckpt))
    config = json.loads((ckpt / "config.json").read_text())
    section = video_section(*read_video_processor_config(ckpt), config["vision_config"]["tokens_per_second"])
    assert section["min_pixels"] == vp.size["shortest_edge"] and section["max_pixels"] == vp.size["longest_edge"]
    assert (section["min_frames"], section["max_frames"]) == (vp.min_frames, vp.max_frames)
    assert section["fps"] == vp.fps and section["num_frames"] == vp.num_frames
    assert section["do_sample_frames"] == bool(vp.do_sample_frames)
    assert section["cap_pixels_per_frame"] == bool(vp.cap_pixels_per_frame)
    assert section["max_video_tokens"] == vp.max_video_tokens
    assert section["image_mean"] == pytest.approx(list(vp.image_mean))
    assert section["image_std"] == pytest.approx(list(vp.image_std))
    assert (section["patch_size"], section["temporal_patch_size"], section["merge_size"]) == \
        (vp.patch_size, vp.temporal_patch_size, vp.merge_size)



# (sampling flag, its value, what the HF processor gets): fps sampling (rounded to whole temporal patches,
# clamped to min_frames) and a fixed frame count.
SAMPLINGS = [("--fps", 4, {"sample_fps": 4.0}), ("--fps", 0.5, {"sample_fps": 0.5}), ("--num-frames", 7, {"num_frames": 7})]


@pytest.mark.parametrize("flag,value,hf_sampling", SAMPLINGS)
def test_lossless_clip_matches_transformers(tiny, flag, value, hf_sampling):
    """A PNG-coded .mov (decoded identically by OpenCV and PyAV) at 29.97 fps: the sampled frames, the
    time axis (second_per_grid_ts from the sampled fps) and the maps equal transformers'."""
    from fractions import Fraction

    from attnmap_tools.testing.make_test_videos import write_clip

    work = tiny["work"] / f"clip_{flag[2:]}_{value}"
    work.mkdir()
    clip = work / "clip.mov"
    write_clip(clip, "png", 30, Fraction(30000, 1001), 150, 98)
    out, dump = work / "out", work / "dump"
    run_cli(["--model", tiny["model"], "--video", clip, flag, value, "--prompt", PROMPT, "--out", out,
             "--dump-inputs", dump, "--layers", "all", "--no-viewer"])
    frames, total, fps = ref.pyav_frames(clip)
    assert (frames.shape[0], total) == (30, 30)
    inputs = ref.build_video_inputs(tiny["processor"], frames, PROMPT, fps=fps, **hf_sampling)
    record = check_run(out, dump, inputs, tiny["hf"])
    video = record["video"]
    assert video["total_frames"] == 30 and video["fps"] == pytest.approx(fps)
    assert video["second_per_grid_t"] == pytest.approx(float(inputs["second_per_grid_ts"][0]), rel=1e-6)
    proc = tiny["processor"].video_processor
    from transformers.video_utils import VideoMetadata

    kwargs = {"fps": hf_sampling["sample_fps"]} if "sample_fps" in hf_sampling else {"num_frames": value}
    expected = proc.sample_frames(VideoMetadata(total_num_frames=total, fps=fps), **kwargs)
    assert video["frame_indices"] == [int(i) for i in expected]


def test_video_pixel_bounds_match_transformers(tiny):
    """--video-min-pixels / --video-max-pixels are the video processor's size (shortest/longest_edge)."""
    work = tiny["work"] / "pixel_bounds"
    frames_dir = work / "frames"
    frames_dir.mkdir(parents=True)
    frames = ref.moving_square_frames(4, 210, 300, seed=3)
    for k, frame in enumerate(frames):
        Image.fromarray(frame).save(frames_dir / f"{k}.png")
    out, dump = work / "out", work / "dump"
    run_cli(["--model", tiny["model"], "--frames", frames_dir, "--prompt", PROMPT, "--out", out, "--dump-inputs", dump,
             "--layers", "all", "--no-viewer", "--video-min-pixels", "3000", "--video-max-pixels", "20000"])
    inputs = ref.build_video_inputs(tiny["processor"], frames, PROMPT, min_pixels=3000, max_pixels=20000)
    t, h, w = inputs["video_grid_thw"][0].tolist()
    assert h * w * 14 * 14 <= 20000  # the bound took effect (the frames are 63,000 pixels)
    check_run(out, dump, inputs, tiny["hf"])


def test_batch_manifest_takes_videos_and_frames_and_one_bad_item_costs_no_other(tiny):
    """Manifest lines with "video" and "frames" (a folder and a list) run like images; a corrupt video
    is that item's error (one line in summary.jsonl), the others finish; compare reads the 4-D maps."""
    from fractions import Fraction

    from attnmap_tools.testing.make_test_videos import write_clip

    work = tiny["work"] / "batch"
    frames_dir = work / "frames"
    frames_dir.mkdir(parents=True)
    for k, frame in enumerate(ref.moving_square_frames(4, 98, 150, seed=9)):
        Image.fromarray(frame).save(frames_dir / f"f{k}.png")
    write_clip(work / "clip.mov", "png", 12, Fraction(24), 150, 98)
    (work / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video" * 10)
    lines = [{"video": "clip.mov", "id": "clip"}, {"frames": "frames", "id": "folder"},
             {"frames": [f"frames/f{k}.png" for k in (3, 2, 1, 0)], "id": "reversed"},
             {"video": "broken.mp4", "id": "broken"}]
    (work / "items.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = work / "out"
    proc = subprocess.run([BIN, "batch", "--device", "cpu", "--model", str(tiny["model"]), "--images",
                           str(work / "items.jsonl"), "--prompt", PROMPT, "--out", str(out), "--layers", "0,1",
                           "--fps", "8"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr  # one item failed
    summary = {json.loads(line)["id"]: json.loads(line) for line in (out / "summary.jsonl").read_text().splitlines()}
    assert {k: v["status"] for k, v in summary.items()} == {"clip": "ok", "folder": "ok", "reversed": "ok",
                                                           "broken": "error"}
    assert "broken.mp4" in summary["broken"]["error"] and "\n" not in summary["broken"]["error"]
    assert summary["clip"]["video"].endswith("clip.mov") and len(summary["reversed"]["frames"]) == 4
    # index.html: a video item's thumbnail is its animation (the strip JPEG is too wide for a square).
    assert "clip/layer_01.gif" in (out / "index.html").read_text()
    clip = json.loads((out / "clip" / "attention.json").read_text())["video"]
    assert clip["frame_indices"] == [0, 3, 6, 9]  # 12 frames at 24 fps sampled at 8 fps: 4 frames
    folder = np.load(out / "folder" / "maps.npy")
    reversed_maps = np.load(out / "reversed" / "maps.npy")
    assert folder.shape == reversed_maps.shape == (2, 2) + folder.shape[2:]
    assert not np.allclose(folder, reversed_maps)  # the order of the frames matters
    # compare: a folder against itself passes; a changed temporal patch fails.
    from conftest import run_compare

    assert run_compare(out / "folder", out / "folder").returncode == 0
    changed = work / "changed"
    import shutil

    shutil.copytree(out / "folder", changed)
    maps = np.load(changed / "maps.npy")
    maps[1, 1, 0, 0] += 0.5
    np.save(changed / "maps.npy", maps)
    result = run_compare(out / "folder", changed)
    assert result.returncode == 1 and "layer 1" in result.stdout


def test_corrupt_video_is_one_line_and_exit_3(tiny):
    work = tiny["work"] / "corrupt"
    work.mkdir()
    bad = work / "bad.mp4"
    bad.write_text("this is not a video\n")
    proc = run_cli(["--model", tiny["model"], "--video", bad, "--prompt", PROMPT, "--out", work / "out"], check=False)
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert proc.returncode == 3 and len(errors) == 1 and str(bad) in errors[0], proc.stderr
    assert not (work / "out" / "attention.json").exists()
