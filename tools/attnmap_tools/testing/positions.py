"""Pure-Python M-RoPE positions for Qwen2.5-VL prompts with images (reference for the C++ port).

Equals transformers 5's `Qwen2_5_VLModel.get_rope_index` for unpadded prompts whose images are
still images: text tokens advance by one on all three axes; an image of merged grid (T, H', W')
starting at position p gives its token k (raster order, frame-major) the positions
(p + frame, p + row, p + col), and the text after it starts at p + max(H', W').
"""
from typing import List, Sequence, Tuple


def get_rope_index(input_ids: Sequence[int], image_grid_thw: Sequence[Sequence[int]], image_token_id: int,
                   spatial_merge_size: int = 2) -> Tuple[List[List[int]], int]:
    """Returns (positions [3][S] as lists t, h, w; rope_delta = max position + 1 - S)."""
    t_pos: List[int] = []
    h_pos: List[int] = []
    w_pos: List[int] = []
    grids = [tuple(int(v) for v in g) for g in image_grid_thw]
    next_grid = 0
    current = 0
    i = 0
    n = len(input_ids)
    while i < n:
        if input_ids[i] != image_token_id:
            t_pos.append(current)
            h_pos.append(current)
            w_pos.append(current)
            current += 1
            i += 1
            continue
        if next_grid >= len(grids):
            raise ValueError(f"image token at position {i} but only {len(grids)} image grid(s) were given")
        t, h, w = grids[next_grid]
        next_grid += 1
        lh, lw = h // spatial_merge_size, w // spatial_merge_size
        count = t * lh * lw
        if i + count > n or any(tok != image_token_id for tok in input_ids[i:i + count]):
            raise ValueError(f"image {next_grid - 1} (grid {t}x{h}x{w}) needs {count} image tokens at position {i}")
        for frame in range(t):
            for row in range(lh):
                for col in range(lw):
                    t_pos.append(current + frame)
                    h_pos.append(current + row)
                    w_pos.append(current + col)
        current += max(h, w) // spatial_merge_size
        i += count
    if next_grid != len(grids):
        raise ValueError(f"{len(grids)} image grids given but the prompt holds {next_grid} image(s)")
    top = max(max(t_pos, default=-1), max(h_pos, default=-1), max(w_pos, default=-1))
    return [t_pos, h_pos, w_pos], top + 1 - n
