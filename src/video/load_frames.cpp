// `--frames a.png,b.png|DIR`: a video given as its frames. Each image decodes exactly as an image
// input does (load_image_rgb), so a frame list and the same images given one by one see the same pixels.
#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <string_view>
#include <system_error>

#include "attnmap/error.hpp"
#include "attnmap/image.hpp"
#include "attnmap/video.hpp"

namespace fs = std::filesystem;

namespace attnmap {

namespace {

bool has_image_extension(const fs::path& path) {
  static constexpr std::array<std::string_view, 7> extensions = {".png", ".jpg", ".jpeg", ".bmp",
                                                                  ".webp", ".tif", ".tiff"};
  std::string ext = path.extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return std::find(extensions.begin(), extensions.end(), ext) != extensions.end();
}

std::string size_text(const cv::Mat& m) { return std::to_string(m.cols) + "x" + std::to_string(m.rows); }

}  // namespace

std::vector<fs::path> list_frame_files(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw Error(ErrorKind::Input,
                "frames folder '" + dir.string() + "' does not exist or is not a folder; check the path");
  }
  std::vector<fs::path> files;
  fs::directory_iterator it(dir, ec);
  if (ec) throw Error(ErrorKind::Input, "frames folder '" + dir.string() + "' cannot be read (" + ec.message() + ")");
  for (const fs::directory_entry& entry : it) {
    const std::string name = entry.path().filename().string();
    // Hidden files are skipped: macOS leaves "._frame.png" resource forks beside copied images.
    if (name.empty() || name.front() == '.') continue;
    std::error_code entry_ec;
    if (entry.is_regular_file(entry_ec) && has_image_extension(entry.path())) files.push_back(entry.path());
  }
  if (files.empty()) {
    throw Error(ErrorKind::Input, "frames folder '" + dir.string() +
                                      "' holds no images (.png .jpg .jpeg .bmp .webp .tif .tiff); add the frames");
  }
  // Name order, byte by byte (std::string compares as unsigned char): frame_0001.png before
  // frame_0002.png. Zero-padded names sort as numbers; "10.png" sorts before "9.png".
  std::sort(files.begin(), files.end(),
            [](const fs::path& a, const fs::path& b) { return a.filename().string() < b.filename().string(); });
  return files;
}

DecodedVideo load_frames(const std::vector<fs::path>& frames) {
  if (frames.empty()) throw Error(ErrorKind::Input, "no frames given; pass --frames a.png,b.png or a folder of images");
  DecodedVideo video;
  video.frames.reserve(frames.size());
  for (const fs::path& frame : frames) {
    cv::Mat rgb = load_image_rgb(frame);
    if (!video.frames.empty() && rgb.size() != video.frames.front().size()) {
      throw Error(ErrorKind::Input, "frame '" + frame.string() + "' is " + size_text(rgb) + " but the first frame '" +
                                        frames.front().string() + "' is " + size_text(video.frames.front()) +
                                        "; all frames must have one size, resize them first");
    }
    video.indices.push_back(static_cast<int64_t>(video.frames.size()));
    video.frames.push_back(std::move(rgb));
  }
  video.info.total_frames = static_cast<int64_t>(video.frames.size());
  video.info.width = video.frames.front().cols;
  video.info.height = video.frames.front().rows;
  // No fps: transformers' VideoMetadata.sampled_fps falls back to 24.
  video.sampled_fps = 24.0;
  return video;
}

}  // namespace attnmap
