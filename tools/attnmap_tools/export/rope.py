"""Rotary embeddings: 2-D (h, w) RoPE of the vision tower and the 3-axis M-RoPE of the decoder.

Frequencies are computed on the CPU in float32 exactly as transformers does at init and only then moved,
so that a module moved to CUDA or cast to bf16 still uses bit-identical float32 inverse frequencies
(they are deliberately not buffers: `.to(bfloat16)` would round them).
"""
from typing import List, Tuple

import torch


def inv_freq(dim: int, theta: float, device: torch.device) -> torch.Tensor:
    exponent = torch.arange(0, dim, 2, dtype=torch.float32) / dim
    return (1.0 / (theta ** exponent)).to(device)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.size(-1) // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def vision_cos_sin(pos_hw: torch.Tensor, head_dim: int, theta: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """pos_hw [N, 2] (row, col) -> cos, sin [N, head_dim] float32: first half of the rotary pairs uses
    height frequencies, second half width frequencies (head_dim/4 frequencies each)."""
    freq = inv_freq(head_dim // 2, theta, pos_hw.device)
    angles = pos_hw.to(torch.float32).unsqueeze(-1) * freq  # [N, 2, head_dim/4]
    cos = angles.cos()
    sin = angles.sin()
    cos = torch.cat((cos[:, 0], cos[:, 1]), dim=-1)
    sin = torch.cat((sin[:, 0], sin[:, 1]), dim=-1)
    return torch.cat((cos, cos), dim=-1), torch.cat((sin, sin), dim=-1)


def apply_vision_rope(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor,
                      sin: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """q, k [S, heads, head_dim]; rotation in float32 whatever the model dtype (as transformers does)."""
    dtype = q.dtype
    c = cos.unsqueeze(-2)
    s = sin.unsqueeze(-2)
    qf = q.to(torch.float32)
    kf = k.to(torch.float32)
    q2 = qf * c + rotate_half(qf) * s
    k2 = kf * c + rotate_half(kf) * s
    return q2.to(dtype), k2.to(dtype)


def mrope_cos_sin(position_ids: torch.Tensor, head_dim: int, theta: float, mrope_section: List[int],
                  dtype: torch.dtype) -> Tuple[torch.Tensor, torch.Tensor]:
    """position_ids [3, S] (t, h, w) -> cos, sin [S, head_dim] in `dtype`.

    Frequency chunk i of mrope_section takes its angle from axis i % 3 (contiguous blocks, not
    interleaved); the angles are float32 and only the final cos/sin are cast to the hidden dtype.
    """
    freq = inv_freq(head_dim, theta, position_ids.device)
    angles = position_ids.to(torch.float32).unsqueeze(-1) * freq  # [3, S, head_dim/2]
    cos_all = angles.cos()
    sin_all = angles.sin()
    cos_parts: List[torch.Tensor] = []
    sin_parts: List[torch.Tensor] = []
    start = 0
    for i, width in enumerate(mrope_section):
        cos_parts.append(cos_all[i % 3, :, start:start + width])
        sin_parts.append(sin_all[i % 3, :, start:start + width])
        start += width
    cos = torch.cat(cos_parts, dim=-1)
    sin = torch.cat(sin_parts, dim=-1)
    return torch.cat((cos, cos), dim=-1).to(dtype), torch.cat((sin, sin), dim=-1).to(dtype)


def apply_text_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [heads, S, head_dim], cos/sin [S, head_dim] already in the model dtype (no upcast, as HF)."""
    return x * cos + rotate_half(x) * sin


def mrope_interleaved_cos_sin(position_ids: torch.Tensor, head_dim: int, theta: float, mrope_section: List[int],
                              dtype: torch.dtype) -> Tuple[torch.Tensor, torch.Tensor]:
    """Qwen3-VL's interleaved M-RoPE: position_ids [3, S] (t, h, w) -> cos, sin [S, head_dim] in `dtype`.

    Frequency j takes its angle from the h axis when j % 3 == 1 and j < 3 * mrope_section[1], from the
    w axis when j % 3 == 2 and j < 3 * mrope_section[2], else from t (transformers'
    Qwen3VLTextRotaryEmbedding.recomposition_frequencies). Angles float32, cast at the end as HF does.
    """
    freq = inv_freq(head_dim, theta, position_ids.device)
    angles = position_ids.to(torch.float32).unsqueeze(-1) * freq  # [3, S, head_dim/2]
    half = freq.size(0)
    j = torch.arange(half, device=position_ids.device)
    axis = torch.zeros(half, dtype=torch.long, device=position_ids.device)
    axis = torch.where((j % 3 == 1) & (j < 3 * mrope_section[1]), torch.ones_like(axis), axis)
    axis = torch.where((j % 3 == 2) & (j < 3 * mrope_section[2]), torch.full_like(axis, 2), axis)
    picked = angles.gather(0, axis.view(1, 1, half).expand(1, angles.size(1), half))[0]  # [S, head_dim/2]
    cos = picked.cos()
    sin = picked.sin()
    return torch.cat((cos, cos), dim=-1).to(dtype), torch.cat((sin, sin), dim=-1).to(dtype)
