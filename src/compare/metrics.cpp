// The per-layer figures of `attnmap compare`. Maps are small (tens by tens of cells), so plain
// loops over double copies keep the arithmetic obvious and independent of torch's reductions.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "attnmap/compare.hpp"
#include "attnmap/error.hpp"

namespace attnmap {

namespace {

std::vector<double> cells_of(const torch::Tensor& map) {
  if (map.dim() != 2) throw Error(ErrorKind::Internal, "compare metrics expect 2-D maps, got " + std::to_string(map.dim()) + "-D");
  const torch::Tensor t = map.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  const double* data = t.data_ptr<double>();
  return std::vector<double>(data, data + t.numel());
}

void check_same_shape(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes()) throw Error(ErrorKind::Internal, "compare metrics got maps of different shapes");
}

// Indices of the k largest cells, ties broken towards the earlier cell so the set is reproducible.
std::vector<size_t> top_cells(const std::vector<double>& v, size_t k) {
  std::vector<size_t> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  auto larger = [&](size_t i, size_t j) {
    const bool nan_i = std::isnan(v[i]), nan_j = std::isnan(v[j]);
    if (nan_i != nan_j) return nan_j;  // NaN cells rank last
    if (!nan_i && v[i] != v[j]) return v[i] > v[j];
    return i < j;
  };
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(), larger);
  order.resize(k);
  std::sort(order.begin(), order.end());
  return order;
}

}  // namespace

double max_abs_difference(const torch::Tensor& baseline, const torch::Tensor& candidate) {
  check_same_shape(baseline, candidate);
  const auto b = cells_of(baseline), c = cells_of(candidate);
  double worst = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    const double d = std::abs(b[i] - c[i]);
    if (std::isnan(d)) return std::numeric_limits<double>::quiet_NaN();
    worst = std::max(worst, d);
  }
  return worst;
}

double cosine_similarity(const torch::Tensor& baseline, const torch::Tensor& candidate) {
  check_same_shape(baseline, candidate);
  const auto b = cells_of(baseline), c = cells_of(candidate);
  double dot = 0, bb = 0, cc = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    dot += b[i] * c[i];
    bb += b[i] * b[i];
    cc += c[i] * c[i];
  }
  if (bb == 0 && cc == 0) return 1.0;
  if (bb == 0 || cc == 0) return 0.0;
  return dot / (std::sqrt(bb) * std::sqrt(cc));
}

double top_k_iou(const torch::Tensor& baseline, const torch::Tensor& candidate, double percent) {
  check_same_shape(baseline, candidate);
  const auto b = cells_of(baseline), c = cells_of(candidate);
  if (b.empty()) return 1.0;
  // The small epsilon keeps e.g. 10% of 50 cells at 5, not 6, despite 0.1 not being exact in binary.
  const double wanted = std::ceil(percent / 100.0 * static_cast<double>(b.size()) - 1e-9);
  const size_t k = std::clamp<size_t>(static_cast<size_t>(std::max(wanted, 1.0)), 1, b.size());
  const auto top_b = top_cells(b, k), top_c = top_cells(c, k);
  std::vector<size_t> both;
  std::set_intersection(top_b.begin(), top_b.end(), top_c.begin(), top_c.end(), std::back_inserter(both));
  const double intersection = static_cast<double>(both.size());
  return intersection / (2.0 * static_cast<double>(k) - intersection);
}

std::array<int64_t, 2> peak_cell(const torch::Tensor& map) {
  const auto v = cells_of(map);
  size_t best = 0;
  for (size_t i = 1; i < v.size(); ++i) {
    if (std::isnan(v[best]) || v[i] > v[best]) best = i;
  }
  const int64_t width = map.size(1);
  return {static_cast<int64_t>(best) / width, static_cast<int64_t>(best) % width};
}

double peak_shift(const torch::Tensor& baseline, const torch::Tensor& candidate) {
  check_same_shape(baseline, candidate);
  const auto p = attnmap::peak_cell(baseline), q = attnmap::peak_cell(candidate);
  return std::hypot(static_cast<double>(p[0] - q[0]), static_cast<double>(p[1] - q[1]));
}

LayerFigures measure_layer(const torch::Tensor& baseline, const torch::Tensor& candidate, const CompareOptions& options) {
  check_same_shape(baseline, candidate);
  LayerFigures f;
  const auto b = cells_of(baseline), c = cells_of(candidate);
  for (size_t i = 0; i < b.size(); ++i) {
    const double diff = std::abs(b[i] - c[i]);
    const double bound = options.atol + options.rtol * std::abs(b[i]);
    // Written as !(<=) so that NaN on either side counts as outside.
    if (!(diff <= bound)) ++f.cells_outside;
    const double ratio = bound > 0 ? diff / bound : (diff == 0 ? 0.0 : std::numeric_limits<double>::infinity());
    // NaN is sticky: one NaN cell makes the whole layer's ratio NaN.
    if (std::isnan(ratio)) {
      f.tolerance_ratio = ratio;
    } else if (!std::isnan(f.tolerance_ratio)) {
      f.tolerance_ratio = std::max(f.tolerance_ratio, ratio);
    }
  }
  f.max_abs = attnmap::max_abs_difference(baseline, candidate);
  f.cosine = attnmap::cosine_similarity(baseline, candidate);
  f.iou_top_k = attnmap::top_k_iou(baseline, candidate, options.top_k_percent);
  f.baseline_peak = attnmap::peak_cell(baseline);
  f.candidate_peak = attnmap::peak_cell(candidate);
  f.peak_shift = attnmap::peak_shift(baseline, candidate);
  return f;
}

bool layer_passes(const LayerFigures& f, const CompareOptions& options) {
  switch (options.metric) {
    case CompareMetric::MaxAbs: return f.cells_outside == 0;
    case CompareMetric::Cosine: return f.cosine >= options.min_cosine;
    case CompareMetric::IouTopK: return f.iou_top_k >= options.min_iou;
    case CompareMetric::PeakShift: return f.peak_shift <= options.max_peak_shift;
  }
  return false;
}

double decisive_value(const LayerFigures& f, CompareMetric metric) {
  switch (metric) {
    case CompareMetric::MaxAbs: return f.max_abs;
    case CompareMetric::Cosine: return f.cosine;
    case CompareMetric::IouTopK: return f.iou_top_k;
    case CompareMetric::PeakShift: return f.peak_shift;
  }
  return 0;
}

}  // namespace attnmap
