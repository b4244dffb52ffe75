// The stdout summary: enough to see at a glance in a CI log what failed and by how much; the
// full figures go to the --report file.
#include <cmath>
#include <cstdio>
#include <sstream>

#include "attnmap/compare.hpp"
#include "internal.hpp"

namespace attnmap {

namespace compare_detail {

std::string format_figure(CompareMetric metric, double value) {
  if (std::isnan(value)) return "nan";
  const char* format = "%.3e";
  switch (metric) {
    case CompareMetric::MaxAbs: format = "%.3e"; break;
    case CompareMetric::Cosine: format = "%.6f"; break;
    case CompareMetric::IouTopK: format = "%.3f"; break;
    case CompareMetric::PeakShift: format = "%.2f"; break;
  }
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

std::string criterion_text(const CompareOptions& o) {
  std::ostringstream out;
  out << metric_name(o.metric) << " (";
  switch (o.metric) {
    case CompareMetric::MaxAbs: out << "|b-c| <= atol " << o.atol << " + rtol " << o.rtol << " * |b|"; break;
    case CompareMetric::Cosine: out << "cosine >= " << o.min_cosine; break;
    case CompareMetric::IouTopK: out << "IoU of top " << o.top_k_percent << "% cells >= " << o.min_iou; break;
    case CompareMetric::PeakShift: out << "peak moves <= " << o.max_peak_shift << " cells"; break;
  }
  out << ")";
  return out.str();
}

}  // namespace compare_detail

namespace {

// One answer entry: a changed answer with both texts on lines of their own, else the worst token map.
void answer_entry(std::ostringstream& out, const ItemResult& item, const CompareOptions& options) {
  using compare_detail::one_line;
  const AnswerResult& a = *item.answer;
  out << "  " << (a.pass ? "ok  " : "FAIL") << "  item " << item.id << "  ";
  if (a.status == AnswerStatus::Same && a.worst) {
    const AnswerWorst& w = *a.worst;
    out << "token " << w.token << " \"" << one_line(w.text, 24) << "\"  layer " << w.layer << "  "
        << metric_name(options.metric) << " " << compare_detail::format_figure(options.metric, w.value) << "\n";
    return;
  }
  out << compare_detail::answer_summary(a) << "\n";
  if (a.status == AnswerStatus::Changed) {
    out << "          baseline:  \"" << one_line(a.baseline_text.value_or("")) << "\"\n";
    out << "          candidate: \"" << one_line(a.candidate_text.value_or("")) << "\"\n";
  }
}

// Printed only when some item has an answer, so that runs without --answer read as before.
void answers_text(std::ostringstream& out, const CompareResult& r, size_t max_entries) {
  const auto items = compare_detail::items_by_answer(r);
  if (items.empty()) return;
  out << "answers:\n";
  for (size_t i = 0; i < items.size() && i < max_entries; ++i) answer_entry(out, *items[i], r.options);
}

}  // namespace

std::string summary_text(const CompareResult& r, size_t max_entries) {
  using compare_detail::format_figure;
  const std::string metric = metric_name(r.options.metric);
  std::ostringstream out;
  out << "attnmap compare: " << (r.pass ? "PASS" : "FAIL") << ": " << r.items_failed << " of " << r.items.size()
      << " items and " << r.layers_failed << " of " << r.layers_compared << " layers outside tolerance; metric "
      << compare_detail::criterion_text(r.options) << "\n";
  if (r.answers_compared + r.answers_one_sided > 0) {
    out << "  answers: " << r.answers_compared << " compared, " << r.answers_changed << " changed"
        << (r.options.allow_answer_change ? " (allowed)" : "") << ", " << r.answers_one_sided
        << " on one side only; " << r.answer_maps_failed << " of " << r.answer_maps_compared
        << " answer maps (token x layer) outside tolerance\n";
  }
  out << "  baseline:  " << r.baseline.string() << "\n  candidate: " << r.candidate.string() << "\n";
  out << "worst items:\n";
  for (size_t i = 0; i < r.worst_items.size() && i < max_entries; ++i) {
    const WorstEntry& e = r.worst_items[i];
    out << "  " << (e.pass ? "ok  " : "FAIL") << "  item " << e.id << "  layer " << e.layer << "  " << metric << " "
        << format_figure(r.options.metric, e.value) << "\n";
  }
  out << "worst layers:\n";
  for (size_t i = 0; i < r.worst_layers.size() && i < max_entries; ++i) {
    const WorstEntry& e = r.worst_layers[i];
    out << "  " << (e.pass ? "ok  " : "FAIL") << "  layer " << e.layer << "  " << metric << " "
        << format_figure(r.options.metric, e.value) << "  (item " << e.id << ")\n";
  }
  answers_text(out, r, max_entries);
  return out.str();
}

}  // namespace attnmap
