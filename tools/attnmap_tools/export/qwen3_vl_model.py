"""The exported module of family qwen3_vl (dense Qwen3-VL), on the contract of docs/design.md.

It is AttnMapQwen2_5_VL with Qwen3-VL's parts: the decoder layers have q/k RMSNorm and no q/k/v bias
(text.py, switched by the config), M-RoPE is interleaved (rope.mrope_interleaved_cos_sin), the vision
tower is qwen3_vl_vision.py's, and DeepStack adds the tower's intermediate features to the image-pad
rows of the hidden states after each of the first len(deepstack_visual_indexes) decoder layers (in the
prompt pass only; decode_step is the parent's, there are no image rows after the prompt).

Videos: the forward takes pixel_values_videos / video_grid_thw as the HF processor makes them (the
tower attends within each temporal patch; DeepStack goes onto the video rows too, image and video rows
together as transformers joins them). The prompt around them (a "<t seconds>" text before each temporal
patch) and the positions (each temporal patch its own grid, get_rope_index) are the caller's, as the
metadata's "video" section describes them (timestamp_text, temporal_positions "frame_runs").
"""
from typing import Dict, List, Tuple

import torch
from torch import nn

from .attn_rows import HEAD_REDUCTIONS
from .model import INPUT_NAMES, OPTIONAL_INPUT_NAMES, AttnMapQwen2_5_VL, LMHead, TextModel
from .qwen3_vl_config import Qwen3VLConfig
from .qwen3_vl_vision import Qwen3VLVisionTransformer


class AttnMapQwen3VL(AttnMapQwen2_5_VL):
    def __init__(self, cfg: Qwen3VLConfig):
        nn.Module.__init__(self)
        self.visual = Qwen3VLVisionTransformer(cfg.vision)
        self.model = TextModel(cfg.text)
        self.lm_head = LMHead(cfg.text)
        self.tie_word_embeddings = cfg.text.tie_word_embeddings
        self.num_layers = cfg.text.num_hidden_layers
        self.head_dim = cfg.text.head_dim
        self.num_kv_heads = cfg.text.num_key_value_heads
        self.rope_theta = cfg.text.rope_theta
        self.mrope_section: List[int] = list(cfg.text.mrope_section)
        self.mrope_interleaved = True
        self.image_token_id = cfg.image_token_id
        self.video_token_id = cfg.video_token_id
        self.input_names: List[str] = list(INPUT_NAMES)
        self.optional_input_names: List[str] = list(OPTIONAL_INPUT_NAMES)
        self.head_reductions: List[str] = list(HEAD_REDUCTIONS)

    @torch.jit.export
    def vision_features(self, pixel_values: torch.Tensor, image_grid_thw: torch.Tensor) -> torch.Tensor:
        """Merged image features [tokens, hidden] in raster order (what replaces the image pads)."""
        merged, _ = self.visual(pixel_values, image_grid_thw)
        return merged

    @torch.jit.export
    def deepstack_features(self, pixel_values: torch.Tensor, image_grid_thw: torch.Tensor) -> List[torch.Tensor]:
        """The DeepStack features [tokens, hidden], one per level (added after decoder layer 0, 1, ...)."""
        _, deepstack = self.visual(pixel_values, image_grid_thw)
        return deepstack

    def _scatter_with_deepstack(self, h: torch.Tensor, input_ids: torch.Tensor, token_id: int, what: str,
                                pixel_values: torch.Tensor, grid_thw: torch.Tensor
                                ) -> Tuple[torch.Tensor, List[torch.Tensor], torch.Tensor]:
        """The tower's merged features of `pixel_values` written over the `token_id` pads; returns (h,
        the DeepStack features per level, the pad rows int64 [tokens])."""
        mask = input_ids == token_id
        rows = mask.nonzero().reshape(-1)
        deepstack: List[torch.Tensor] = []
        if grid_thw.numel() == 0:
            if rows.numel() != 0:
                raise RuntimeError("attnmap: input_ids has " + str(rows.numel()) + " " + what + " tokens but no "
                                   + what + " was given")
            return h, deepstack, rows
        feats, deepstack = self.visual(pixel_values, grid_thw)
        if rows.numel() != feats.size(0):
            raise RuntimeError("attnmap: " + what + " features and " + what + " tokens do not match: tokens "
                               + str(rows.numel()) + ", features " + str(feats.size(0)))
        return h.masked_scatter(mask.unsqueeze(-1), feats.to(h.dtype)), deepstack, rows

    def _embed_with_deepstack(self, input_ids: torch.Tensor, pixel_values: torch.Tensor,
                              image_grid_thw: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor], torch.Tensor]:
        """(embeddings [S, hidden] with the image features in the image pads, the deepstack features,
        the image-pad rows int64 [tokens])."""
        input_ids = input_ids.to(self.model.embed_tokens.weight.device)
        h = self.model.embed_tokens(input_ids)
        return self._scatter_with_deepstack(h, input_ids, self.image_token_id, "image", pixel_values, image_grid_thw)

    @torch.jit.export
    def embed(self, input_ids: torch.Tensor, pixel_values: torch.Tensor,
              image_grid_thw: torch.Tensor) -> torch.Tensor:
        """Decoder input embeddings [S, hidden] with image features scattered into the image pads
        (the deepstack features are added later, inside the decoder stack)."""
        h, _, _ = self._embed_with_deepstack(input_ids, pixel_values, image_grid_thw)
        return h

    def _prompt_pass(self, inputs: Dict[str, torch.Tensor], layers: List[int], query_positions: torch.Tensor,
                     head_reduce: str, mean_queries: bool, last: int,
                     keep_cache: bool) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        self._check_inputs(inputs, layers, query_positions, head_reduce)
        device = self.model.embed_tokens.weight.device
        input_ids = inputs["input_ids"].to(device)
        position_ids = inputs["position_ids"].to(device)
        query_positions = query_positions.to(device)
        h, deepstack, visual_rows = self._embed_with_deepstack(input_ids, inputs["pixel_values"],
                                                               inputs["image_grid_thw"])
        if "video_grid_thw" in inputs:
            h, video_deepstack, video_rows = self._scatter_with_deepstack(
                h, input_ids, self.video_token_id, "video", inputs["pixel_values_videos"], inputs["video_grid_thw"])
            # Image rows, then video rows: each row gets its own level feature added once, as
            # transformers' joint visual_pos_masks / deepstack_visual_embeds do.
            if len(deepstack) == 0:
                deepstack = video_deepstack
            elif len(video_deepstack) > 0:
                deepstack = [torch.cat((deepstack[i], video_deepstack[i]), dim=0) for i in range(len(deepstack))]
            visual_rows = torch.cat((visual_rows, video_rows))
        cos, sin = self._rope(position_ids, h.dtype)
        # DeepStack: level i of the tower's features onto the visual rows, after layer i.
        return self._decoder_stack(h, cos, sin, layers, query_positions, head_reduce, mean_queries, last,
                                   keep_cache, deepstack, visual_rows)
