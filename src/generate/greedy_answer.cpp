// The greedy loop over Model::prefill and Model::decode_step; the numbered rules are those of
// docs/design.md ("Generation") and of the Python reference, generation.generate_with_maps.
#include <algorithm>

#include "attnmap/answer.hpp"
#include "attnmap/error.hpp"
#include "model/family.hpp"

namespace attnmap {

torch::Tensor apply_repetition_penalty(const torch::Tensor& logits, const std::vector<int64_t>& seen, double penalty) {
  torch::Tensor out = logits.clone();
  if (penalty == 1.0 || seen.empty()) return out;
  torch::Tensor ids = std::get<0>(torch::_unique(torch::tensor(seen, torch::kInt64)));
  ids = ids.masked_select(ids < logits.numel());  // ids beyond the lm_head are never generated
  const torch::Tensor score = out.index_select(0, ids);
  // The same tensor ops as transformers (float32 score times a Python float), hence the same bits.
  out.index_put_({ids}, torch::where(score < 0, score * penalty, score / penalty));
  return out;
}

namespace {

AnswerStep choose(const torch::Tensor& logits, const std::vector<int64_t>& sequence, double penalty) {
  AnswerStep step;
  // Rule "choice": argmax of the penalised logits, the lowest id on a tie (torch::argmax).
  step.id = apply_repetition_penalty(logits, sequence, penalty).argmax().item<int64_t>();
  step.probability = torch::softmax(logits.to(torch::kFloat64), 0)[step.id].item<double>();
  step.position = static_cast<int64_t>(sequence.size());
  return step;
}

// Row `row` of every layer's [H', Q, S] rows, as [H', S].
std::vector<torch::Tensor> row_of(const std::vector<torch::Tensor>& layers, int64_t row) {
  std::vector<torch::Tensor> rows;
  rows.reserve(layers.size());
  for (const torch::Tensor& layer : layers) rows.push_back(layer.select(1, row));
  return rows;
}

}  // namespace

GreedyAnswer generate_greedy_answer(Model& model, const ModelInputs& inputs, const AttentionRequest& request,
                                    const GenerationSettings& settings, const AnswerRowsCallback& on_token) {
  if (settings.max_new_tokens < 1) throw Error(ErrorKind::Usage, "--max-new-tokens must be at least 1");
  std::vector<int64_t> sequence(inputs.input_ids.data_ptr<int64_t>(),
                                inputs.input_ids.data_ptr<int64_t>() + inputs.input_ids.numel());
  const int64_t prompt_length = static_cast<int64_t>(sequence.size());

  // The prompt's last row (it chooses answer token 0) rides along after the caller's query rows.
  AttentionRequest prefill_request = request;
  prefill_request.query_rows.push_back(prompt_length - 1);
  prefill_request.mean_queries = false;
  prefill_request.return_logits = true;
  DecodeCache cache;
  AttentionResult out = model.prefill(inputs, prefill_request, cache);

  GreedyAnswer answer;
  const int64_t asked = static_cast<int64_t>(request.query_rows.size());
  for (const torch::Tensor& layer : out.layers) answer.prompt_rows.push_back(layer.slice(1, 0, asked));
  answer.prompt_logits = out.logits;
  std::vector<torch::Tensor> rows = row_of(out.layers, asked);
  out.layers.clear();

  while (true) {
    const AnswerStep step = choose(out.logits, sequence, settings.repetition_penalty);
    answer.tokens.push_back(step);
    sequence.push_back(step.id);
    on_token(answer.tokens.size() - 1, step, rows);
    answer.peak_device_memory_bytes = out.peak_device_memory_bytes;
    // Rule "stop": after appending an end token (kept), or at max_new_tokens.
    if (std::find(settings.eos_token_ids.begin(), settings.eos_token_ids.end(), step.id) !=
        settings.eos_token_ids.end()) {
      answer.stopped_on_eos = true;
      break;
    }
    if (static_cast<int64_t>(answer.tokens.size()) >= settings.max_new_tokens) break;
    // Rule "position": the token fed back sits at sequence index S + k.
    const torch::Tensor position = model.family().decode_position_ids(inputs.position_ids, step.position);
    out = model.decode_step(step.id, position, cache, request.layers, request.head_reduce);
    rows = row_of(out.layers, 0);
  }
  return answer;
}

}  // namespace attnmap
