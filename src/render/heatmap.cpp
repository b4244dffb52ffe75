#include "render/heatmap.hpp"

#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "attnmap/error.hpp"

namespace attnmap::detail {

cv::Mat map_to_mat(const torch::Tensor& map) {
  if (!map.defined() || map.dim() != 2 || map.size(0) < 1 || map.size(1) < 1) {
    throw Error(ErrorKind::Internal, "render: an attention map must be a non-empty 2-D tensor");
  }
  const torch::Tensor t = map.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  return cv::Mat(static_cast<int>(t.size(0)), static_cast<int>(t.size(1)), CV_32FC1, t.data_ptr<float>()).clone();
}

cv::Mat normalise(const cv::Mat& map, double lo, double hi) {
  if (!(hi > lo)) return cv::Mat::zeros(map.size(), CV_32FC1);
  cv::Mat out;
  map.convertTo(out, CV_32F, 1.0 / (hi - lo), -lo / (hi - lo));
  cv::min(cv::max(out, 0.0), 1.0, out);
  return out;
}

cv::Mat blend_heatmap(const cv::Mat& background_bgr, const cv::Mat& map01, const RenderOptions& options,
                      double blur_sigma) {
  cv::Mat up;
  // Bicubic gives smooth maps without blocky cells; it overshoots, hence the clamp after.
  cv::resize(map01, up, background_bgr.size(), 0, 0, cv::INTER_CUBIC);
  if (blur_sigma > 0) cv::GaussianBlur(up, up, cv::Size(0, 0), blur_sigma, blur_sigma, cv::BORDER_REPLICATE);
  cv::min(cv::max(up, 0.0), 1.0, up);
  cv::Mat u8, colour, out;
  up.convertTo(u8, CV_8U, 255.0);
  cv::applyColorMap(u8, colour, opencv_colormap(options.colormap));
  cv::addWeighted(colour, options.alpha, background_bgr, 1.0 - options.alpha, 0.0, out);
  return out;
}

SharedScaleMaps with_shared_scale(const std::vector<torch::Tensor>& maps) {
  SharedScaleMaps out;
  out.lo = std::numeric_limits<double>::infinity();
  out.hi = -out.lo;
  for (const auto& map : maps) {
    out.mats.push_back(map_to_mat(map));
    double a = 0, b = 0;
    cv::minMaxLoc(out.mats.back(), &a, &b);
    out.lo = std::min(out.lo, a);
    out.hi = std::max(out.hi, b);
  }
  return out;
}

cv::Mat tile_background(const cv::Mat& original_rgb, cv::Size size) {
  cv::Mat bgr;
  // Area averaging shrinks without aliasing; enlarging a small image, it acts like bilinear.
  cv::resize(original_rgb, bgr, size, 0, 0, cv::INTER_AREA);
  cv::cvtColor(bgr, bgr, cv::COLOR_RGB2BGR);
  return bgr;
}

cv::Size scaled_size(cv::Size image_size, double scale) {
  return {std::max(1, int(std::lround(image_size.width * scale))), std::max(1, int(std::lround(image_size.height * scale)))};
}

}  // namespace attnmap::detail
