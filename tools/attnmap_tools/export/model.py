"""The exported module: Qwen2.5-VL forward that returns attention rows of chosen decoder layers.

Parameter names follow the original hub checkpoint layout (visual.*, model.*, lm_head.weight) so that
loading is a rename-free copy (see checkpoint.py). The forward signature is the contract in
docs/design.md.
"""
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig, TextConfig
from .layers import RMSNorm
from .rope import mrope_cos_sin
from .text import DecoderLayer
from .vision import VisionTransformer


class TextModel(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList([DecoderLayer(cfg) for _ in range(cfg.num_hidden_layers)])
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class LMHead(nn.Module):
    """Holds an empty weight when embeddings are tied, so the file stores the matrix once."""

    def __init__(self, cfg: TextConfig):
        super().__init__()
        shape = [0] if cfg.tie_word_embeddings else [cfg.vocab_size, cfg.hidden_size]
        self.weight = nn.Parameter(torch.empty(shape))


class AttnMapQwen2_5_VL(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.visual = VisionTransformer(cfg.vision)
        self.model = TextModel(cfg.text)
        self.lm_head = LMHead(cfg.text)
        self.tie_word_embeddings = cfg.text.tie_word_embeddings
        self.num_layers = cfg.text.num_hidden_layers
        self.head_dim = cfg.text.head_dim
        self.rope_theta = cfg.text.rope_theta
        self.mrope_section: List[int] = list(cfg.text.mrope_section)
        self.image_token_id = cfg.image_token_id

    def _check_inputs(self, input_ids: torch.Tensor, image_grid_thw: torch.Tensor, position_ids: torch.Tensor,
                      layers: List[int], query_positions: torch.Tensor, head_reduce: int):
        if input_ids.dim() != 1:
            raise RuntimeError("attnmap: input_ids must be 1-D [S] (no batch dimension), got "
                               + str(input_ids.size()))
        seq = input_ids.size(0)
        if position_ids.dim() != 2 or position_ids.size(0) != 3 or position_ids.size(1) != seq:
            raise RuntimeError("attnmap: position_ids must be [3, " + str(seq) + "], got "
                               + str(position_ids.size()))
        if image_grid_thw.numel() > 0 and (image_grid_thw.dim() != 2 or image_grid_thw.size(1) != 3):
            raise RuntimeError("attnmap: image_grid_thw must be [I, 3], got " + str(image_grid_thw.size()))
        for layer in layers:
            if layer < 0 or layer >= self.num_layers:
                raise RuntimeError("attnmap: layer " + str(layer) + " out of range [0, "
                                   + str(self.num_layers - 1) + "]")
        if query_positions.dim() != 1:
            raise RuntimeError("attnmap: query_positions must be 1-D [Q]")
        if query_positions.numel() > 0:
            if int(query_positions.min()) < 0 or int(query_positions.max()) >= seq:
                raise RuntimeError("attnmap: query_positions must lie in [0, " + str(seq - 1) + "]")
        elif len(layers) > 0:
            raise RuntimeError("attnmap: query_positions is empty but layers were requested")
        if head_reduce < 0 or head_reduce > 2:
            raise RuntimeError("attnmap: head_reduce must be 0 (keep), 1 (mean) or 2 (max), got "
                               + str(head_reduce))

    @torch.jit.export
    def vision_features(self, pixel_values: torch.Tensor, image_grid_thw: torch.Tensor) -> torch.Tensor:
        """Merged image features [tokens, hidden] in raster order (what replaces the image pads)."""
        return self.visual(pixel_values, image_grid_thw)

    @torch.jit.export
    def embed(self, input_ids: torch.Tensor, pixel_values: torch.Tensor,
              image_grid_thw: torch.Tensor) -> torch.Tensor:
        """Decoder input embeddings [S, hidden] with image features scattered into the image pads."""
        input_ids = input_ids.to(self.model.embed_tokens.weight.device)
        h = self.model.embed_tokens(input_ids)
        image_mask = input_ids == self.image_token_id
        n_tokens = int(image_mask.sum())
        if image_grid_thw.numel() == 0:
            if n_tokens != 0:
                raise RuntimeError("attnmap: input_ids has " + str(n_tokens) + " image tokens but no image was given")
            return h
        feats = self.visual(pixel_values, image_grid_thw)
        if n_tokens != feats.size(0):
            raise RuntimeError("attnmap: image features and image tokens do not match: tokens "
                               + str(n_tokens) + ", features " + str(feats.size(0)))
        return h.masked_scatter(image_mask.unsqueeze(-1), feats.to(h.dtype))

    def forward(self, input_ids: torch.Tensor, pixel_values: torch.Tensor, image_grid_thw: torch.Tensor,
                position_ids: torch.Tensor, layers: List[int], query_positions: torch.Tensor, head_reduce: int,
                mean_queries: bool, return_logits: bool) -> Tuple[List[torch.Tensor], torch.Tensor]:
        self._check_inputs(input_ids, image_grid_thw, position_ids, layers, query_positions, head_reduce)
        device = self.model.embed_tokens.weight.device
        input_ids = input_ids.to(device)
        position_ids = position_ids.to(device)
        query_positions = query_positions.to(device)
        h = self.embed(input_ids, pixel_values, image_grid_thw)
        cos, sin = mrope_cos_sin(position_ids, self.head_dim, self.rope_theta, self.mrope_section, h.dtype)
        last = self.num_layers - 1
        if not return_logits:
            last = -1
            for wanted in layers:
                last = max(last, wanted)
        rows: Dict[int, torch.Tensor] = {}
        for i, decoder_layer in enumerate(self.model.layers):
            # Layers after the last one needed are skipped (ModuleList loops cannot `break` in TorchScript).
            if i <= last:
                want = i in layers
                h, r = decoder_layer(h, cos, sin, want, query_positions, head_reduce, mean_queries)
                if want:
                    rows[i] = r
        out: List[torch.Tensor] = []
        for wanted in layers:
            out.append(rows[wanted])
        logits = torch.empty(0, dtype=torch.float32, device=h.device)
        if return_logits:
            weight = self.model.embed_tokens.weight if self.tie_word_embeddings else self.lm_head.weight
            logits = F.linear(self.model.norm(h[-1:]), weight)[0].to(torch.float32)
        return out, logits
