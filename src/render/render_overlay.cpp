#include <opencv2/imgproc.hpp>

#include "attnmap/error.hpp"
#include "attnmap/render.hpp"
#include "render/heatmap.hpp"

namespace attnmap {

cv::Mat render_overlay(const cv::Mat& original_rgb, const torch::Tensor& map, const RenderOptions& options) {
  options.validate();
  if (original_rgb.empty() || original_rgb.type() != CV_8UC3) {
    throw Error(ErrorKind::Internal, "render_overlay needs a non-empty CV_8UC3 RGB image");
  }
  const cv::Mat m = detail::map_to_mat(map);
  double lo = 0, hi = 0;
  cv::minMaxLoc(m, &lo, &hi);
  cv::Mat bgr;
  cv::cvtColor(original_rgb, bgr, cv::COLOR_RGB2BGR);
  return detail::blend_heatmap(bgr, detail::normalise(m, lo, hi), options, options.blur_sigma);
}

}  // namespace attnmap
