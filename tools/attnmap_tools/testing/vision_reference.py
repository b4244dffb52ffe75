"""The vision tower's attention as transformers computes it (eager), as an oracle for attnmap's
vision maps: every probability matrix the eager path computes for a vision block is recorded, placed
in a dense [heads, P, P] matrix in the raster order of the unmerged patch grid (with transformers' own
window index and position ids), and reduced like attnmap's maps, in float64.
"""
import sys
from typing import Dict, List

import torch

from transformers.vision_utils import get_vision_cu_seqlens, get_vision_position_ids, get_vision_window_index


def capture_vision_attention(hf, pixel_values, grid_thw) -> Dict[int, List[torch.Tensor]]:
    """Per vision block, the eager probability matrices [heads, L, L] in the order transformers
    computes them (segment by segment along its window order)."""
    visual = hf.model.visual
    modeling = sys.modules[type(visual).__module__]  # the family's modeling module
    block_of = {id(blk.attn): i for i, blk in enumerate(visual.blocks)}
    captured = {i: [] for i in range(len(visual.blocks))}
    original = modeling.eager_attention_forward

    def recording(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
        out, weights = original(module, query, key, value, attention_mask, scaling, dropout=dropout, **kwargs)
        if id(module) in block_of:
            captured[block_of[id(module)]].append(weights[0].detach().clone())
        return out, weights

    modeling.eager_attention_forward = recording
    try:
        with torch.no_grad():
            visual(pixel_values, grid_thw)
    finally:
        modeling.eager_attention_forward = original
    return captured


def raster_of_window_rows(hf, grid_thw):
    """For each row of transformers' window order, its raster patch (image, t, row, col), derived from
    transformers' own window index and (row, col) position ids; and the window boundaries."""
    vcfg = hf.config.vision_config
    merge = vcfg.spatial_merge_size
    unit = merge * merge
    if hf.config.model_type == "qwen2_vl":
        # No windows: transformers keeps the processor's row order, one segment per frame.
        window_index = torch.arange(int((grid_thw.prod(-1) // unit).sum()))
        cu_window = get_vision_cu_seqlens(grid_thw)
    else:
        window_index, cu_window = get_vision_window_index(grid_thw, merge, vcfg.window_size, vcfg.patch_size)
    pos = get_vision_position_ids(grid_thw, merge)  # [P, 2] in the processor's (merge-block) row order
    raster = []
    offset = 0
    row = 0
    for t, h, w in grid_thw.tolist():
        for frame in range(t):
            for _ in range(h * w):
                r, c = pos[row].tolist()
                raster.append(offset + frame * h * w + r * w + c)
                row += 1
        offset += t * h * w
    raster = torch.tensor(raster)
    proc_rows = (window_index.unsqueeze(1) * unit + torch.arange(unit)).reshape(-1)
    return raster[proc_rows], cu_window.long()


def dense_raster_attention(captured_block, raster) -> torch.Tensor:
    """The block's segment matrices placed in one [heads, P, P] matrix in raster order (float64)."""
    n = raster.numel()
    heads = captured_block[0].size(0)
    dense = torch.zeros(heads, n, n, dtype=torch.float64)
    start = 0
    for probs in captured_block:
        length = probs.size(-1)
        idx = raster[start:start + length]
        dense[:, idx.unsqueeze(1), idx.unsqueeze(0)] = probs.double()
        start += length
    assert start == n
    return dense


def dense_attention_per_block(hf, pixel_values, grid_thw) -> Dict[int, torch.Tensor]:
    """Every block's dense raster-order attention [heads, P, P] (float64) for one image or video."""
    captured = capture_vision_attention(hf, pixel_values, grid_thw)
    raster, _ = raster_of_window_rows(hf, grid_thw)
    return {b: dense_raster_attention(captured[b], raster) for b in captured}


def oracle_map(dense, queries, head_reduce) -> torch.Tensor:
    """[H', P]: the rows of `queries` (all rows when empty) reduced over heads ("keep" | "mean" | "max"),
    then averaged over the queries."""
    rows = dense[:, queries, :] if len(queries) else dense
    if head_reduce == "mean":
        rows = rows.mean(0, keepdim=True)
    elif head_reduce == "max":
        rows = rows.amax(0, keepdim=True)
    return rows.mean(1)
