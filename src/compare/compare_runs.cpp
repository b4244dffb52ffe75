// Orchestrates a comparison: match items, check that each pair is comparable (same prompt, grid
// and layers), measure every selected layer and the answers (answers.cpp), then rank the worst
// items and layers.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "attnmap/compare.hpp"
#include "attnmap/error.hpp"
#include "internal.hpp"

namespace attnmap {

using compare_detail::format_layers;
using compare_detail::one_line;
using compare_detail::RunFolder;

namespace {

Error item_error(const std::string& id, const std::string& what, const std::string& fix) {
  return Error(ErrorKind::Input, "item '" + id + "': " + what + "; " + fix);
}

void check_comparable(const std::string& id, const RunFolder& b, const RunFolder& c) {
  if (b.prompt != c.prompt) {
    throw item_error(id, "prompts differ (baseline \"" + one_line(b.prompt) + "\", candidate \"" + one_line(c.prompt) + "\")",
                   "compare runs made with the same prompt");
  }
  if (b.merged_h != c.merged_h || b.merged_w != c.merged_w || b.grid_t != c.grid_t) {
    const auto grid = [](const RunFolder& r) {
      return std::to_string(r.merged_h) + "x" + std::to_string(r.merged_w) + " merged cells (t " + std::to_string(r.grid_t) + ")";
    };
    throw item_error(id, "grids differ (baseline '" + b.dir.string() + "' has " + grid(b) + ", candidate '" + c.dir.string() +
                           "' has " + grid(c) + ")",
                   "compare runs of the same image with the same --min-pixels/--max-pixels");
  }
}

// The layers to compare, as baseline rows paired with candidate rows.
std::vector<LayerResult> select_layers(const std::string& id, const RunFolder& b, const RunFolder& c,
                                       const LayerSelection& selection) {
  const auto row_of = [](const RunFolder& r, int layer) -> int64_t {
    const auto at = std::find(r.layers.begin(), r.layers.end(), layer);
    return at == r.layers.end() ? -1 : at - r.layers.begin();
  };
  std::vector<int> wanted;
  if (selection.all) {
    if (std::set<int>(b.layers.begin(), b.layers.end()) != std::set<int>(c.layers.begin(), c.layers.end())) {
      throw item_error(id, "layers differ (baseline records " + format_layers(b.layers) + ", candidate records " +
                             format_layers(c.layers) + ")",
                     "compare runs made with the same --layers, or pass --layers with layers both recorded");
    }
    wanted = b.layers;
  } else {
    wanted = selection.resolve(std::max(b.model_layers, c.model_layers));
  }
  std::vector<LayerResult> selected;
  for (int layer : wanted) {
    LayerResult r;
    r.layer = layer;
    r.baseline_row = row_of(b, layer);
    r.candidate_row = row_of(c, layer);
    if (r.baseline_row < 0 || r.candidate_row < 0) {
      const RunFolder& lacking = r.baseline_row < 0 ? b : c;
      throw item_error(id, "layer " + std::to_string(layer) + " is not recorded in " + (r.baseline_row < 0 ? "baseline" : "candidate") +
                             " '" + lacking.dir.string() + "' (it has " + format_layers(lacking.layers) + ")",
                     "choose --layers among the recorded layers");
    }
    selected.push_back(r);
  }
  return selected;
}

ItemResult compare_item(const compare_detail::ItemPair& pair, const CompareOptions& options) {
  const RunFolder b = compare_detail::load_run_folder(pair.baseline, true, true);
  const RunFolder c = compare_detail::load_run_folder(pair.candidate, true, true);
  check_comparable(pair.id, b, c);
  ItemResult item;
  item.id = pair.id;
  item.baseline_dir = pair.baseline;
  item.candidate_dir = pair.candidate;
  item.prompt = b.prompt;
  item.merged_h = b.merged_h;
  item.merged_w = b.merged_w;
  item.layers = select_layers(pair.id, b, c, options.layers);
  for (LayerResult& layer : item.layers) {
    layer.figures = measure_layer(b.maps[layer.baseline_row], c.maps[layer.candidate_row], options);
    layer.pass = layer_passes(layer.figures, options);
    item.pass = item.pass && layer.pass;
  }
  item.answer = compare_detail::compare_answers(b, c, item.layers, options);
  if (item.answer) item.pass = item.pass && item.answer->pass;
  return item;
}

void count_answer(CompareResult& result, const AnswerResult& answer) {
  switch (answer.status) {
    case AnswerStatus::Same: ++result.answers_compared; break;
    case AnswerStatus::Changed:
      ++result.answers_compared;
      ++result.answers_changed;
      break;
    case AnswerStatus::BaselineOnly:
    case AnswerStatus::CandidateOnly: ++result.answers_one_sided; break;
  }
  for (const AnswerTokenResult& token : answer.tokens) {
    for (const LayerResult& layer : token.layers) {
      ++result.answer_maps_compared;
      if (!layer.pass) ++result.answer_maps_failed;
    }
  }
}

// Failing entries first; then the decisive figure in its bad direction (NaN worst); then by name
// so that the order is stable across runs.
bool ranks_worse(const WorstEntry& a, const WorstEntry& b, CompareMetric metric) {
  if (a.pass != b.pass) return !a.pass;
  const bool nan_a = std::isnan(a.value), nan_b = std::isnan(b.value);
  if (nan_a != nan_b) return nan_a;
  if (!nan_a && a.value != b.value) {
    const bool larger_is_worse = metric == CompareMetric::MaxAbs || metric == CompareMetric::PeakShift;
    return larger_is_worse ? a.value > b.value : a.value < b.value;
  }
  if (a.id != b.id) return a.id < b.id;
  return a.layer < b.layer;
}

void rank(CompareResult& result) {
  const CompareMetric metric = result.options.metric;
  auto worse = [metric](const WorstEntry& a, const WorstEntry& b) { return ranks_worse(a, b, metric); };
  std::map<int, WorstEntry> by_layer;
  for (const ItemResult& item : result.items) {
    WorstEntry item_worst;
    bool first = true;
    for (const LayerResult& layer : item.layers) {
      const WorstEntry e{item.id, layer.layer, decisive_value(layer.figures, metric), layer.pass};
      if (first || worse(e, item_worst)) item_worst = e;
      first = false;
      auto [at, inserted] = by_layer.emplace(layer.layer, e);
      if (!inserted && worse(e, at->second)) at->second = e;
      ++result.layers_compared;
      if (!layer.pass) ++result.layers_failed;
    }
    if (!first) result.worst_items.push_back(item_worst);
    if (item.answer) count_answer(result, *item.answer);
    if (!item.pass) ++result.items_failed;
  }
  for (const auto& [layer, entry] : by_layer) result.worst_layers.push_back(entry);
  std::sort(result.worst_items.begin(), result.worst_items.end(), worse);
  std::sort(result.worst_layers.begin(), result.worst_layers.end(), worse);
  result.pass = result.items_failed == 0;
}

}  // namespace

CompareResult compare_runs(const std::filesystem::path& baseline, const std::filesystem::path& candidate,
                           const CompareOptions& options) {
  validate(options);
  CompareResult result;
  result.baseline = baseline;
  result.candidate = candidate;
  result.options = options;
  for (const auto& pair : compare_detail::match_items(baseline, candidate, result.kind)) {
    result.items.push_back(compare_item(pair, options));
  }
  rank(result);
  return result;
}

}  // namespace attnmap
