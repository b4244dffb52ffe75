"""The Qwen2.5-VL and Qwen2-VL vision towers, scriptable: patch embed, windowed/full blocks with 2-D
RoPE, patch merger.

The towers differ only in their parts, chosen by VisionConfig: RMSNorm or LayerNorm (blocks and the
merger's ln_q), SwiGLU or fc1/act/fc2 MLP, and window attention (Qwen2.5-VL: window_size and
fullatt_block_indexes) or none (Qwen2-VL, window_size 0: every block attends within its frame; the
window order is then the identity and each frame is one "window" of the maps).

All layout tensors (window order, segment boundaries, rotary positions) are derived here from
image_grid_thw, so callers only pass what the HF processor produces. attention_maps gives the blocks'
own attention on the patch grid in raster order (docs/design.md, "vision_attention").
"""
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .attn_rows import CHUNK_ELEMENTS, HEAD_REDUCTIONS, MAX_CHUNK_ROWS, received_in_segments
from .config import VisionConfig
from .layers import FcMLP, SwiGLU, make_norm
from .rope import apply_vision_rope, vision_cos_sin


class PatchEmbed(nn.Module):
    """Conv3d with kernel == stride over each [C, T, P, P] row.

    Mathematically a matmul over the 1176-wide rows, but F.linear sums in another order than the
    conv kernel transformers calls (measured: 2e-5 apart on outputs of ~15 in fp32, amplified by
    peaky attention downstream); the same conv3d call is bit-identical to transformers.
    """

    def __init__(self, cfg, bias: bool = False):
        """cfg: any tower config with in_channels, temporal_patch_size, patch_size, hidden_size
        (Qwen2/2.5-VL: no bias; Qwen3-VL: a bias)."""
        super().__init__()
        self.channels = cfg.in_channels
        self.temporal = cfg.temporal_patch_size
        self.patch = cfg.patch_size
        kernel = [cfg.temporal_patch_size, cfg.patch_size, cfg.patch_size]
        self.proj = nn.Conv3d(cfg.in_channels, cfg.hidden_size, kernel_size=kernel, stride=kernel, bias=bias)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = pixel_values.reshape(-1, self.channels, self.temporal, self.patch, self.patch)
        return self.proj(x.to(self.proj.weight.dtype)).reshape(x.size(0), -1)


def check_map_arguments(blocks: List[int], query_patches: torch.Tensor, head_reduce: str, patches: int,
                        depth: int, head_reductions: List[str]):
    """vision_attention's argument checks (docs/design.md), shared by every family's tower."""
    for b in blocks:
        if b < 0 or b >= depth:
            raise RuntimeError("attnmap: vision block " + str(b) + " out of range [0, " + str(depth - 1) + "]")
    if query_patches.dim() != 1 or query_patches.dtype != torch.long:
        raise RuntimeError("attnmap: query_patches must be int64 [Q], got " + str(query_patches.dtype)
                           + " " + str(query_patches.size()))
    if query_patches.numel() > 0:
        if int(query_patches.min()) < 0 or int(query_patches.max()) >= patches:
            raise RuntimeError("attnmap: query_patches must lie in [0, " + str(patches - 1) + "]")
    if head_reduce not in head_reductions:
        raise RuntimeError("attnmap: head_reduce must be one of " + ", ".join(head_reductions)
                           + ", got '" + head_reduce + "'")


def query_weights(raster: torch.Tensor, query_patches: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, int]:
    """(row_of_patch, weights, queries): raster[j] is the raster patch of the tower's row j; its inverse
    row_of_patch picks each raster patch's row (undoing the window reordering and the 2x2 merge-block
    order). weights [rows] counts how often each row is a query (every row once when query_patches is
    empty); queries is the number of queries the maps are averaged over."""
    n = raster.size(0)
    row_of_patch = torch.argsort(raster)
    weights = torch.zeros(n, dtype=torch.float32, device=raster.device)
    if query_patches.numel() == 0:
        return row_of_patch, weights + 1.0, n
    # index_add_: a patch listed twice counts twice, as a repeated decoder query position does.
    rows = row_of_patch.index_select(0, query_patches.to(raster.device))
    weights.index_add_(0, rows, torch.ones(rows.size(0), dtype=torch.float32, device=raster.device))
    return row_of_patch, weights, rows.size(0)


