// The colour bar under render_grid's and render_answer_strip's tiles (internal to src/render).
#pragma once

#include <opencv2/core.hpp>

#include <string>

#include "attnmap/render.hpp"

namespace attnmap::detail {

// Height of what colour_bar returns.
inline constexpr int kColourBarHeight = 56;

// A `width`-wide horizontal gradient from low to high in the chosen colormap, labelled with the
// shared range [lo, hi] and `note` (e.g. "one scale shared by all layers"). BGR CV_8UC3.
cv::Mat colour_bar(int width, double lo, double hi, const RenderOptions& options, const std::string& note);

}  // namespace attnmap::detail
