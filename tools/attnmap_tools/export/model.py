"""The exported module of families qwen2_5_vl and qwen2_vl: a forward that returns attention rows of
chosen decoder layers.

The two families share the decoder, the M-RoPE and every exported method; their vision towers differ
only in parts that VisionConfig selects (vision.py), so AttnMapQwen2_VL is the same module under the
family's own name.

Parameter names follow the original hub checkpoint layout (visual.*, model.*, lm_head.weight) so that
loading is a rename-free copy (see checkpoint.py). The forward signature is the contract in
docs/design.md.
"""
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .attn_rows import HEAD_REDUCTIONS
from .config import ModelConfig, TextConfig
from .layers import RMSNorm
from .rope import mrope_cos_sin, mrope_interleaved_cos_sin
from .text import DecoderLayer
from .vision import VisionTransformer


# The named inputs of forward(); a missing or extra name is refused (docs/design.md, "forward contract").
INPUT_NAMES = ["input_ids", "pixel_values", "image_grid_thw", "position_ids"]
# Inputs that may be left out: a video's patches and grids (docs/video.md), as the HF processor names them.
OPTIONAL_INPUT_NAMES = ["pixel_values_videos", "video_grid_thw"]


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
        self.num_kv_heads = cfg.text.num_key_value_heads  # the cache's first dimension (decode_step checks it)
        self.rope_theta = cfg.text.rope_theta
        self.mrope_section: List[int] = list(cfg.text.mrope_section)
        self.mrope_interleaved = False  # Qwen3-VL's subclass interleaves the M-RoPE axes (rope.py)
        self.image_token_id = cfg.image_token_id
        self.video_token_id = cfg.video_token_id
        self.input_names: List[str] = list(INPUT_NAMES)
        self.optional_input_names: List[str] = list(OPTIONAL_INPUT_NAMES)
        self.head_reductions: List[str] = list(HEAD_REDUCTIONS)

    def _check_inputs(self, inputs: Dict[str, torch.Tensor], layers: List[int], query_positions: torch.Tensor,
                      head_reduce: str):
        for name in self.input_names:
            if name not in inputs:
                raise RuntimeError("attnmap: inputs has no '" + name + "'; the forward takes exactly "
                                   + ", ".join(self.input_names))
        for name in inputs.keys():
            if name not in self.input_names and name not in self.optional_input_names:
                raise RuntimeError("attnmap: inputs has an unknown key '" + name + "'; the forward takes "
                                   + ", ".join(self.input_names) + " and optionally "
                                   + ", ".join(self.optional_input_names))
        if ("pixel_values_videos" in inputs) != ("video_grid_thw" in inputs):
            raise RuntimeError("attnmap: pixel_values_videos and video_grid_thw go together")
        input_ids = inputs["input_ids"]
        image_grid_thw = inputs["image_grid_thw"]
        position_ids = inputs["position_ids"]
        if input_ids.dim() != 1:
            raise RuntimeError("attnmap: input_ids must be 1-D [S] (no batch dimension), got "
                               + str(input_ids.size()))
        seq = input_ids.size(0)
        if position_ids.dim() != 2 or position_ids.size(0) != 3 or position_ids.size(1) != seq:
            raise RuntimeError("attnmap: position_ids must be [3, " + str(seq) + "], got "
                               + str(position_ids.size()))
        if image_grid_thw.numel() > 0 and (image_grid_thw.dim() != 2 or image_grid_thw.size(1) != 3):
            raise RuntimeError("attnmap: image_grid_thw must be [I, 3], got " + str(image_grid_thw.size()))
        if "video_grid_thw" in inputs:
            video_grid_thw = inputs["video_grid_thw"]
            if video_grid_thw.numel() > 0 and (video_grid_thw.dim() != 2 or video_grid_thw.size(1) != 3):
                raise RuntimeError("attnmap: video_grid_thw must be [V, 3], got " + str(video_grid_thw.size()))
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
        if head_reduce not in self.head_reductions:
            raise RuntimeError("attnmap: head_reduce must be one of " + ", ".join(self.head_reductions)
                               + ", got '" + head_reduce + "'")

    @torch.jit.export
    def vision_features(self, pixel_values: torch.Tensor, image_grid_thw: torch.Tensor) -> torch.Tensor:
        """Merged image features [tokens, hidden] in raster order (what replaces the image pads)."""
        return self.visual(pixel_values, image_grid_thw)

    @torch.jit.export
    def vision_attention(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor, blocks: List[int],
                         query_patches: torch.Tensor, head_reduce: str) -> Dict[str, torch.Tensor]:
        """Attention maps inside the vision tower (docs/design.md, "vision_attention").

        pixel_values / grid_thw as for vision_features (an image's or a video's, HF row order);
        query_patches int64 [Q], raster indices (image, t, row, col of the unmerged patch grid), empty =
        every patch. Returns "vision.B" float32 [H', P] for each requested block B (the attention each
        patch receives, averaged over the query patches, raster order; H' = heads or 1 by head_reduce)
        and "vision.windows" int64 [P] (each patch's attention window). Runs the tower up to the last
        requested block only.
        """
        if grid_thw.dim() != 2 or grid_thw.size(0) == 0 or grid_thw.size(1) != 3:
            raise RuntimeError("attnmap: grid_thw must be [I, 3] with I >= 1, got " + str(grid_thw.size()))
        return self.visual.attention_maps(pixel_values, grid_thw, blocks, query_patches, head_reduce)

    def _scatter_visual(self, h: torch.Tensor, input_ids: torch.Tensor, token_id: int, what: str,
                        pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
        """The vision tower's merged features of `pixel_values` written over the `token_id` pads."""
        mask = input_ids == token_id
        n_tokens = int(mask.sum())
        if grid_thw.numel() == 0:
            if n_tokens != 0:
                raise RuntimeError("attnmap: input_ids has " + str(n_tokens) + " " + what + " tokens but no "
                                   + what + " was given")
            return h
        feats = self.visual(pixel_values, grid_thw)
        if n_tokens != feats.size(0):
            raise RuntimeError("attnmap: " + what + " features and " + what + " tokens do not match: tokens "
                               + str(n_tokens) + ", features " + str(feats.size(0)))
        return h.masked_scatter(mask.unsqueeze(-1), feats.to(h.dtype))

    @torch.jit.export
    def embed(self, input_ids: torch.Tensor, pixel_values: torch.Tensor,
              image_grid_thw: torch.Tensor) -> torch.Tensor:
        """Decoder input embeddings [S, hidden] with image features scattered into the image pads."""
        input_ids = input_ids.to(self.model.embed_tokens.weight.device)
        h = self.model.embed_tokens(input_ids)
        return self._scatter_visual(h, input_ids, self.image_token_id, "image", pixel_values, image_grid_thw)

    def _embed_inputs(self, inputs: Dict[str, torch.Tensor], input_ids: torch.Tensor) -> torch.Tensor:
        """embed() plus the video, when the inputs carry one: its temporal patches go through the same
        vision tower (full attention within each temporal patch, windows within it) into the video pads."""
        h = self.embed(input_ids, inputs["pixel_values"], inputs["image_grid_thw"])
        empty = torch.zeros(0, 3, dtype=torch.long)
        video_grid_thw = inputs["video_grid_thw"] if "video_grid_thw" in inputs else empty
        video_pixels = inputs["pixel_values_videos"] if "pixel_values_videos" in inputs else empty
        return self._scatter_visual(h, input_ids, self.video_token_id, "video", video_pixels, video_grid_thw)

    def forward(self, inputs: Dict[str, torch.Tensor], layers: List[int], query_positions: torch.Tensor,
                head_reduce: str, mean_queries: bool, return_logits: bool) -> Dict[str, torch.Tensor]:
        """The contract of docs/design.md: named inputs in, named outputs out ("layers.N" for each
        requested layer N, "logits" when asked), so that new inputs and outputs are additions."""
        last = self.num_layers - 1
        if not return_logits:
            last = -1
            for wanted in layers:
                last = max(last, wanted)
        h, out = self._prompt_pass(inputs, layers, query_positions, head_reduce, mean_queries, last, False)
        if return_logits:
            out["logits"] = self._last_logits(h)
        return out

    # ---- Generation (docs/design.md, "Generation"): prefill once, then one decode_step per token. ----

    def _prompt_pass(self, inputs: Dict[str, torch.Tensor], layers: List[int], query_positions: torch.Tensor,
                     head_reduce: str, mean_queries: bool, last: int,
                     keep_cache: bool) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """What forward and prefill share: the checks, the embedding (vision tower included), M-RoPE
        and the decoder stack up to layer `last`."""
        self._check_inputs(inputs, layers, query_positions, head_reduce)
        device = self.model.embed_tokens.weight.device
        input_ids = inputs["input_ids"].to(device)
        position_ids = inputs["position_ids"].to(device)
        query_positions = query_positions.to(device)
        h = self._embed_inputs(inputs, input_ids)
        cos, sin = self._rope(position_ids, h.dtype)
        return self._decoder_stack(h, cos, sin, layers, query_positions, head_reduce, mean_queries, last,
                                   keep_cache, [], input_ids.new_empty(0))

    def _rope(self, position_ids: torch.Tensor, dtype: torch.dtype) -> Tuple[torch.Tensor, torch.Tensor]:
        """cos, sin [S, head_dim] of the decoder's M-RoPE at position_ids [3, S]."""
        if self.mrope_interleaved:
            return mrope_interleaved_cos_sin(position_ids, self.head_dim, self.rope_theta, self.mrope_section, dtype)
        return mrope_cos_sin(position_ids, self.head_dim, self.rope_theta, self.mrope_section, dtype)

    def _decoder_stack(self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, layers: List[int],
                       query_positions: torch.Tensor, head_reduce: str, mean_queries: bool, last: int,
                       keep_cache: bool, deepstack: List[torch.Tensor],
                       visual_rows: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """The one decoder loop of forward and prefill: layers 0..last over the whole prompt; "layers.N"
        rows for the requested layers and, with keep_cache, every layer's post-RoPE keys and values
        ("cache.k.N", "cache.v.N", [KV, S, D] in the model dtype). deepstack (Qwen3-VL; empty for the
        other families): after layer i, level i of the tower's features is added to the visual rows."""
        out: Dict[str, torch.Tensor] = {}
        for i, decoder_layer in enumerate(self.model.layers):
            # Layers after the last one needed are skipped (ModuleList loops cannot `break` in TorchScript).
            if i <= last:
                want = i in layers
                h, r, k, v = decoder_layer(h, cos, sin, want, query_positions, head_reduce, mean_queries)
                if want:
                    out["layers." + str(i)] = r
                if keep_cache:
                    out["cache.k." + str(i)] = k.contiguous()
                    out["cache.v." + str(i)] = v.contiguous()
                if i < len(deepstack):
                    h = h.index_add(0, visual_rows, deepstack[i].to(h.dtype))
        return h, out

    def _last_logits(self, h: torch.Tensor) -> torch.Tensor:
        """float32 [vocab] logits of the last row of h (the same expression as forward's)."""
        weight = self.model.embed_tokens.weight if self.tie_word_embeddings else self.lm_head.weight
        return F.linear(self.model.norm(h[-1:]), weight)[0].to(torch.float32)

    @torch.jit.export
    def prefill(self, inputs: Dict[str, torch.Tensor], layers: List[int], query_positions: torch.Tensor,
                head_reduce: str, mean_queries: bool) -> Dict[str, torch.Tensor]:
        """forward(..., return_logits=True) plus the KV cache of every decoder layer: "layers.N",
        "logits" (last position, float32 [vocab]), "cache.k.N" / "cache.v.N" for N in 0..layers-1.
        The vision tower runs here, once; decode_step never runs it."""
        h, out = self._prompt_pass(inputs, layers, query_positions, head_reduce, mean_queries,
                                   self.num_layers - 1, True)
        out["logits"] = self._last_logits(h)
        return out

    def _check_step(self, token: torch.Tensor, position_ids: torch.Tensor, cache: Dict[str, torch.Tensor],
                    layers: List[int], head_reduce: str):
        if token.dim() != 1 or token.size(0) != 1:
            raise RuntimeError("attnmap: decode_step token must be int64 [1], got " + str(token.size()))
        if position_ids.dim() != 2 or position_ids.size(0) != 3 or position_ids.size(1) != 1:
            raise RuntimeError("attnmap: decode_step position_ids must be [3, 1], got " + str(position_ids.size()))
        for layer in layers:
            if layer < 0 or layer >= self.num_layers:
                raise RuntimeError("attnmap: layer " + str(layer) + " out of range [0, "
                                   + str(self.num_layers - 1) + "]")
        if head_reduce not in self.head_reductions:
            raise RuntimeError("attnmap: head_reduce must be one of " + ", ".join(self.head_reductions)
                               + ", got '" + head_reduce + "'")
        seq = -1
        for i in range(self.num_layers):
            for kind in ["k", "v"]:
                name = "cache." + kind + "." + str(i)
                if name not in cache:
                    raise RuntimeError("attnmap: cache has no '" + name + "' (pass prefill's or the last "
                                       "decode_step's cache.k.N / cache.v.N for every layer)")
                t = cache[name]
                if t.dim() != 3 or t.size(0) != self.num_kv_heads or t.size(2) != self.head_dim:
                    raise RuntimeError("attnmap: " + name + " must be [" + str(self.num_kv_heads) + ", S, "
                                       + str(self.head_dim) + "], got " + str(t.size()))
                if seq < 0:
                    seq = t.size(1)
                elif t.size(1) != seq:
                    raise RuntimeError("attnmap: cache entries hold different lengths (" + name + " has "
                                       + str(t.size(1)) + ", expected " + str(seq) + ")")

    @torch.jit.export
    def decode_step(self, token: torch.Tensor, position_ids: torch.Tensor, cache: Dict[str, torch.Tensor],
                    layers: List[int], head_reduce: str) -> Dict[str, torch.Tensor]:
        """One greedy-generation step: token int64 [1] at M-RoPE position position_ids int64 [3, 1]
        (generation.decode_position_ids), over the cache of the S tokens before it. Returns "logits"
        (float32 [vocab], the next token's), "layers.N" (float32 [H', 1, S+1]: this token's attention
        over every key, itself included) and the cache with this token appended ("cache.k.N",
        "cache.v.N", [KV, S+1, D]). Only the new token is computed: O(S) per layer, no vision tower."""
        self._check_step(token, position_ids, cache, layers, head_reduce)
        device = self.model.embed_tokens.weight.device
        h = self.model.embed_tokens(token.to(device))
        cos, sin = self._rope(position_ids.to(device), h.dtype)
        out: Dict[str, torch.Tensor] = {}
        for i, decoder_layer in enumerate(self.model.layers):
            want = i in layers
            k_name = "cache.k." + str(i)
            v_name = "cache.v." + str(i)
            h, row, k, v = decoder_layer.step(h, cos, sin, cache[k_name].to(device), cache[v_name].to(device),
                                              want, head_reduce)
            if want:
                out["layers." + str(i)] = row
            out[k_name] = k
            out[v_name] = v
        out["logits"] = self._last_logits(h)
        return out


class AttnMapQwen2_VL(AttnMapQwen2_5_VL):
    """Family qwen2_vl: the Qwen2-VL tower (LayerNorms, fc1/act/fc2 MLP, no window attention) is
    chosen by its VisionConfig (config.parse_qwen2_vl_config); everything else is AttnMapQwen2_5_VL."""
