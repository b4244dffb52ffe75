"""The HTML viewer (docs/viewer.md) in a real browser: headless Chromium driven by selenium.

Pages are made from synthetic attention by the C++ render functions (the test tool
attnmap_viewer_fixture); the checks read the page's read-only hook (window.attnmapViewer), its canvas
pixels, its DOM, its console and its network activity.

Needs Debian's `chromium` and `chromium-driver` (scripts/bootstrap.sh installs them) and the pinned
selenium (tools/requirements.txt). Run by hand without them, the tests skip; under CTest they fail.
"""
import hashlib
import io
import json
import os
import pathlib
import shutil
import subprocess
import time

import numpy as np
import pytest

from conftest import missing_build_output

ROOT = pathlib.Path(__file__).resolve().parents[2]
# ATTNMAP_CHROMIUM / ATTNMAP_CHROMEDRIVER name other binaries (e.g. a Chromium that is not on PATH).
CHROMIUM = os.environ.get("ATTNMAP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("ATTNMAP_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"

# 8-bit linear quantisation with a per-map scale: |value - decoded| <= max(map) / 255 / 2.
def quant_bound(values):
    return float(np.max(values)) / 255.0 / 2.0 * (1 + 1e-5) + 1e-12


def fixture_binary():
    path = os.environ.get("ATTNMAP_VIEWER_FIXTURE")
    if not path:
        build = pathlib.Path(os.environ.get("ATTNMAP_BUILD_DIR") or ROOT / "build")
        path = str(build / "tests" / "attnmap_viewer_fixture")
    if not os.path.exists(path):
        missing_build_output(f"the viewer test tool is not built ({path}; build the attnmap_viewer_fixture target)")
    return path


def browser_missing_reason():
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (tools/requirements.txt pins it)"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.path.exists(path):
            return f"{path} is missing (apt package {package}; scripts/bootstrap.sh installs it)"
    return None


def start_chromium(window_size="1400,1100"):
    """Headless Chromium with its console and DevTools network events logged."""
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--disable-gpu", f"--window-size={window_size}", "--hide-scrollbars",
                "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    drv = webdriver.Chrome(options=options, service=service)
    drv.set_script_timeout(60)
    return drv


@pytest.fixture(scope="module")
def driver():
    reason = browser_missing_reason()
    if reason:
        missing_build_output(reason)
    drv = start_chromium()
    yield drv
    drv.quit()


# ---- synthetic data ----

SYSTEM_HEAD = ["<|im_start|>", "system", "\n", "You", " are", " a", " helpful", " assistant", ".", "<|im_end|>", "\n",
               "<|im_start|>", "user", "\n", "<|vision_start|>"]
SYSTEM_MID = ["<|vision_end|>"]
SYSTEM_TAIL = ["<|im_end|>", "\n", "<|im_start|>", "assistant", "\n"]
PROMPT = ["What", " color", " is", " the", " 猫", "🐱", " in", " 東京", "?"]
ANSWER = [" green", " 🟢", "."]


def frame_picture(mw, mh, t, frames):
    """A frame of a synthetic video: a red square crossing a blue-grey scene from left to right."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (mw * 40, mh * 40), (200, 210, 225))
    d = ImageDraw.Draw(img)
    d.rectangle([0, mh * 28, mw * 40, mh * 40], fill=(120, 150, 90))
    x = int((mw * 40 - mh * 14) * t / max(1, frames - 1))
    d.rectangle([x, mh * 12, x + mh * 14, mh * 26], fill=(200, 40, 40))
    return img


def make_case(tmp, *, layers=(0, 3, 5), heads=4, grid=(6, 8), prompt=PROMPT, answer=ANSWER, seed=0,
              incompressible=False, options=None, image=True, name="case", image_path=None, focus=None, frames=0,
              extra=None):
    """Synthetic attention written for attnmap_viewer_fixture, rendered; `focus` (row, col) of the merged
    grid pulls the blobs of the later layers there (for a realistic-looking page). `frames` > 0 makes a
    video of that many temporal patches: its span is frames x grid, t-major; each later frame gets less
    attention (so per-frame scales matter) and the blob moves with the picture's square. `extra`: more
    fields of the description (e.g. "vision", see test_viewer_vision_browser.py)."""
    rng = np.random.default_rng(seed)
    mh, mw = grid
    T = max(1, frames)
    grid_pixels = mh * mw
    pixels = T * grid_pixels
    pad = "<|video_pad|>" if frames else "<|image_pad|>"
    tokens = SYSTEM_HEAD + [pad] * pixels + SYSTEM_MID + list(prompt) + SYSTEM_TAIL + list(answer)
    roles = (["system"] * len(SYSTEM_HEAD) + ["image"] * pixels + ["system"] * len(SYSTEM_MID) +
             ["prompt"] * len(prompt) + ["system"] * len(SYSTEM_TAIL) + ["answer"] * len(answer))
    seq = len(tokens)
    image_start = len(SYSTEM_HEAD)
    queries = [i for i, r in enumerate(roles) if r in ("prompt", "answer")]
    L, H, Q = len(layers), heads, len(queries)
    if incompressible:
        rows = rng.random((L, H, Q, seq), dtype=np.float32)
    else:
        # softmax rows, causal, with an attention sink on token 0 and a blob on the image per (layer, head)
        yy, xx = np.mgrid[0:mh, 0:mw]
        logits = rng.normal(0, 1.0, (L, H, Q, seq)).astype(np.float32)
        logits[..., 0] += 4.0
        for l in range(L):
            for h in range(H):
                cy, cx = rng.uniform(0, mh), rng.uniform(0, mw)
                if focus is not None and l >= L // 2:
                    cy, cx = focus[0] + rng.normal(0, 0.6), focus[1] + rng.normal(0, 0.6)
                for t in range(T):
                    x = cx if not frames else (mw - 1) * t / max(1, T - 1)
                    blob = 4.0 * np.exp(-((yy - cy) ** 2 + (xx - x) ** 2) / (2 * (1 + h) ** 2)) - 2.0 * t
                    at = image_start + t * grid_pixels
                    logits[l, h, :, at:at + grid_pixels] += blob.reshape(-1)
        mask = np.arange(seq)[None, :] > np.array(queries)[:, None]
        logits[:, :, mask] = -np.inf
        logits -= logits.max(axis=-1, keepdims=True)
        rows = np.exp(logits)
        rows /= rows.sum(axis=-1, keepdims=True)
        rows = rows.astype(np.float32)
    prompt_q = [k for k, q in enumerate(queries) if roles[q] == "prompt"]
    maps = rows[:, :, prompt_q, image_start:image_start + pixels].astype(np.float64).mean(axis=(1, 2))
    maps = maps.reshape((L, T, mh, mw) if frames else (L, mh, mw)).astype(np.float32)
    tmp = pathlib.Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    rows.tofile(tmp / f"{name}_rows.f32")
    maps.tofile(tmp / f"{name}_maps.f32")
    np.save(tmp / f"{name}_maps.npy", maps)
    jpeg = None
    frame_jpegs, frame_labels = [], []
    if frames:
        for t in range(T):
            frame_jpegs.append(str(tmp / f"{name}_frame{t}.jpg"))
            frame_picture(mw, mh, t, T).save(frame_jpegs[-1], quality=90)
            frame_labels.append(f"t{t} · frames {2 * t}–{2 * t + 1} · {2 * t / 24:.2f}–{(2 * t + 1) / 24:.2f} s")
    elif image_path:
        from PIL import Image

        jpeg = tmp / f"{name}.jpg"
        Image.open(image_path).convert("RGB").save(jpeg, quality=92)
    elif image:
        from PIL import Image, ImageDraw

        img = Image.new("RGB", (mw * 40, mh * 40), (200, 210, 225))
        d = ImageDraw.Draw(img)
        d.rectangle([0, mh * 28, mw * 40, mh * 40], fill=(120, 150, 90))
        d.ellipse([mw * 10, mh * 8, mw * 22, mh * 22], fill=(40, 170, 60))
        d.rectangle([mw * 26, mh * 14, mw * 36, mh * 30], fill=(180, 60, 50))
        jpeg = tmp / f"{name}.jpg"
        img.save(jpeg, quality=90)
    desc = {
        "image_jpeg": str(jpeg) if jpeg else None, "merged_h": mh, "merged_w": mw, "layers": list(layers),
        "heads": H, "tokens": tokens, "roles": roles, "image_start": image_start, "query_positions": queries,
        "rows": str(tmp / f"{name}_rows.f32"), "maps": str(tmp / f"{name}_maps.f32"),
        "next_token": " green", "next_token_probability": 0.913, "answer": "".join(answer),
        "metadata": ["model: synthetic (test_viewer_browser.py)", "prompt: " + "".join(prompt)],
        "title": "attnmap viewer — synthetic 猫 🐱", "options": options or {},
    }
    if frames:
        desc.update({"frames": T, "frame_jpegs": frame_jpegs, "frame_labels": frame_labels})
    desc.update(extra or {})
    (tmp / f"{name}.json").write_text(json.dumps(desc, ensure_ascii=False), encoding="utf-8")
    out = tmp / f"{name}.html"
    proc = subprocess.run([fixture_binary(), "viewer", str(tmp / f"{name}.json"), str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    return {"html": out, "report": report, "rows": rows, "maps": maps, "tokens": tokens, "roles": roles,
            "image_start": image_start, "queries": queries, "grid": grid, "layers": list(layers), "heads": H,
            "prompt_q": prompt_q, "frames": T, "frame_labels": frame_labels}


# ---- browser helpers ----

def open_page(drv, path, hook="attnmapViewer"):
    drv.get_log("browser")  # drop what an earlier page logged
    drv.get_log("performance")
    drv.get(pathlib.Path(path).resolve().as_uri())
    deadline = time.time() + 60
    while time.time() < deadline:
        status = drv.execute_script(
            f"const h = window.{hook}; return h ? {{ready: !!h.ready, error: h.error || null}} : null;")
        if status and (status["ready"] or status["error"]):
            assert not status["error"], status["error"]
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} did not become ready in 60 s")


def console_errors(drv):
    return [e for e in drv.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


def network_requests(drv, page_uri):
    """URLs the page asked for, other than the page itself (from Chromium's DevTools performance log)."""
    urls = []
    for entry in drv.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if url != page_uri:
                urls.append(url)
    return urls


def canvas_png(drv, canvas_id="map"):
    """The canvas's pixels as PNG bytes (toDataURL: no getImageData readback in the page's context)."""
    import base64

    url = drv.execute_script("return document.getElementById(arguments[0]).toDataURL('image/png')", canvas_id)
    return base64.b64decode(url.split(",", 1)[1])


def canvas_hash(drv, canvas_id="map"):
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(canvas_png(drv, canvas_id))).convert("RGBA"))
    return hashlib.sha256(pixels.tobytes()).hexdigest()


