// The JSON report (schema in docs/compare.md). NaN and infinite figures become null, as JSON
// has no spelling for them.
#include <nlohmann/json.hpp>

#include "attnmap/compare.hpp"

namespace attnmap {

using nlohmann::json;

namespace {

json options_json(const CompareOptions& o) {
  return {{"metric", metric_name(o.metric)}, {"atol", o.atol},         {"rtol", o.rtol},
          {"min_cosine", o.min_cosine},      {"top_k_percent", o.top_k_percent}, {"min_iou", o.min_iou},
          {"max_peak_shift", o.max_peak_shift}, {"layers", o.layers.text()},
          {"report", o.report_path.string()}, {"diff_images", o.diff_images_dir.string()},
          {"allow_answer_change", o.allow_answer_change}};
}

json layer_json(const LayerResult& l) {
  const LayerFigures& f = l.figures;
  return {{"layer", l.layer},
          {"pass", l.pass},
          {"max_abs", f.max_abs},
          {"tolerance_ratio", f.tolerance_ratio},
          {"cells_outside", f.cells_outside},
          {"cosine", f.cosine},
          {"iou_top_k", f.iou_top_k},
          {"peak_shift", f.peak_shift},
          {"baseline_peak", {f.baseline_peak[0], f.baseline_peak[1]}},
          {"candidate_peak", {f.candidate_peak[0], f.candidate_peak[1]}}};
}

json worst_json(const std::vector<WorstEntry>& entries) {
  json out = json::array();
  for (const WorstEntry& e : entries) out.push_back({{"id", e.id}, {"layer", e.layer}, {"value", e.value}, {"pass", e.pass}});
  return out;
}

json optional_json(const std::optional<std::string>& text) { return text ? json(*text) : json(nullptr); }

// Every token's figures for every selected layer: the report is where a failing answer map is
// looked up, so nothing is summarised away here.
json answer_json(const AnswerResult& a) {
  json tokens = json::array();
  for (const AnswerTokenResult& t : a.tokens) {
    json layers = json::array();
    for (const LayerResult& l : t.layers) layers.push_back(layer_json(l));
    tokens.push_back({{"index", t.index}, {"id", t.id}, {"text", t.text}, {"pass", t.pass}, {"layers", layers}});
  }
  json worst = nullptr;
  if (a.worst) {
    worst = {{"token", a.worst->token}, {"text", a.worst->text}, {"layer", a.worst->layer}, {"value", a.worst->value},
             {"pass", a.worst->pass}};
  }
  return {{"status", answer_status_name(a.status)},
          {"changed", a.status == AnswerStatus::Changed},
          {"pass", a.pass},
          {"baseline_text", optional_json(a.baseline_text)},
          {"candidate_text", optional_json(a.candidate_text)},
          {"baseline_tokens", a.baseline_tokens},
          {"candidate_tokens", a.candidate_tokens},
          {"first_difference", a.first_difference ? json(*a.first_difference) : json(nullptr)},
          {"worst", worst},
          {"tokens", tokens}};
}

}  // namespace

std::string report_json(const CompareResult& r) {
  json items = json::array();
  for (const ItemResult& item : r.items) {
    json layers = json::array();
    for (const LayerResult& l : item.layers) layers.push_back(layer_json(l));
    items.push_back({{"id", item.id},
                     {"pass", item.pass},
                     {"baseline", item.baseline_dir.string()},
                     {"candidate", item.candidate_dir.string()},
                     {"prompt", item.prompt},
                     {"grid", {{"merged_h", item.merged_h}, {"merged_w", item.merged_w}}},
                     {"layers", layers},
                     {"answer", item.answer ? answer_json(*item.answer) : json(nullptr)}});
  }
  const json report = {{"report", "attnmap compare"},
                       {"schema_version", 1},
                       {"attnmap_version", ATTNMAP_VERSION},
                       {"baseline", r.baseline.string()},
                       {"candidate", r.candidate.string()},
                       {"kind", r.kind},
                       {"pass", r.pass},
                       {"options", options_json(r.options)},
                       {"summary",
                        {{"items", r.items.size()},
                         {"items_failed", r.items_failed},
                         {"layers_compared", r.layers_compared},
                         {"layers_failed", r.layers_failed},
                         {"answers_compared", r.answers_compared},
                         {"answers_changed", r.answers_changed},
                         {"answers_one_sided", r.answers_one_sided},
                         {"answer_maps_compared", r.answer_maps_compared},
                         {"answer_maps_failed", r.answer_maps_failed}}},
                       {"worst_items", worst_json(r.worst_items)},
                       {"worst_layers", worst_json(r.worst_layers)},
                       {"items", items}};
  // Replace invalid UTF-8 in prompts/paths rather than throwing while writing a report.
  return report.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace attnmap
