// Greedy generation with the attention row behind every answer token (docs/design.md, "Generation").
// The loop follows tools/attnmap_tools/export/generation.py (the reference the parity tests check
// against transformers' generate(do_sample=False, output_attentions=True)) rule for rule.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "attnmap/model.hpp"

namespace attnmap {

struct GenerationSettings {
  int64_t max_new_tokens = 32;
  double repetition_penalty = 1.0;     // transformers' RepetitionPenaltyLogitsProcessor; 1 = raw argmax
  std::vector<int64_t> eos_token_ids;  // the answer ends after one of these (kept in the answer)
};

struct AnswerStep {
  int64_t id = -1;
  double probability = 0;  // softmax of the model's raw logits (before the penalty) at `id`
  int64_t position = 0;    // sequence index of this token once appended (S + k)
};

struct GreedyAnswer {
  std::vector<AnswerStep> tokens;
  bool stopped_on_eos = false;
  // The prefill's rows for the request's own query rows: per layer float32 [H', Q, S], one row per
  // query position in request order (not averaged), and the prompt's raw next-token logits.
  std::vector<torch::Tensor> prompt_rows;
  torch::Tensor prompt_logits;
  std::optional<int64_t> peak_device_memory_bytes;  // CUDA only: peak over prefill and every step
};

// Called once per answer token k, in order, with the row that chose it: per requested layer float32
// [H', S + k] (the prompt's last row for k = 0, then the row of token k-1 fed back in).
using AnswerRowsCallback = std::function<void(size_t k, const AnswerStep& step, const std::vector<torch::Tensor>& rows)>;

// Greedy answer of `model` to `inputs`. `request` names the layers, head reduction and the prompt
// query rows wanted besides the answer (may be empty); its mean_queries/return_logits are ignored.
// The vision tower runs once; every step costs O(sequence). Errors as Model::attention.
GreedyAnswer generate_greedy_answer(Model& model, const ModelInputs& inputs, const AttentionRequest& request,
                                    const GenerationSettings& settings, const AnswerRowsCallback& on_token);

// transformers' repetition penalty on float32 logits [vocab]: every distinct id of `seen` (ids past
// the logits ignored) has its logit s replaced by s * penalty if s < 0, else s / penalty. A copy.
torch::Tensor apply_repetition_penalty(const torch::Tensor& logits, const std::vector<int64_t>& seen, double penalty);

}  // namespace attnmap
