// transformers' Qwen3-VL video smart_resize (video_processing_qwen3_vl.py, v5.23), in the Python
// source's operation order: the bounds weigh the whole clip, so a long clip gets smaller frames.
#include <algorithm>
#include <cmath>
#include <string>

#include "attnmap/error.hpp"
#include "attnmap/video.hpp"

namespace attnmap {
namespace {
// Python's round(): ties to even, as std::nearbyint in the default rounding mode.
int64_t python_round(double x) { return static_cast<int64_t>(std::nearbyint(x)); }
}  // namespace

std::pair<int, int> smart_resize_clip(int num_frames, int height, int width, int temporal_factor, int factor,
                                      int64_t min_pixels, int64_t max_pixels) {
  if (factor <= 0 || temporal_factor <= 0 || min_pixels <= 0 || max_pixels < min_pixels || height <= 0 || width <= 0) {
    throw Error(ErrorKind::Internal, "smart_resize_clip: invalid parameters");
  }
  if (num_frames < temporal_factor) {
    throw Error(ErrorKind::Input, "the video gives " + std::to_string(num_frames) + " frame" +
                                      (num_frames == 1 ? "" : "s") + ", fewer than the model's " +
                                      std::to_string(temporal_factor) + " per temporal patch; use at least " +
                                      std::to_string(temporal_factor) + " frames");
  }
  // Sides shorter than one merged patch are scaled up (int() truncates), not refused.
  if (height < factor || width < factor) {
    const double scale = std::max(static_cast<double>(factor) / height, static_cast<double>(factor) / width);
    height = static_cast<int>(height * scale);
    width = static_cast<int>(width * scale);
  }
  const double ratio = static_cast<double>(std::max(height, width)) / std::min(height, width);
  if (ratio > 200) {
    throw Error(ErrorKind::Input, "the frames are " + std::to_string(width) + "x" + std::to_string(height) +
                                      " pixels, an aspect ratio of " + std::to_string(ratio) +
                                      " over the model's limit of 200; crop or pad them first");
  }
  const double h = height, w = width, f = factor;
  int64_t h_bar = python_round(h / f) * factor;
  int64_t w_bar = python_round(w / f) * factor;
  const int64_t t_bar = python_round(static_cast<double>(num_frames) / temporal_factor) * temporal_factor;
  // The volume uses the unrounded frame count, as the Python source does.
  const double volume = static_cast<double>(static_cast<int64_t>(num_frames) * height * width);
  if (t_bar * h_bar * w_bar > max_pixels) {
    const double beta = std::sqrt(volume / static_cast<double>(max_pixels));
    h_bar = std::max<int64_t>(factor, static_cast<int64_t>(std::floor(h / beta / f)) * factor);
    w_bar = std::max<int64_t>(factor, static_cast<int64_t>(std::floor(w / beta / f)) * factor);
  } else if (t_bar * h_bar * w_bar < min_pixels) {
    const double beta = std::sqrt(static_cast<double>(min_pixels) / volume);
    h_bar = static_cast<int64_t>(std::ceil(h * beta / f)) * factor;
    w_bar = static_cast<int64_t>(std::ceil(w * beta / f)) * factor;
  }
  return {static_cast<int>(h_bar), static_cast<int>(w_bar)};
}

}  // namespace attnmap
