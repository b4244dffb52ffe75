"""Family qwen3_vl videos end to end: `attnmap run` on an exported tiny Qwen3-VL against transformers'
Qwen3VLProcessor (Qwen3VLVideoProcessor, torchvision backend) and eager Qwen3VLForConditionalGeneration.

One tiny random Qwen3-VL checkpoint (hub layout, untied, the released video_preprocessor_config.json)
is exported with the real CLI. Fed to both sides:
- 5 PNG frames, 98x150 (--frames): taken whole, timestamps at the processor's 24 fps, the last temporal
  patch repeating the last frame;
- a lossless 30-frame clip at 29.97 fps (--video), sampled by the processor's linspace at its default
  2 fps (4 frames) and with --num-frames 5 (np.round's half-to-even at 14.5).
Checked against transformers: input_ids (a "<t seconds>" text and <|vision_start|> pads <|vision_end|>
per temporal patch), pixel_values_videos (exact), video_grid_thw, get_rope_index's position_ids (each
temporal patch its own t=1 grid), maps.npy [layers, t, h, w] (mean over heads and prompt rows, within
1e-5), the predicted token; attention.json's pad runs, span, frame indices and per-patch time positions;
--answer's ids (greedy generate) and answer maps; `attnmap info`'s video line; and the metadata "video"
section against Qwen3VLVideoProcessor.from_pretrained (released, fallback and non-default configs).
"""
# transformers decides at import whether torchvision exists: the shim comes first (torchvision_shim.py).
from attnmap_tools.testing.torchvision_shim import import_torchvision

import_torchvision()

import json  # noqa: E402
import os  # noqa: E402
import pathlib  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import zipfile  # noqa: E402
from fractions import Fraction  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from attnmap_tools.testing import hf_reference as R  # noqa: E402
from attnmap_tools.testing import qwen3_vl_reference as Q
from attnmap_tools.testing.vision_reference import capture_vision_attention  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning",
                                        "ignore::FutureWarning")

BIN = os.environ.get("ATTNMAP_BIN", "")
ATOL = 1e-5
PROMPT = "Which way does the square move? 向左还是向右?"
FRAMES, HEIGHT, WIDTH = 5, 98, 150
CLIP_FRAMES, CLIP_RATE = 30, Fraction(30000, 1001)
MAX_NEW = 3


