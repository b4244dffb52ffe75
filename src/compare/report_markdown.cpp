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

// One row per item with an answer, worst first; per-token figures are in the JSON report only (an
// answer of 32 tokens over 36 layers would be 1152 rows per item).
void answers_table(std::ostringstream& out, const CompareResult& r) {
  using compare_detail::one_line;
  const auto items = compare_detail::items_by_answer(r);
  if (items.empty()) return;
  out << "\n## Answers\n\n";
  out << "| item | answer | baseline answer | candidate answer | worst token | worst layer | " << metric_name(r.options.metric)
      << " | result |\n";
  out << "|---|---|---|---|---|---|---|---|\n";
  for (const ItemResult* item : items) {
    const AnswerResult& a = *item->answer;
    const auto quoted = [](const std::optional<std::string>& text) {
      return text ? "\"" + cell(one_line(*text, 80)) + "\"" : std::string("(none)");
    };
    out << "| " << cell(item->id) << " | " << cell(compare_detail::answer_summary(a)) << " | " << quoted(a.baseline_text)
        << " | " << quoted(a.candidate_text) << " | ";
    if (a.worst) {
      out << a.worst->token << " \"" << cell(one_line(a.worst->text, 24)) << "\" | " << a.worst->layer << " | "
          << compare_detail::format_figure(r.options.metric, a.worst->value);
    } else {
      out << " | | ";
    }
    out << " | " << verdict(a.pass) << " |\n";
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
      << r.layers_compared << " layers\n";
  if (r.answers_compared + r.answers_one_sided > 0) {
    out << "- answers: " << r.answers_compared << " compared, " << r.answers_changed << " changed"
        << (r.options.allow_answer_change ? " (allowed by --allow-answer-change)" : "") << ", " << r.answers_one_sided
        << " on one side only; " << r.answer_maps_failed << " of " << r.answer_maps_compared
        << " answer maps (token x layer) outside tolerance\n";
  }
  out << "\n";

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
  answers_table(out, r);
  return out.str();
}

}  // namespace attnmap
