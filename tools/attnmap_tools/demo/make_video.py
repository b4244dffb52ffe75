"""Write the sample clip under examples/: a circle that moves across the canvas past a square that
stays put, and a question about the circle. The demo model was trained on still scenes only; each
temporal patch of the clip (two frames) looks like one, so its maps follow the circle frame by frame.

    python3 -m attnmap_tools.demo.make_video --out examples/moving_circle.mp4

Writes OUT (H.264, yuv420p, 8 fps), OUT with .txt (the prompt) and .json (truth: the circle's box in
every frame). Deterministic: the same bytes on every machine with the pinned PyAV.
"""
from __future__ import annotations

import argparse
import json
import pathlib
from fractions import Fraction

import av
import numpy as np
from PIL import Image, ImageDraw

from attnmap_tools.demo import scenes

WIDTH, HEIGHT = 320, 224  # even sides (4:2:0), inside the demo's training sizes
FRAMES, FPS = 16, 8        # two seconds; 2 fps sampling keeps 4 frames = 2 temporal patches
SIDE = 64
QUESTION = "What color is the circle?"


def frame(k: int, rng: np.random.Generator) -> tuple[Image.Image, list[int]]:
    """Frame k: the square fixed at the right, the circle moving left to right along the top half."""
    canvas = Image.new("RGB", (WIDTH, HEIGHT), (245, 245, 245))
    draw = ImageDraw.Draw(canvas)
    square = scenes.Shape("square", "blue", (232, 136, 232 + 56, 136 + 56))
    x0 = 12 + round(k * (WIDTH - SIDE - 24 - 100) / (FRAMES - 1))
    circle = scenes.Shape("circle", "red", (x0, 24, x0 + SIDE, 24 + SIDE))
    for s in (square, circle):
        scenes.draw_shape(draw, s, scenes.COLORS[s.color])
    noisy = np.asarray(canvas, np.float32) + 2.0 * rng.standard_normal((HEIGHT, WIDTH, 3), dtype=np.float32)
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8), "RGB"), list(circle.bbox)


def write_clip(out: pathlib.Path) -> list[list[int]]:
    rng = np.random.default_rng(4242)
    boxes = []
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        # One thread and fixed settings: the encoded bytes do not depend on the machine.
        stream.options = {"crf": "23", "preset": "medium", "threads": "1"}
        for k in range(FRAMES):
            image, box = frame(k, rng)
            boxes.append(box)
            video_frame = av.VideoFrame.from_image(image)
            video_frame.pts = k
            video_frame.time_base = Fraction(1, FPS)
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode())
    return boxes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("examples/moving_circle.mp4"))
    args = ap.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    boxes = write_clip(args.out)
    args.out.with_suffix(".txt").write_text(QUESTION + "\n")
    truth = {"question": QUESTION, "answer": "red", "fps": FPS, "frames": FRAMES, "width": WIDTH, "height": HEIGHT,
             "circle_bbox_xyxy_per_frame": boxes}
    args.out.with_suffix(".json").write_text(json.dumps(truth, indent=2) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, {FRAMES} frames at {FPS} fps): {QUESTION} -> red")


if __name__ == "__main__":
    main()
