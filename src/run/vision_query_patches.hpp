// Which patches a --vision-query averages: the query rows of the vision tower's attention, as raster
// indexes (t, row, col) of the unmerged patch grid (docs/design.md, "vision_attention").
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "attnmap/options.hpp"
#include "attnmap/run_folder.hpp"

namespace attnmap {

// The unmerged patch grid of one image or video: grid_t temporal patches of grid_h x grid_w patches.
struct PatchGrid {
  int64_t t = 1, h = 0, w = 0;
  int64_t merge = 2;  // spatial_merge_size: a merged decoder cell is merge x merge patches
};

// The patches whose pixels overlap query.box (x0, y0, x1, y1 in the original image's pixels, as
// displayed), in every temporal patch. A patch covers the same share of the original image as of the
// resized one: column c spans [c * width / w, (c + 1) * width / w). The box is clipped to the image;
// Error(Input) naming `source` and the image size when nothing of it is left.
std::vector<int64_t> box_query_patches(const VisionQuery& query, int64_t width, int64_t height,
                                       const PatchGrid& grid, const std::string& source);

// text-peak: the merged cell of `map` (one decoder layer's map, [merged_h, merged_w] or
// [t, merged_h, merged_w]) with the most attention (the first in raster order on a tie) and the
// merge x merge patches under it. peak.layer is left for the caller.
struct PeakQuery {
  VisionRecord::Peak peak;
  std::vector<int64_t> patches;
};
PeakQuery peak_query_patches(const torch::Tensor& map, const PatchGrid& grid);

}  // namespace attnmap
