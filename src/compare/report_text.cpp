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

std::string summary_text(const CompareResult& r, size_t max_entries) {
  using compare_detail::format_figure;
  const std::string metric = metric_name(r.options.metric);
  std::ostringstream out;
  out << "attnmap compare: " << (r.pass ? "PASS" : "FAIL") << ": " << r.items_failed << " of " << r.items.size()
      << " items and " << r.layers_failed << " of " << r.layers_compared << " layers outside tolerance; metric "
      << compare_detail::criterion_text(r.options) << "\n";
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
  return out.str();
}

}  // namespace attnmap
