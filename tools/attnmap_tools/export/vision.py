"""Qwen2.5-VL vision tower, scriptable: patch embed, windowed/full blocks with 2-D RoPE, patch merger.

All layout tensors (window order, segment boundaries, rotary positions) are derived here from
image_grid_thw, so callers only pass what the HF processor produces.
"""
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .config import VisionConfig
from .layers import RMSNorm, SwiGLU
from .rope import apply_vision_rope, vision_cos_sin


class PatchEmbed(nn.Module):
    """Conv3d with kernel == stride over each [C, T, P, P] row.

    Mathematically a matmul over the 1176-wide rows, but F.linear sums in another order than the
    conv kernel transformers calls (measured: 2e-5 apart on outputs of ~15 in fp32, amplified by
    peaky attention downstream); the same conv3d call is bit-identical to transformers.
    """

    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.channels = cfg.in_channels
        self.temporal = cfg.temporal_patch_size
        self.patch = cfg.patch_size
        kernel = [cfg.temporal_patch_size, cfg.patch_size, cfg.patch_size]
        self.proj = nn.Conv3d(cfg.in_channels, cfg.hidden_size, kernel_size=kernel, stride=kernel, bias=False)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = pixel_values.reshape(-1, self.channels, self.temporal, self.patch, self.patch)
        return self.proj(x.to(self.proj.weight.dtype)).reshape(x.size(0), -1)


def segment_groups(cu_seqlens: List[int], device: torch.device) -> List[Tuple[int, torch.Tensor]]:
    """Segments (windows or whole images) grouped by length: (length, patch rows of all segments of
    that length, segment-major), so each group is one batched SDPA call instead of one per segment.

    An empty index means the segments tile the whole sequence with one length: a plain reshape.
    A 1,000-token image has 64 windows but at most 4 distinct window lengths (full, right edge,
    bottom edge, corner); a per-window loop would be launch-bound on a GPU.
    """
    lengths: List[int] = []
    starts: Dict[int, List[int]] = {}
    for i in range(len(cu_seqlens) - 1):
        n = cu_seqlens[i + 1] - cu_seqlens[i]
        if n not in starts:
            empty: List[int] = []
            starts[n] = empty
            lengths.append(n)
        starts[n].append(cu_seqlens[i])
    groups: List[Tuple[int, torch.Tensor]] = []
    if len(lengths) == 1:
        groups.append((lengths[0], torch.empty(0, dtype=torch.long, device=device)))
        return groups
    for n in lengths:
        first = torch.tensor(starts[n], dtype=torch.long).unsqueeze(1)
        rows = (first + torch.arange(n, dtype=torch.long).unsqueeze(0)).reshape(-1)
        groups.append((n, rows.to(device)))
    return groups


class VisionAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = float(self.head_dim) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)

    def _segments(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, length: int) -> torch.Tensor:
        """[n, heads, dim] rows forming n / length consecutive segments -> attention within each."""
        n = q.size(0)
        count = n // length
        shape = [count, length, self.num_heads, self.head_dim]
        out = F.scaled_dot_product_attention(q.reshape(shape).transpose(1, 2), k.reshape(shape).transpose(1, 2),
                                             v.reshape(shape).transpose(1, 2), scale=self.scale)
        return out.transpose(1, 2).reshape(n, self.num_heads, self.head_dim)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                groups: List[Tuple[int, torch.Tensor]]) -> torch.Tensor:
        seq = x.size(0)
        qkv = self.qkv(x).reshape(seq, 3, self.num_heads, self.head_dim).permute(1, 0, 2, 3)
        q, k = apply_vision_rope(qkv[0], qkv[1], cos, sin)
        v = qkv[2]
        # Block-diagonal attention, exact and linear in memory (a dense block mask would be
        # quadratic): one batched SDPA call per distinct segment length.
        if len(groups) == 1 and groups[0][1].numel() == 0:
            out = self._segments(q, k, v, groups[0][0])
        else:
            out = torch.empty(seq, self.num_heads, self.head_dim, dtype=v.dtype, device=v.device)
            for length, rows in groups:
                out.index_copy_(0, rows, self._segments(q.index_select(0, rows), k.index_select(0, rows),
                                                        v.index_select(0, rows), length))
        return self.proj(out.reshape(seq, -1))


class VisionBlock(nn.Module):
    def __init__(self, cfg: VisionConfig, full_attention: bool):
        super().__init__()
        self.full_attention = full_attention
        self.norm1 = RMSNorm(cfg.hidden_size, 1e-6)
        self.norm2 = RMSNorm(cfg.hidden_size, 1e-6)
        self.attn = VisionAttention(cfg.hidden_size, cfg.num_heads)
        self.mlp = SwiGLU(cfg.hidden_size, cfg.intermediate_size, bias=True)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                window_groups: List[Tuple[int, torch.Tensor]],
                image_groups: List[Tuple[int, torch.Tensor]]) -> torch.Tensor:
        groups = image_groups if self.full_attention else window_groups
        x = x + self.attn(self.norm1(x), cos, sin, groups)
        return x + self.mlp(self.norm2(x))


