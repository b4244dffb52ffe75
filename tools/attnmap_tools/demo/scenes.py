"""Synthetic scenes: a few coloured shapes on a light, slightly noisy canvas, plus one question about one shape.

Everything is derived from (seed, index) so that a scene is reproducible on its own and train / held-out
sets are disjoint simply by using different seeds. The scene carries the ground truth (answer word and the
asked shape's bounding box), so no test needs hard-coded expectations.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")
COLORS = {"red": (215, 35, 35), "green": (35, 160, 60), "blue": (35, 75, 215), "yellow": (235, 205, 30)}
ANSWER_WORDS = tuple(COLORS) + SHAPES
MIN_SIDE, MAX_SIDE = 224, 448


@dataclasses.dataclass(frozen=True)
class Shape:
    kind: str
    color: str
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, half-open: x0 <= x < x1


@dataclasses.dataclass
class Scene:
    image: Image.Image
    shapes: list[Shape]
    question: str
    answer: str
    target: Shape  # the shape the question is about

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        return self.target.bbox


def draw_shape(draw: ImageDraw.ImageDraw, shape: Shape, fill) -> None:
    x0, y0, x1, y1 = shape.bbox
    # PIL boxes are inclusive; our bboxes are half-open.
    if shape.kind == "circle":
        draw.ellipse((x0, y0, x1 - 1, y1 - 1), fill=fill)
    elif shape.kind == "square":
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=fill)
    else:  # upright isosceles triangle filling its box
        draw.polygon([(x0, y1 - 1), (x1 - 1, y1 - 1), ((x0 + x1 - 1) / 2.0, y0)], fill=fill)


def shape_mask(shape: Shape, width: int, height: int) -> np.ndarray:
    """Boolean [height, width] mask of the pixels the shape covers."""
    img = Image.new("L", (width, height), 0)
    draw_shape(ImageDraw.Draw(img), shape, 255)
    return np.asarray(img) > 127


def _place(rng: np.random.Generator, width: int, height: int, n: int) -> list[tuple[int, int, int, int]] | None:
    short = min(width, height)
    lo, hi = -(-short // 6), short // 3  # box side at least 1/6 of the shorter canvas side
    margin = 6  # keep shapes visibly apart (and apart from the border)
    boxes: list[tuple[int, int, int, int]] = []
    for _ in range(n):
        for _attempt in range(100):
            side = int(rng.integers(lo, hi + 1))
            x0 = int(rng.integers(margin, width - side - margin + 1))
            y0 = int(rng.integers(margin, height - side - margin + 1))
            box = (x0, y0, x0 + side, y0 + side)
            if all(box[0] >= b[2] + margin or b[0] >= box[2] + margin or
                   box[1] >= b[3] + margin or b[1] >= box[3] + margin for b in boxes):
                boxes.append(box)
                break
        else:
            return None
    return boxes


def make_scene(seed: int, index: int) -> Scene:
    """Scene number `index` of the stream defined by `seed` (independent of the other indices)."""
    rng = np.random.default_rng([seed, index])
    width = int(rng.integers(MIN_SIDE, MAX_SIDE + 1))
    height = int(rng.integers(MIN_SIDE, MAX_SIDE + 1))
    # At most one shape of each kind, so "What color is the <shape>?" is always unambiguous;
    # with three kinds that caps a scene at three shapes.
    n = int(rng.integers(2, len(SHAPES) + 1))
    while (boxes := _place(rng, width, height, n)) is None:
        pass
    kinds = rng.permutation(SHAPES)[:n]
    colors = rng.choice(list(COLORS), size=n)
    shapes = [Shape(str(k), str(c), b) for k, c, b in zip(kinds, colors, boxes)]

    bg = 255 if rng.random() < 0.5 else int(rng.integers(220, 241))
    pixels = np.full((height, width, 3), bg, np.float32)
    canvas = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for s in shapes:
        draw_shape(draw, s, COLORS[s.color])
    noisy = np.asarray(canvas, np.float32) + 4.0 * rng.standard_normal((height, width, 3), dtype=np.float32)
    image = Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8), "RGB")

    unique_color = [s for s in shapes if sum(t.color == s.color for t in shapes) == 1]
    if unique_color and rng.random() < 0.5:
        target = unique_color[int(rng.integers(len(unique_color)))]
        question, answer = f"What shape is {target.color}?", target.kind
    else:
        target = shapes[int(rng.integers(n))]
        question, answer = f"What color is the {target.kind}?", target.color
    return Scene(image, shapes, question, answer, target)


def all_questions() -> list[str]:
    """Every question the generator can ask (for the tokenizer's training text)."""
    return [f"What color is the {k}?" for k in SHAPES] + [f"What shape is {c}?" for c in COLORS]


def cell_of(scene_size: tuple[int, int], merged_hw: tuple[int, int], row: int, col: int) -> tuple[float, float, float, float]:
    """Original-pixel rectangle of map cell (row, col): x in [c*W/mw, (c+1)*W/mw), y likewise."""
    width, height = scene_size
    mh, mw = merged_hw
    return col * width / mw, row * height / mh, (col + 1) * width / mw, (row + 1) * height / mh


def cell_coverage(shape: Shape, scene_size: tuple[int, int], merged_hw: tuple[int, int]) -> np.ndarray:
    """Fraction of each map cell covered by the shape, float32 [mh, mw] (the attention-supervision target)."""
    width, height = scene_size
    mh, mw = merged_hw
    mask = shape_mask(shape, width, height)
    ys = np.arange(height) * mh // height  # cell row of each pixel row: y in [r*H/mh, (r+1)*H/mh)
    xs = np.arange(width) * mw // width
    cell = (ys[:, None] * mw + xs[None, :]).ravel()
    area = np.bincount(cell, weights=mask.ravel(), minlength=mh * mw)
    count = np.bincount(cell, minlength=mh * mw)
    return (area / count).reshape(mh, mw).astype(np.float32)


def cell_labels(scene: Scene, merged_hw: tuple[int, int], min_cover: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Per map cell: (kind index, colour index), 0 = background, else 1 + index in SHAPES / COLORS.

    A cell takes the labels of the shape covering most of it, if that shape covers at least `min_cover`.
    """
    cover = np.stack([cell_coverage(s, scene.image.size, merged_hw) for s in scene.shapes])
    best = cover.argmax(0)
    present = cover.max(0) >= min_cover
    kinds = np.array([1 + SHAPES.index(s.kind) for s in scene.shapes])[best]
    colors = np.array([1 + list(COLORS).index(s.color) for s in scene.shapes])[best]
    return np.where(present, kinds, 0), np.where(present, colors, 0)
