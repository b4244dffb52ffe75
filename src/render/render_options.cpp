#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "attnmap/error.hpp"
#include "attnmap/render.hpp"
#include "render/heatmap.hpp"

namespace attnmap {

namespace {
std::string joined_names() {
  std::string out;
  for (const auto& name : colormap_names()) out += (out.empty() ? "" : ", ") + name;
  return out;
}
}  // namespace

const std::vector<std::string>& colormap_names() {
  static const std::vector<std::string> names{"jet", "viridis", "turbo", "inferno"};
  return names;
}

namespace detail {
int opencv_colormap(const std::string& name) {
  if (name == "jet") return cv::COLORMAP_JET;
  if (name == "viridis") return cv::COLORMAP_VIRIDIS;
  if (name == "turbo") return cv::COLORMAP_TURBO;
  if (name == "inferno") return cv::COLORMAP_INFERNO;
  throw Error(ErrorKind::Usage, "unknown colormap '" + name + "'; use one of: " + joined_names());
}
}  // namespace detail

// Messages name the CLI flag: these options come from --colormap, --alpha and --blur.
void RenderOptions::validate() const {
  const auto& names = colormap_names();
  if (std::find(names.begin(), names.end(), colormap) == names.end()) {
    throw Error(ErrorKind::Usage, "--colormap '" + colormap + "' is unknown; use one of: " + joined_names());
  }
  if (!(alpha >= 0.0 && alpha <= 1.0)) {
    std::ostringstream s;
    s << "--alpha " << alpha << " is out of range; use a value from 0 (image only) to 1 (heatmap only)";
    throw Error(ErrorKind::Usage, s.str());
  }
  if (!(blur_sigma >= 0.0) || !std::isfinite(blur_sigma)) {
    std::ostringstream s;
    s << "--blur " << blur_sigma << " is invalid; use 0 (no blur) or a positive number of pixels";
    throw Error(ErrorKind::Usage, s.str());
  }
}

}  // namespace attnmap
