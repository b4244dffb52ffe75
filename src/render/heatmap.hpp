// Shared steps of render_overlay, render_grid and render_answer_strip (internal to src/render).
#pragma once

#include <opencv2/core.hpp>
#include <torch/types.h>

#include <string>
#include <vector>

#include "attnmap/render.hpp"

namespace attnmap::detail {

// cv::COLORMAP_* for a RenderOptions colormap name; Error(Usage) for an unknown one.
int opencv_colormap(const std::string& name);

// A float32 [h, w] CPU tensor as a CV_32FC1 copy; Error(Internal) for another shape.
cv::Mat map_to_mat(const torch::Tensor& map);

// (map - lo) / (hi - lo) clamped to [0, 1]; all zeros when hi <= lo (a constant map has no "high").
cv::Mat normalise(const cv::Mat& map, double lo, double hi);

// Upsamples a [0, 1] map to `size`, blurs it (sigma in output pixels, 0 = none), colours it and blends
// it over `background_bgr` with weight alpha. Returns BGR CV_8UC3 of `size`.
cv::Mat blend_heatmap(const cv::Mat& background_bgr, const cv::Mat& map01, const RenderOptions& options,
                      double blur_sigma);

// Every map as CV_32FC1 with the min/max over all of them: the one colour scale that makes a
// montage's tiles comparable.
struct SharedScaleMaps {
  std::vector<cv::Mat> mats;
  double lo = 0, hi = 0;
};
SharedScaleMaps with_shared_scale(const std::vector<torch::Tensor>& maps);

// `original_rgb` resized (area-averaged) to `size` and converted to BGR: a tile's background.
cv::Mat tile_background(const cv::Mat& original_rgb, cv::Size size);

// `image_size` scaled by `scale`, each side rounded and at least 1 px: the size of a tile.
cv::Size scaled_size(cv::Size image_size, double scale);

}  // namespace attnmap::detail
