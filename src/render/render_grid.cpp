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

constexpr int kTileLongSide = 256;
constexpr int kCaptionHeight = 24;
constexpr int kCaptionSize = 14;  // pixels
constexpr int kGap = 6;
const cv::Scalar kInk(255, 255, 255);
const cv::Scalar kPaper(32, 32, 32);

}  // namespace

cv::Mat render_grid(const cv::Mat& original_rgb, const std::vector<torch::Tensor>& maps,
                    const std::vector<std::string>& labels, const RenderOptions& options,
                    const std::string& scale_note) {
  options.validate();
  if (original_rgb.empty() || original_rgb.type() != CV_8UC3) {
    throw Error(ErrorKind::Internal, "render_grid needs a non-empty CV_8UC3 RGB image");
  }
  if (maps.empty() || maps.size() != labels.size()) {
    throw Error(ErrorKind::Internal, "render_grid needs at least one map and one label per map");
  }
  const detail::SharedScaleMaps shared = detail::with_shared_scale(maps);

  const double scale = std::min(1.0, double(kTileLongSide) / std::max(original_rgb.cols, original_rgb.rows));
  const cv::Size tile = detail::scaled_size(original_rgb.size(), scale);
  const cv::Mat small_bgr = detail::tile_background(original_rgb, tile);

  const int n = static_cast<int>(shared.mats.size());
  const int cols = static_cast<int>(std::ceil(std::sqrt(double(n))));
  const int rows = (n + cols - 1) / cols;
  const int cell_w = tile.width + kGap, cell_h = tile.height + kCaptionHeight + kGap;
  const int width = std::max(cols * cell_w + kGap, 200);
  cv::Mat canvas(rows * cell_h + kGap, width, CV_8UC3, kPaper);
  for (int i = 0; i < n; ++i) {
    const int x = kGap + (i % cols) * cell_w, y = kGap + (i / cols) * cell_h;
    detail::draw_caption(canvas, labels[i], cv::Point(x, y + kCaptionHeight - 7), tile.width, kCaptionSize, kInk);
    // The blur sigma is given in original pixels; the tile is `scale` times smaller.
    const cv::Mat tile_img = detail::blend_heatmap(small_bgr, detail::normalise(shared.mats[i], shared.lo, shared.hi),
                                                   options, options.blur_sigma * scale);
    tile_img.copyTo(canvas(cv::Rect(x, y + kCaptionHeight, tile.width, tile.height)));
  }
  cv::Mat out;
  cv::vconcat(canvas, detail::colour_bar(width, shared.lo, shared.hi, options, scale_note), out);
  return out;
}

}  // namespace attnmap
