"""Greedy generation with a map for every answer token: the reference loop over an exported module.

This is the specification the C++ generation loop follows (docs/design.md, "Generation"), written
against the exported methods only (`prefill`, `decode_step`), so it runs on a `torch.jit.load`ed file
as well as on the Python module. Every rule matches transformers' `generate(do_sample=False)`:

- position: the token at sequence index i >= S (S = prompt length) gets M-RoPE position
  i + rope_delta on all three axes, rope_delta = max(prompt position_ids) + 1 - S (transformers'
  `rope_deltas`); `decode_position_ids`.
- repetition penalty (transformers' RepetitionPenaltyLogitsProcessor): every distinct id of the whole
  sequence so far (prompt, image pads, answer) has its float32 logit s replaced by s * p if s < 0
  else s / p; p = 1.0 is the raw argmax. `apply_repetition_penalty`.
- choice: argmax of the (penalised) logits; the lowest id wins a tie (torch.argmax).
- stop: after appending a token that is one of the end ids (it is kept in the answer), or after
  max_new_tokens tokens.
- maps: answer token k's map is the attention row of the position whose logits chose it: the prompt's
  last row (prefill, query_positions [S-1]) for k = 0, else the row of answer token k-1 fed back in
  (decode_step). Exactly the rows `generate(output_attentions=True)` returns at step k.
"""
from typing import Dict, List, Sequence

import torch


def rope_delta(prompt_position_ids: torch.Tensor) -> int:
    """max(prompt position_ids) + 1 - S: how far the M-RoPE positions ran ahead of the token count
    (an image of merged h x w tokens advances them by only max(h, w))."""
    seq = prompt_position_ids.size(-1)
    return int(prompt_position_ids.max()) + 1 - seq


def decode_position_ids(prompt_position_ids: torch.Tensor, index: int) -> torch.Tensor:
    """int64 [3, 1]: the M-RoPE position of the token at sequence index `index` (>= S), the same on
    all three axes, as transformers' `position_ids = cache_position + rope_deltas`."""
    seq = prompt_position_ids.size(-1)
    if index < seq:
        raise ValueError(f"index {index} lies inside the prompt (S = {seq})")
    value = index + rope_delta(prompt_position_ids)
    return torch.full((3, 1), value, dtype=torch.long)


def apply_repetition_penalty(logits: torch.Tensor, seen_ids: Sequence[int], penalty: float) -> torch.Tensor:
    """float32 [vocab] -> penalised copy; each distinct id in seen_ids once (transformers' scatter)."""
    out = logits.clone()
    if penalty == 1.0 or len(seen_ids) == 0:
        return out
    ids = torch.unique(torch.as_tensor(list(seen_ids), dtype=torch.long))
    ids = ids[ids < logits.numel()]  # ids beyond the lm_head (never generated) are not penalised
    score = out.index_select(0, ids)
    out[ids] = torch.where(score < 0, score * penalty, score / penalty)
    return out


def generate_with_maps(module, inputs: Dict[str, torch.Tensor], max_new_tokens: int, eos_ids: Sequence[int],
                       repetition_penalty: float, layers: List[int], head_reduce: str) -> dict:
    """Greedy answer of `module` (exported) to one prompt, with every answer token's attention rows.

    inputs: the forward's named inputs (input_ids [S], pixel_values, image_grid_thw, position_ids [3, S]).
    Returns {"ids": answer ids (the end id included when it stopped on one),
             "rows": one {layer: float32 [H', S + k]} per answer token k (the query row squeezed),
             "logits": the raw float32 logits [vocab] that chose each answer token,
             "stopped_on_eos": bool}.
    """
    if max_new_tokens < 1:
        raise ValueError("max_new_tokens must be >= 1")
    prompt_ids = inputs["input_ids"].tolist()
    seq = len(prompt_ids)
    positions = inputs["position_ids"]
    eos = set(int(e) for e in eos_ids)
    with torch.no_grad():
        out = module.prefill(inputs, layers, torch.tensor([seq - 1], dtype=torch.long), head_reduce, False)
        sequence = list(prompt_ids)
        answer: List[int] = []
        rows: List[Dict[int, torch.Tensor]] = []
        raw_logits: List[torch.Tensor] = []
        stopped = False
        while True:
            logits = out["logits"]
            chosen = int(torch.argmax(apply_repetition_penalty(logits, sequence, repetition_penalty)))
            rows.append({layer: out[f"layers.{layer}"][:, 0, :] for layer in layers})
            raw_logits.append(logits)
            answer.append(chosen)
            sequence.append(chosen)
            if chosen in eos:
                stopped = True
                break
            if len(answer) >= max_new_tokens:
                break
            cache = {k: v for k, v in out.items() if k.startswith("cache.")}
            token = torch.tensor([chosen], dtype=torch.long)
            out = module.decode_step(token, decode_position_ids(positions, len(sequence) - 1), cache, layers,
                                     head_reduce)
    return {"ids": answer, "rows": rows, "logits": raw_logits, "stopped_on_eos": stopped}
