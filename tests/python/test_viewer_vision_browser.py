"""The viewer's "Vision tower" section (docs/viewer.md) in headless Chromium.

`attnmap run --vision-blocks` adds, per requested block of the vision tower, the attention each patch
of the unmerged patch grid receives from the query patches (ViewerData::vision). These pages are made
from synthetic maps by attnmap_viewer_fixture (its "vision" object): a windowed block's map is zero
outside the windows of its query patches, as the model's is. The checks read the page's hook
(window.attnmapViewer.vision), its canvas pixels and its DOM: the section exists only with vision data;
every block's decoded cells equal the input within the 8-bit bound of its (block, frame) scale; the
block slider, the window-border checkbox (borders only on windowed blocks) and a video's frame slider
change the canvas; hover names block, patch and value; no console error, no request.
ATTNMAP_VIEWER_VISION_SCREENSHOT=PATH.png keeps a screenshot of the section for a person to look at.
"""
import io
import json
import os
import subprocess
import time

import numpy as np
import pytest

from test_viewer_browser import (canvas_hash, canvas_png, console_errors, driver, fixture_binary, goto,  # noqa: F401
                                 make_case, network_requests, open_page, quant_bound, select)

SCREENSHOT = os.environ.get("ATTNMAP_VIEWER_VISION_SCREENSHOT")
PATCH = 14
WINDOW = 8  # patches per window side, as Qwen2.5-VL's 112-pixel windows
BLOCKS = [3, 7, 12, 15]
ATTENTION = ["window", "full", "window", "full"]


