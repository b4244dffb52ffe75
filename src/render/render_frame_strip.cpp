// The frame strip of a video's maps for one decoder layer: every temporal patch's map over its own
// frame, on one colour scale, so "which frame" reads at a glance (render.hpp).
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

#include "attnmap/error.hpp"
#include "attnmap/render.hpp"
#include "render/caption.hpp"
#include "render/colour_bar.hpp"
#include "render/heatmap.hpp"

namespace attnmap {

namespace {

// The answer strip's layout (render_answer_strip.cpp), with larger tiles: a clip has fewer temporal
// patches than an answer has tokens, and the region matters more than the caption.
constexpr int kTileLongSide = 240;
constexpr int kTilesPerRow = 6;
constexpr int kAnimationLongSide = 480;  // one frame at a time: room to see the region
constexpr int kCaptionHeight = 24;
constexpr int kMinWidth = 320;
constexpr int kGap = 6;
constexpr int kCaptionSize = 14;
constexpr int kCaptionBaseline = 18;
const cv::Scalar kInk(255, 255, 255);
const cv::Scalar kPaper(32, 32, 32);

}  // namespace

cv::Mat render_frame_strip(const std::vector<cv::Mat>& frames_rgb, const std::vector<torch::Tensor>& maps,
                           const std::vector<std::string>& labels, const RenderOptions& options) {
  options.validate();
  if (frames_rgb.empty() || frames_rgb.size() != maps.size() || maps.size() != labels.size()) {
    throw Error(ErrorKind::Internal, "render_frame_strip needs one frame, one map and one label per tile");
  }
  for (const cv::Mat& f : frames_rgb) {
    if (f.empty() || f.type() != CV_8UC3 || f.size() != frames_rgb.front().size()) {
      throw Error(ErrorKind::Internal, "render_frame_strip needs non-empty CV_8UC3 RGB frames of one size");
    }
  }
  const detail::SharedScaleMaps shared = detail::with_shared_scale(maps);
  const cv::Mat& first = frames_rgb.front();
  const double scale = double(kTileLongSide) / std::max(first.cols, first.rows);
  const cv::Size tile = detail::scaled_size(first.size(), scale);

  const int n = static_cast<int>(maps.size());
  const int cols = std::min(n, kTilesPerRow);
  const int rows = (n + cols - 1) / cols;
  const int cell_w = tile.width, cell_h = kCaptionHeight + tile.height + kGap;
  const int width = std::max(kGap + cols * (cell_w + kGap), kMinWidth);
  cv::Mat canvas(kGap + rows * cell_h, width, CV_8UC3, kPaper);
  for (int k = 0; k < n; ++k) {
    const int x = kGap + (k % cols) * (cell_w + kGap), y = kGap + (k / cols) * cell_h;
    detail::draw_caption(canvas, labels[static_cast<size_t>(k)], cv::Point(x, y + kCaptionBaseline), cell_w,
                         kCaptionSize, kInk);
    const cv::Mat background = detail::tile_background(frames_rgb[static_cast<size_t>(k)], tile);
    const cv::Mat tile_img = detail::blend_heatmap(background, detail::normalise(shared.mats[static_cast<size_t>(k)],
                                                                                  shared.lo, shared.hi),
                                                   options, options.blur_sigma * scale);
    tile_img.copyTo(canvas(cv::Rect(x, y + kCaptionHeight, tile.width, tile.height)));
  }
  cv::Mat out;
  cv::vconcat(canvas, detail::colour_bar(width, shared.lo, shared.hi, options, "one scale shared by all frames"), out);
  return out;
}

std::vector<cv::Mat> render_frame_sequence(const std::vector<cv::Mat>& frames_rgb, const std::vector<torch::Tensor>& maps,
                                           const std::vector<std::string>& labels, const RenderOptions& options) {
  options.validate();
  if (frames_rgb.empty() || frames_rgb.size() != maps.size() || maps.size() != labels.size()) {
    throw Error(ErrorKind::Internal, "render_frame_sequence needs one frame, one map and one label per temporal patch");
  }
  const detail::SharedScaleMaps shared = detail::with_shared_scale(maps);
  const cv::Mat& first = frames_rgb.front();
  const double scale = double(kAnimationLongSide) / std::max(first.cols, first.rows);
  const cv::Size size = detail::scaled_size(first.size(), scale);
  const int width = std::max(size.width, kMinWidth);
  const cv::Mat bar = detail::colour_bar(width, shared.lo, shared.hi, options, "one scale shared by all frames");
  std::vector<cv::Mat> out;
  for (size_t k = 0; k < maps.size(); ++k) {
    cv::Mat canvas(kCaptionHeight + size.height, width, CV_8UC3, kPaper);
    detail::draw_caption(canvas, labels[k], cv::Point(kGap, kCaptionBaseline), width - 2 * kGap, kCaptionSize, kInk);
    const cv::Mat background = detail::tile_background(frames_rgb[k], size);
    detail::blend_heatmap(background, detail::normalise(shared.mats[k], shared.lo, shared.hi), options,
                          options.blur_sigma * scale)
        .copyTo(canvas(cv::Rect((width - size.width) / 2, kCaptionHeight, size.width, size.height)));
    cv::Mat frame;
    cv::vconcat(canvas, bar, frame);
    out.push_back(frame);
  }
  return out;
}

cv::Mat stack_strips(const std::vector<cv::Mat>& strips, const std::vector<std::string>& titles) {
  if (strips.empty() || strips.size() != titles.size()) {
    throw Error(ErrorKind::Internal, "stack_strips needs one title per strip");
  }
  int width = 0;
  for (const cv::Mat& s : strips) width = std::max(width, s.cols);
  std::vector<cv::Mat> rows;
  for (size_t i = 0; i < strips.size(); ++i) {
    cv::Mat title(kCaptionHeight + kGap, width, CV_8UC3, kPaper);
    detail::draw_caption(title, titles[i], cv::Point(kGap, kCaptionBaseline + kGap / 2), width - 2 * kGap, 16, kInk);
    rows.push_back(title);
    cv::Mat padded(strips[i].rows, width, CV_8UC3, kPaper);
    strips[i].copyTo(padded(cv::Rect(0, 0, strips[i].cols, strips[i].rows)));
    rows.push_back(padded);
  }
  cv::Mat out;
  cv::vconcat(rows, out);
  return out;
}

}  // namespace attnmap
