"""Attention probabilities for a few query rows, recomputed in float32 and reduced chunk by chunk.

Peak memory is one chunk of [heads, rows, S] scores, independent of how many layers are requested.
"""
from typing import List

import torch

# The head reductions of the forward contract (docs/design.md), by name: "keep" every head, or reduce
# them to one row by their "mean" or "max". The only definition on the Python side.
HEAD_REDUCTIONS = ["keep", "mean", "max"]

# Defaults for the chunk size: at most 256 rows, and one float32 score chunk (heads * rows * keys) of
# at most 64 Mi elements = 256 MiB. The module keeps them as attributes so a test can shrink them.
CHUNK_ELEMENTS = 1 << 26
MAX_CHUNK_ROWS = 256


def attention_rows(q: torch.Tensor, k: torch.Tensor, query_positions: torch.Tensor, scale: float,
                   head_reduce: str, mean_queries: bool, max_rows: int, max_elements: int) -> torch.Tensor:
    """q [H, S, D] and k [KV, S, D] after RoPE (head h reads kv head h // (H/KV)); causal.

    Returns float32 [H', Q', S]: H' = H (head_reduce "keep") or 1 ("mean", "max"), Q' = Q or 1 (mean_queries).
    """
    heads = q.size(0)
    kv_heads = k.size(0)
    groups = heads // kv_heads
    seq = k.size(1)
    dim = q.size(2)
    n_rows = query_positions.size(0)
    kt = k.to(torch.float32).unsqueeze(1).transpose(-1, -2)  # [KV, 1, D, S]
    key_index = torch.arange(seq, device=k.device)
    rows = max(1, min(max_rows, max_elements // max(1, heads * seq)))
    out_heads = heads if head_reduce == "keep" else 1
    total = torch.zeros(out_heads, 1, seq, dtype=torch.float32, device=q.device)
    pieces: List[torch.Tensor] = []
    for start in range(0, n_rows, rows):
        pos = query_positions[start:start + rows]
        c = pos.size(0)
        qc = q.index_select(1, pos).to(torch.float32).reshape(kv_heads, groups, c, dim)
        scores = torch.matmul(qc, kt).reshape(heads, c, seq) * scale
        future = key_index.unsqueeze(0) > pos.unsqueeze(1)  # [c, S]
        scores = scores.masked_fill(future.unsqueeze(0), float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        if head_reduce == "mean":
            probs = probs.mean(dim=0, keepdim=True)
        elif head_reduce == "max":
            probs = probs.amax(dim=0, keepdim=True)
        if mean_queries:
            total = total + probs.sum(dim=1, keepdim=True)
        else:
            pieces.append(probs)
    if mean_queries:
        return total / float(max(1, n_rows))
    if len(pieces) == 0:
        return torch.zeros(out_heads, 0, seq, dtype=torch.float32, device=q.device)
    return torch.cat(pieces, dim=1)


def reduce_heads(probs: torch.Tensor, head_reduce: str) -> torch.Tensor:
    """probs [H, Q, S] -> [H', Q, S] by the contract's head reduction (same ops as attention_rows)."""
    if head_reduce == "mean":
        return probs.mean(dim=0, keepdim=True)
    if head_reduce == "max":
        return probs.amax(dim=0, keepdim=True)
    return probs


def received_in_segments(q: torch.Tensor, k: torch.Tensor, length: int, weights: torch.Tensor, scale: float,
                         head_reduce: str, max_rows: int, max_elements: int) -> torch.Tensor:
    """Bidirectional attention inside consecutive segments of `length` rows (vision windows or frames):
    q, k [n, heads, D] after RoPE, weights float32 [n] (how often each row is a query, 0 = not one).

    Returns float32 [H', n]: for every key row, the sum over query rows of its segment of
    weight * probability (after head_reduce, as attention_rows does: heads first, then queries).
    Scores and softmax are float32, one chunk of [segments, heads, rows, length] at a time (at most
    max_elements, rows <= max_rows), so peak memory is O(chunk x length), never O(n x n). Segments
    without a query are skipped: a box query computes only the windows it touches.
    """
    n = q.size(0)
    heads = q.size(1)
    dim = q.size(2)
    count = n // length
    out_heads = heads if head_reduce == "keep" else 1
    qs = q.to(torch.float32).reshape(count, length, heads, dim).transpose(1, 2)  # [count, H, L, D]
    kt = k.to(torch.float32).reshape(count, length, heads, dim).permute(0, 2, 3, 1)  # [count, H, D, L]
    ws = weights.reshape(count, length)
    wanted = torch.nonzero(ws.sum(dim=1) > 0).reshape(-1)
    rows = max(1, min(length, max_rows, max_elements // max(1, heads * length)))
    segs = max(1, max_elements // max(1, heads * rows * length))
    total = torch.zeros(count, out_heads, length, dtype=torch.float32, device=q.device)
    for s0 in range(0, wanted.size(0), segs):
        seg = wanted[s0:s0 + segs]
        c = seg.size(0)
        qc = qs.index_select(0, seg)
        kc = kt.index_select(0, seg)
        wc = ws.index_select(0, seg)
        acc = torch.zeros(c, out_heads, 1, length, dtype=torch.float32, device=q.device)
        for r0 in range(0, length, rows):
            probs = torch.softmax(torch.matmul(qc[:, :, r0:r0 + rows], kc) * scale, dim=-1)  # [c, H, r, L]
            if head_reduce == "mean":
                probs = probs.mean(dim=1, keepdim=True)
            elif head_reduce == "max":
                probs = probs.amax(dim=1, keepdim=True)
            w = wc[:, r0:r0 + rows]
            # The weighted sum over this chunk's query rows is one small matmul: [c, 1, 1, r] x [c, H', r, L].
            acc = acc + torch.matmul(w.reshape(c, 1, 1, w.size(1)), probs)
        total.index_copy_(0, seg, acc.reshape(c, out_heads, length))
    return total.permute(1, 0, 2).reshape(out_heads, n)
