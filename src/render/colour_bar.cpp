#include "render/colour_bar.hpp"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cstdio>

#include "render/caption.hpp"
#include "render/heatmap.hpp"

namespace attnmap::detail {
namespace {

constexpr int kGap = 6;
constexpr int kRampHeight = 16;
constexpr int kTextSize = 13;  // pixels
const cv::Scalar kInk(255, 255, 255);
const cv::Scalar kPaper(32, 32, 32);

std::string short_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

}  // namespace

cv::Mat colour_bar(int width, double lo, double hi, const RenderOptions& options, const std::string& note) {
  cv::Mat bar(kColourBarHeight, width, CV_8UC3, kPaper);
  const int inner = std::max(1, width - 2 * kGap);
  cv::Mat ramp(1, inner, CV_8UC1);
  for (int x = 0; x < inner; ++x) ramp.at<uint8_t>(0, x) = cv::saturate_cast<uint8_t>(255.0 * x / std::max(1, inner - 1));
  cv::Mat coloured;
  cv::applyColorMap(ramp, coloured, opencv_colormap(options.colormap));
  cv::resize(coloured, coloured, cv::Size(inner, kRampHeight), 0, 0, cv::INTER_NEAREST);
  coloured.copyTo(bar(cv::Rect(kGap, 0, inner, kRampHeight)));
  const int text_y = kRampHeight + 16;
  const std::string low = "low " + short_number(lo), high = "high " + short_number(hi);
  const int half = std::max(1, inner / 2 - kGap);
  draw_caption(bar, low, cv::Point(kGap, text_y), half, kTextSize, kInk);
  const int high_width = std::min(half, caption_width(high, kTextSize));
  draw_caption(bar, high, cv::Point(std::max(kGap, width - kGap - high_width), text_y), half, kTextSize, kInk);
  draw_caption(bar, note, cv::Point(kGap, text_y + 18), inner, kTextSize, kInk);
  return bar;
}

}  // namespace attnmap::detail
