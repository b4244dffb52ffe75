// Video files through OpenCV's videoio with its FFmpeg backend. Frames are decoded in order with
// grab()/retrieve() and only the sampled ones are kept: seeking (CAP_PROP_POS_FRAMES) lands on
// keyframes or timestamps that differ between containers, and the HF processor's decoders read every
// frame in order, so sequential decoding is the only way to see the same frames by index.
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>
#include <string>
#include <system_error>

#include "attnmap/error.hpp"
#include "attnmap/video.hpp"

namespace fs = std::filesystem;

namespace attnmap {

namespace {

[[noreturn]] void fail(const fs::path& path, const std::string& what) {
  throw Error(ErrorKind::Input, "video '" + path.string() + "': " + what);
}

// FFmpeg logs through av_log to stderr and OpenCV adds its own warnings, so one bad file could print
// a screen of lines before attnmap's one-line error. OpenCV's FFmpeg backend reads
// OPENCV_FFMPEG_LOGLEVEL once, when it first opens a file; -8 is AV_LOG_QUIET. A user who set it
// (or OPENCV_FFMPEG_DEBUG) to debug keeps their setting.
void quiet_ffmpeg_logging() {
  static const bool once = [] {
    if (std::getenv("OPENCV_FFMPEG_LOGLEVEL") == nullptr && std::getenv("OPENCV_FFMPEG_DEBUG") == nullptr) {
      ::setenv("OPENCV_FFMPEG_LOGLEVEL", "-8", 0);
    }
    return true;
  }();
  (void)once;
}

// OpenCV's own log lines ("[ WARN:0@0.01] global cap_ffmpeg_impl.hpp ...") silenced while a file is
// opened and read; restored afterwards so the rest of the program logs as configured.
class QuietOpenCvLog {
 public:
  QuietOpenCvLog() : previous_(cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT)) {}
  ~QuietOpenCvLog() { cv::utils::logging::setLogLevel(previous_); }
  QuietOpenCvLog(const QuietOpenCvLog&) = delete;
  QuietOpenCvLog& operator=(const QuietOpenCvLog&) = delete;

 private:
  cv::utils::logging::LogLevel previous_;
};

// The checks OpenCV cannot tell apart (it only says "not opened"), made first so the message is precise.
void check_file(const fs::path& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) fail(path, "no such file; check the path");
  if (fs::is_directory(status)) fail(path, "is a folder, not a video file; for a folder of images use --frames");
  if (!fs::is_regular_file(status)) fail(path, "is not a regular file; pass a video file");
  const auto size = fs::file_size(path, ec);
  if (ec) fail(path, "cannot be read (" + ec.message() + ")");
  if (size == 0) fail(path, "the file is empty; pass a video file");
}

cv::VideoCapture open_capture(const fs::path& path) {
  check_file(path);
  quiet_ffmpeg_logging();
  // Software decoding always: a hardware decoder may convert colours differently.
  cv::VideoCapture capture(path.string(), cv::CAP_FFMPEG,
                           {cv::CAP_PROP_HW_ACCELERATION, cv::VIDEO_ACCELERATION_NONE});
  if (!capture.isOpened()) {
    fail(path, "FFmpeg cannot open it as a video (not a video file, damaged, or a codec it cannot decode); "
               "re-encode it, e.g. ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p OUT.mp4");
  }
  // The pixels as stored, like PyAV's to_ndarray in transformers' video loaders, which ignore a
  // rotation in the container's display matrix.
  capture.set(cv::CAP_PROP_ORIENTATION_AUTO, 0);
  return capture;
}

// CAP_PROP_FOURCC is the container's codec tag ("avc1", "png "), or FFmpeg's codec name when the
// container has no tag. The tags of the common codecs map to FFmpeg's names; others stay as written.
std::string codec_name(double fourcc_value) {
  const auto fourcc = static_cast<uint32_t>(static_cast<int64_t>(fourcc_value));
  std::string tag;
  for (int i = 0; i < 4; ++i) tag += static_cast<char>((fourcc >> (8 * i)) & 0xff);
  while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\0')) tag.pop_back();
  for (char& c : tag) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (tag.empty() || tag == "????" || !std::all_of(tag.begin(), tag.end(), [](char c) {
        return std::isprint(static_cast<unsigned char>(c)) != 0;
      })) {
    return "";
  }
  static const std::map<std::string, std::string> names = {
      {"avc1", "h264"},  {"avc3", "h264"},  {"h264", "h264"},  {"x264", "h264"},  {"hvc1", "hevc"},
      {"hev1", "hevc"},  {"hevc", "hevc"},  {"h265", "hevc"},  {"png", "png"},    {"mp4v", "mpeg4"},
      {"fmp4", "mpeg4"}, {"xvid", "mpeg4"}, {"divx", "mpeg4"}, {"dx50", "mpeg4"}, {"av01", "av1"},
      {"vp09", "vp9"},   {"vp08", "vp8"},   {"ffv1", "ffv1"},  {"mjpg", "mjpeg"}, {"mjpa", "mjpeg"},
      {"jpeg", "mjpeg"}, {"apcn", "prores"}, {"apch", "prores"}, {"apcs", "prores"}, {"apco", "prores"},
      {"ap4h", "prores"}, {"raw", "rawvideo"}, {"h263", "h263"}, {"s263", "h263"}};
  const auto it = names.find(tag);
  return it != names.end() ? it->second : tag;
}

}  // namespace

