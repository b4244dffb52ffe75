#include <cmath>
#include <string>

#include "attnmap/error.hpp"
#include "attnmap/image.hpp"

namespace attnmap {

namespace {
// Python's round() on a float: ties go to the even neighbour (70/28 = 2.5 -> 2). std::nearbyint
// does the same in the default FE_TONEAREST mode; std::round would give 3 and a different grid.
int64_t python_round(double x) { return static_cast<int64_t>(std::nearbyint(x)); }
}  // namespace

std::pair<int, int> smart_resize(int height, int width, int factor, int64_t min_pixels, int64_t max_pixels) {
  if (factor <= 0 || min_pixels <= 0 || max_pixels < min_pixels) {
    throw Error(ErrorKind::Internal, "smart_resize: invalid parameters (factor " + std::to_string(factor) +
                                         ", min_pixels " + std::to_string(min_pixels) + ", max_pixels " +
                                         std::to_string(max_pixels) + ")");
  }
  const std::string size = std::to_string(width) + "x" + std::to_string(height);
  // transformers v5 dropped this check, but a side shorter than one merged patch cannot carry a
  // meaningful attention map, and older versions rejected it too.
  if (height < factor || width < factor) {
    throw Error(ErrorKind::Input, "image is " + size + " pixels, smaller than the minimum of " +
                                      std::to_string(factor) + " pixels per side; use a larger image");
  }
  const double ratio = static_cast<double>(std::max(height, width)) / std::min(height, width);
  if (ratio > 200) {
    throw Error(ErrorKind::Input, "image is " + size + " pixels, an aspect ratio of " + std::to_string(ratio) +
                                      " over the model's limit of 200; crop or pad it first");
  }
  const double h = height, w = width, f = factor;
  int64_t h_bar = python_round(h / f) * factor;
  int64_t w_bar = python_round(w / f) * factor;
  // The operation order below is the Python source's; reordering changes floor/ceil at the edges.
  if (h_bar * w_bar > max_pixels) {
    const double beta = std::sqrt((h * w) / static_cast<double>(max_pixels));
    h_bar = std::max<int64_t>(factor, static_cast<int64_t>(std::floor(h / beta / f)) * factor);
    w_bar = std::max<int64_t>(factor, static_cast<int64_t>(std::floor(w / beta / f)) * factor);
  } else if (h_bar * w_bar < min_pixels) {
    const double beta = std::sqrt(static_cast<double>(min_pixels) / (h * w));
    h_bar = static_cast<int64_t>(std::ceil(h * beta / f)) * factor;
    w_bar = static_cast<int64_t>(std::ceil(w * beta / f)) * factor;
  }
  return {static_cast<int>(h_bar), static_cast<int>(w_bar)};
}

}  // namespace attnmap
