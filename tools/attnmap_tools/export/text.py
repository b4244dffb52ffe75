"""Qwen2 decoder with M-RoPE (GQA, q/k/v bias), scriptable; layers can also emit attention rows.

Qwen3-VL's decoder is the same with two config switches (read with getattr, Qwen2.5-VL's TextConfig
lacks them): `attention_bias` false (no q/k/v bias) and `qk_norm` true (an RMSNorm over each head's
query and key before RoPE, transformers' q_norm / k_norm).

`forward` runs a whole prompt (and hands back its post-RoPE keys and values, the KV cache of
generation); `step` runs one new token over that cache (docs/design.md, "Generation").
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .attn_rows import CHUNK_ELEMENTS, MAX_CHUNK_ROWS, attention_rows, reduce_heads
from .layers import RMSNorm, SwiGLU
from .rope import apply_text_rope


class TextAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.num_heads = cfg.num_attention_heads
        self.num_kv_heads = cfg.num_key_value_heads
        self.groups = self.num_heads // self.num_kv_heads
        self.head_dim = cfg.head_dim
        self.scale = float(self.head_dim) ** -0.5
        self.max_chunk_rows = MAX_CHUNK_ROWS
        self.chunk_elements = CHUNK_ELEMENTS
        bias = bool(getattr(cfg, "attention_bias", True))
        self.q_proj = nn.Linear(cfg.hidden_size, self.num_heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(cfg.hidden_size, self.num_kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(cfg.hidden_size, self.num_kv_heads * self.head_dim, bias=bias)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, cfg.hidden_size, bias=False)
        # Per-head q/k RMSNorm (Qwen3-VL); Identity (no parameters) otherwise.
        if bool(getattr(cfg, "qk_norm", False)):
            self.q_norm = RMSNorm(self.head_dim, cfg.rms_norm_eps)
            self.k_norm = RMSNorm(self.head_dim, cfg.rms_norm_eps)
        else:
            self.q_norm = nn.Identity()
            self.k_norm = nn.Identity()

    def _expand_kv(self, x: torch.Tensor) -> torch.Tensor:
        # [KV, S, D] -> [H, S, D], query head h reads kv head h // groups (transformers' repeat_kv).
        # Explicit instead of SDPA's enable_gqa so older libtorch versions can load the file.
        if self.groups == 1:
            return x
        kv, s, d = x.size(0), x.size(1), x.size(2)
        return x.unsqueeze(1).expand(kv, self.groups, s, d).reshape(kv * self.groups, s, d)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, want_rows: bool,
                query_positions: torch.Tensor, head_reduce: str,
                mean_queries: bool) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (output [S, hidden], rows, keys [KV, S, D] after RoPE, values [KV, S, D]); the keys and
        values are the tensors the attention used, returned as views (no copy unless kept)."""
        seq = x.size(0)
        q = self.q_norm(self.q_proj(x).reshape(seq, self.num_heads, self.head_dim)).transpose(0, 1)
        k = self.k_norm(self.k_proj(x).reshape(seq, self.num_kv_heads, self.head_dim)).transpose(0, 1)
        v = self.v_proj(x).reshape(seq, self.num_kv_heads, self.head_dim).transpose(0, 1)
        q = apply_text_rope(q, cos, sin)
        k = apply_text_rope(k, cos, sin)
        out = F.scaled_dot_product_attention(q.unsqueeze(0), self._expand_kv(k).unsqueeze(0),
                                             self._expand_kv(v).unsqueeze(0), is_causal=True,
                                             scale=self.scale)[0]
        out = self.o_proj(out.transpose(0, 1).reshape(seq, self.num_heads * self.head_dim))
        if want_rows:
            rows = attention_rows(q, k, query_positions, self.scale, head_reduce, mean_queries,
                                  self.max_chunk_rows, self.chunk_elements)
        else:
            rows = torch.empty(0, dtype=torch.float32, device=x.device)
        return out, rows, k, v

    def step(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, k_cache: torch.Tensor,
             v_cache: torch.Tensor, want_row: bool,
             head_reduce: str) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One new token x [1, hidden] at the end of a cached sequence (k_cache, v_cache [KV, S, D],
        post-RoPE). The new query attends to all S cached keys and to itself (nothing is in its
        future), so there is no mask. Returns (output [1, hidden], row float32 [H', 1, S+1] or empty,
        keys [KV, S+1, D], values [KV, S+1, D]).

        Written like transformers' eager attention (scores and softmax in float32, probabilities cast
        to the model dtype for the value product): for a single query row that is O(S) work and its
        float32 probabilities are the attention row itself, exact, with no second computation. Grouped
        query heads are handled by reshaping q to [KV, groups, 1, D], not by copying the cache per head.
        """
        q = self.q_norm(self.q_proj(x).reshape(1, self.num_heads, self.head_dim)).transpose(0, 1)
        k = self.k_norm(self.k_proj(x).reshape(1, self.num_kv_heads, self.head_dim)).transpose(0, 1)
        v = self.v_proj(x).reshape(1, self.num_kv_heads, self.head_dim).transpose(0, 1)
        q = apply_text_rope(q, cos, sin)
        k = apply_text_rope(k, cos, sin)
        keys = torch.cat((k_cache, k.to(k_cache.dtype)), dim=1)
        values = torch.cat((v_cache, v.to(v_cache.dtype)), dim=1)
        total = keys.size(1)
        qg = q.to(torch.float32).reshape(self.num_kv_heads, self.groups, 1, self.head_dim)
        kt = keys.to(torch.float32).unsqueeze(1).transpose(-1, -2)  # [KV, 1, D, S+1]
        scores = torch.matmul(qg, kt).reshape(self.num_heads, 1, total) * self.scale
        probs = torch.softmax(scores, dim=-1)  # float32 [H, 1, S+1]
        pg = probs.to(values.dtype).reshape(self.num_kv_heads, self.groups, 1, total)
        out = torch.matmul(pg, values.unsqueeze(1)).reshape(self.num_heads, 1, self.head_dim)
        out = self.o_proj(out.transpose(0, 1).reshape(1, self.num_heads * self.head_dim))
        if want_row:
            row = reduce_heads(probs, head_reduce)
        else:
            row = torch.empty(0, dtype=torch.float32, device=x.device)
        return out, row, keys, values


class DecoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = TextAttention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = SwiGLU(cfg.hidden_size, cfg.intermediate_size, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, want_rows: bool,
                query_positions: torch.Tensor, head_reduce: str,
                mean_queries: bool) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (hidden, rows, keys, values): see TextAttention.forward."""
        attn, rows, k, v = self.self_attn(self.input_layernorm(x), cos, sin, want_rows, query_positions,
                                          head_reduce, mean_queries)
        x = x + attn
        return x + self.mlp(self.post_attention_layernorm(x)), rows, k, v

    def step(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, k_cache: torch.Tensor,
             v_cache: torch.Tensor, want_row: bool,
             head_reduce: str) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One cached decoding step of this layer: see TextAttention.step."""
        attn, row, keys, values = self.self_attn.step(self.input_layernorm(x), cos, sin, k_cache, v_cache,
                                                      want_row, head_reduce)
        x = x + attn
        return x + self.mlp(self.post_attention_layernorm(x)), row, keys, values
