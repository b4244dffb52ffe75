"""Qwen3-VL vision tower, scriptable (transformers' Qwen3VLVisionModel).

Patch embed (Conv3d with bias) plus learned position embeddings resampled bilinearly (align_corners)
from their square table to each image's patch grid, 2-D rotary, LayerNorm blocks with an fc1/gelu/fc2
MLP, all full attention within each frame (no windows), the merger and one "deepstack" merger per
entry of deepstack_visual_indexes, applied to those blocks' outputs. Rows stay in the HF processor's
merge-block order throughout, so merged tokens come out in raster order per image.
"""
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .attn_rows import CHUNK_ELEMENTS, HEAD_REDUCTIONS, MAX_CHUNK_ROWS
from .qwen3_vl_config import Qwen3VLVisionConfig
from .rope import vision_cos_sin
from .vision import (PatchEmbed, VisionAttention, check_map_arguments, query_weights, segment_groups,
                     segment_of_patch)


class Qwen3VLVisionMLP(nn.Module):
    def __init__(self, dim: int, hidden: int, act: str):
        super().__init__()
        self.linear_fc1 = nn.Linear(dim, hidden, bias=True)
        self.linear_fc2 = nn.Linear(hidden, dim, bias=True)
        self.approximate = "tanh" if act == "gelu_pytorch_tanh" else "none"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_fc2(F.gelu(self.linear_fc1(x), approximate=self.approximate))


class Qwen3VLVisionBlock(nn.Module):
    def __init__(self, cfg: Qwen3VLVisionConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.hidden_size, eps=1e-6)
        self.norm2 = nn.LayerNorm(cfg.hidden_size, eps=1e-6)
        self.attn = VisionAttention(cfg.hidden_size, cfg.num_heads)
        self.mlp = Qwen3VLVisionMLP(cfg.hidden_size, cfg.intermediate_size, cfg.hidden_act)

    def received(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                 groups: List[Tuple[int, torch.Tensor]], weights: torch.Tensor, head_reduce: str,
                 max_rows: int, max_elements: int) -> torch.Tensor:
        return self.attn.received(self.norm1(x), cos, sin, groups, weights, head_reduce, max_rows, max_elements)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                groups: List[Tuple[int, torch.Tensor]]) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), cos, sin, groups)
        return x + self.mlp(self.norm2(x))