def state(drv):
    return drv.execute_script("return window.attnmapViewer.state();")


def select(drv, element_id, value):
    from selenium.webdriver.support.ui import Select

    Select(drv.find_element("id", element_id)).select_by_value(value)


# ---- the tests ----

@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return make_case(tmp_path_factory.mktemp("viewer"), options={"opacity": 0.6})


def test_page_loads_offline_without_console_errors(driver, case):
    uri = case["html"].resolve().as_uri()
    open_page(driver, case["html"])
    assert console_errors(driver) == []
    assert network_requests(driver, uri) == []
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
    html = case["html"].read_text(encoding="utf-8")
    assert "Content-Security-Policy" in html and "connect-src 'none'" in html
    for needle in ("http://", "https://", "<link", " src="):
        assert needle not in html, f"the page names {needle!r}"
    info = driver.execute_script("return window.attnmapViewer.info")
    assert info["detail"] == "full" and info["notes"] == []
    assert info["grid"] == list(case["grid"]) and info["heads"] == case["heads"]
    assert driver.find_element("id", "notes").is_displayed() is False


def test_each_control_changes_the_map(driver, case):
    from selenium.webdriver.common.keys import Keys

    open_page(driver, case["html"])
    seen = {canvas_hash(driver)}

    def changed(what):
        h = canvas_hash(driver)
        assert h not in seen, f"moving {what} did not change the displayed map"
        seen.add(h)

    slider = driver.find_element("id", "layer")
    slider.send_keys(Keys.HOME)
    assert state(driver)["layerIndex"] == 0
    changed("the layer slider")
    slider.send_keys(Keys.RIGHT)
    assert state(driver)["layerIndex"] == 1
    changed("the layer slider")
    driver.find_element("id", "play").click()
    time.sleep(1.0)
    driver.find_element("id", "play").click()
    assert state(driver)["layerIndex"] != 1, "play did not advance the layer"
    assert state(driver)["playing"] is False
    seen.add(canvas_hash(driver))
    select(driver, "heads", "max")
    changed("heads: max")
    select(driver, "heads", "2")
    changed("heads: head 2")
    select(driver, "query", "q:1")
    changed("query: one prompt token")
    answer_group = "g:1"
    select(driver, "query", answer_group)
    changed("query: all answer tokens")
    select(driver, "query", f"q:{len(case['queries']) - 1}")
    changed("query: one answer token")
    select(driver, "colormap", "viridis")
    changed("colormap")
    opacity = driver.find_element("id", "opacity")
    opacity.send_keys(Keys.END)
    assert state(driver)["opacity"] == 1
    changed("opacity")
    select(driver, "scale", "shared")
    changed("scale: shared")
    assert console_errors(driver) == []