VideoInfo probe_video(const fs::path& path) {
  const QuietOpenCvLog quiet;
  cv::VideoCapture capture = open_capture(path);
  VideoInfo info;
  info.width = static_cast<int>(capture.get(cv::CAP_PROP_FRAME_WIDTH));
  info.height = static_cast<int>(capture.get(cv::CAP_PROP_FRAME_HEIGHT));
  info.codec = codec_name(capture.get(cv::CAP_PROP_FOURCC));
  // The stream's frame rate (FFmpeg's guess from r_frame_rate/avg_frame_rate, as num/den in double,
  // so 30000/1001 has the same bits as Python's float(Fraction(30000, 1001))). 0 means unknown.
  const double fps = capture.get(cv::CAP_PROP_FPS);
  if (std::isfinite(fps) && fps > 0) info.fps = fps;
  // OpenCV returns the container's frame count (nb_frames) when it has one, else duration x fps
  // rounded. Without either, the only count is the number of frames that decode.
  const double count = capture.get(cv::CAP_PROP_FRAME_COUNT);
  const bool counted_by_container = std::isfinite(count) && count >= 1;
  if (counted_by_container) {
    info.total_frames = static_cast<int64_t>(count);
    // One frame must decode: a file whose header is fine but whose data is not fails here, at once.
    if (!capture.grab()) fail(path, "no frame decodes (damaged file or unsupported codec); re-encode it");
  } else {
    while (capture.grab()) ++info.total_frames;
    if (info.total_frames == 0) fail(path, "the video has no frames; pass a video with at least one frame");
  }
  if (info.width <= 0 || info.height <= 0) fail(path, "the video stream has no frame size; re-encode it");
  return info;
}

DecodedVideo decode_video(const fs::path& path, const VideoSampling& sampling) {
  DecodedVideo video;
  video.info = probe_video(path);
  try {
    video.indices = sample_frame_indices(video.info, sampling);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::Input) throw;
    fail(path, e.what());
  }

  const QuietOpenCvLog quiet;
  cv::VideoCapture capture = open_capture(path);
  video.frames.reserve(video.indices.size());
  cv::Mat bgr;
  std::size_t next = 0;  // the next sampled index to keep
  for (int64_t index = 0; next < video.indices.size(); ++index) {
    if (!capture.grab()) {
      fail(path, "the file ends after " + std::to_string(index) + " frames but frame " +
                     std::to_string(video.indices[next]) + " of " + std::to_string(video.info.total_frames) +
                     " was to be sampled (truncated or damaged); repair or re-encode it, or sample fewer frames");
    }
    if (video.indices[next] != index) continue;
    if (!capture.retrieve(bgr) || bgr.empty() || bgr.type() != CV_8UC3) {
      fail(path, "frame " + std::to_string(index) + " cannot be decoded (damaged file); re-encode it");
    }
    if (bgr.cols != video.info.width || bgr.rows != video.info.height) {
      fail(path, "frame " + std::to_string(index) + " is " + std::to_string(bgr.cols) + "x" +
                     std::to_string(bgr.rows) + " but the video is " + std::to_string(video.info.width) + "x" +
                     std::to_string(video.info.height) + "; videos whose frame size changes are not supported");
    }
    cv::Mat rgb;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    // torch.arange's float32 values could in principle repeat an index; each repeat gets its own copy.
    while (next < video.indices.size() && video.indices[next] == index) {
      video.frames.push_back(rgb.clone());
      ++next;
    }
  }
  // transformers' VideoMetadata.sampled_fps: len(indices) / total_num_frames * fps, or 24 without fps.
  if (video.info.fps) {
    video.sampled_fps =
        static_cast<double>(video.indices.size()) / static_cast<double>(video.info.total_frames) * *video.info.fps;
  }
  return video;
}

}  // namespace attnmap
