#include <cmath>

#include "attnmap/compare.hpp"
#include "attnmap/error.hpp"

namespace attnmap {

std::string metric_name(CompareMetric metric) {
  switch (metric) {
    case CompareMetric::MaxAbs: return "max-abs";
    case CompareMetric::Cosine: return "cosine";
    case CompareMetric::IouTopK: return "iou-top-k";
    case CompareMetric::PeakShift: return "peak-shift";
  }
  return "?";
}

namespace {
void require(bool ok, const std::string& option, double value, const std::string& domain) {
  if (!ok) {
    throw Error(ErrorKind::Usage, option + " " + std::to_string(value) + " is invalid; it must be " + domain);
  }
}
}  // namespace

void validate(const CompareOptions& o) {
  // std::isfinite also rejects NaN, which would otherwise make every comparison silently fail or pass.
  require(std::isfinite(o.atol) && o.atol >= 0, "--atol", o.atol, ">= 0");
  require(std::isfinite(o.rtol) && o.rtol >= 0, "--rtol", o.rtol, ">= 0");
  require(std::isfinite(o.min_cosine) && o.min_cosine >= -1 && o.min_cosine <= 1, "--min-cosine", o.min_cosine,
          "between -1 and 1");
  require(std::isfinite(o.top_k_percent) && o.top_k_percent > 0 && o.top_k_percent <= 100, "--top-k", o.top_k_percent,
          "a percentage in (0, 100]");
  require(std::isfinite(o.min_iou) && o.min_iou >= 0 && o.min_iou <= 1, "--min-iou", o.min_iou, "between 0 and 1");
  require(std::isfinite(o.max_peak_shift) && o.max_peak_shift >= 0, "--max-peak-shift", o.max_peak_shift,
          ">= 0 (cells)");
  if (!o.report_path.empty()) {
    const auto ext = o.report_path.extension().string();
    if (ext != ".json" && ext != ".md") {
      throw Error(ErrorKind::Usage, "--report '" + o.report_path.string() +
                                        "': the name must end in .json (JSON report) or .md (Markdown report)");
    }
  }
}

}  // namespace attnmap