def test_cell_values_equal_maps_npy_and_per_head_rows(driver, case):
    open_page(driver, case["html"])
    maps, rows = case["maps"], case["rows"]
    mh, mw = case["grid"]
    start, pixels = case["image_start"], mh * mw
    rng = np.random.default_rng(1)
    cells = [(int(r), int(c)) for r, c in zip(rng.integers(0, mh, 6), rng.integers(0, mw, 6))] + [(0, 0), (mh - 1, mw - 1)]
    from selenium.webdriver.common.keys import Keys

    slider = driver.find_element("id", "layer")
    slider.send_keys(Keys.HOME)
    for l in range(len(case["layers"])):
        assert state(driver)["layerIndex"] == l
        # heads mean, all prompt tokens: exactly the float32 values of maps.npy
        for r, c in cells:
            value = driver.execute_script("return window.attnmapViewer.cellValue(arguments[0], arguments[1])", r, c)
            assert np.float32(value) == maps[l, r, c], (l, r, c, value, maps[l, r, c])
        slider.send_keys(Keys.RIGHT)
    np.testing.assert_array_equal(np.load(case["html"].parent / "case_maps.npy"), maps)

    def check(l, head, query, expected):
        slider.send_keys(Keys.HOME)
        for _ in range(l):
            slider.send_keys(Keys.RIGHT)
        select(driver, "heads", head)
        select(driver, "query", query)
        shown = np.array(driver.execute_script("return window.attnmapViewer.currentMap()"), dtype=np.float64)
        np.testing.assert_allclose(shown, expected.reshape(-1), rtol=0, atol=quant_bound(expected),
                                   err_msg=f"layer {l}, heads {head}, query {query}")

    img = rows[:, :, :, start:start + pixels].astype(np.float64)
    check(1, "3", "q:2", img[1, 3, 2])                                    # one head, one prompt token
    check(2, "0", f"q:{len(case['queries']) - 1}", img[2, 0, -1])         # one head, one answer token
    check(0, "max", "q:4", img[0, :, 4].max(axis=0))                      # max of heads, one token
    check(2, "1", "g:0", img[2, 1, case["prompt_q"]].mean(axis=0))        # one head, all prompt tokens
    answer_q = [k for k, q in enumerate(case["queries"]) if case["roles"][q] == "answer"]
    check(1, "mean", "g:1", img[1, :, answer_q].mean(axis=(0, 1)))        # heads mean, all answer tokens

    # hovering a cell shows its grid position and value
    from selenium.webdriver.common.action_chains import ActionChains

    canvas = driver.find_element("id", "map")
    size = canvas.size
    r, c = mh - 2, 3
    ActionChains(driver).move_to_element_with_offset(
        canvas, int((c + 0.5) / mw * size["width"] - size["width"] / 2),
        int((r + 0.5) / mh * size["height"] - size["height"] / 2)).perform()
    tip = driver.find_element("id", "tooltip")
    assert tip.is_displayed()
    assert (int(tip.get_attribute("data-row")), int(tip.get_attribute("data-col"))) == (r, c)
    assert f"row {r}, col {c}" in tip.text
    expected = driver.execute_script("return window.attnmapViewer.cellValue(arguments[0], arguments[1])", r, c)
    assert float(tip.get_attribute("data-value")) == pytest.approx(expected, rel=1e-6)