class PatchMerger(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.merged_dim = cfg.hidden_size * cfg.spatial_merge_size * cfg.spatial_merge_size
        self.ln_q = RMSNorm(cfg.hidden_size, 1e-6)
        self.mlp = nn.Sequential(nn.Linear(self.merged_dim, self.merged_dim), nn.GELU(),
                                 nn.Linear(self.merged_dim, cfg.out_hidden_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.ln_q(x).reshape(-1, self.merged_dim))


class VisionTransformer(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.merge = cfg.spatial_merge_size
        self.unit = cfg.spatial_merge_size * cfg.spatial_merge_size
        self.window_merged = cfg.window_size // cfg.spatial_merge_size // cfg.patch_size
        self.head_dim = cfg.hidden_size // cfg.num_heads
        self.rope_theta = cfg.rope_theta
        self.in_features = cfg.in_channels * cfg.temporal_patch_size * cfg.patch_size * cfg.patch_size
        self.patch_embed = PatchEmbed(cfg)
        self.blocks = nn.ModuleList([VisionBlock(cfg, i in cfg.fullatt_block_indexes) for i in range(cfg.depth)])
        self.merger = PatchMerger(cfg)

    def layout(self, grid_thw: torch.Tensor) -> Tuple[torch.Tensor, List[int], List[int], torch.Tensor]:
        """window_index [tokens/unit] (merged-token ids in window order), window and full-attention
        segment boundaries (patch rows), and (row, col) of every patch row in merge-block order."""
        device = grid_thw.device
        m = self.merge
        ws = self.window_merged
        window_parts: List[torch.Tensor] = []
        pos_parts: List[torch.Tensor] = []
        cu_window: List[int] = [0]
        cu_full: List[int] = [0]
        offset = 0
        for i in range(grid_thw.size(0)):
            t = int(grid_thw[i, 0])
            h = int(grid_thw[i, 1])
            w = int(grid_thw[i, 2])
            lh = h // m
            lw = w // m
            index = torch.arange(t * lh * lw, device=device).reshape(t, lh, lw)
            # Always pads (a whole empty window row/column when divisible), as transformers does;
            # the empty windows are dropped below.
            pad_h = ws - lh % ws
            pad_w = ws - lw % ws
            nh = (lh + pad_h) // ws
            nw = (lw + pad_w) // ws
            padded = F.pad(index, [0, pad_w, 0, pad_h], value=-100.0)
            padded = padded.reshape(t, nh, ws, nw, ws).permute(0, 1, 3, 2, 4).reshape(t, nh * nw, ws, ws)
            lengths: List[int] = (padded != -100).sum([2, 3]).reshape(-1).tolist()
            flat = padded.reshape(-1)
            window_parts.append(flat[flat != -100] + offset)
            for n in lengths:
                if n > 0:
                    cu_window.append(cu_window[-1] + n * self.unit)
            offset += t * lh * lw
            for _ in range(t):
                cu_full.append(cu_full[-1] + h * w)
            hpos = torch.arange(h, device=device).unsqueeze(1).expand(h, w)
            wpos = torch.arange(w, device=device).unsqueeze(0).expand(h, w)
            hpos = hpos.reshape(lh, m, lw, m).permute(0, 2, 1, 3).reshape(-1)
            wpos = wpos.reshape(lh, m, lw, m).permute(0, 2, 1, 3).reshape(-1)
            pos_parts.append(torch.stack((hpos, wpos), dim=-1).repeat(t, 1))
        return torch.cat(window_parts), cu_window, cu_full, torch.cat(pos_parts)

    def forward(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
        """pixel_values [N, C*T*P*P] in HF merge-block row order -> merged features
        [N/unit, out_hidden] in raster order per image, images concatenated."""
        if pixel_values.dim() != 2 or pixel_values.size(1) != self.in_features:
            raise RuntimeError("attnmap: pixel_values must be [N, " + str(self.in_features) + "], got "
                               + str(pixel_values.size()))
        # The layout is a few small integer tensors: build it on the CPU (no tiny GPU kernels, and the
        # caller may keep image_grid_thw on either device), then move it next to the weights.
        window_index, cu_window, cu_full, pos = self.layout(grid_thw.cpu())
        device = self.patch_embed.proj.weight.device
        window_index = window_index.to(device)
        pos = pos.to(device)
        n = pixel_values.size(0)
        if n != cu_full[-1]:
            raise RuntimeError("attnmap: pixel_values has " + str(n) + " rows but image_grid_thw describes "
                               + str(cu_full[-1]) + " patches")
        x = self.patch_embed(pixel_values.to(device))
        x = x.reshape(n // self.unit, self.unit, -1)[window_index].reshape(n, -1)
        pos = pos.reshape(n // self.unit, self.unit, 2)[window_index].reshape(n, 2)
        cos, sin = vision_cos_sin(pos, self.head_dim, self.rope_theta)
        window_groups = segment_groups(cu_window, device)
        image_groups = segment_groups(cu_full, device)
        for blk in self.blocks:
            x = blk(x, cos, sin, window_groups, image_groups)
        merged = self.merger(x)
        return merged[torch.argsort(window_index)]
