// Answers (`attnmap run --answer`) in a comparison. An answer is a token sequence and its maps are
// per token, so maps are only comparable where both sides generated the same tokens: a changed
// answer is its own finding (and fails by default, as a CI guard wants), not a map difference.
#include <algorithm>
#include <cmath>

#include "attnmap/compare.hpp"
#include "attnmap/error.hpp"
#include "internal.hpp"

namespace attnmap {

std::string answer_status_name(AnswerStatus status) {
  switch (status) {
    case AnswerStatus::Same: return "same";
    case AnswerStatus::Changed: return "changed";
    case AnswerStatus::BaselineOnly: return "baseline-only";
    case AnswerStatus::CandidateOnly: return "candidate-only";
  }
  return "?";
}

std::optional<int64_t> first_answer_difference(const std::vector<int64_t>& baseline_ids,
                                               const std::vector<int64_t>& candidate_ids) {
  const auto [b, c] = std::mismatch(baseline_ids.begin(), baseline_ids.end(), candidate_ids.begin(), candidate_ids.end());
  if (b == baseline_ids.end() && c == candidate_ids.end()) return std::nullopt;
  return static_cast<int64_t>(b - baseline_ids.begin());
}

namespace compare_detail {

std::string one_line(std::string text, size_t max_bytes) {
  for (char& ch : text) {
    if (ch == '\n' || ch == '\r' || ch == '\t') ch = ' ';
  }
  if (text.size() <= max_bytes) return text;
  size_t cut = max_bytes > 3 ? max_bytes - 3 : 0;
  // Back up over UTF-8 continuation bytes so that no character is cut in half.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "...";
}

std::string answer_summary(const AnswerResult& a) {
  switch (a.status) {
    case AnswerStatus::Same:
      return "answer the same (" + std::to_string(a.baseline_tokens) + " tokens)";
    case AnswerStatus::Changed:
      return "answer changed at token " + std::to_string(a.first_difference.value_or(0)) + " (baseline " +
             std::to_string(a.baseline_tokens) + " tokens, candidate " + std::to_string(a.candidate_tokens) + ")";
    case AnswerStatus::BaselineOnly:
      return "baseline has an answer, candidate has none; compare runs made with the same --answer";
    case AnswerStatus::CandidateOnly:
      return "candidate has an answer, baseline has none; compare runs made with the same --answer";
  }
  return "?";
}

namespace {

std::vector<int64_t> token_ids(const AnswerRecord& answer) {
  std::vector<int64_t> ids;
  ids.reserve(answer.tokens.size());
  for (const AnswerToken& t : answer.tokens) ids.push_back(t.id);
  return ids;
}

// Token k's map of every selected layer, baseline against candidate, with the prompt maps' rows
// (answer_maps.npy keeps maps.npy's layer order on each side).
AnswerTokenResult measure_token(const RunFolder& b, const RunFolder& c, int64_t k, const std::vector<LayerResult>& layers,
                                const CompareOptions& options) {
  const AnswerToken& token = b.answer->tokens[static_cast<size_t>(k)];
  AnswerTokenResult result{k, token.id, token.text, {}, true};
  const torch::Tensor b_token = b.answer_maps[k], c_token = c.answer_maps[k];
  for (const LayerResult& prompt_layer : layers) {
    LayerResult l = prompt_layer;
    l.figures = measure_layer(b_token[l.baseline_row], c_token[l.candidate_row], options);
    l.pass = layer_passes(l.figures, options);
    result.pass = result.pass && l.pass;
    result.layers.push_back(l);
  }
  return result;
}

// The same order as the worst-items list: failing first, then the decisive figure in its bad
// direction (NaN worst); ties keep the earlier token and layer.
bool worse_than(const AnswerWorst& a, const AnswerWorst& b, CompareMetric metric) {
  if (a.pass != b.pass) return !a.pass;
  const bool nan_a = std::isnan(a.value), nan_b = std::isnan(b.value);
  if (nan_a != nan_b) return nan_a;
  if (nan_a || a.value == b.value) return false;
  const bool larger_is_worse = metric == CompareMetric::MaxAbs || metric == CompareMetric::PeakShift;
  return larger_is_worse ? a.value > b.value : a.value < b.value;
}

std::optional<AnswerWorst> worst_of(const std::vector<AnswerTokenResult>& tokens, CompareMetric metric) {
  std::optional<AnswerWorst> worst;
  for (const AnswerTokenResult& t : tokens) {
    for (const LayerResult& l : t.layers) {
      const AnswerWorst e{t.index, t.text, l.layer, decisive_value(l.figures, metric), l.pass};
      if (!worst || worse_than(e, *worst, metric)) worst = e;
    }
  }
  return worst;
}

}  // namespace

std::vector<const ItemResult*> items_by_answer(const CompareResult& result) {
  std::vector<const ItemResult*> items;
  for (const ItemResult& item : result.items) {
    if (item.answer) items.push_back(&item);
  }
  const CompareMetric metric = result.options.metric;
  const auto worse = [metric](const ItemResult* x, const ItemResult* y) {
    const AnswerResult &a = *x->answer, &b = *y->answer;
    if (a.pass != b.pass) return !a.pass;
    const bool same_a = a.status == AnswerStatus::Same, same_b = b.status == AnswerStatus::Same;
    if (same_a != same_b) return !same_a;
    if (a.worst && b.worst) {
      if (worse_than(*a.worst, *b.worst, metric)) return true;
      if (worse_than(*b.worst, *a.worst, metric)) return false;
    }
    return x->id < y->id;
  };
  std::sort(items.begin(), items.end(), worse);
  return items;
}

std::optional<AnswerResult> compare_answers(const RunFolder& b, const RunFolder& c, const std::vector<LayerResult>& layers,
                                            const CompareOptions& options) {
  if (!b.answer && !c.answer) return std::nullopt;
  AnswerResult result;
  if (b.answer) {
    result.baseline_text = b.answer->text;
    result.baseline_tokens = b.answer->tokens.size();
  }
  if (c.answer) {
    result.candidate_text = c.answer->text;
    result.candidate_tokens = c.answer->tokens.size();
  }
  if (!b.answer || !c.answer) {
    // Not an input error: the prompt maps still compare, and a candidate that lost its answer is a regression.
    result.status = b.answer ? AnswerStatus::BaselineOnly : AnswerStatus::CandidateOnly;
    result.pass = false;
    return result;
  }
  result.first_difference = first_answer_difference(token_ids(*b.answer), token_ids(*c.answer));
  if (result.first_difference) {
    result.status = AnswerStatus::Changed;
    result.pass = options.allow_answer_change;
    return result;
  }
  if (!b.answer_maps.defined() || !c.answer_maps.defined()) {
    throw Error(ErrorKind::Internal, "compare_answers needs both sides' answer maps loaded");
  }
  result.status = AnswerStatus::Same;
  for (int64_t k = 0; k < static_cast<int64_t>(result.baseline_tokens); ++k) {
    result.tokens.push_back(measure_token(b, c, k, layers, options));
    result.pass = result.pass && result.tokens.back().pass;
  }
  result.worst = worst_of(result.tokens, options.metric);
  return result;
}

}  // namespace compare_detail
}  // namespace attnmap