def test_text_self_attention_labels_and_values(driver, case):
    open_page(driver, case["html"])
    columns = driver.execute_script("return window.attnmapViewer.textColumns()")
    tokens, roles, start = case["tokens"], case["roles"], case["image_start"]
    mh, mw = case["grid"]
    assert [c["position"] for c in columns] == [k for k in range(len(tokens)) if roles[k] != "image" or k == start]
    assert sum(c["role"] == "image" for c in columns) == 1
    headers = [th.text for th in driver.find_elements("css selector", "#text-matrix thead th")]
    row_labels = [th.text for th in driver.find_elements("css selector", "#text-matrix tbody th")]
    for label in (" 猫", "🐱", " 東京"):
        assert any(label.strip() in h for h in headers), (label, headers)
        assert any(label.strip() in h for h in row_labels), (label, row_labels)
    assert any("🟢" in h for h in row_labels)
    # values: heads mean of the last layer, within the text part's quantisation bound; the image column is exact
    rows = case["rows"][-1].astype(np.float64).mean(axis=0)  # [Q, seq]
    for q in (0, 4, len(case["queries"]) - 1):
        text_cols = [k for k in range(len(tokens)) if roles[k] != "image"]
        bound = quant_bound(rows[q, text_cols])
        for ci, col in enumerate(columns):
            value = driver.execute_script("return window.attnmapViewer.textValue(arguments[0], arguments[1])", q, ci)
            if col["role"] == "image":
                assert value == pytest.approx(rows[q, start:start + mh * mw].sum(), rel=1e-5)
            else:
                assert abs(value - rows[q, col["position"]]) <= bound
    # hovering a cell names its query and key tokens and shows its value
    from selenium.webdriver.common.action_chains import ActionChains

    cell = driver.find_element("css selector", "#text-matrix tbody tr:nth-child(5) td:nth-of-type(2)")
    ActionChains(driver).move_to_element(cell).perform()
    value = driver.execute_script("return window.attnmapViewer.textValue(4, 1)")
    title = cell.get_attribute("title")
    assert title.startswith(tokens[case["queries"][4]].strip()) or tokens[case["queries"][4]] in title, title
    assert title.endswith(": " + driver.execute_script(
        "const v = arguments[0]; const a = Math.abs(v); return v === 0 ? '0' : (a >= 0.01 && a < 1000 ? v.toFixed(4) : v.toExponential(3));",
        value)), title
    # per head too
    select(driver, "heads", "1")
    head_row = case["rows"][-1, 1, 3].astype(np.float64)
    text_cols = [k for k in range(len(tokens)) if roles[k] != "image"]
    values = driver.execute_script(
        "return window.attnmapViewer.textColumns().map((c, i) => window.attnmapViewer.textValue(3, i))")
    for col, value in zip(columns, values):
        if col["role"] != "image":
            assert abs(value - head_row[col["position"]]) <= quant_bound(head_row[text_cols])