class Qwen3VLPatchMerger(nn.Module):
    """norm (over each patch, or over the 2x2 merged row when postshuffle), fc1, exact GELU, fc2."""

    def __init__(self, cfg: Qwen3VLVisionConfig, postshuffle: bool):
        super().__init__()
        self.merged_dim = cfg.hidden_size * cfg.spatial_merge_size * cfg.spatial_merge_size
        self.postshuffle = postshuffle
        self.norm = nn.LayerNorm(self.merged_dim if postshuffle else cfg.hidden_size, eps=1e-6)
        self.linear_fc1 = nn.Linear(self.merged_dim, self.merged_dim)
        self.linear_fc2 = nn.Linear(self.merged_dim, cfg.out_hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.postshuffle:
            x = self.norm(x.reshape(-1, self.merged_dim))
        else:
            x = self.norm(x).reshape(-1, self.merged_dim)
        return self.linear_fc2(F.gelu(self.linear_fc1(x)))


class Qwen3VLVisionTransformer(nn.Module):
    def __init__(self, cfg: Qwen3VLVisionConfig):
        super().__init__()
        self.merge = cfg.spatial_merge_size
        self.unit = cfg.spatial_merge_size * cfg.spatial_merge_size
        self.head_dim = cfg.hidden_size // cfg.num_heads
        self.rope_theta = cfg.rope_theta
        self.in_features = cfg.in_channels * cfg.temporal_patch_size * cfg.patch_size * cfg.patch_size
        self.depth = cfg.depth
        self.side = int(cfg.num_position_embeddings ** 0.5)
        self.deepstack_visual_indexes: List[int] = list(cfg.deepstack_visual_indexes)
        self.head_reductions: List[str] = list(HEAD_REDUCTIONS)
        self.max_chunk_rows = MAX_CHUNK_ROWS
        self.chunk_elements = CHUNK_ELEMENTS
        self.patch_embed = PatchEmbed(cfg, bias=True)
        self.pos_embed = nn.Embedding(cfg.num_position_embeddings, cfg.hidden_size)
        self.blocks = nn.ModuleList([Qwen3VLVisionBlock(cfg) for _ in range(cfg.depth)])
        self.merger = Qwen3VLPatchMerger(cfg, False)
        self.deepstack_merger_list = nn.ModuleList(
            [Qwen3VLPatchMerger(cfg, True) for _ in range(len(cfg.deepstack_visual_indexes))])

    def layout(self, grid_thw: torch.Tensor) -> Tuple[List[int], torch.Tensor, torch.Tensor, torch.Tensor]:
        """Frame boundaries (patch rows), (row, col) of every patch row in merge-block order, each row's
        grid (h, w), and its raster index (images in order, then (t, row, col) of the unmerged grid)."""
        device = grid_thw.device
        m = self.merge
        pos_parts: List[torch.Tensor] = []
        size_parts: List[torch.Tensor] = []
        raster_parts: List[torch.Tensor] = []
        cu_full: List[int] = [0]
        patches = 0
        for i in range(grid_thw.size(0)):
            t = int(grid_thw[i, 0])
            h = int(grid_thw[i, 1])
            w = int(grid_thw[i, 2])
            lh = h // m
            lw = w // m
            for _ in range(t):
                cu_full.append(cu_full[-1] + h * w)
            hpos = torch.arange(h, device=device).unsqueeze(1).expand(h, w)
            wpos = torch.arange(w, device=device).unsqueeze(0).expand(h, w)
            hpos = hpos.reshape(lh, m, lw, m).permute(0, 2, 1, 3).reshape(-1)
            wpos = wpos.reshape(lh, m, lw, m).permute(0, 2, 1, 3).reshape(-1)
            pos_parts.append(torch.stack((hpos, wpos), dim=-1).repeat(t, 1))
            size_parts.append(torch.tensor([h, w], dtype=torch.long, device=device).unsqueeze(0).expand(t * h * w, 2))
            frame_start = torch.arange(t, device=device).unsqueeze(1) * (h * w)
            raster_parts.append((frame_start + (hpos * w + wpos).unsqueeze(0)).reshape(-1) + patches)
            patches += t * h * w
        return cu_full, torch.cat(pos_parts), torch.cat(size_parts), torch.cat(raster_parts)

    def _axis_taps(self, index: torch.Tensor, size: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """transformers' _interpolation_axis_taps_weights, bilinear, align_corners=True, border padding:
        the two table rows each target index reads and their weights (float32)."""
        index = index.to(torch.float32)
        src = index * (self.side - 1) / torch.clamp(size - 1, min=1)
        floor = torch.floor(src)
        offsets = torch.arange(0, 2, device=index.device)
        taps = (floor.long().unsqueeze(1) + offsets).clamp(0, self.side - 1)
        distance = (src.unsqueeze(1) - floor.unsqueeze(1) - offsets).abs()
        return taps, (1 - distance).clamp(min=0)

    def position_embeddings(self, pos: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
        """The learned table resampled to each patch's (row, col) on its (h, w) grid: [N, hidden]."""
        h_taps, h_weights = self._axis_taps(pos[:, 0], sizes[:, 0])
        w_taps, w_weights = self._axis_taps(pos[:, 1], sizes[:, 1])
        indices = (h_taps.unsqueeze(2) * self.side + w_taps.unsqueeze(1)).reshape(-1, 4)
        weights = (h_weights.unsqueeze(2) * w_weights.unsqueeze(1)).reshape(-1, 4)
        return (self.pos_embed(indices) * weights.unsqueeze(2)).sum(1)

    def _prepare(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> Tuple[
            torch.Tensor, torch.Tensor, torch.Tensor, List[Tuple[int, torch.Tensor]], torch.Tensor, List[int]]:
        """(patch embeddings + position embeddings x, cos, sin, frame groups, raster index, frame bounds)."""
        if pixel_values.dim() != 2 or pixel_values.size(1) != self.in_features:
            raise RuntimeError("attnmap: pixel_values must be [N, " + str(self.in_features) + "], got "
                               + str(pixel_values.size()))
        cu_full, pos, sizes, raster = self.layout(grid_thw.cpu())
        device = self.patch_embed.proj.weight.device
        n = pixel_values.size(0)
        if n != cu_full[-1]:
            raise RuntimeError("attnmap: pixel_values has " + str(n) + " rows but image_grid_thw describes "
                               + str(cu_full[-1]) + " patches")
        pos = pos.to(device)
        x = self.patch_embed(pixel_values.to(device))
        x = x + self.position_embeddings(pos, sizes.to(device)).to(x.dtype)
        cos, sin = vision_cos_sin(pos, self.head_dim, self.rope_theta)
        return x, cos, sin, segment_groups(cu_full, device), raster.to(device), cu_full

    def forward(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """pixel_values [N, C*T*P*P] in HF merge-block row order -> (merged features [N/unit, out_hidden]
        in raster order per image, one [N/unit, out_hidden] deepstack feature per deepstack level)."""
        x, cos, sin, groups, _, _ = self._prepare(pixel_values, grid_thw)
        deepstack: List[torch.Tensor] = []
        for i, blk in enumerate(self.blocks):
            x = blk(x, cos, sin, groups)
            for level, merger in enumerate(self.deepstack_merger_list):
                if self.deepstack_visual_indexes[level] == i:
                    deepstack.append(merger(x))
        return self.merger(x), deepstack

    def attention_maps(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor, blocks: List[int],
                       query_patches: torch.Tensor, head_reduce: str) -> Dict[str, torch.Tensor]:
        """The contract of vision_attention (docs/design.md): "vision.B" float32 [H', P] per requested
        block B and "vision.windows" int64 [P] (no windows: each frame is one), both in raster order."""
        x, cos, sin, groups, raster, cu_full = self._prepare(pixel_values, grid_thw)
        n = x.size(0)
        check_map_arguments(blocks, query_patches, head_reduce, n, self.depth, self.head_reductions)
        row_of_patch, weights, queries = query_weights(raster, query_patches)
        last = -1
        for b in blocks:
            last = max(last, b)
        out: Dict[str, torch.Tensor] = {}
        for i, blk in enumerate(self.blocks):
            if i <= last:
                if i in blocks:
                    received = blk.received(x, cos, sin, groups, weights, head_reduce, self.max_chunk_rows,
                                            self.chunk_elements)
                    out["vision." + str(i)] = (received / float(queries)).index_select(1, row_of_patch)
                x = blk(x, cos, sin, groups)
        out["vision.windows"] = segment_of_patch(cu_full, row_of_patch)  # no windows: one per frame
        return out
