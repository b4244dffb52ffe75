"""viewer.html and index.html as `attnmap run` and `attnmap batch` write them, in headless Chromium,
against transformers.

A tiny random checkpoint is exported with attnmap-export; `attnmap run --answer` writes a folder
whose viewer.html must load offline with no console error and no request, and whose numbers must
equal transformers' eager attention (fed exactly what the HF processor makes): the default view (heads
mean over the prompt tokens) for every layer, single heads of single prompt tokens, and single heads of
answer tokens (transformers' generate(output_attentions=True) row that chose the token), within the
page's 8-bit quantisation bound. `attnmap batch` writes DIR/index.html linking every item's viewer.
"""
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from attnmap_tools.testing import hf_reference as R
from attnmap_tools.testing.tiny import RELEASED_GENERATION_CONFIG
from test_viewer_browser import (canvas_hash, console_errors, driver, network_requests, open_page,  # noqa: F401
                                 quant_bound, select, state)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

BIN = os.environ.get("ATTNMAP_BIN", "")
PROMPT = "What is this? 猫 🐱"
LAYERS = [0, 2, 3]
MAX_NEW = 5
ATOL = 1e-5


def cli(*args):
    assert BIN, "ATTNMAP_BIN must name the built attnmap binary (CTest sets it)"
    proc = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("viewer_run")
    ckpt, pt = R.seeded_export(work, 0, tied=True, generation_config=RELEASED_GENERATION_CONFIG)
    image = work / "image.png"
    R.synthetic_image(168, 252, seed=3).save(image)
    out = work / "out"
    cli("run", "--device", "cpu", "--model", pt, "--image", image, "--prompt", PROMPT, "--out", out, "--answer",
        "--max-new-tokens", MAX_NEW, "--layers", ",".join(map(str, LAYERS)))
    processor, hf = R.load_processor(ckpt), R.load_hf_model(ckpt)
    inputs = R.build_inputs(processor, [Image.open(image).convert("RGB")], PROMPT)
    attentions, _ = R.hf_forward(hf, inputs)
    with torch.no_grad():
        g = hf.generate(**inputs, do_sample=False, max_new_tokens=MAX_NEW, output_attentions=True,
                        return_dict_in_generate=True)
    ids = inputs["input_ids"][0].tolist()
    cols = [i for i, t in enumerate(ids) if t == hf.config.image_token_id]
    vision_end = ids.index(hf.config.vision_end_token_id)
    im_end = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    prompt_rows = list(range(vision_end + 1, ids.index(im_end, vision_end)))
    _, h, w = inputs["image_grid_thw"][0].tolist()
    return {"out": out, "pt": pt, "image": image, "work": work, "attentions": attentions, "cols": cols,
            "prompt_rows": prompt_rows, "grid": (h // 2, w // 2), "seq": len(ids),
            "answer_ids": g.sequences[0, len(ids):].tolist(),
            "answer_rows": [[step[layer][0, :, -1, :].double() for layer in LAYERS] for step in g.attentions]}


def goto_layer(drv, index):
    from selenium.webdriver.common.keys import Keys

    slider = drv.find_element("id", "layer")
    slider.send_keys(Keys.HOME)
    for _ in range(index):
        slider.send_keys(Keys.RIGHT)
    assert state(drv)["layerIndex"] == index


def shown_map(drv):
    return np.array(drv.execute_script("return window.attnmapViewer.currentMap()"), dtype=np.float64)


def test_run_writes_a_viewer_that_loads_offline(driver, run):
    html = run["out"] / "viewer.html"
    doc = json.loads((run["out"] / "attention.json").read_text())
    assert doc["viewer"]["file"] == "viewer.html" and doc["viewer"]["detail"] == "full"
    assert doc["viewer"]["html_bytes"] == html.stat().st_size
    open_page(driver, html)
    assert console_errors(driver) == []
    assert network_requests(driver, html.resolve().as_uri()) == []
    info = driver.execute_script("return window.attnmapViewer.info")
    assert info["layers"] == LAYERS
    assert info["groups"] == ["prompt", "answer"]
    assert [t["id"] for t in doc["answer"]["tokens"]] == run["answer_ids"]
    # "猫" and "🐱" are each cut across byte-level tokens: every part is labelled with the whole character
    headers = [th.text for th in driver.find_elements("css selector", "#text-matrix thead th")]
    for character in ("猫", "🐱"):
        parts = [h for h in headers if character in h]
        assert len(parts) >= 2 and all("/" in h for h in parts), (character, headers)
    assert not any("\ufffd" in h for h in headers), headers


def test_viewer_numbers_equal_transformers(driver, run):
    open_page(driver, run["out"] / "viewer.html")
    cols, grid = run["cols"], run["grid"]
    prompt_rows = run["prompt_rows"]
    for index, layer in enumerate(LAYERS):
        goto_layer(driver, index)
        att = run["attentions"][layer].double()  # [H, S, S]
        # default view: heads mean over the prompt tokens, stored exactly
        expected = att[:, prompt_rows, :].mean(0).mean(0)[cols].numpy()
        np.testing.assert_allclose(shown_map(driver), expected, atol=ATOL, err_msg=f"layer {layer} default")
        # one head, one prompt token (query q:k is the k-th query: the prompt tokens come first)
        for head, k in ((1, 0), (3, len(prompt_rows) - 1)):
            select(driver, "heads", str(head))
            select(driver, "query", f"q:{k}")
            expected = att[head, prompt_rows[k], cols].numpy()
            np.testing.assert_allclose(shown_map(driver), expected, atol=quant_bound(expected) + ATOL,
                                       err_msg=f"layer {layer} head {head} prompt token {k}")
        # one head, each answer token: the row that chose it
        for k, rows in enumerate(run["answer_rows"]):
            select(driver, "heads", "0")
            select(driver, "query", f"q:{len(prompt_rows) + k}")
            expected = rows[index][0, cols].numpy()
            np.testing.assert_allclose(shown_map(driver), expected, atol=quant_bound(expected) + ATOL,
                                       err_msg=f"layer {layer} answer token {k}")
        select(driver, "heads", "mean")
        select(driver, "query", "g:0")


def test_controls_change_the_drawn_map(driver, run):
    open_page(driver, run["out"] / "viewer.html")
    before = canvas_hash(driver)
    select(driver, "query", "g:1")  # the answer tokens together
    after_query = canvas_hash(driver)
    select(driver, "heads", "2")
    after_head = canvas_hash(driver)
    goto_layer(driver, 0)
    after_layer = canvas_hash(driver)
    assert len({before, after_query, after_head, after_layer}) == 4


def test_no_viewer_flag_writes_none(run):
    out = run["work"] / "no_viewer"
    cli("run", "--device", "cpu", "--model", run["pt"], "--image", run["image"], "--prompt", PROMPT, "--out", out,
        "--no-viewer", "--layers", "0")
    assert not (out / "viewer.html").exists()
    assert "viewer" not in json.loads((out / "attention.json").read_text())


def test_batch_writes_an_index_linking_every_viewer(driver, run, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    R.synthetic_image(140, 196, seed=1).save(images / "a.png")
    R.synthetic_image(112, 112, seed=2).save(images / "b.png")
    (images / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    proc = subprocess.run([BIN, "batch", "--device", "cpu", "--model", str(run["pt"]), "--images", str(images), "--out",
                           str(out), "--prompt", "Describe it. 猫", "--layers", "3", "--no-progress"],
                          capture_output=True, text=True)
    assert proc.returncode != 0  # the broken image failed, alone
    index = out / "index.html"
    open_page(driver, index, hook="attnmapIndex")
    assert console_errors(driver) == []
    assert driver.execute_script("return window.attnmapIndex.state()")["total"] == 3
    links = {a.text: a.get_attribute("href") for a in driver.find_elements("css selector", "#items tbody a")}
    for item in ("a", "b"):
        target = out / item / "viewer.html"
        assert target.exists() and any(href.endswith(f"{item}/viewer.html") for href in links.values()), links
    text = driver.find_element("id", "items").text
    assert "broken" in text and "error" in text.lower()
    # a later --resume keeps the finished items in the index
    subprocess.run([BIN, "batch", "--device", "cpu", "--model", str(run["pt"]), "--images", str(images), "--out",
                    str(out), "--prompt", "Describe it. 猫", "--layers", "3", "--no-progress", "--resume"],
                   capture_output=True, text=True)
    open_page(driver, index, hook="attnmapIndex")
    assert driver.execute_script("return window.attnmapIndex.state()")["total"] == 3
    assert len(driver.find_elements("css selector", "#items tbody a[href$='viewer.html']")) == 2


def test_firefox_draws_the_page_from_file_url(run, tmp_path):
    """Firefox, when installed (Debian's firefox-esr; not installed by bootstrap.sh, CI skips this:
    Debian packages no geckodriver, so only a headless screenshot is possible): the page is drawn
    from file:// with its heatmap, not left blank."""
    import shutil

    firefox = shutil.which("firefox-esr") or shutil.which("firefox")
    if not firefox:
        pytest.skip("Firefox is not installed (apt package firefox-esr)")
    # Firefox's --screenshot fires at the load event, while the page decompresses its data and decodes
    # its pictures asynchronously: now and then the shot comes before the first draw. A page that can
    # start shows its heatmap in one of three tries; one that cannot, in none.
    colours = []
    for attempt in range(3):
        shot = tmp_path / f"firefox_{attempt}.png"
        profile = tmp_path / f"profile_{attempt}"
        profile.mkdir()
        proc = subprocess.run([firefox, "--headless", "--no-remote", "--profile", str(profile),
                               "--window-size=1280,1100", "--screenshot", str(shot),
                               (run["out"] / "viewer.html").resolve().as_uri()],
                              capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0 and shot.exists(), proc.stderr
        img = np.asarray(Image.open(shot).convert("RGB"))
        assert img.shape[:2] == (1100, 1280)
        # The heatmap's region (left column, below the controls) holds the blended image's many colours:
        # ~140,000 distinct ones here, against ~400 (antialiased text) when the page has not drawn.
        heat = img[250:550, 40:560].reshape(-1, 3)
        colours.append(len(np.unique(heat, axis=0)))
        if colours[-1] > 20_000:
            break
    assert max(colours) > 20_000, colours
