#include <opencv2/imgcodecs.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "io/atomic_file.hpp"
#include "attnmap/error.hpp"
#include "attnmap/render.hpp"

namespace attnmap {

void write_jpeg_atomically(const std::filesystem::path& path, const cv::Mat& bgr, int quality) {
  if (bgr.empty() || (bgr.type() != CV_8UC3 && bgr.type() != CV_8UC1)) {
    throw Error(ErrorKind::Internal, "write_jpeg_atomically needs a non-empty CV_8UC3 (BGR) image");
  }
  if (quality < 1 || quality > 100) {
    throw Error(ErrorKind::Usage, "JPEG quality " + std::to_string(quality) + " is out of range; use 1 to 100");
  }
  std::vector<uchar> bytes;
  bool ok = false;
  try {
    ok = cv::imencode(".jpg", bgr, bytes, {cv::IMWRITE_JPEG_QUALITY, quality});
  } catch (const cv::Exception&) {
    ok = false;
  }
  if (!ok) {
    throw Error(ErrorKind::Output, "cannot encode '" + path.string() + "' as JPEG (" + std::to_string(bgr.cols) +
                                       "x" + std::to_string(bgr.rows) + " pixels); the image may be too large");
  }
  write_file_atomically(path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

}  // namespace attnmap
