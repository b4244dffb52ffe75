// Captions that must fit a width (internal to src/render): the size and ellipsis policy on top of
// render/text_label.hpp, and OpenCV's Hershey font for when no usable font is installed.
#pragma once

#include <opencv2/core.hpp>

#include <string_view>

namespace attnmap::detail {

// Draws `text` at `baseline_left` so that it fits `max_width`: at `pixel_size`, else a little smaller
// (down to three quarters of it), else ellipsised at that size. Returns false, drawing nothing, when
// some code point of `text` has no font (or there is no font at all): the caller draws something
// else rather than boxes.
bool draw_fitted_text(cv::Mat& bgr, std::string_view text, cv::Point baseline_left, int max_width, int pixel_size,
                      const cv::Scalar& bgr_colour);

// For captions attnmap writes itself ("layer 12", "low 0.25"): draw_fitted_text, else OpenCV's
// Hershey font (ASCII only, always there), so a machine without fonts still gets labelled images.
void draw_caption(cv::Mat& bgr, std::string_view text, cv::Point baseline_left, int max_width, int pixel_size,
                  const cv::Scalar& bgr_colour);

// The width draw_caption would take for `text` when it fits unshrunk.
int caption_width(std::string_view text, int pixel_size);

}  // namespace attnmap::detail