def segment_of_patch(cu_seqlens: List[int], row_of_patch: torch.Tensor) -> torch.Tensor:
    """"vision.windows": each raster patch's segment (window, or frame for full attention) number."""
    lengths = torch.tensor(cu_seqlens, dtype=torch.long, device=row_of_patch.device)
    segment_of_row = torch.repeat_interleave(torch.arange(len(cu_seqlens) - 1, device=row_of_patch.device),
                                             lengths[1:] - lengths[:-1])
    return segment_of_row.index_select(0, row_of_patch)


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

    def _qkv(self, x: torch.Tensor, cos: torch.Tensor,
             sin: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k (after 2-D RoPE) and v, each [seq, heads, head_dim]: what forward and received share."""
        seq = x.size(0)
        qkv = self.qkv(x).reshape(seq, 3, self.num_heads, self.head_dim).permute(1, 0, 2, 3)
        q, k = apply_vision_rope(qkv[0], qkv[1], cos, sin)
        return q, k, qkv[2]

    def received(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                 groups: List[Tuple[int, torch.Tensor]], weights: torch.Tensor, head_reduce: str,
                 max_rows: int, max_elements: int) -> torch.Tensor:
        """float32 [H', seq]: the attention each row receives, summed over the query rows (weights [seq]),
        recomputed exactly in float32 from the q and k the forward uses, segment group by group."""
        q, k, _ = self._qkv(x, cos, sin)
        out_heads = self.num_heads if head_reduce == "keep" else 1
        if len(groups) == 1 and groups[0][1].numel() == 0:
            return received_in_segments(q, k, groups[0][0], weights, self.scale, head_reduce, max_rows,
                                        max_elements)
        out = torch.zeros(out_heads, x.size(0), dtype=torch.float32, device=x.device)
        for length, rows in groups:
            part = received_in_segments(q.index_select(0, rows), k.index_select(0, rows), length,
                                        weights.index_select(0, rows), self.scale, head_reduce, max_rows,
                                        max_elements)
            out.index_copy_(1, rows, part)
        return out

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                groups: List[Tuple[int, torch.Tensor]]) -> torch.Tensor:
        seq = x.size(0)
        q, k, v = self._qkv(x, cos, sin)
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
        self.norm1 = make_norm(cfg.norm, cfg.hidden_size, 1e-6)
        self.norm2 = make_norm(cfg.norm, cfg.hidden_size, 1e-6)
        self.attn = VisionAttention(cfg.hidden_size, cfg.num_heads)
        if cfg.mlp == "fc":
            self.mlp = FcMLP(cfg.hidden_size, cfg.intermediate_size, cfg.hidden_act)
        else:
            self.mlp = SwiGLU(cfg.hidden_size, cfg.intermediate_size, bias=True)

    def received(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                 window_groups: List[Tuple[int, torch.Tensor]], image_groups: List[Tuple[int, torch.Tensor]],
                 weights: torch.Tensor, head_reduce: str, max_rows: int, max_elements: int) -> torch.Tensor:
        """This block's attention map for the block input x (see VisionAttention.received)."""
        groups = image_groups if self.full_attention else window_groups
        return self.attn.received(self.norm1(x), cos, sin, groups, weights, head_reduce, max_rows, max_elements)

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
        self.ln_q = make_norm(cfg.norm, cfg.hidden_size, 1e-6)
        self.mlp = nn.Sequential(nn.Linear(self.merged_dim, self.merged_dim), nn.GELU(),
                                 nn.Linear(self.merged_dim, cfg.out_hidden_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.ln_q(x).reshape(-1, self.merged_dim))


class VisionTransformer(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.merge = cfg.spatial_merge_size
        self.unit = cfg.spatial_merge_size * cfg.spatial_merge_size
        # 0: no window attention (Qwen2-VL); every block is then a full-attention block.
        self.window_merged = cfg.window_size // cfg.spatial_merge_size // cfg.patch_size
        self.head_dim = cfg.hidden_size // cfg.num_heads
        self.rope_theta = cfg.rope_theta
        self.in_features = cfg.in_channels * cfg.temporal_patch_size * cfg.patch_size * cfg.patch_size
        self.depth = cfg.depth
        self.head_reductions: List[str] = list(HEAD_REDUCTIONS)
        # Chunk bounds of attention_maps, as the decoder's (attn_rows.py); attributes so a test can shrink them.
        self.max_chunk_rows = MAX_CHUNK_ROWS
        self.chunk_elements = CHUNK_ELEMENTS
        self.patch_embed = PatchEmbed(cfg)
        self.blocks = nn.ModuleList([VisionBlock(cfg, i in cfg.fullatt_block_indexes) for i in range(cfg.depth)])
        self.merger = PatchMerger(cfg)

    def layout(self, grid_thw: torch.Tensor) -> Tuple[torch.Tensor, List[int], List[int], torch.Tensor, torch.Tensor]:
        """window_index [tokens/unit] (merged-token ids in window order), window and full-attention
        segment boundaries (patch rows), (row, col) of every patch row in merge-block order, and the
        raster index of every patch row (images in order, then (t, row, col) of the unmerged grid)."""
        device = grid_thw.device
        m = self.merge
        ws = self.window_merged
        window_parts: List[torch.Tensor] = []
        pos_parts: List[torch.Tensor] = []
        raster_parts: List[torch.Tensor] = []
        cu_window: List[int] = [0]
        cu_full: List[int] = [0]
        offset = 0
        patches = 0
        for i in range(grid_thw.size(0)):
            t = int(grid_thw[i, 0])
            h = int(grid_thw[i, 1])
            w = int(grid_thw[i, 2])
            lh = h // m
            lw = w // m
            if ws == 0:
                # No windows: merged tokens keep their order and each frame is one segment.
                window_parts.append(torch.arange(t * lh * lw, device=device) + offset)
                for _ in range(t):
                    cu_window.append(cu_window[-1] + h * w)
            else:
                self._windows(t, lh, lw, ws, offset, device, window_parts, cu_window)
            offset += t * lh * lw
            for _ in range(t):
                cu_full.append(cu_full[-1] + h * w)
            hpos = torch.arange(h, device=device).unsqueeze(1).expand(h, w)
            wpos = torch.arange(w, device=device).unsqueeze(0).expand(h, w)
            hpos = hpos.reshape(lh, m, lw, m).permute(0, 2, 1, 3).reshape(-1)
            wpos = wpos.reshape(lh, m, lw, m).permute(0, 2, 1, 3).reshape(-1)
            pos_parts.append(torch.stack((hpos, wpos), dim=-1).repeat(t, 1))
            frame_start = torch.arange(t, device=device).unsqueeze(1) * (h * w)
            raster_parts.append((frame_start + (hpos * w + wpos).unsqueeze(0)).reshape(-1) + patches)
            patches += t * h * w
        return torch.cat(window_parts), cu_window, cu_full, torch.cat(pos_parts), torch.cat(raster_parts)

    def _windows(self, t: int, lh: int, lw: int, ws: int, offset: int, device: torch.device,
                 window_parts: List[torch.Tensor], cu_window: List[int]):
        """transformers' get_vision_window_index for one image: appends its merged-token ids in window
        order and its window boundaries (patch rows)."""
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

    def _prepare(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> Tuple[
            torch.Tensor, torch.Tensor, torch.Tensor, List[Tuple[int, torch.Tensor]], List[Tuple[int, torch.Tensor]],
            torch.Tensor, torch.Tensor, List[int]]:
        """What every block needs, in window order: (patch embeddings x, cos, sin, window groups,
        full-attention groups, window_index, raster index of each row, window boundaries)."""
        if pixel_values.dim() != 2 or pixel_values.size(1) != self.in_features:
            raise RuntimeError("attnmap: pixel_values must be [N, " + str(self.in_features) + "], got "
                               + str(pixel_values.size()))
        # The layout is a few small integer tensors: build it on the CPU (no tiny GPU kernels, and the
        # caller may keep image_grid_thw on either device), then move it next to the weights.
        window_index, cu_window, cu_full, pos, raster = self.layout(grid_thw.cpu())
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
        raster = raster.to(device).reshape(n // self.unit, self.unit)[window_index].reshape(n)
        cos, sin = vision_cos_sin(pos, self.head_dim, self.rope_theta)
        window_groups = segment_groups(cu_window, device)
        image_groups = segment_groups(cu_full, device)
        return x, cos, sin, window_groups, image_groups, window_index, raster, cu_window

    def forward(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
        """pixel_values [N, C*T*P*P] in HF merge-block row order -> merged features
        [N/unit, out_hidden] in raster order per image, images concatenated."""
        x, cos, sin, window_groups, image_groups, window_index, _, _ = self._prepare(pixel_values, grid_thw)
        for blk in self.blocks:
            x = blk(x, cos, sin, window_groups, image_groups)
        merged = self.merger(x)
        return merged[torch.argsort(window_index)]

    def attention_maps(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor, blocks: List[int],
                       query_patches: torch.Tensor, head_reduce: str) -> Dict[str, torch.Tensor]:
        """The contract of AttnMapQwen2_5_VL.vision_attention (docs/design.md): "vision.B" float32 [H', P]
        per requested block B and "vision.windows" int64 [P], both in raster order."""
        x, cos, sin, window_groups, image_groups, _, raster, cu_window = self._prepare(pixel_values, grid_thw)
        n = x.size(0)
        check_map_arguments(blocks, query_patches, head_reduce, n, self.depth, self.head_reductions)
        row_of_patch, weights, queries = query_weights(raster, query_patches)
        last = -1
        for b in blocks:
            last = max(last, b)
        out: Dict[str, torch.Tensor] = {}
        for i, blk in enumerate(self.blocks):
            # Blocks after the last requested one are skipped (ModuleList loops cannot `break`).
            if i <= last:
                if i in blocks:
                    received = blk.received(x, cos, sin, window_groups, image_groups, weights, head_reduce,
                                            self.max_chunk_rows, self.chunk_elements)
                    out["vision." + str(i)] = (received / float(queries)).index_select(1, row_of_patch)
                x = blk(x, cos, sin, window_groups, image_groups)
        out["vision.windows"] = segment_of_patch(cu_window, row_of_patch)
        return out
