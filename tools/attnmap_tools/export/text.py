"""Qwen2 decoder with M-RoPE (GQA, q/k/v bias), scriptable; layers can also emit attention rows."""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .attn_rows import CHUNK_ELEMENTS, MAX_CHUNK_ROWS, attention_rows
from .config import TextConfig
from .layers import RMSNorm, SwiGLU
from .rope import apply_text_rope


class TextAttention(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.num_heads = cfg.num_attention_heads
        self.num_kv_heads = cfg.num_key_value_heads
        self.groups = self.num_heads // self.num_kv_heads
        self.head_dim = cfg.head_dim
        self.scale = float(self.head_dim) ** -0.5
        self.max_chunk_rows = MAX_CHUNK_ROWS
        self.chunk_elements = CHUNK_ELEMENTS
        self.q_proj = nn.Linear(cfg.hidden_size, self.num_heads * self.head_dim, bias=True)
        self.k_proj = nn.Linear(cfg.hidden_size, self.num_kv_heads * self.head_dim, bias=True)
        self.v_proj = nn.Linear(cfg.hidden_size, self.num_kv_heads * self.head_dim, bias=True)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, cfg.hidden_size, bias=False)

    def _expand_kv(self, x: torch.Tensor) -> torch.Tensor:
        # [KV, S, D] -> [H, S, D], query head h reads kv head h // groups (transformers' repeat_kv).
        # Explicit instead of SDPA's enable_gqa so older libtorch versions can load the file.
        if self.groups == 1:
            return x
        kv, s, d = x.size(0), x.size(1), x.size(2)
        return x.unsqueeze(1).expand(kv, self.groups, s, d).reshape(kv * self.groups, s, d)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, want_rows: bool,
                query_positions: torch.Tensor, head_reduce: str,
                mean_queries: bool) -> Tuple[torch.Tensor, torch.Tensor]:
        seq = x.size(0)
        q = self.q_proj(x).reshape(seq, self.num_heads, self.head_dim).transpose(0, 1)
        k = self.k_proj(x).reshape(seq, self.num_kv_heads, self.head_dim).transpose(0, 1)
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
        return out, rows


class DecoderLayer(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = TextAttention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = SwiGLU(cfg.hidden_size, cfg.intermediate_size, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, want_rows: bool,
                query_positions: torch.Tensor, head_reduce: str,
                mean_queries: bool) -> Tuple[torch.Tensor, torch.Tensor]:
        attn, rows = self.self_attn(self.input_layernorm(x), cos, sin, want_rows, query_positions,
                                    head_reduce, mean_queries)
        x = x + attn
        return x + self.mlp(self.post_attention_layernorm(x)), rows