def test_screenshot_is_not_blank(driver, case):
    from PIL import Image

    open_page(driver, case["html"])
    png = driver.get_screenshot_as_png()
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert img.shape[0] > 500 and img.shape[1] > 800
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 200
    assert img.std() > 20
    # the heatmap canvas itself is drawn: many colours, not one fill
    canvas = np.asarray(Image.open(io.BytesIO(canvas_png(driver))).convert("RGB"))
    colours = len(np.unique(canvas.reshape(-1, 3), axis=0))
    assert colours > 50


def test_budget_case_28_layers_28_heads_1024_image_tokens(tmp_path):
    """The issue's budget case: 28 layers x 28 heads, 32x32 = 1,024 image tokens, a 20-token prompt."""
    prompt = [f" w{i}" for i in range(20)]
    case = make_case(tmp_path, layers=tuple(range(28)), heads=28, grid=(32, 32), prompt=prompt, answer=[],
                     name="budget")
    report = case["report"]
    seq = len(case["tokens"])
    # quantised bytes: groups (mean, max, 28 heads) x 1 group + queries (mean, max, 28 heads) x 20 rows, each seq bytes
    L, slots, Q = 28, 30, 20
    assert report["data_bytes_raw"] >= L * slots * (Q + 1) * seq
    print(f"budget case (seq {seq}): html {report['html_bytes']} bytes, data raw {report['data_bytes_raw']}, "
          f"compressed {report['data_bytes_compressed']}, detail {report['detail']}")
    assert report["detail"] == "full"
    assert report["html_bytes"] <= 20_000_000
    assert case["html"].stat().st_size == report["html_bytes"]

    # incompressible (uniform noise) rows of the same shape: per-head detail is dropped first, and said
    noisy = make_case(tmp_path, layers=tuple(range(28)), heads=28, grid=(32, 32), prompt=prompt, answer=[],
                      incompressible=True, name="noisy")
    print(f"incompressible budget case: html {noisy['report']['html_bytes']} bytes, detail {noisy['report']['detail']}")
    assert noisy["report"]["detail"] == "no-head-per-query"
    assert noisy["report"]["html_bytes"] <= 20_000_000
    assert "Per-head detail" in noisy["report"]["notes"][0]


def test_budget_case_page_works_in_the_browser(driver, tmp_path):
    prompt = [f" w{i}" for i in range(20)]
    case = make_case(tmp_path, layers=tuple(range(28)), heads=28, grid=(32, 32), prompt=prompt, answer=[],
                     name="budget")
    start = time.time()
    open_page(driver, case["html"])
    print(f"budget page ({case['report']['html_bytes']} bytes) ready in {time.time() - start:.2f} s")
    assert console_errors(driver) == []
    select(driver, "heads", "27")
    select(driver, "query", "q:19")
    expected = case["rows"][-1, 27, 19, case["image_start"]:case["image_start"] + 1024].astype(np.float64)
    shown = np.array(driver.execute_script("return window.attnmapViewer.currentMap()"))
    np.testing.assert_allclose(shown, expected, rtol=0, atol=quant_bound(expected))


