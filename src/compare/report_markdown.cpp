// The Markdown report: readable in a merge-request comment or a CI job summary.
#include <sstream>

#include "attnmap/compare.hpp"
#include "internal.hpp"

namespace attnmap {

namespace {

// A '|' inside a cell would split the table row.
std::string cell(const std::string& text) {
  std::string out;
  for (char ch : text) {
    if (ch == '|') out += "\\|";
    else if (ch == '\n' || ch == '\r') out += ' ';
    else out += ch;
  }
  return out;
}

std::string verdict(bool pass) { return pass ? "pass" : "**FAIL**"; }

void worst_table(std::ostringstream& out, const std::vector<WorstEntry>& entries, CompareMetric metric, bool by_item) {
  out << (by_item ? "| item | worst layer | " : "| layer | worst item | ") << metric_name(metric) << " | result |\n";
  out << "|---|---|---|---|\n";
  for (const WorstEntry& e : entries) {
    out << "| " << (by_item ? cell(e.id) : std::to_string(e.layer)) << " | " << (by_item ? std::to_string(e.layer) : cell(e.id))
        << " | " << compare_detail::format_figure(metric, e.value) << " | " << verdict(e.pass) << " |\n";
  }
}

}  // namespace

std::string report_markdown(const CompareResult& r) {
  using compare_detail::format_figure;
  std::ostringstream out;
  out << "# attnmap compare: " << (r.pass ? "PASS" : "FAIL") << "\n\n";
  out << "- baseline: `" << r.baseline.string() << "`\n";
  out << "- candidate: `" << r.candidate.string() << "`\n";
  out << "- kind: " << r.kind << ", layers: `" << r.options.layers.text() << "`\n";
  out << "- criterion: " << compare_detail::criterion_text(r.options) << "\n";
  out << "- other figures: top-k " << r.options.top_k_percent << "%; max-abs tolerance ratio uses atol " << r.options.atol
      << ", rtol " << r.options.rtol << "\n";
  out << "- outside tolerance: " << r.items_failed << " of " << r.items.size() << " items, " << r.layers_failed << " of "
      << r.layers_compared << " layers\n\n";

  out << "## Worst items\n\n";
  worst_table(out, r.worst_items, r.options.metric, true);
  out << "\n## Worst layers\n\n";
  worst_table(out, r.worst_layers, r.options.metric, false);

  out << "\n## All layers\n\n";
  out << "| item | layer | max-abs | tolerance ratio | cosine | IoU top-k | peak shift (cells) | result |\n";
  out << "|---|---|---|---|---|---|---|---|\n";
  for (const ItemResult& item : r.items) {
    for (const LayerResult& l : item.layers) {
      const LayerFigures& f = l.figures;
      out << "| " << cell(item.id) << " | " << l.layer << " | " << format_figure(CompareMetric::MaxAbs, f.max_abs) << " | "
          << format_figure(CompareMetric::MaxAbs, f.tolerance_ratio) << " | " << format_figure(CompareMetric::Cosine, f.cosine)
          << " | " << format_figure(CompareMetric::IouTopK, f.iou_top_k) << " | "
          << format_figure(CompareMetric::PeakShift, f.peak_shift) << " | " << verdict(l.pass) << " |\n";
    }
  }
  return out.str();
}

}  // namespace attnmap
