// --metric of `attnmap compare`.
#include "attnmap/compare.hpp"
#include "attnmap/error.hpp"
#include "attnmap/options.hpp"

namespace attnmap {

CompareMetric parse_metric(const std::string& name) {
  for (auto m : {CompareMetric::MaxAbs, CompareMetric::Cosine, CompareMetric::IouTopK, CompareMetric::PeakShift}) {
    if (metric_name(m) == name) return m;
  }
  throw Error(ErrorKind::Usage, "--metric '" + name + "' is unknown; use max-abs, cosine, iou-top-k or peak-shift");
}

}  // namespace attnmap
