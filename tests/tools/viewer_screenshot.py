"""Screenshots a viewer page with headless Chromium.

With --page: an existing viewer.html (the README's picture, docs/images/viewer_demo.png, is
`attnmap run --answer` on the demo model, see docs/viewer.md). Without: renders a realistic synthetic
page (examples/scene_circle.png, 12 layers x 8 heads, the blobs of the later layers on the circle)
through attnmap_viewer_fixture: docs/images/viewer.png.

    .venv/bin/python tests/tools/viewer_screenshot.py OUT.png --page RUN_DIR/viewer.html
    ATTNMAP_VIEWER_FIXTURE=build/tests/attnmap_viewer_fixture .venv/bin/python tests/tools/viewer_screenshot.py OUT.png [PAGE.html]
"""
import os
import pathlib
import shutil
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "python"))
import test_viewer_browser as t  # noqa: E402


def screenshot_page(out, page):
    drv = t.start_chromium("1280,1300")
    try:
        t.open_page(drv, page)
        time.sleep(0.3)
        drv.save_screenshot(str(out))
    finally:
        drv.quit()
    print(out)


def main():
    out = pathlib.Path(sys.argv[1])
    if len(sys.argv) > 3 and sys.argv[2] == "--page":
        return screenshot_page(out, pathlib.Path(sys.argv[3]))
    work = pathlib.Path(tempfile.mkdtemp(prefix="viewer_shot_"))
    prompt = ["What", " color", " is", " the", " circle", "?"]
    case = t.make_case(work, layers=tuple(range(12)), heads=8, grid=(13, 10), prompt=prompt, answer=[" green", "."],
                       image_path=ROOT / "examples" / "scene_circle.png", focus=(3.8, 5.1), seed=3,
                       options={"opacity": 0.55, "initial_layer_index": 9}, name="scene")
    if len(sys.argv) > 2:
        shutil.copy(case["html"], sys.argv[2])
    drv = t.start_chromium("1280,1300")
    try:
        t.open_page(drv, case["html"])
        from selenium.webdriver.common.action_chains import ActionChains

        canvas = drv.find_element("id", "map")
        size = canvas.size  # hover the cell at row 4, col 5 (on the circle) to show the tooltip
        ActionChains(drv).move_to_element_with_offset(canvas, int(5.5 / 10 * size["width"] - size["width"] / 2),
                                                      int(4.5 / 13 * size["height"] - size["height"] / 2)).perform()
        time.sleep(0.3)
        drv.save_screenshot(str(out))
    finally:
        drv.quit()
    print(out, case["report"])


if __name__ == "__main__":
    main()
