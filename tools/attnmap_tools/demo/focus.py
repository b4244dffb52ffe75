"""The focus map (what `attnmap run` shows) and the scoring shared by evaluate.py and the tests.

Map = attention probabilities of one decoder layer, mean over heads, for the query rows that are the
user's question tokens (strictly between <|vision_end|> and the user turn's <|im_end|>), averaged over
those rows, restricted to the <|image_pad|> columns, laid out as the (grid_h/2, grid_w/2) raster.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from .scenes import Scene


def question_rows(input_ids: torch.Tensor, vision_end_id: int, im_end_id: int) -> torch.Tensor:
    """Positions of the user's text tokens after the image: (<|vision_end|>, next <|im_end|>) exclusive."""
    ids = input_ids.tolist()
    start = ids.index(vision_end_id) + 1
    stop = ids.index(im_end_id, start)
    return torch.arange(start, stop)


def focus_map(attn: torch.Tensor, input_ids: torch.Tensor, image_token_id: int, rows: torch.Tensor,
              merged_hw: tuple[int, int]) -> torch.Tensor:
    """attn [heads, S, S] of one sample and one layer -> map [merged_h, merged_w] (raw probability mass)."""
    cols = (input_ids == image_token_id).nonzero().squeeze(1)
    m = attn.mean(0)[rows][:, cols].mean(0)  # heads, then query rows, then image columns
    return m.reshape(merged_hw)


def hit(scene_size: tuple[int, int], bbox: tuple[int, int, int, int], amap: np.ndarray) -> bool:
    """Is the argmax cell's centre inside the bbox grown by half a cell (= does the cell touch the bbox)?"""
    width, height = scene_size
    mh, mw = amap.shape
    r, c = np.unravel_index(int(np.argmax(amap)), amap.shape)
    cw, ch = width / mw, height / mh
    cx, cy = (c + 0.5) * cw, (r + 0.5) * ch
    x0, y0, x1, y1 = bbox
    return x0 - cw / 2 <= cx <= x1 + cw / 2 and y0 - ch / 2 <= cy <= y1 + ch / 2


@dataclasses.dataclass
class Record:
    """One evaluated scene: ground truth from the generator, prediction and map from the model under test."""
    scene: Scene
    predicted: str   # decoded greedy first answer token
    amap: np.ndarray  # [merged_h, merged_w]


@dataclasses.dataclass
class Score:
    n: int
    accuracy: float
    hit_rate: float

    def __str__(self) -> str:
        return f"{self.n} scenes: answer accuracy {self.accuracy:.1%}, focus-map hit rate {self.hit_rate:.1%}"


def score(records: list[Record]) -> Score:
    correct = sum(r.predicted.strip() == r.scene.answer for r in records)
    hits = sum(hit(r.scene.image.size, r.scene.bbox, r.amap) for r in records)
    n = len(records)
    return Score(n, correct / n, hits / n)
