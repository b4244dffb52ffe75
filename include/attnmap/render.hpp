// Heatmap rendering for `attnmap run`: attention maps coloured and blended over the image, a labelled
// montage of all layers, and atomic JPEG writing.
#pragma once

#include <opencv2/core.hpp>
#include <torch/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace attnmap {

struct RenderOptions {
  std::string colormap = "jet";  // jet | viridis | turbo | inferno
  double alpha = 0.5;            // weight of the heatmap in the blend, in [0, 1]
  double blur_sigma = 0;         // Gaussian blur of the upsampled map, in original-image pixels; 0 = off

  // Throws Error(Usage) naming the option and its valid values.
  void validate() const;
};

// The colormap names RenderOptions::colormap accepts, in the order the CLI should list them.
const std::vector<std::string>& colormap_names();

// `map` (float32 [h', w'], any scale) normalised by its own min/max (a constant map renders as all
// "low"), upsampled to the size of `original_rgb` (CV_8UC3, RGB), optionally blurred, coloured and
// alpha-blended over the image. Returns BGR CV_8UC3 at the original size, ready for JPEG encoding.
cv::Mat render_overlay(const cv::Mat& original_rgb, const torch::Tensor& map, const RenderOptions& options);

// One montage of every map (tiles with the longest side at most 256 px, each captioned with its
// label, e.g. "layer 12") and a colour bar. All maps share one min/max, so tiles are comparable;
// the bar says so and shows the range. Returns BGR CV_8UC3.
cv::Mat render_grid(const cv::Mat& original_rgb, const std::vector<torch::Tensor>& maps,
                    const std::vector<std::string>& labels, const RenderOptions& options);

// Encodes `bgr` as JPEG (quality 1..100) and writes it atomically; Error(Output) on failure.
void write_jpeg_atomically(const std::filesystem::path& path, const cv::Mat& bgr, int quality = 92);

}  // namespace attnmap
