"""viewer.html of a video run in headless Chromium (docs/viewer.md, "Videos").

`attnmap run --frames DIR` on the demo model with five frames of a moving square (an odd count: the
last temporal patch repeats the last frame) writes a page that must load offline with no console
error and no request, show a frame slider with one position per temporal patch, draw each temporal
patch's slice of maps.npy [layers, t, h, w] over that patch's picture, and report the values of
maps.npy for sampled cells; a single head's map (checked against a second run with `--heads 1`)
within the page's 8-bit quantisation bound. An image run's page shows no frame slider.
"""
import json
import os
import pathlib
import subprocess
import time

import numpy as np
import pytest
from PIL import Image

from conftest import missing_build_output
from test_viewer_browser import (canvas_hash, console_errors, driver, goto, network_requests,  # noqa: F401
                                 open_page, quant_bound, select, state)

BIN = os.environ.get("ATTNMAP_BIN", "")
PROMPT = "Where does the red square go?"
FRAMES = 5
# Where a test may leave the page's screenshot for a person to look at (docs/viewer.md).
SCREENSHOT = os.environ.get("ATTNMAP_VIEWER_VIDEO_SCREENSHOT")


def moving_square(count, height=112, width=168):
    """Frames of a red square crossing a smooth background from left to right."""
    yy, xx = np.mgrid[0:height, 0:width]
    background = np.stack([60 + 120 * xx / width, 90 + 100 * yy / height, 170 + 0 * xx], axis=-1)
    frames = []
    side = height // 3
    for k in range(count):
        img = background.copy()
        x = int((width - side) * k / max(1, count - 1))
        y = (height - side) // 2
        img[y:y + side, x:x + side] = [225, 35, 30]
        frames.append(Image.fromarray(img.astype(np.uint8)))
    return frames


