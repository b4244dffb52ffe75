// The one 256-colour palette of an animated GIF and the mapping of pixels onto it (internal to
// src/render; used by write_gif.cpp). Kept apart from the LZW coder: choosing colours is the lossy,
// quality-deciding step and is tested by its error, while the coder is lossless and tested bit-exact.
#pragma once

#include <opencv2/core.hpp>

#include <array>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace attnmap::gif {

// At most 256 BGR colours. One global palette for all frames: an animation of one scene keeps its
// colours from frame to frame, so per-frame palettes would only cost bytes and make colours flicker.
using Palette = std::vector<cv::Vec3b>;

// Builds the palette of BGR CV_8UC3 frames. When they hold at most 256 distinct colours, those exactly
// (solid fills, rendered text and bars stay lossless); otherwise median cut on a subsample, refined
// by a few k-means rounds. Deterministic: the same frames always give the same palette.
Palette build_palette(const std::vector<cv::Mat>& frames_bgr);

// Nearest palette entry (squared RGB distance) per pixel. Heatmaps repeat colours a lot, so each
// distinct colour is searched once and remembered for the rest of the frames. No dithering: measured on
// the heatmap frames of tests/python/test_gif_writer.py, a 4x4 ordered dither of amplitude 4 / 8 / 16
// raised the mean abs error from 3.47 to 3.59 / 3.95 / 5.18. (Decided on that error alone; banding was
// not judged by eye.)
class PaletteMapper {
 public:
  explicit PaletteMapper(const Palette& palette);
  // Row-major palette indices of a BGR CV_8UC3 frame.
  std::vector<uint8_t> map(const cv::Mat& frame_bgr);

 private:
  uint8_t nearest(const cv::Vec3b& bgr);

  std::vector<std::array<int, 3>> sorted_;  // palette colours ordered by green, for the pruned search
  std::vector<uint8_t> sorted_index_;       // palette index of each sorted_ entry
  std::unordered_map<uint32_t, uint8_t> cache_;
};

}  // namespace attnmap::gif
