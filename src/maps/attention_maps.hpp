// From attention rows to the raw maps that attnmap's numbers mean.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "attnmap/prompt.hpp"
#include "attnmap/run_folder.hpp"

namespace attnmap {

// rows: per layer float32 [H', 1, S] (queries already averaged). Picks head `head` (or the only
// one when H' == 1), keeps the visual-token columns of `runs` (in order: a video's temporal patches
// may be separate runs) and lays them out on the merged grid (raster order; a video's [t*h, w]).
// Returns float32 [layers, merged_h, merged_w].
torch::Tensor image_maps(const std::vector<torch::Tensor>& rows, int64_t head, const std::vector<TokenRun>& runs,
                         int64_t merged_h, int64_t merged_w);

// Share of the non-negative map's mass on its top `fraction` of cells (at least one cell); 0 for an
// all-zero map.
double top_share(const torch::Tensor& map, double fraction = 0.01);

// min, max, sum, entropy and top-1% share of every map of maps [layers, h, w], labelled with `layers`.
std::vector<LayerStats> layer_stats(const std::vector<int64_t>& layers, const torch::Tensor& maps);

// Shannon entropy (nats) of a non-negative map renormalised to sum 1; 0 for an all-zero map.
double map_entropy(const torch::Tensor& map);

}  // namespace attnmap
