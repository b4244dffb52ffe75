#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "attnmap/error.hpp"
#include "attnmap/render.hpp"
#include "render/heatmap.hpp"

namespace attnmap {

namespace {

constexpr int kTileLongSide = 256;
constexpr int kCaptionHeight = 24;
constexpr int kGap = 6;
constexpr int kBarHeight = 16;
constexpr int kBarTextHeight = 40;
constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
const cv::Scalar kInk(255, 255, 255);
const cv::Scalar kPaper(32, 32, 32);

std::string short_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

// Text scaled down until it fits `max_width`, so long labels never spill into the next tile.
void put_text_fitting(cv::Mat& canvas, const std::string& text, cv::Point origin, int max_width) {
  double scale = 0.5;
  int baseline = 0;
  while (scale > 0.25 && cv::getTextSize(text, kFont, scale, 1, &baseline).width > max_width) scale -= 0.05;
  cv::putText(canvas, text, origin, kFont, scale, kInk, 1, cv::LINE_AA);
}

// Horizontal gradient from low to high in the chosen colormap, labelled with the shared range.
cv::Mat colour_bar(int width, double lo, double hi, const RenderOptions& options) {
  cv::Mat bar(kBarHeight + kBarTextHeight, width, CV_8UC3, kPaper);
  const int inner = std::max(1, width - 2 * kGap);
  cv::Mat ramp(1, inner, CV_8UC1);
  for (int x = 0; x < inner; ++x) ramp.at<uint8_t>(0, x) = cv::saturate_cast<uint8_t>(255.0 * x / std::max(1, inner - 1));
  cv::Mat coloured;
  cv::applyColorMap(ramp, coloured, detail::opencv_colormap(options.colormap));
  cv::resize(coloured, coloured, cv::Size(inner, kBarHeight), 0, 0, cv::INTER_NEAREST);
  coloured.copyTo(bar(cv::Rect(kGap, 0, inner, kBarHeight)));
  const int text_y = kBarHeight + 16;
  const std::string low = "low " + short_number(lo), high = "high " + short_number(hi);
  int baseline = 0;
  const int high_width = cv::getTextSize(high, kFont, 0.45, 1, &baseline).width;
  cv::putText(bar, low, cv::Point(kGap, text_y), kFont, 0.45, kInk, 1, cv::LINE_AA);
  cv::putText(bar, high, cv::Point(std::max(kGap, width - kGap - high_width), text_y), kFont, 0.45, kInk, 1,
              cv::LINE_AA);
  put_text_fitting(bar, "one scale shared by all layers", cv::Point(kGap, text_y + 18), width - 2 * kGap);
  return bar;
}

}  // namespace

cv::Mat render_grid(const cv::Mat& original_rgb, const std::vector<torch::Tensor>& maps,
                    const std::vector<std::string>& labels, const RenderOptions& options) {
  options.validate();
  if (original_rgb.empty() || original_rgb.type() != CV_8UC3) {
    throw Error(ErrorKind::Internal, "render_grid needs a non-empty CV_8UC3 RGB image");
  }
  if (maps.empty() || maps.size() != labels.size()) {
    throw Error(ErrorKind::Internal, "render_grid needs at least one map and one label per map");
  }
  std::vector<cv::Mat> mats;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto& map : maps) {
    mats.push_back(detail::map_to_mat(map));
    double a = 0, b = 0;
    cv::minMaxLoc(mats.back(), &a, &b);
    lo = std::min(lo, a);
    hi = std::max(hi, b);
  }

  const double scale = std::min(1.0, double(kTileLongSide) / std::max(original_rgb.cols, original_rgb.rows));
  const cv::Size tile(std::max(1, int(std::lround(original_rgb.cols * scale))),
                      std::max(1, int(std::lround(original_rgb.rows * scale))));
  cv::Mat small_bgr;
  cv::resize(original_rgb, small_bgr, tile, 0, 0, cv::INTER_AREA);
  cv::cvtColor(small_bgr, small_bgr, cv::COLOR_RGB2BGR);

  const int n = static_cast<int>(mats.size());
  const int cols = static_cast<int>(std::ceil(std::sqrt(double(n))));
  const int rows = (n + cols - 1) / cols;
  const int cell_w = tile.width + kGap, cell_h = tile.height + kCaptionHeight + kGap;
  const int width = std::max(cols * cell_w + kGap, 200);
  cv::Mat canvas(rows * cell_h + kGap, width, CV_8UC3, kPaper);
  for (int i = 0; i < n; ++i) {
    const int x = kGap + (i % cols) * cell_w, y = kGap + (i / cols) * cell_h;
    put_text_fitting(canvas, labels[i], cv::Point(x, y + kCaptionHeight - 8), tile.width);
    // The blur sigma is given in original pixels; the tile is `scale` times smaller.
    const cv::Mat tile_img = detail::blend_heatmap(small_bgr, detail::normalise(mats[i], lo, hi), options,
                                                   options.blur_sigma * scale);
    tile_img.copyTo(canvas(cv::Rect(x, y + kCaptionHeight, tile.width, tile.height)));
  }
  cv::Mat out;
  cv::vconcat(canvas, colour_bar(width, lo, hi, options), out);
  return out;
}

}  // namespace attnmap
