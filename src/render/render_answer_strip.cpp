#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

#include "attnmap/error.hpp"
#include "attnmap/render.hpp"
#include "render/caption.hpp"
#include "render/colour_bar.hpp"
#include "render/display_text.hpp"
#include "render/heatmap.hpp"

namespace attnmap {

namespace {

// The layout render.hpp documents. Eight 176-px tiles make a strip about 1,460 px wide: the
// answer reads left to right, and a long answer wraps instead of becoming a 16,000-px JPEG.
constexpr int kTileLongSide = 176;
constexpr int kTilesPerRow = 8;
constexpr int kCaptionHeight = 24;
constexpr int kMinCellWidth = 112;  // a tall, thin image still leaves room for "#k" and some text
constexpr int kMinWidth = 320;      // the colour bar's note stays legible under a single tile
constexpr int kGap = 6;
constexpr int kIndexSize = 12;  // pixels
constexpr int kTokenSize = 16;  // Unifont, the CJK/emoji fallback, is drawn at 16 px: crisp there
constexpr int kCaptionBaseline = 18;
const cv::Scalar kInk(255, 255, 255);
const cv::Scalar kIndexInk(170, 170, 170);
const cv::Scalar kPaper(32, 32, 32);

// "#k" in grey, then the token's text, fitted to what is left of the cell. Returns whether the text
// could be drawn (else the caption is "#k" alone).
bool draw_token_caption(cv::Mat& canvas, int k, const std::string& token, cv::Point origin, int cell_width) {
  const std::string index = "#" + std::to_string(k);
  detail::draw_caption(canvas, index, origin, cell_width, kIndexSize, kIndexInk);
  const int text_x = origin.x + detail::caption_width(index, kIndexSize) + 5;
  const int room = origin.x + cell_width - text_x;
  if (room <= 0) return true;  // nothing failed to draw; the cell is only too narrow
  return detail::draw_fitted_text(canvas, detail::visible_token_text(token), cv::Point(text_x, origin.y), room,
                                  kTokenSize, kInk);
}

}  // namespace

cv::Mat render_answer_strip(const cv::Mat& original_rgb, const std::vector<torch::Tensor>& maps,
                            const std::vector<std::string>& labels, const RenderOptions& options,
                            bool* labels_as_text) {
  options.validate();
  if (original_rgb.empty() || original_rgb.type() != CV_8UC3) {
    throw Error(ErrorKind::Internal, "render_answer_strip needs a non-empty CV_8UC3 RGB image");
  }
  if (maps.empty() || maps.size() != labels.size()) {
    throw Error(ErrorKind::Internal, "render_answer_strip needs at least one map and one label per map");
  }
  const detail::SharedScaleMaps shared = detail::with_shared_scale(maps);

  // Scaled to the tile size either way: a small image is enlarged so its caption has room.
  const double scale = double(kTileLongSide) / std::max(original_rgb.cols, original_rgb.rows);
  const cv::Size tile = detail::scaled_size(original_rgb.size(), scale);
  const cv::Mat small_bgr = detail::tile_background(original_rgb, tile);

  const int n = static_cast<int>(shared.mats.size());
  const int cols = std::min(n, kTilesPerRow);
  const int rows = (n + cols - 1) / cols;
  const int cell_w = std::max(tile.width, kMinCellWidth);
  const int cell_h = kCaptionHeight + tile.height + kGap;
  const int width = std::max(kGap + cols * (cell_w + kGap), kMinWidth);
  cv::Mat canvas(kGap + rows * cell_h, width, CV_8UC3, kPaper);
  bool all_as_text = true;
  for (int k = 0; k < n; ++k) {
    const int x = kGap + (k % cols) * (cell_w + kGap), y = kGap + (k / cols) * cell_h;
    all_as_text &= draw_token_caption(canvas, k, labels[k], cv::Point(x, y + kCaptionBaseline), cell_w);
    // The blur sigma is given in original pixels; the tile is `scale` times the original.
    const cv::Mat tile_img = detail::blend_heatmap(small_bgr, detail::normalise(shared.mats[k], shared.lo, shared.hi),
                                                   options, options.blur_sigma * scale);
    tile_img.copyTo(canvas(cv::Rect(x + (cell_w - tile.width) / 2, y + kCaptionHeight, tile.width, tile.height)));
  }
  if (labels_as_text != nullptr) *labels_as_text = all_as_text;
  cv::Mat out;
  cv::vconcat(canvas,
              detail::colour_bar(width, shared.lo, shared.hi, options, "one scale shared by all answer tokens"), out);
  return out;
}

}  // namespace attnmap