def run_cli(*args, command="run"):
    assert BIN, "ATTNMAP_BIN must name the built attnmap binary (CTest sets it)"
    extra = ["--device", "cpu"] if command == "run" else []
    proc = subprocess.run([BIN, command] + extra + [str(a) for a in args], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc




def export_metadata(model_pt) -> dict:
    """attnmap/metadata.json of an export, read from the TorchScript zip without loading the model."""
    with zipfile.ZipFile(model_pt) as z:
        name = next(n for n in z.namelist() if n.endswith("extra/attnmap/metadata.json"))
        return json.loads(z.read(name))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    work = tmp_path_factory.mktemp("qwen3_vl_video")
    torch.manual_seed(7)
    torch.set_num_threads(R.THREADS)
    ckpt = Q.make_checkpoint(work / "ckpt", seed=7, tied=False)
    model_pt = work / "model.pt"
    proc = R.export_checkpoint(ckpt, model_pt)
    assert proc.returncode == 0, proc.stderr
    return {"work": work, "ckpt": pathlib.Path(ckpt), "model": model_pt, "processor": Q.load_video_processor(ckpt),
            "hf": Q.load_hf_model(ckpt)}


def pad_runs(ids, video_token_id):
    """[start, end) of each run of video pads in a token id list."""
    runs, start = [], None
    for i, t in enumerate(list(ids) + [None]):
        if t == video_token_id and start is None:
            start = i
        elif t != video_token_id and start is not None:
            runs.append((start, i))
            start = None
    return runs


def prompt_rows(ids, config, tokenizer):
    """The user's text after the video: from after the last <|vision_end|> to before <|im_end|>."""
    vision_end = max(i for i, t in enumerate(ids) if t == config.vision_end_token_id)
    im_end = ids.index(tokenizer.convert_tokens_to_ids("<|im_end|>"), vision_end)
    return list(range(vision_end + 1, im_end))


def reference_maps(inputs, attentions, config, tokenizer):
    """HF eager attention, mean over heads and the prompt rows, at every video pad in order -> [t, h, w]."""
    ids = inputs["input_ids"][0].tolist()
    rows = prompt_rows(ids, config, tokenizer)
    cols = (inputs["input_ids"][0] == config.video_token_id).nonzero().flatten()
    t, h, w = inputs["video_grid_thw"][0].tolist()
    merge = config.vision_config.spatial_merge_size
    return np.stack([a[:, rows, :].double().mean(0).mean(0)[cols].reshape(t, h // merge, w // merge).float().numpy()
                     for a in attentions])


def check_run(tiny, out, dump, inputs):
    """The CLI's inputs, positions, maps, prediction and pad runs against transformers'; returns attention.json."""
    hf, tokenizer = tiny["hf"], tiny["processor"].tokenizer
    config = hf.config
    ids = inputs["input_ids"][0].tolist()
    t = int(inputs["video_grid_thw"][0, 0])
    # The processor's layout: "<t seconds><|vision_start|> pads <|vision_end|>" per temporal patch.
    text = tokenizer.decode(ids)
    assert len(re.findall(r"<\d+\.\d seconds><\|vision_start\|>(?:<\|video_pad\|>)+<\|vision_end\|>", text)) == t, text
    np.testing.assert_array_equal(np.load(dump / "input_ids.npy"), inputs["input_ids"][0].numpy())
    pv = np.load(dump / "pixel_values_videos.npy")
    assert pv.shape == tuple(inputs["pixel_values_videos"].shape)
    assert np.array_equal(pv, inputs["pixel_values_videos"].numpy()), \
        f"pixel_values_videos differ by {np.abs(pv - inputs['pixel_values_videos'].numpy()).max()}"
    np.testing.assert_array_equal(np.load(dump / "video_grid_thw.npy"), inputs["video_grid_thw"].numpy())
    positions = R.hf_position_ids(hf, inputs)
    np.testing.assert_array_equal(np.load(dump / "position_ids.npy"), positions.numpy())

    attentions, logits = R.hf_forward(hf, inputs)
    maps = np.load(out / "maps.npy")
    expected = reference_maps(inputs, attentions, config, tokenizer)
    assert maps.dtype == np.float32 and maps.shape == expected.shape
    np.testing.assert_allclose(maps, expected, atol=ATOL, rtol=0)

    record = json.loads((out / "attention.json").read_text())
    assert record["query_positions"] == prompt_rows(ids, config, tokenizer)
    assert record["prediction"]["token_id"] == int(logits.argmax())
    runs = pad_runs(ids, config.video_token_id)
    assert len(runs) == t
    assert [(r["start"], r["end"]) for r in record["image_token_runs"]] == runs
    assert record["image_token_span"] == {"start": runs[0][0], "end": runs[-1][1]}
    video = record["video"]
    assert len(video["temporal_patches"]) == t
    first = int(positions[0, runs[0][0]])
    assert [p["time_position"] for p in video["temporal_patches"]] == \
        [int(positions[0, start]) - first for start, _ in runs]
    return record


def write_frames(work, frames):
    frames_dir = work / "frames"
    frames_dir.mkdir(parents=True)
    for k, frame in enumerate(frames):
        Image.fromarray(frame).save(frames_dir / f"frame_{k:03d}.png")
    return frames_dir


@pytest.fixture(scope="module")
def frames_case(tiny):
    work = tiny["work"] / "frames_case"
    frames = R.moving_square_frames(FRAMES, HEIGHT, WIDTH, seed=3)
    return {"dir": write_frames(work, frames), "work": work,
            "inputs": Q.build_video_inputs(tiny["processor"], frames, PROMPT)}


def test_frames_match_transformers(tiny, frames_case):
    """A frame list is taken whole at 24 fps: 5 frames -> 3 temporal patches, the last one frame 4 twice."""
    out, dump = frames_case["work"] / "out", frames_case["work"] / "dump"
    run_cli("--model", tiny["model"], "--frames", frames_case["dir"], "--prompt", PROMPT, "--out", out,
            "--dump-inputs", dump, "--layers", "all", "--no-viewer")
    inputs = frames_case["inputs"]
    assert inputs["video_grid_thw"][0].tolist()[0] == 3
    text = tiny["processor"].tokenizer.decode(inputs["input_ids"][0])
    # (0 + 1) / 2 / 24, (2 + 3) / 2 / 24, (4 + 4) / 2 / 24 seconds, written with one decimal.
    assert "<0.0 seconds><|vision_start|>" in text and "<0.1 seconds><|vision_start|>" in text \
        and "<0.2 seconds><|vision_start|>" in text, text
    record = check_run(tiny, out, dump, inputs)
    video = record["video"]
    assert video["source"] == "frames" and video["frame_indices"] == list(range(FRAMES))
    assert video["temporal_patches"][-1]["frames"] == [FRAMES - 1, FRAMES - 1]



@pytest.mark.parametrize("flag,value", [(None, None), ("--num-frames", 5)])
def test_clip_matches_transformers(tiny, flag, value):
    """A PNG-coded .mov (decoded identically by OpenCV and PyAV), 30 frames at 29.97 fps: with no
    sampling flag the processor's own 2 fps (int(30 / 29.97 * 2) = 2, raised to min_frames 4), or 5
    frames; linspace indices as Qwen3VLVideoProcessor.sample_frames picks them."""
    from transformers.video_utils import VideoMetadata

    from attnmap_tools.testing.make_test_videos import write_clip

    work = tiny["work"] / f"clip_{value}"
    work.mkdir()
    clip = work / "clip.mov"
    write_clip(clip, "png", CLIP_FRAMES, CLIP_RATE, WIDTH, HEIGHT)
    out, dump = work / "out", work / "dump"
    sampling = [flag, value] if flag else []
    run_cli("--model", tiny["model"], "--video", clip, *sampling, "--prompt", PROMPT, "--out", out,
            "--dump-inputs", dump, "--layers", "all", "--no-viewer")
    frames, total, fps = R.pyav_frames(clip)
    assert (frames.shape[0], total) == (CLIP_FRAMES, CLIP_FRAMES)
    inputs = Q.build_video_inputs(tiny["processor"], frames, PROMPT, fps=fps, num_frames=value)
    record = check_run(tiny, out, dump, inputs)
    video = record["video"]
    assert video["total_frames"] == total and video["fps"] == pytest.approx(fps)
    vp = tiny["processor"].video_processor
    expected = vp.sample_frames(VideoMetadata(total_num_frames=total, fps=fps), num_frames=value)
    assert video["frame_indices"] == [int(i) for i in expected]
    assert video["frame_indices"] == ([0, 10, 19, 29] if value is None else [0, 7, 14, 22, 29])


def test_answer_equals_transformers_greedy_generate(tiny, frames_case):
    hf = tiny["hf"]
    config = hf.config
    inputs = frames_case["inputs"]
    with torch.no_grad():
        g = hf.generate(**inputs, do_sample=False, max_new_tokens=MAX_NEW, output_attentions=True,
                        return_dict_in_generate=True, repetition_penalty=1.0)
    seq = inputs["input_ids"].shape[1]
    their_ids = g.sequences[0, seq:].tolist()
    out = frames_case["work"] / "answer"
    run_cli("--model", tiny["model"], "--frames", frames_case["dir"], "--prompt", PROMPT, "--out", out, "--answer",
            "--max-new-tokens", MAX_NEW, "--raw-argmax", "--layers", "all", "--no-viewer")
    doc = json.loads((out / "attention.json").read_text())
    assert [t["id"] for t in doc["answer"]["tokens"]] == their_ids
    maps = np.load(out / "answer_maps.npy")
    t, h, w = inputs["video_grid_thw"][0].tolist()
    merge = config.vision_config.spatial_merge_size
    cols = (inputs["input_ids"][0] == config.video_token_id).nonzero().flatten()
    assert list(maps.shape) == [len(their_ids), config.text_config.num_hidden_layers, t, h // merge, w // merge]
    for k, step in enumerate(g.attentions):
        for layer, att in enumerate(step):
            row = att[0, :, -1, :].double().mean(0)[cols].reshape(t, h // merge, w // merge).numpy()
            np.testing.assert_allclose(maps[k, layer], row, atol=ATOL, rtol=0)


def test_info_reports_the_video_processor(tiny):
    out = run_cli("--model", tiny["model"], command="info").stdout
    assert "not supported" not in out and "not in this export" not in out, out
    lines = [line for line in out.splitlines() if line.startswith("video ")]
    assert len(lines) == 1, out
    # As for Qwen2.5-VL: the processor's pixel bounds (the released video_preprocessor_config.json's) and
    # the video token.
    assert "4096" in lines[0] and "25165824" in lines[0] and "151656" in lines[0], lines[0]


def test_viewer_reads_each_temporal_patch_between_the_timestamps(tiny, frames_case):
    """viewer.html of a Qwen3-VL video run in headless Chromium: its temporal patches are separate runs of
    pads with timestamp text between them. The page must show maps.npy per temporal patch, a single head's
    map gathered from the kept rows run by run (against `--heads 1`'s maps.npy, within the page's 8-bit
    bound), the timestamp tokens as text columns beside one video column, and hover token numbers inside
    each patch's own run."""
    from selenium.webdriver.common.action_chains import ActionChains
    from test_viewer_browser import browser_missing_reason, console_errors, goto, open_page, quant_bound, select
    from test_viewer_browser import start_chromium
    from conftest import missing_build_output

    reason = browser_missing_reason()
    if reason:
        missing_build_output(reason)
    work = frames_case["work"]
    out, head1 = work / "viewer", work / "viewer_head1"
    run_cli("--model", tiny["model"], "--frames", frames_case["dir"], "--prompt", PROMPT, "--out", out,
            "--layers", "0,3", "--no-images")
    run_cli("--model", tiny["model"], "--frames", frames_case["dir"], "--prompt", PROMPT, "--out", head1,
            "--layers", "0,3", "--heads", "1", "--no-viewer", "--no-images")
    doc = json.loads((out / "attention.json").read_text())
    runs = [(r["start"], r["end"]) for r in doc["image_token_runs"]]
    maps, single = np.load(out / "maps.npy"), np.load(head1 / "maps.npy")
    layers, t, h, w = maps.shape
    assert len(runs) == t == 3
    driver = start_chromium()
    try:
        open_page(driver, out / "viewer.html")
        assert console_errors(driver) == []
        for l in range(layers):
            goto(driver, "layer", l, "layerIndex")
            for k in range(t):
                goto(driver, "frame", k, "frame")
                shown = np.array(driver.execute_script("return window.attnmapViewer.currentMap()"), dtype=np.float32)
                np.testing.assert_array_equal(shown, maps[l, k].reshape(-1))
        select(driver, "heads", "1")
        select(driver, "query", "g:0")
        for l in range(layers):
            goto(driver, "layer", l, "layerIndex")
            for k in range(t):
                goto(driver, "frame", k, "frame")
                shown = np.array(driver.execute_script("return window.attnmapViewer.currentMap()"), dtype=np.float64)
                np.testing.assert_allclose(shown, single[l, k].reshape(-1), rtol=0,
                                           atol=quant_bound(single[l, k]) + 1e-6, err_msg=f"layer {l}, patch {k}")
        columns = driver.execute_script("return window.attnmapViewer.textColumns()")
        assert [c["label"] for c in columns if c["role"] == "image"] == [f"[video ×{t * h * w}]"]
        between = [c["position"] for c in columns if runs[0][1] <= c["position"] < runs[1][0]]
        assert between == list(range(runs[0][1], runs[1][0]))  # <|vision_end|>, the timestamp, <|vision_start|>
        goto(driver, "frame", t - 1, "frame")
        canvas = driver.find_element("id", "map")
        size = canvas.size
        r, c = h - 1, w // 2
        ActionChains(driver).move_to_element_with_offset(
            canvas, int((c + 0.5) / w * size["width"] - size["width"] / 2),
            int((r + 0.5) / h * size["height"] - size["height"] / 2)).perform()
        assert f"(token {runs[t - 1][0] + r * w + c})" in driver.find_element("id", "hover-readout").text
        assert console_errors(driver) == []
    finally:
        driver.quit()


def test_vision_attention_of_a_video_equals_transformers(tiny, frames_case):
    """The exported vision_attention on the video's patches (what `--vision-blocks` reads): the tower
    attends within each temporal patch, so query patches of temporal patch 1 see only its patches;
    equal to transformers' eager probabilities of that temporal patch, recorded per block and patch."""
    from transformers.vision_utils import get_vision_position_ids

    hf = tiny["hf"]
    inputs = frames_case["inputs"]
    pixels, grid = inputs["pixel_values_videos"], inputs["video_grid_thw"]
    t, h, w = grid[0].tolist()
    depth = hf.config.vision_config.depth
    captured = capture_vision_attention(hf, pixels, grid)
    pos = get_vision_position_ids(torch.tensor([[1, h, w]]), hf.config.vision_config.spatial_merge_size)
    order = torch.argsort(pos[:, 0] * w + pos[:, 1])  # raster patch -> HF row within a temporal patch
    local = torch.tensor([0, w + 3, h * w - 1])
    queries = h * w + local  # raster (t, row, col) indexes in temporal patch 1
    module = torch.jit.load(str(tiny["model"]))
    with torch.no_grad():
        ours = module.vision_attention(pixels, grid, list(range(depth)), queries, "keep")
    for b in range(depth):
        assert len(captured[b]) == t  # one attention call per temporal patch
        patch = captured[b][1].double()[:, order][:, :, order]  # raster x raster of temporal patch 1
        expected = torch.zeros(patch.shape[0], t * h * w, dtype=torch.float64)
        expected[:, h * w:2 * h * w] = patch[:, local, :].mean(1)
        assert (ours[f"vision.{b}"].double() - expected).abs().max().item() <= ATOL, b


# The checks below need no attnmap binary.

def _expected_section(vp, source):
    """metadata "video" as it must read for the Qwen3VLVideoProcessor `vp` built from `source`."""
    from attnmap_tools.export.metadata import _RESAMPLE_NAMES

    resample = vp.resample if isinstance(vp.resample, int) else int(vp.resample)
    return {
        "min_pixels": vp.size["shortest_edge"], "max_pixels": vp.size["longest_edge"],
        "patch_size": vp.patch_size, "temporal_patch_size": vp.temporal_patch_size, "merge_size": vp.merge_size,
        "image_mean": pytest.approx(list(vp.image_mean)), "image_std": pytest.approx(list(vp.image_std)),
        "rescale_factor": pytest.approx(vp.rescale_factor), "resample": _RESAMPLE_NAMES[resample],
        "do_convert_rgb": bool(vp.do_convert_rgb), "min_frames": vp.min_frames, "max_frames": vp.max_frames,
        "fps": vp.fps, "num_frames": vp.num_frames, "do_sample_frames": bool(vp.do_sample_frames),
        "source": source, "tokens_per_second": None, "temporal_positions": "frame_runs",
        "frame_sampling": "linspace", "pixel_budget": "clip",
        "cap_pixels_per_frame": bool(vp.cap_pixels_per_frame), "max_video_tokens": vp.max_video_tokens,
        "timestamp_text": {"before": "<", "after": " seconds>", "decimals": 1},
    }


def test_export_records_the_released_video_processor(tiny):
    """The export's own metadata (the real CLI, family qwen3_vl) is the processor the oracle uses."""
    meta = export_metadata(tiny["model"])
    assert meta["model_family"] == "qwen3_vl"
    vp = tiny["processor"].video_processor
    assert meta["video"] == _expected_section(vp, "video_preprocessor_config.json")
    assert (meta["video"]["min_pixels"], meta["video"]["max_pixels"], meta["video"]["fps"]) == (4096, 25165824, 2.0)


NON_DEFAULT = {"size": {"shortest_edge": 5000, "longest_edge": 90000}, "min_pixels": 1234, "max_pixels": 56789,
               "patch_size": 16, "temporal_patch_size": 2, "merge_size": 2, "image_mean": [0.4, 0.5, 0.6],
               "image_std": [0.2, 0.3, 0.25], "rescale_factor": 0.005, "resample": 2, "do_convert_rgb": False,
               "min_frames": 2, "max_frames": 64, "fps": 3.0, "do_sample_frames": False, "num_frames": 6,
               "cap_pixels_per_frame": True, "max_video_tokens": 100,
               "video_processor_type": "Qwen3VLVideoProcessor"}


@pytest.mark.parametrize("files,source", [
    ({}, "preprocessor_config.json"),  # no video file: the image processor's dict (and its size)
    ({"video_preprocessor_config.json": "released"}, "video_preprocessor_config.json"),
    ({"video_preprocessor_config.json": NON_DEFAULT}, "video_preprocessor_config.json"),
    ({"video_preprocessor_config.json": "released", "processor_config.json": {"video_processor": NON_DEFAULT}},
     "processor_config.json"),
    ({"video_preprocessor_config.json": {"cap_pixels_per_frame": False, "fps": 1}},
     "video_preprocessor_config.json"),  # everything else the class defaults
], ids=["fallback", "released", "non_default", "nested", "class_defaults"])
def test_export_records_the_video_processor_transformers_builds(tmp_path, files, source):
    """metadata "video" of a qwen3_vl export equals Qwen3VLVideoProcessor.from_pretrained(checkpoint),
    found as AutoVideoProcessor finds its dict (processor_config.json's "video_processor", else
    video_preprocessor_config.json, else preprocessor_config.json); min_pixels/max_pixels keys, which
    the Qwen3 processor does not read, change nothing."""
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    from attnmap_tools.export.checkpoint import read_video_processor_config
    from attnmap_tools.export.metadata import video_section
    from attnmap_tools.testing.qwen3_vl_tiny import PREPROCESSOR_CONFIG, VIDEO_PREPROCESSOR_CONFIG

    (tmp_path / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR_CONFIG))
    for name, content in files.items():
        (tmp_path / name).write_text(json.dumps(VIDEO_PREPROCESSOR_CONFIG if content == "released" else content))
    vp = Qwen3VLVideoProcessor.from_pretrained(str(tmp_path))
    section = video_section(*read_video_processor_config(tmp_path), None, "qwen3_vl")
    assert section == _expected_section(vp, source)
    if files.get("video_preprocessor_config.json") is NON_DEFAULT or "processor_config.json" in files:
        assert (section["min_pixels"], section["max_pixels"], section["cap_pixels_per_frame"]) == (5000, 90000, True)
