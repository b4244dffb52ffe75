// UTF-8 text drawn into BGR images with FreeType, in whatever script an installed font covers
// (internal to src/render). Fonts come from render/font_cache.hpp, one per code point; layout is one
// line, no shaping (render/display_text.hpp says what that means for right-to-left text).
#pragma once

#include <opencv2/core.hpp>

#include <string>
#include <string_view>

namespace attnmap::detail {

struct TextExtent {
  int width = 0;  // pixels the pen advanced
  // False when a code point had no font, or there is no usable font at all: the text was then drawn
  // with the primary font's .notdef box in its place (or not at all), and callers should show
  // something else instead of a row of boxes.
  bool all_glyphs_found = true;
};

// The extent draw_text would have, without drawing.
TextExtent measure_text(std::string_view utf8, int pixel_size);

// Draws `utf8` anti-aliased into `bgr` (CV_8UC3) in `bgr_colour`, starting at `baseline_left` (the
// pen position on the baseline) with an em height of `pixel_size` pixels. Ink outside the image is
// clipped. Never throws for any input text; Error(Internal) for an image that is not CV_8UC3.
TextExtent draw_text(cv::Mat& bgr, std::string_view utf8, cv::Point baseline_left, int pixel_size,
                     const cv::Scalar& bgr_colour);

// `utf8` itself when it fits `max_width` at `pixel_size`, else its longest prefix of whole code
// points followed by "…" that fits (just "…" when nothing else does).
std::string ellipsise_to_width(std::string_view utf8, int pixel_size, int max_width);

}  // namespace attnmap::detail