# Each budget sits between two detail levels' page sizes for this case: no-head-per-query 110.7 kB,
# no-per-query 89.7 kB, maps-only 71.0 kB (about 47 kB of them the page's own script, style and markup).
@pytest.mark.parametrize("budget,detail", [(150_000, "no-head-per-query"), (97_000, "no-per-query"), (78_000, "maps-only")])
def test_over_budget_drops_detail_and_says_so(driver, tmp_path, budget, detail):
    case = make_case(tmp_path, heads=8, grid=(12, 16), incompressible=True, options={"budget_bytes": budget},
                     name=f"small{budget}")
    assert case["report"]["detail"] == detail, case["report"]
    open_page(driver, case["html"])
    assert console_errors(driver) == []
    notes = driver.find_element("id", "notes")
    assert notes.is_displayed() and "dropped" in notes.text
    # heads mean over the prompt tokens (maps.npy) is always there
    assert driver.execute_script("return window.attnmapViewer.state().available")
    value = driver.execute_script("return window.attnmapViewer.cellValue(2, 3)")
    assert np.float32(value) == case["maps"][-1, 2, 3]
    # one head of one token is what goes first
    select(driver, "heads", "5")
    select(driver, "query", "q:1")
    assert driver.execute_script("return window.attnmapViewer.state().available") is False
    assert driver.find_element("id", "unavailable").is_displayed()
    select(driver, "heads", "mean")
    assert driver.execute_script("return window.attnmapViewer.state().available") is (detail == "no-head-per-query")
    assert console_errors(driver) == []


