#include "run/vision_query_patches.hpp"

#include <algorithm>
#include <cmath>

#include "attnmap/error.hpp"

namespace attnmap {

namespace {

// The patch indexes [first, last) along one axis of `n` patches whose span overlaps [a, b) of an axis
// `extent` pixels long. Overlap means a positive length in common, so a box edge on a patch border
// does not pull in the neighbour.
std::pair<int64_t, int64_t> overlapping(double a, double b, int64_t extent, int64_t n) {
  const double per_patch = static_cast<double>(extent) / static_cast<double>(n);
  int64_t first = static_cast<int64_t>(std::floor(a / per_patch));
  int64_t last = static_cast<int64_t>(std::ceil(b / per_patch));
  return {std::clamp<int64_t>(first, 0, n), std::clamp<int64_t>(last, 0, n)};
}

}  // namespace

std::vector<int64_t> box_query_patches(const VisionQuery& query, int64_t width, int64_t height,
                                       const PatchGrid& grid, const std::string& source) {
  const std::array<double, 4>& box = query.box;
  const double x0 = std::max(0.0, box[0]), y0 = std::max(0.0, box[1]);
  const double x1 = std::min(static_cast<double>(width), box[2]), y1 = std::min(static_cast<double>(height), box[3]);
  if (!(x0 < x1) || !(y0 < y1)) {
    throw Error(ErrorKind::Input, source + ": --vision-query " + query.text() + " lies outside the " +
                                      std::to_string(width) + "x" + std::to_string(height) +
                                      " image; give a box in its pixels (x0,y0,x1,y1 with x1 <= width, y1 <= height)");
  }
  const auto [c0, c1] = overlapping(x0, x1, width, grid.w);
  const auto [r0, r1] = overlapping(y0, y1, height, grid.h);
  std::vector<int64_t> patches;
  for (int64_t t = 0; t < grid.t; ++t) {
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t c = c0; c < c1; ++c) patches.push_back((t * grid.h + r) * grid.w + c);
    }
  }
  return patches;
}

PeakQuery peak_query_patches(const torch::Tensor& map, const PatchGrid& grid) {
  const torch::Tensor cells = map.reshape({-1}).to(torch::kFloat32).contiguous();
  const int64_t merged_h = grid.h / grid.merge, merged_w = grid.w / grid.merge;
  if (cells.numel() != grid.t * merged_h * merged_w) {
    throw Error(ErrorKind::Internal, "text-peak: the decoder map has " + std::to_string(cells.numel()) +
                                         " cells, not the grid's " + std::to_string(grid.t * merged_h * merged_w));
  }
  // The first maximum in raster order; NaN cells (an fp16 overflow) never win.
  const float* data = cells.data_ptr<float>();
  int64_t best = 0;
  for (int64_t i = 1; i < cells.numel(); ++i) {
    if (data[i] > data[best] || (std::isnan(data[best]) && !std::isnan(data[i]))) best = i;
  }
  PeakQuery out;
  out.peak.t = best / (merged_h * merged_w);
  out.peak.row = (best / merged_w) % merged_h;
  out.peak.col = best % merged_w;
  out.peak.value = data[best];
  for (int64_t i = 0; i < grid.merge; ++i) {
    for (int64_t j = 0; j < grid.merge; ++j) {
      const int64_t r = out.peak.row * grid.merge + i, c = out.peak.col * grid.merge + j;
      out.patches.push_back((out.peak.t * grid.h + r) * grid.w + c);
    }
  }
  return out;
}

}  // namespace attnmap