def attnmap(*args):
    assert BIN, "ATTNMAP_BIN must name the built attnmap binary (CTest sets it)"
    proc = subprocess.run([BIN, "run", "--device", "cpu", *map(str, args)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def demo():
    path = os.environ.get("ATTNMAP_DEMO_MODEL")
    if not path or not os.path.exists(path):
        missing_build_output("the demo model is not built (ATTNMAP_DEMO_MODEL)")
    return path


@pytest.fixture(scope="module")
def video_run(demo, tmp_path_factory):
    work = tmp_path_factory.mktemp("viewer_video_run")
    frames = work / "frames"
    frames.mkdir()
    for k, frame in enumerate(moving_square(FRAMES)):
        frame.save(frames / f"frame_{k:02d}.png")
    out = work / "out"
    attnmap("--model", demo, "--frames", frames, "--prompt", PROMPT, "--out", out, "--layers", "all")
    # --heads 1 with answer tokens (--answer alone would make the answer the query): maps.npy is head 1
    # over the prompt tokens, and the page's default view (heads mean over the prompt tokens) is
    # reduced from the kept rows, not copied from maps.npy
    head1 = work / "head1"
    attnmap("--model", demo, "--frames", frames, "--prompt", PROMPT, "--out", head1, "--layers", "all", "--heads", "1",
            "--query", "prompt", "--answer", "--max-new-tokens", "2", "--no-images")
    no_viewer = work / "no_viewer"
    attnmap("--model", demo, "--frames", frames, "--prompt", PROMPT, "--out", no_viewer, "--layers", "all",
            "--no-viewer", "--no-images")
    return {"work": work, "frames": frames, "out": out, "html": out / "viewer.html",
            "doc": json.loads((out / "attention.json").read_text()), "maps": np.load(out / "maps.npy"),
            "head1": np.load(head1 / "maps.npy"), "head1_html": head1 / "viewer.html",
            "no_viewer": np.load(no_viewer / "maps.npy")}


def test_video_run_writes_a_viewer_that_loads_offline(driver, video_run):
    html, doc, maps = video_run["html"], video_run["doc"], video_run["maps"]
    assert doc["viewer"]["file"] == "viewer.html" and doc["viewer"]["html_bytes"] == html.stat().st_size
    open_page(driver, html)
    assert console_errors(driver) == []
    assert network_requests(driver, html.resolve().as_uri()) == []
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
    layers, t, h, w = maps.shape
    patches = doc["video"]["temporal_patches"]
    assert t == len(patches) == (FRAMES + 1) // 2
    info = driver.execute_script("return window.attnmapViewer.info")
    assert info["frames"] == t and info["grid"] == [h, w] and len(info["layers"]) == layers
    for k, (label, patch) in enumerate(zip(info["frameLabels"], patches)):
        first, last = patch["frames"][0], patch["frames"][-1]
        frames = f"frame {first}" if first == last else f"frames {first}–{last}"
        assert label.startswith(f"t{k} · {frames} · "), label
        assert label.endswith(" s") and f"{patch['timestamps'][0]:.2f}" in label, label
    slider = driver.find_element("id", "frame")
    assert slider.is_displayed() and driver.find_element("id", "frame-play").is_displayed()
    assert (slider.get_attribute("min"), slider.get_attribute("max")) == ("0", str(t - 1))
    # the text matrix collapses the whole video span into one column, labelled as a video
    image_columns = driver.execute_script(
        "return window.attnmapViewer.textColumns().filter(c => c.role === 'image').map(c => c.label)")
    assert image_columns == [f"[video ×{t * h * w}]"]
    assert doc["image_token_span"]["end"] - doc["image_token_span"]["start"] == t * h * w
    assert any("video:" in li.text for li in driver.find_elements("css selector", "#metadata li"))


def test_video_run_page_shows_maps_npy_frame_by_frame(driver, video_run):
    open_page(driver, video_run["html"])
    maps = video_run["maps"]
    layers, t, h, w = maps.shape
    rng = np.random.default_rng(4)
    cells = [(0, 0), (h - 1, w - 1)] + [(int(r), int(c)) for r, c in zip(rng.integers(0, h, 5), rng.integers(0, w, 5))]
    for l in (0, layers // 2, layers - 1):
        goto(driver, "layer", l, "layerIndex")
        hashes = set()
        for k in range(t):
            goto(driver, "frame", k, "frame")
            for r, c in cells:
                value = driver.execute_script("return window.attnmapViewer.cellValue(arguments[0], arguments[1])", r, c)
                # heads mean over the prompt tokens is maps.npy itself, stored exactly (well within the bound)
                assert abs(value - maps[l, k, r, c]) <= quant_bound(maps[l, k]), (l, k, r, c, value)
                assert np.float32(value) == maps[l, k, r, c], (l, k, r, c, value, maps[l, k, r, c])
            shown = np.array(driver.execute_script("return window.attnmapViewer.currentMap()"), dtype=np.float32)
            np.testing.assert_array_equal(shown, maps[l, k].reshape(-1))
            lo, hi = state(driver)["range"]  # per layer: one scale over all frames of the layer
            assert (np.float32(lo), np.float32(hi)) == (maps[l].min(), maps[l].max())
            hashes.add(canvas_hash(driver))
        assert len(hashes) == t, f"layer {l}: moving the frame slider did not change the displayed map"
    assert console_errors(driver) == []


def test_video_maps_npy_is_the_same_without_the_viewer(video_run):
    """With the viewer the forward keeps every head and attnmap reduces them itself: maps.npy must not change."""
    np.testing.assert_array_equal(video_run["maps"], video_run["no_viewer"])


def test_video_default_view_of_a_single_head_run(driver, video_run):
    """A `--heads 1 --answer` run's page: its default view is heads mean over the prompt tokens, [layers, t, h, w]
    reduced from the kept rows, equal to the heads-mean run's maps.npy; its answer tokens have their own rows."""
    html = video_run["head1_html"]
    open_page(driver, html)
    assert console_errors(driver) == []
    assert driver.execute_script("return window.attnmapViewer.info.groups") == ["prompt", "answer"]
    maps = video_run["maps"]
    layers, t, _, _ = maps.shape
    for l in (0, layers - 1):
        goto(driver, "layer", l, "layerIndex")
        for k in range(t):
            goto(driver, "frame", k, "frame")
            shown = np.array(driver.execute_script("return window.attnmapViewer.currentMap()"), dtype=np.float64)
            np.testing.assert_allclose(shown, maps[l, k].reshape(-1), rtol=0, atol=1e-7, err_msg=f"layer {l}, frame {k}")
    select(driver, "query", "g:1")
    assert state(driver)["available"]


def test_video_run_single_head_within_the_quantisation_bound(driver, video_run):
    """Head 1 over all prompt tokens (a group row, quantised per temporal patch) against maps.npy of
    `attnmap run --heads 1`."""
    open_page(driver, video_run["html"])
    expected = video_run["head1"]
    layers, t, _, _ = expected.shape
    select(driver, "heads", "1")
    select(driver, "query", "g:0")
    for l in (0, layers - 1):
        goto(driver, "layer", l, "layerIndex")
        for k in range(t):
            goto(driver, "frame", k, "frame")
            shown = np.array(driver.execute_script("return window.attnmapViewer.currentMap()"), dtype=np.float64)
            np.testing.assert_allclose(shown, expected[l, k].reshape(-1), rtol=0,
                                       atol=quant_bound(expected[l, k]) + 1e-6, err_msg=f"layer {l}, frame {k}")


def test_video_run_hover_names_the_temporal_patch(driver, video_run):
    from selenium.webdriver.common.action_chains import ActionChains

    open_page(driver, video_run["html"])
    maps = video_run["maps"]
    _, t, h, w = maps.shape
    goto(driver, "frame", t - 1, "frame")
    canvas = driver.find_element("id", "map")
    size = canvas.size
    r, c = h // 2, w - 2
    ActionChains(driver).move_to_element_with_offset(
        canvas, int((c + 0.5) / w * size["width"] - size["width"] / 2),
        int((r + 0.5) / h * size["height"] - size["height"] / 2)).perform()
    tip = driver.find_element("id", "tooltip")
    assert tip.is_displayed()
    assert [int(tip.get_attribute(a)) for a in ("data-frame", "data-row", "data-col")] == [t - 1, r, c]
    assert f"t{t - 1}, row {r}, col {c}" in tip.text
    assert np.float32(float(tip.get_attribute("data-value"))) == maps[-1, t - 1, r, c]
    token = video_run["doc"]["image_token_span"]["start"] + (t - 1) * h * w + r * w + c
    assert f"(token {token})" in driver.find_element("id", "hover-readout").text


def test_video_run_page_screenshot(driver, video_run, tmp_path):
    """The page as a person sees it, on the last temporal patch (saved to $ATTNMAP_VIEWER_VIDEO_SCREENSHOT when set)."""
    import io

    open_page(driver, video_run["html"])
    goto(driver, "frame", video_run["maps"].shape[1] - 1, "frame")
    png = driver.get_screenshot_as_png()
    (pathlib.Path(SCREENSHOT) if SCREENSHOT else tmp_path / "video_viewer.png").write_bytes(png)
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 200 and img.std() > 20


def test_play_steps_through_the_frames(driver, video_run):
    open_page(driver, video_run["html"])
    goto(driver, "frame", 0, "frame")
    driver.find_element("id", "frame-play").click()
    time.sleep(0.8)
    assert state(driver)["framePlaying"] is True
    driver.find_element("id", "frame-play").click()
    assert state(driver)["frame"] != 0 and state(driver)["framePlaying"] is False


def test_image_run_shows_no_frame_slider(driver, demo, video_run):
    out = video_run["work"] / "image_out"
    attnmap("--model", demo, "--image", video_run["frames"] / "frame_00.png", "--prompt", PROMPT, "--out", out,
            "--layers", "0")
    open_page(driver, out / "viewer.html")
    assert console_errors(driver) == []
    assert not driver.find_element("id", "frame-controls").is_displayed()
    assert driver.execute_script("return window.attnmapViewer.info.frames") == 1
    maps = np.load(out / "maps.npy")
    assert maps.ndim == 3
    assert np.float32(driver.execute_script("return window.attnmapViewer.cellValue(1, 2)")) == maps[-1, 1, 2]