def test_batch_index_with_10000_items(driver, tmp_path):
    items = []
    for i in range(10_000):
        ok = i % 7 != 3
        items.append({"id": f"item-{i:05d}", "image": f"images/img_{i}.jpg", "prompt": f"What is in picture {i}? 猫" if i % 2 else f"Describe {i}",
                      "answer": " cat" if ok else "", "probability": (i % 100) / 100 if ok else -1,
                      "status": "ok" if ok else "error", "error": "" if ok else f"input: cannot decode img_{i}.jpg",
                      "viewer_href": f"item-{i:05d}/viewer.html",
                      "thumbnail_href": f"item-{i:05d}/thumb.jpg" if i < 3 else ""})
    from PIL import Image

    for i in range(3):  # the first items have thumbnails: the items' own files, next to index.html
        (tmp_path / f"item-{i:05d}").mkdir()
        Image.new("RGB", (64, 48), (40 * i, 120, 200)).save(tmp_path / f"item-{i:05d}" / "thumb.jpg")
    desc = tmp_path / "index.json"
    desc.write_text(json.dumps({"title": "batch 🐱", "page_size": 100, "items": items}, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "index.html"
    proc = subprocess.run([fixture_binary(), "index", str(desc), str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    start = time.time()
    open_page(driver, out, hook="attnmapIndex")
    load_s = time.time() - start
    assert console_errors(driver) == []
    # the only loads are the thumbnails, files of the batch folder itself
    thumbs = sorted((tmp_path / f"item-{i:05d}" / "thumb.jpg").as_uri() for i in range(3))
    assert sorted(network_requests(driver, out.resolve().as_uri())) == thumbs
    assert driver.execute_script(
        "return Array.from(document.querySelectorAll('#items img')).map(i => i.complete && i.naturalWidth)") == [64, 64, 64]
    assert len(driver.find_elements("css selector", "#items tbody tr")) == 100
    s = driver.execute_script("return window.attnmapIndex.state()")
    assert s["shown"] == 10_000 and s["total"] == 10_000

    from selenium.webdriver.support.ui import Select

    t = time.time()
    Select(driver.find_element("id", "status")).select_by_value("error")
    errors = sum(1 for i in range(10_000) if i % 7 == 3)
    assert driver.execute_script("return window.attnmapIndex.state().shown") == errors
    ids = driver.execute_script("return window.attnmapIndex.visibleIds()")
    assert ids[0] == "item-00003" and len(ids) == 100
    driver.find_element("css selector", "#items th[data-key=id]").click()
    driver.find_element("css selector", "#items th[data-key=id]").click()  # descending
    ids = driver.execute_script("return window.attnmapIndex.visibleIds()")
    assert ids[0] == max(f"item-{i:05d}" for i in range(10_000) if i % 7 == 3)
    Select(driver.find_element("id", "status")).select_by_value("")
    box = driver.find_element("id", "filter")
    box.send_keys("picture 1235?")
    deadline = time.time() + 10
    while driver.execute_script("return window.attnmapIndex.state().shown") != 1 and time.time() < deadline:
        time.sleep(0.05)
    assert driver.execute_script("return window.attnmapIndex.visibleIds()") == ["item-01235"]
    op_s = time.time() - t
    link = driver.find_element("css selector", "#items tbody a")
    assert link.get_attribute("href").endswith("item-01235/viewer.html")
    driver.find_element("id", "next")  # paging controls exist
    print(f"index of 10,000 items: {out.stat().st_size} bytes, ready in {load_s:.2f} s, filter+sort+filter {op_s:.2f} s")
    assert load_s < 10 and op_s < 10


def test_bad_data_is_refused_with_a_message(tmp_path):
    case_dir = tmp_path / "bad"
    make_case(case_dir, name="ok")
    desc = json.loads((case_dir / "ok.json").read_text(encoding="utf-8"))
    desc["roles"][desc["image_start"]] = "system"
    (case_dir / "bad.json").write_text(json.dumps(desc), encoding="utf-8")
    proc = subprocess.run([fixture_binary(), "viewer", str(case_dir / "bad.json"), str(case_dir / "bad.html")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3
    assert "image span but its role is not image" in proc.stderr


def test_page_without_image_or_answer_still_works(driver, tmp_path):
    case = make_case(tmp_path, image=False, answer=[], name="plain")
    open_page(driver, case["html"])
    assert console_errors(driver) == []
    assert driver.execute_script("return window.attnmapViewer.info.groups") == ["prompt"]
    options = [o.get_attribute("value") for o in driver.find_elements("css selector", "#query option")]
    assert options == ["g:0"] + [f"q:{k}" for k in range(len(PROMPT))]
    value = driver.execute_script("return window.attnmapViewer.cellValue(1, 2)")
    assert np.float32(value) == case["maps"][-1, 1, 2]


# ---- videos: the time axis (docs/viewer.md, "Videos") ----

VIDEO_FRAMES = 3


@pytest.fixture(scope="module")
def video_case(tmp_path_factory):
    return make_case(tmp_path_factory.mktemp("viewer_video"), frames=VIDEO_FRAMES, grid=(5, 7), name="video",
                     options={"opacity": 0.6})


def goto(drv, slider_id, index, key):
    from selenium.webdriver.common.keys import Keys

    slider = drv.find_element("id", slider_id)
    slider.send_keys(Keys.HOME)
    for _ in range(index):
        slider.send_keys(Keys.RIGHT)
    assert state(drv)[key] == index


def test_video_page_has_a_frame_slider_over_its_temporal_patches(driver, video_case):
    html = video_case["html"]
    open_page(driver, html)
    assert console_errors(driver) == []
    assert network_requests(driver, html.resolve().as_uri()) == []
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
    info = driver.execute_script("return window.attnmapViewer.info")
    assert info["frames"] == VIDEO_FRAMES and info["frameLabels"] == video_case["frame_labels"]
    slider = driver.find_element("id", "frame")
    assert slider.is_displayed() and driver.find_element("id", "frame-play").is_displayed()
    assert (slider.get_attribute("min"), slider.get_attribute("max")) == ("0", str(VIDEO_FRAMES - 1))
    assert driver.find_element("id", "frame-label").text.startswith(video_case["frame_labels"][0])
    text = html.read_text(encoding="utf-8")
    assert 'id="attnmap-image"' not in text
    assert all(f'id="attnmap-frame-{t}"' in text for t in range(VIDEO_FRAMES))
    # the text matrix still collapses the whole visual span (every frame) into one column
    mh, mw = video_case["grid"]
    columns = driver.execute_script("return window.attnmapViewer.textColumns()")
    image_columns = [c for c in columns if c["role"] == "image"]
    assert [c["label"] for c in image_columns] == [f"[video ×{VIDEO_FRAMES * mh * mw}]"]
    assert "video span" in driver.find_element("id", "text-caption").text
    rows = video_case["rows"][-1].astype(np.float64).mean(axis=0)  # heads mean of the last layer, [Q, seq]
    start, span = video_case["image_start"], VIDEO_FRAMES * mh * mw
    ci = columns.index(image_columns[0])
    value = driver.execute_script("return window.attnmapViewer.textValue(0, arguments[0])", ci)
    assert value == pytest.approx(rows[0, start:start + span].sum(), rel=1e-5)


def test_video_frames_show_their_own_slice_of_maps_npy(driver, video_case):
    open_page(driver, video_case["html"])
    maps = video_case["maps"]  # [layers, t, h, w]
    mh, mw = video_case["grid"]
    cells = [(0, 0), (mh - 1, mw - 1), (2, 3), (1, 5), (4, 1)]
    hashes = set()
    for l in range(len(video_case["layers"])):
        goto(driver, "layer", l, "layerIndex")
        for t in range(VIDEO_FRAMES):
            goto(driver, "frame", t, "frame")
            assert state(driver)["layerIndex"] == l, "moving the frame slider moved the layer"
            for r, c in cells:
                value = driver.execute_script("return window.attnmapViewer.cellValue(arguments[0], arguments[1])", r, c)
                assert np.float32(value) == maps[l, t, r, c], (l, t, r, c, value, maps[l, t, r, c])
            shown = np.array(driver.execute_script("return window.attnmapViewer.currentMap()"), dtype=np.float32)
            np.testing.assert_array_equal(shown, maps[l, t].reshape(-1))
            # per layer: one colour scale over every frame of the layer, so the frames compare
            lo, hi = state(driver)["range"]
            assert (np.float32(lo), np.float32(hi)) == (maps[l].min(), maps[l].max())
            hashes.add(canvas_hash(driver))
    assert len(hashes) == len(video_case["layers"]) * VIDEO_FRAMES, "a frame or layer change left the map as it was"
    select(driver, "scale", "shared")
    lo, hi = state(driver)["range"]
    assert (np.float32(lo), np.float32(hi)) == (maps.min(), maps.max())
    assert "all frames" in driver.find_element("id", "cb-hi").text
    # play steps through the frames and leaves the layer alone
    goto(driver, "frame", 0, "frame")
    layer = state(driver)["layerIndex"]
    driver.find_element("id", "frame-play").click()
    time.sleep(0.8)
    assert state(driver)["framePlaying"] is True
    driver.find_element("id", "frame-play").click()
    assert state(driver)["frame"] != 0 and state(driver)["framePlaying"] is False
    assert state(driver)["layerIndex"] == layer
    assert console_errors(driver) == []


def test_video_rows_are_within_each_frames_quantisation_bound(driver, video_case):
    """Each temporal patch of a row has its own 8-bit scale: the later, fainter frames keep their detail."""
    open_page(driver, video_case["html"])
    rows = video_case["rows"].astype(np.float64)
    mh, mw = video_case["grid"]
    start, grid = video_case["image_start"], mh * mw
    video = rows[..., start:start + VIDEO_FRAMES * grid].reshape(*rows.shape[:3], VIDEO_FRAMES, mh, mw)
    last = len(video_case["queries"]) - 1
    answer_q = [k for k, q in enumerate(video_case["queries"]) if video_case["roles"][q] == "answer"]
    for l, head, query, expected in (
            (1, "3", "q:2", video[1, 3, 2]),                                       # one head, one prompt token
            (2, "0", f"q:{last}", video[2, 0, last]),                             # one head, one answer token
            (0, "max", "q:4", video[0, :, 4].max(axis=0)),                        # max of heads
            (2, "1", "g:0", video[2, 1, video_case["prompt_q"]].mean(axis=0)),   # one head, all prompt tokens
            (1, "mean", "g:1", video[1, :, answer_q].mean(axis=(0, 1)))):        # heads mean, all answer tokens
        goto(driver, "layer", l, "layerIndex")
        select(driver, "heads", head)
        select(driver, "query", query)
        for t in range(VIDEO_FRAMES):
            goto(driver, "frame", t, "frame")
            shown = np.array(driver.execute_script("return window.attnmapViewer.currentMap()"), dtype=np.float64)
            np.testing.assert_allclose(shown, expected[t].reshape(-1), rtol=0, atol=quant_bound(expected[t]),
                                       err_msg=f"layer {l}, heads {head}, query {query}, frame {t}")
    # the synthetic frames fade: one scale for the whole span would have lost the last frame's detail
    assert video[1, 3, 2, -1].max() < video[1, 3, 2, 0].max() / 8


def test_video_hover_names_the_temporal_patch(driver, video_case):
    from selenium.webdriver.common.action_chains import ActionChains

    open_page(driver, video_case["html"])
    goto(driver, "frame", 1, "frame")
    mh, mw = video_case["grid"]
    canvas = driver.find_element("id", "map")
    size = canvas.size
    r, c = mh - 2, 3
    ActionChains(driver).move_to_element_with_offset(
        canvas, int((c + 0.5) / mw * size["width"] - size["width"] / 2),
        int((r + 0.5) / mh * size["height"] - size["height"] / 2)).perform()
    tip = driver.find_element("id", "tooltip")
    assert tip.is_displayed()
    assert [int(tip.get_attribute(a)) for a in ("data-frame", "data-row", "data-col")] == [1, r, c]
    assert f"t1, row {r}, col {c}" in tip.text
    assert np.float32(float(tip.get_attribute("data-value"))) == video_case["maps"][-1, 1, r, c]
    readout = driver.find_element("id", "hover-readout").text
    token = video_case["image_start"] + mh * mw + r * mw + c
    assert video_case["frame_labels"][1] in readout and f"(token {token})" in readout, readout


def test_image_page_has_no_frame_slider(driver, case):
    open_page(driver, case["html"])
    assert not driver.find_element("id", "frame-controls").is_displayed()
    assert not driver.find_element("id", "frame").is_displayed()
    assert driver.execute_script("return window.attnmapViewer.info.frames") == 1
    assert state(driver)["frame"] == 0
    text = case["html"].read_text(encoding="utf-8")
    assert "attnmap-frame-" not in text.split("<script>")[0]  # only the page's own script names them
    meta = json.loads(driver.execute_script("return document.getElementById('attnmap-meta').textContent"))
    assert "video" not in meta
    assert driver.execute_script("return window.attnmapViewer.textColumns().filter(c => c.role === 'image')[0].label") \
        == f"[image ×{case['grid'][0] * case['grid'][1]}]"
