#include "render/caption.hpp"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <string>

#include "render/text_label.hpp"

namespace attnmap::detail {
namespace {

constexpr int kHersheyFont = cv::FONT_HERSHEY_SIMPLEX;

// Hershey scale whose glyphs are about as tall as a FreeType font at `pixel_size`.
double hershey_scale(int pixel_size) { return pixel_size / 30.0; }

void draw_hershey_fitting(cv::Mat& bgr, const std::string& text, cv::Point origin, int max_width, int pixel_size,
                          const cv::Scalar& colour) {
  double scale = hershey_scale(pixel_size);
  int baseline = 0;
  while (scale > 0.25 && cv::getTextSize(text, kHersheyFont, scale, 1, &baseline).width > max_width) scale -= 0.05;
  cv::putText(bgr, text, origin, kHersheyFont, scale, colour, 1, cv::LINE_AA);
}

}  // namespace

bool draw_fitted_text(cv::Mat& bgr, std::string_view text, cv::Point baseline_left, int max_width, int pixel_size,
                      const cv::Scalar& bgr_colour) {
  const int smallest = std::max(1, pixel_size * 3 / 4);
  int size = pixel_size;
  TextExtent extent = measure_text(text, size);
  if (!extent.all_glyphs_found) return false;
  while (extent.width > max_width && size > smallest) extent = measure_text(text, --size);
  const std::string fitted = extent.width > max_width ? ellipsise_to_width(text, size, max_width) : std::string(text);
  draw_text(bgr, fitted, baseline_left, size, bgr_colour);
  return true;
}

void draw_caption(cv::Mat& bgr, std::string_view text, cv::Point baseline_left, int max_width, int pixel_size,
                  const cv::Scalar& bgr_colour) {
  if (!draw_fitted_text(bgr, text, baseline_left, max_width, pixel_size, bgr_colour)) {
    draw_hershey_fitting(bgr, std::string(text), baseline_left, max_width, pixel_size, bgr_colour);
  }
}

int caption_width(std::string_view text, int pixel_size) {
  const TextExtent extent = measure_text(text, pixel_size);
  if (extent.all_glyphs_found) return extent.width;
  int baseline = 0;
  return cv::getTextSize(std::string(text), kHersheyFont, hershey_scale(pixel_size), 1, &baseline).width;
}

}  // namespace attnmap::detail