def window_ids(T, gh, gw, window=WINDOW):
    """Each patch's window, raster order (t, row, col): window x window patches, partial at the right
    and bottom edges; ids numbered across frames (a window never spans temporal patches)."""
    per_row, per_col = -(-gw // window), -(-gh // window)
    t, r, c = np.meshgrid(np.arange(T), np.arange(gh), np.arange(gw), indexing="ij")
    return ((t * per_col + r // window) * per_row + c // window).reshape(-1).astype(np.int64)


def vision_maps(T, gh, gw, windows, query, attention, seed, centre=None):
    """float32 [blocks, T, gh, gw]: per block and frame a received-attention map that sums to 1 over the
    frame (each query patch's row sums to 1 within its frame), a blob near `centre` (row, col; per frame
    when a list) or the query's middle; a windowed block only inside the query patches' windows."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:gh, 0:gw]
    win = windows.reshape(T, gh, gw)
    out = np.zeros((len(attention), T, gh, gw), np.float32)
    for b, kind in enumerate(attention):
        for t in range(T):
            q = [k - t * gh * gw for k in query if k // (gh * gw) == t] if query else list(range(gh * gw))
            if not q:
                continue  # the tower attends within a frame: no query patch here, no attention
            if centre is None:
                cy, cx = np.mean([k // gw for k in q]), np.mean([k % gw for k in q])
            else:
                cy, cx = centre[t] if isinstance(centre, list) else centre
            sigma = 1.5 + 1.2 * b
            m = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma ** 2)) + 0.05 * rng.random((gh, gw))
            if kind == "window":
                m = m * np.isin(win[t], [win[t].reshape(-1)[k] for k in q])
            out[b, t] = m / m.sum()
    return out


def vision_case(tmp, *, grid=(6, 8), frames=0, query="box", name="vision", options=None, attention=ATTENTION,
                blocks=BLOCKS, centre=None, seed=3, window_patches=WINDOW):
    """make_case's page plus a "vision" object: blocks x (frames or 1) x (2*mh) x (2*mw) patches."""
    tmp.mkdir(parents=True, exist_ok=True)
    mh, mw = grid
    T, gh, gw = max(1, frames), 2 * mh, 2 * mw
    windows = window_ids(T, gh, gw, window_patches or max(gh, gw))
    if query == "box":  # rows 3-5, cols 6-9 of every frame: across the border of two windows
        patches = [(t * gh + r) * gw + c for t in range(T) for r in range(3, 6) for c in range(6, 10)]
        text = f"box:{6 * PATCH},{3 * PATCH},{10 * PATCH},{6 * PATCH}"
    elif query == "peak":  # the 2x2 patches under a decoder cell of temporal patch 1 (0 for an image)
        t = min(1, T - 1)
        patches = [(t * gh + r) * gw + c for r in (4, 5) for c in (6, 7)]
        text = "text-peak:5"
    else:
        patches, text = [], "mean"
    maps = vision_maps(T, gh, gw, windows, patches, attention, seed, centre)
    maps.tofile(tmp / f"{name}_vision.f32")
    vision = {"blocks": list(blocks), "attention": list(attention), "grid_t": T, "grid_h": gh, "grid_w": gw,
              "patch_size": PATCH, "window_patches": window_patches, "maps": str(tmp / f"{name}_vision.f32"),
              "windows": windows.tolist(), "query": text, "query_patches": patches}
    case = make_case(tmp, grid=grid, frames=frames, name=name, options=options or {"opacity": 0.6},
                     extra={"vision": vision})
    case.update({"vision": maps, "windows": windows.reshape(T, gh, gw), "query_patches": patches,
                 "vision_grid": (T, gh, gw), "query_text": text})
    return case


def vstate(drv):
    return drv.execute_script("return window.attnmapViewer.vision.state();")


def vmap(drv):
    return np.array(drv.execute_script("return window.attnmapViewer.vision.currentMap();"), dtype=np.float64)


def set_block(drv, index):
    """The block slider by keyboard, as a person moves it."""
    from selenium.webdriver.common.keys import Keys

    slider = drv.find_element("id", "vision-block")
    slider.send_keys(Keys.HOME)
    for _ in range(index):
        slider.send_keys(Keys.RIGHT)
    assert vstate(drv)["blockIndex"] == index


def canvas_rgb(drv, canvas_id="vision-map"):
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(canvas_png(drv, canvas_id))).convert("RGB")).astype(int)


@pytest.fixture(scope="module")
def image_case(tmp_path_factory):
    return vision_case(tmp_path_factory.mktemp("viewer_vision"))


@pytest.fixture(scope="module")
def video_case(tmp_path_factory):
    # the blob follows the frame pictures' moving square (test_viewer_browser.frame_picture)
    mh, mw = 5, 7
    centre = [(mh * 19 / 20, (mw * 40 - mh * 14) * t / 2 / 20 + mh * 7 / 20) for t in range(3)]
    return vision_case(tmp_path_factory.mktemp("viewer_vision_video"), grid=(mh, mw), frames=3, name="video",
                       centre=centre)


def test_the_section_appears_only_with_vision_data(driver, image_case, tmp_path):
    plain = make_case(tmp_path, name="plain")
    open_page(driver, plain["html"])
    assert not driver.find_element("id", "vision-panel").is_displayed()
    assert driver.execute_script("return window.attnmapViewer.vision") is None
    assert driver.execute_script("return window.attnmapViewer.info.vision") is None
    meta = json.loads(driver.execute_script("return document.getElementById('attnmap-meta').textContent"))
    assert "vision" not in meta and not any(k.startswith("vision") for k in meta["layout"])

    html = image_case["html"]
    open_page(driver, html)
    assert console_errors(driver) == []
    assert network_requests(driver, html.resolve().as_uri()) == []
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
    panel = driver.find_element("id", "vision-panel")
    assert panel.is_displayed()
    assert panel.find_element("tag name", "h2").text.startswith("Vision tower")
    T, gh, gw = image_case["vision_grid"]
    info = driver.execute_script("return window.attnmapViewer.info.vision")
    assert info == {"blocks": BLOCKS, "attention": ATTENTION, "grid": [T, gh, gw], "patchSize": PATCH,
                    "windowPatches": WINDOW, "query": image_case["query_text"],
                    "queryPatches": image_case["query_patches"]}
    # the deepest requested block first, like the layers
    assert vstate(driver)["blockIndex"] == len(BLOCKS) - 1
    assert driver.find_element("id", "vision-block-label").text.startswith("block 15 · full attention")
    query = driver.find_element("id", "vision-query").text
    assert image_case["query_text"] in query and "12 patches in the box" in query, query
    assert f"{gh} x {gw} patches of {PATCH} px" in driver.find_element("id", "vision-caption").text
    # the same picture as the main map, side by side at its size
    size = lambda i: driver.execute_script("const c = document.getElementById(arguments[0]);"  # noqa: E731
                                           "return [c.width, c.height, c.style.width];", i)
    assert size("vision-map") == size("map")


def test_each_blocks_cells_equal_the_maps_within_the_quantisation_bound(driver, image_case):
    open_page(driver, image_case["html"])
    maps = image_case["vision"].astype(np.float64)
    windows = image_case["windows"][0]
    query_windows = {windows.reshape(-1)[k] for k in image_case["query_patches"]}
    outside = ~np.isin(windows, list(query_windows))
    assert outside.any()
    for b in range(len(BLOCKS)):
        set_block(driver, b)
        st = vstate(driver)
        assert (st["blockIndex"], st["block"], st["attention"], st["frame"]) == (b, BLOCKS[b], ATTENTION[b], 0)
        shown = vmap(driver)
        expected = maps[b, 0].reshape(-1)
        bound = quant_bound(expected)
        np.testing.assert_allclose(shown, expected, rtol=0, atol=bound, err_msg=f"block {BLOCKS[b]}")
        stored = driver.execute_script("return window.attnmapViewer.vision.map(arguments[0], 0)", b)
        np.testing.assert_allclose(np.array(stored), expected, rtol=0, atol=bound)
        for r, c in ((0, 0), (4, 7), (11, 15), (9, 3)):
            value = driver.execute_script("return window.attnmapViewer.vision.cellValue(arguments[0], arguments[1])", r, c)
            assert abs(value - maps[b, 0, r, c]) <= bound, (b, r, c)
        # a windowed block's zero outside the query's windows is shown as exactly zero; a full block's
        # map is not zero there
        if ATTENTION[b] == "window":
            assert (shown.reshape(windows.shape)[outside] == 0).all()
        else:
            assert (shown.reshape(windows.shape)[outside] > 0).all()
        lo, hi = st["range"]  # this block's own colour scale
        assert (lo, hi) == (pytest.approx(shown.min(), abs=1e-12), pytest.approx(shown.max(), abs=1e-12))
        assert driver.find_element("id", "vision-cb-hi").text.endswith("(this block)")
    assert console_errors(driver) == []


def test_switching_block_changes_the_canvas_and_its_label(driver, image_case):
    open_page(driver, image_case["html"])
    hashes = []
    for b in range(len(BLOCKS)):
        set_block(driver, b)
        hashes.append(canvas_hash(driver, "vision-map"))
        label = driver.find_element("id", "vision-block-label").text
        note = driver.find_element("id", "vision-note")
        box = driver.find_element("id", "vision-windows")
        if ATTENTION[b] == "window":
            assert label.startswith(f"block {BLOCKS[b]} · windowed attention (8x8-patch windows)"), label
            assert note.is_displayed() and "zero outside the query's windows is the model" in note.text
            assert box.is_enabled()
        else:
            assert label.startswith(f"block {BLOCKS[b]} · full attention"), label
            assert not note.is_displayed() and not box.is_enabled()
        assert f"({b + 1}/{len(BLOCKS)})" in label
    assert len(set(hashes)) == len(BLOCKS), "a block change left the vision canvas as it was"
    # the main map's controls apply: colormap and opacity redraw it, the block stays
    seen = set(hashes)
    for element, value in (("colormap", "viridis"), ("colormap", "gray")):
        select(driver, element, value)
        h = canvas_hash(driver, "vision-map")
        assert h not in seen, f"{element} {value} did not redraw the vision canvas"
        seen.add(h)
    assert vstate(driver)["blockIndex"] == len(BLOCKS) - 1
    assert console_errors(driver) == []


def test_window_borders_are_drawn_only_for_windowed_blocks(driver, image_case):
    """The borders are thin white lines exactly where the window id changes between neighbouring patches
    (here after patch row 7 and patch column 7 of the 12 x 16 grid); the checkbox toggles them."""
    open_page(driver, image_case["html"])
    T, gh, gw = image_case["vision_grid"]
    box = driver.find_element("id", "vision-windows")
    for b, kind in enumerate(ATTENTION):
        set_block(driver, b)
        assert box.is_selected()
        on = canvas_rgb(driver)
        height, width = on.shape[:2]
        cw, ch = width / gw, height / gh
        x, y = WINDOW * cw, WINDOW * ch  # the border lines' centres
        # pixels a 2-pixel line centred there covers fully, away from the query's outline
        px, py = int(np.ceil(x - 1)), int(np.ceil(y - 1))
        col = [on[int((r + 0.5) * ch), px] for r in (0, 1, 9, 10)]
        row = [on[py, int((c + 0.5) * cw)] for c in (0, 2, 12, 14)]
        white = [bool((p >= 240).all()) for p in col + row]
        if kind == "window":
            assert vstate(driver)["bordersDrawn"] is True
            assert all(white), (BLOCKS[b], col, row)
            box.click()  # off
            assert vstate(driver)["bordersDrawn"] is False and vstate(driver)["windows"] is False
            off = canvas_rgb(driver)
            changed = np.argwhere((on != off).any(axis=-1))
            assert len(changed) > 0, "the checkbox did not change the canvas"
            # only the border lines changed
            near = (np.abs(changed[:, 1] + 0.5 - x) <= 2) | (np.abs(changed[:, 0] + 0.5 - y) <= 2)
            assert near.all(), changed[~near][:10]
            assert not any((off[int((r + 0.5) * ch), px] >= 240).all() for r in (0, 1, 9, 10))
            box.click()  # on again
            assert vstate(driver)["bordersDrawn"] is True
            np.testing.assert_array_equal(canvas_rgb(driver), on)
        else:
            assert vstate(driver)["bordersDrawn"] is False
            assert not any(white), (BLOCKS[b], col, row)
            # a full block has no windows: the (disabled) checkbox changes nothing
            driver.execute_script("const c = document.getElementById('vision-windows'); c.checked = false;"
                                  "c.dispatchEvent(new Event('change'));")
            np.testing.assert_array_equal(canvas_rgb(driver), on)
            driver.execute_script("const c = document.getElementById('vision-windows'); c.checked = true;"
                                  "c.dispatchEvent(new Event('change'));")
    assert console_errors(driver) == []


def test_hover_names_block_patch_and_value(driver, image_case):
    from selenium.webdriver.common.action_chains import ActionChains

    open_page(driver, image_case["html"])
    T, gh, gw = image_case["vision_grid"]
    canvas = driver.find_element("id", "vision-map")
    tip = driver.find_element("id", "vision-tooltip")
    for b, (r, c), outside in ((0, (10, 3), True), (0, (4, 7), False), (1, (10, 3), False)):
        set_block(driver, b)
        size = canvas.size
        ActionChains(driver).move_to_element_with_offset(
            canvas, int((c + 0.5) / gw * size["width"] - size["width"] / 2),
            int((r + 0.5) / gh * size["height"] - size["height"] / 2)).perform()
        assert tip.is_displayed()
        assert [int(tip.get_attribute(a)) for a in ("data-block", "data-row", "data-col")] == [BLOCKS[b], r, c]
        value = float(tip.get_attribute("data-value"))
        assert abs(value - image_case["vision"][b, 0, r, c]) <= quant_bound(image_case["vision"][b, 0])
        assert tip.text.startswith(f"block {BLOCKS[b]} · patch ({r}, {c}) · "), tip.text
        assert ("outside the query\u2019s windows" in tip.text) == outside, tip.text
        if outside:
            assert value == 0
        readout = driver.find_element("id", "vision-readout").text
        assert f"pixels {c * PATCH}–{(c + 1) * PATCH} x {r * PATCH}–{(r + 1) * PATCH}" in readout, readout
        assert ("a query patch" in readout) == ((r * gw + c) in image_case["query_patches"]), readout
    ActionChains(driver).move_to_element(driver.find_element("id", "vision-block-label")).perform()  # off the canvas
    assert not tip.is_displayed()


def test_video_follows_the_frame_slider(driver, video_case):
    html = video_case["html"]
    open_page(driver, html)
    assert console_errors(driver) == []
    assert network_requests(driver, html.resolve().as_uri()) == []
    maps = video_case["vision"].astype(np.float64)
    T, gh, gw = video_case["vision_grid"]
    assert T == 3 and driver.execute_script("return window.attnmapViewer.info.vision.grid") == [T, gh, gw]
    assert "12 patches per frame in the box" in driver.find_element("id", "vision-query").text
    assert driver.find_element("id", "vision-block-label").text.endswith("· t0")
    hashes = set()
    for b in (0, 1):
        set_block(driver, b)
        for t in range(T):
            goto(driver, "frame", t, "frame")
            st = vstate(driver)
            assert (st["frame"], st["blockIndex"]) == (t, b), "the frame slider moved the block, or not the frame"
            shown = vmap(driver)
            np.testing.assert_allclose(shown, maps[b, t].reshape(-1), rtol=0, atol=quant_bound(maps[b, t]),
                                       err_msg=f"block {BLOCKS[b]}, frame {t}")
            # each frame its own scale: the tower attends within a frame
            assert st["range"] == [pytest.approx(shown.min(), abs=1e-12), pytest.approx(shown.max(), abs=1e-12)]
            assert driver.find_element("id", "vision-cb-hi").text.endswith("(this block, this frame)")
            assert not driver.find_element("id", "vision-frame-note").is_displayed()
            hashes.add(canvas_hash(driver, "vision-map"))
    assert len(hashes) == 2 * T, "a frame change left the vision canvas as it was"
    # shared: one scale over every block and frame
    select(driver, "scale", "shared")
    decoded = np.array([driver.execute_script("return window.attnmapViewer.vision.map(arguments[0], arguments[1])", b, t)
                        for b in range(len(BLOCKS)) for t in range(T)])
    assert vstate(driver)["range"] == [pytest.approx(decoded.min(), abs=1e-12), pytest.approx(decoded.max(), abs=1e-12)]
    assert driver.find_element("id", "vision-cb-hi").text.endswith("(all blocks, all frames)")
    # playing the frames moves the vision map with them
    goto(driver, "frame", 0, "frame")
    driver.find_element("id", "frame-play").click()
    time.sleep(0.8)
    driver.find_element("id", "frame-play").click()
    assert vstate(driver)["frame"] == driver.execute_script("return window.attnmapViewer.state().frame") != 0
    assert console_errors(driver) == []


def test_video_text_peak_frames_without_query_patches_say_so(driver, tmp_path):
    case = vision_case(tmp_path, grid=(5, 7), frames=3, name="peak", query="peak")
    open_page(driver, case["html"])
    query = driver.find_element("id", "vision-query").text
    assert "text-peak:5 — 4 patches under the peak of decoder layer 5" in query and "(t1)" in query, query
    note = driver.find_element("id", "vision-frame-note")
    for t in range(3):
        goto(driver, "frame", t, "frame")
        shown = vmap(driver)
        if t == 1:
            assert not note.is_displayed()
            assert shown.max() > 0
        else:
            assert note.is_displayed() and f"No query patch in this frame (t{t})" in note.text, note.text
            assert (shown == 0).all()
    assert console_errors(driver) == []


def test_mean_query_of_a_model_without_windows(driver, tmp_path):
    case = vision_case(tmp_path, name="nowin", query="mean", attention=["full", "full"], blocks=[0, 1],
                       window_patches=0)
    open_page(driver, case["html"])
    assert console_errors(driver) == []
    assert driver.find_element("id", "vision-panel").is_displayed()
    assert not driver.find_element("id", "vision-windows").is_displayed()  # no windows: no checkbox
    assert not driver.find_element("id", "vision-note").is_displayed()
    assert driver.find_element("id", "vision-query").text == "Query: mean (every patch is a query)"
    assert driver.find_element("id", "vision-block-label").text.startswith("block 1 · full attention")
    for b in (0, 1):
        expected = case["vision"][b, 0].reshape(-1).astype(np.float64)
        shown = np.array(driver.execute_script("return window.attnmapViewer.vision.map(arguments[0], 0)", b))
        np.testing.assert_allclose(shown, expected, rtol=0, atol=quant_bound(expected))
    img = canvas_rgb(driver)
    assert not ((img[..., 0] > 200) & (img[..., 1] < 60) & (img[..., 2] > 200)).any(), "an outline without query patches"


def test_vision_maps_survive_the_budget_rule(driver, tmp_path):
    case = vision_case(tmp_path, name="tight", options={"budget_bytes": 1})
    assert case["report"]["detail"] == "maps-only"
    open_page(driver, case["html"])
    assert driver.execute_script("return window.attnmapViewer.info.detail") == "maps-only"
    assert driver.find_element("id", "vision-panel").is_displayed()
    for b in range(len(BLOCKS)):
        expected = case["vision"][b, 0].reshape(-1).astype(np.float64)
        shown = np.array(driver.execute_script("return window.attnmapViewer.vision.map(arguments[0], 0)", b))
        np.testing.assert_allclose(shown, expected, rtol=0, atol=quant_bound(expected))
    assert console_errors(driver) == []


def test_bad_vision_data_is_refused_with_a_message(tmp_path):
    case = vision_case(tmp_path, name="ok")
    desc = json.loads((tmp_path / "ok.json").read_text(encoding="utf-8"))
    for field, value, words in (("grid_t", 2, "vision: grid_t is 2 but frames is 1"),
                                ("attention", ["window", "full", "global", "full"], 'vision: attention "global"'),
                                ("query_patches", [0, 12 * 16], "vision: query patch 192 is outside"),
                                ("windows", desc["vision"]["windows"][:-1], "vision: windows has 191 entries")):
        bad = json.loads(json.dumps(desc))
        bad["vision"][field] = value
        (tmp_path / "bad.json").write_text(json.dumps(bad), encoding="utf-8")
        proc = subprocess.run([fixture_binary(), "viewer", str(tmp_path / "bad.json"), str(tmp_path / "bad.html")],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 3, (field, proc.stderr)
        assert words in proc.stderr, (field, proc.stderr)
    assert case["report"]["detail"] == "full"


def test_screenshot_of_the_section(driver, image_case, tmp_path):
    """A person looks at this one (ATTNMAP_VIEWER_VISION_SCREENSHOT=PATH.png keeps it); the test checks
    that the section's canvas is drawn: the picture, the map's colours, the outline and the borders."""
    open_page(driver, image_case["html"])
    set_block(driver, 0)
    path = SCREENSHOT or str(tmp_path / "vision.png")
    panel = driver.find_element("id", "vision-panel")
    driver.execute_script("arguments[0].scrollIntoView()", panel)
    assert driver.save_screenshot(path)
    img = canvas_rgb(driver)
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50
    magenta = ((img[..., 0] > 200) & (img[..., 1] < 60) & (img[..., 2] > 200)).sum()
    assert magenta > 100, "the query patches are not outlined"
    assert ((img >= 240).all(axis=-1)).sum() > 100, "no window border drawn"
