// Side-by-side pictures of failing layers, so a reviewer sees where a map changed, not only by
// how much. Layout (docs/compare.md): title row, label row, then baseline | candidate | |diff|.
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "io/atomic_file.hpp"
#include "attnmap/compare.hpp"
#include "attnmap/render.hpp"
#include "attnmap/error.hpp"
#include "attnmap/run_folder.hpp"
#include "internal.hpp"

namespace attnmap {

namespace fs = std::filesystem;

namespace {

constexpr int kTargetSide = 256;  // the longer side of a panel is at least this many pixels
constexpr int kMargin = 8;
constexpr int kTitleHeight = 28;
constexpr int kLabelHeight = 20;

// Cells are drawn as blocks (nearest neighbour) so single-cell changes stay visible.
cv::Mat colour_panel(const torch::Tensor& map, double lo, double hi, int cell) {
  const torch::Tensor scaled = hi > lo ? (map.to(torch::kFloat64) - lo) / (hi - lo) : torch::zeros_like(map, torch::kFloat64);
  const torch::Tensor bytes = torch::nan_to_num(scaled, 0.0).clamp(0, 1).mul(255).round().to(torch::kUInt8).contiguous();
  const cv::Mat grey(static_cast<int>(bytes.size(0)), static_cast<int>(bytes.size(1)), CV_8UC1, bytes.data_ptr<uint8_t>());
  cv::Mat big, coloured;
  cv::resize(grey, big, cv::Size(grey.cols * cell, grey.rows * cell), 0, 0, cv::INTER_NEAREST);
  cv::applyColorMap(big, coloured, cv::COLORMAP_JET);
  return coloured;
}

std::pair<double, double> finite_range(const torch::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor both = torch::cat({a.flatten(), b.flatten()}).to(torch::kFloat64);
  const torch::Tensor finite = both.masked_select(torch::isfinite(both));
  if (finite.numel() == 0) return {0.0, 0.0};
  return {finite.min().item<double>(), finite.max().item<double>()};
}

void put_text(cv::Mat& image, const std::string& text, int x, int baseline_y, double scale) {
  cv::putText(image, text, cv::Point(x, baseline_y), cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(255, 255, 255), 1, cv::LINE_AA);
}

std::string figure_line(const ItemResult& item, const LayerResult& layer, const CompareOptions& options) {
  return "item " + item.id + "  layer " + std::to_string(layer.layer) + "  " + metric_name(options.metric) + " " +
         compare_detail::format_figure(options.metric, decisive_value(layer.figures, options.metric)) + "  FAIL";
}

cv::Mat render(const ItemResult& item, const LayerResult& layer, const torch::Tensor& b, const torch::Tensor& c,
               const CompareOptions& options) {
  const int cell = std::max<int>(1, static_cast<int>(std::ceil(static_cast<double>(kTargetSide) /
                                                               static_cast<double>(std::max(item.merged_h, item.merged_w)))));
  const int pw = static_cast<int>(item.merged_w) * cell, ph = static_cast<int>(item.merged_h) * cell;
  cv::Mat image(kTitleHeight + kLabelHeight + ph + kMargin, 3 * pw + 4 * kMargin, CV_8UC3, cv::Scalar(32, 32, 32));

  // Baseline and candidate share one scale so that equal colours mean equal values.
  const auto [lo, hi] = finite_range(b, c);
  const torch::Tensor diff = (b.to(torch::kFloat64) - c.to(torch::kFloat64)).abs();
  const double diff_max = std::get<1>(finite_range(diff, diff));
  char diff_label[64];
  std::snprintf(diff_label, sizeof diff_label, "|diff| max %.3g", diff_max);
  const cv::Mat panels[3] = {colour_panel(b, lo, hi, cell), colour_panel(c, lo, hi, cell), colour_panel(diff, 0.0, diff_max, cell)};
  const std::string labels[3] = {"baseline", "candidate", diff_label};

  put_text(image, figure_line(item, layer, options), kMargin, kTitleHeight - 9, 0.5);
  for (int i = 0; i < 3; ++i) {
    const int x = kMargin + i * (pw + kMargin);
    panels[i].copyTo(image(cv::Rect(x, kTitleHeight + kLabelHeight, pw, ph)));
    put_text(image, labels[i], x, kTitleHeight + kLabelHeight - 6, 0.4);
  }
  return image;
}

}  // namespace

std::vector<fs::path> write_diff_images(const CompareResult& result, const fs::path& dir) {
  std::vector<fs::path> written;
  for (const ItemResult& item : result.items) {
    // Prompt maps only: an item that fails on its answer alone gets no (empty) folder.
    const auto failing = [](const LayerResult& l) { return !l.pass; };
    if (std::none_of(item.layers.begin(), item.layers.end(), failing)) continue;
    // Reloading keeps CompareResult small; only failing items pay for it.
    const auto b = compare_detail::load_run_folder(item.baseline_dir, true);
    const auto c = compare_detail::load_run_folder(item.candidate_dir, true);
    const fs::path item_dir = result.kind == "batch" ? dir / item.id : dir;
    ensure_directory(item_dir);
    for (const LayerResult& layer : item.layers) {
      if (layer.pass) continue;
      const cv::Mat image = render(item, layer, b.maps[layer.baseline_row], c.maps[layer.candidate_row], result.options);
      const fs::path path = item_dir / output::layer_file_name(layer.layer);
      write_jpeg_atomically(path, image, 90);
      written.push_back(path);
    }
  }
  return written;
}

}  // namespace attnmap
