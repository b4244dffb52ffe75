"""Small building blocks shared by the vision towers and the decoder (TorchScript-friendly)."""
import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """Qwen RMSNorm: statistics in float32, cast back, then the gain in the model dtype.

    The order (cast before multiplying by the weight) matters for bf16 parity with transformers.
    """

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dtype)


class SwiGLU(nn.Module):
    """down(silu(gate(x)) * up(x)); the vision tower has biases, the decoder does not."""

    def __init__(self, dim: int, hidden: int, bias: bool):
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=bias)
        self.up_proj = nn.Linear(dim, hidden, bias=bias)
        self.down_proj = nn.Linear(hidden, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class FcMLP(nn.Module):
    """fc2(act(fc1(x))), both with biases: the Qwen2-VL vision block's MLP. `act` is transformers'
    ACT2FN name (config.VISION_ACTIVATIONS), each written as transformers computes it."""

    def __init__(self, dim: int, hidden: int, act: str):
        super().__init__()
        self.act = act
        self.fc1 = nn.Linear(dim, hidden, bias=True)
        self.fc2 = nn.Linear(hidden, dim, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        if self.act == "quick_gelu":
            h = h * torch.sigmoid(1.702 * h)  # transformers' QuickGELUActivation
        elif self.act == "gelu":
            h = F.gelu(h)
        else:
            h = F.silu(h)
        return self.fc2(h)


def make_norm(kind: str, dim: int, eps: float) -> nn.Module:
    """"rms": Qwen RMSNorm (weight only); "layer": torch LayerNorm (weight and bias), as transformers'."""
    if kind == "layer":
        return nn.LayerNorm(dim, eps=eps)
    return RMSNorm(dim, eps)
