#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <fstream>
#include <iterator>
#include <string>
#include <system_error>

#include "attnmap/error.hpp"
#include "attnmap/image.hpp"
#include "image/orientation.hpp"
#include "image/png_check.hpp"
#include "image/transparency.hpp"

namespace attnmap {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void input_error(const fs::path& path, const std::string& what) {
  throw Error(ErrorKind::Input, "image '" + path.string() + "': " + what);
}

std::string read_bytes(const fs::path& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) input_error(path, "file not found; check the path");
  if (fs::is_directory(st)) input_error(path, "is a folder, not an image file; pass the path of an image");
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) input_error(path, "cannot be read; check its permissions");
  if (!in.is_open()) input_error(path, "cannot be opened; check its permissions");
  if (bytes.empty()) input_error(path, "the file is empty; pass a JPEG, PNG, BMP, TIFF or WebP image");
  return bytes;
}

// libjpeg decodes a cut-off JPEG into a grey-padded image with only a warning, where Pillow raises
// "image file is truncated". A complete JPEG has an EOI marker after its first scan.
bool jpeg_is_truncated(const std::string& b) {
  size_t pos = 2;
  while (pos + 4 <= b.size()) {
    if (uint8_t(b[pos]) != 0xFF) return false;  // not a marker: let the decoder judge
    const uint8_t marker = uint8_t(b[pos + 1]);
    if (marker == 0xFF) {
      ++pos;
      continue;
    }
    if (marker == 0xDA) return b.find("\xFF\xD9", pos) == std::string::npos;
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD9)) {
      pos += 2;
      continue;
    }
    pos += 2 + ((size_t(uint8_t(b[pos + 2])) << 8) | uint8_t(b[pos + 3]));
  }
  return true;  // headers ran past the end of the file
}

// A PNG's chunks must chain to IEND. Checking before decoding turns a cut-off file into a clear error
// instead of a libpng message on stderr followed by a generic failure.
bool png_is_truncated(const std::string& b) {
  size_t pos = 8;
  while (pos + 12 <= b.size()) {
    const size_t len = (size_t(uint8_t(b[pos])) << 24) | (size_t(uint8_t(b[pos + 1])) << 16) |
                       (size_t(uint8_t(b[pos + 2])) << 8) | size_t(uint8_t(b[pos + 3]));
    if (b.compare(pos + 4, 4, "IEND") == 0) return false;
    pos += 12 + len;
  }
  return true;
}

// OpenCV logs its own warnings for undecodable input; our error message says it better.
class QuietOpenCV {
 public:
  QuietOpenCV() : previous_(cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT)) {}
  ~QuietOpenCV() { cv::utils::logging::setLogLevel(previous_); }

 private:
  cv::utils::logging::LogLevel previous_;
};

// The format a file's first bytes announce, for messages; empty when no format attnmap names.
std::string signature_format(const std::string& b) {
  if (b.size() >= 3 && b.compare(0, 3, "\xFF\xD8\xFF") == 0) return "JPEG";
  if (b.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0) return "PNG";
  if (b.compare(0, 2, "BM") == 0) return "BMP";
  if (b.compare(0, 4, std::string("II*\0", 4)) == 0 || b.compare(0, 4, std::string("MM\0*", 4)) == 0) return "TIFF";
  if (b.size() >= 12 && b.compare(0, 4, "RIFF") == 0 && b.compare(8, 4, "WEBP") == 0) return "WebP";
  return {};
}

cv::Mat decode(const fs::path& path, const std::string& bytes) {
  const bool is_jpeg = bytes.size() >= 2 && uint8_t(bytes[0]) == 0xFF && uint8_t(bytes[1]) == 0xD8;
  if (is_jpeg && jpeg_is_truncated(bytes)) {
    input_error(path, "the JPEG data is truncated (the file ends early); re-download or re-export the image");
  }
  const bool is_png = bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0;
  if (is_png && png_is_truncated(bytes)) {
    input_error(path, "the PNG data is truncated (the file ends early); re-download or re-export the image");
  }
  // OpenCV's PNG decoder leaves libpng's default error handler in place, which prints a bare
  // "libpng error: ..." line on stderr; libpng with our handlers judges the file first.
  if (is_png) {
    if (const std::string why = detail::png_decode_error(bytes); !why.empty()) {
      input_error(path, "is not a decodable image: corrupt PNG data (libpng: " + why + "); re-download or re-export the image");
    }
  }
  cv::Mat decoded;
  try {
    QuietOpenCV quiet;
    const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
    decoded = cv::imdecode(buffer, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception&) {
    decoded.release();
  }
  if (decoded.empty()) {
    const std::string format = signature_format(bytes);
    if (format.empty()) {
      input_error(path, "is not a decodable image: unknown or corrupt format (its first bytes are no JPEG, PNG, BMP, "
                        "TIFF or WebP signature); pass a JPEG, PNG, BMP, TIFF or WebP image");
    }
    input_error(path, "is not a decodable image: corrupt " + format + " data; re-download or re-export the image");
  }
  return decoded;
}

// Pillow's convert("RGB") for what OpenCV decoded (BGR channel order, any of 1/3/4 channels).
cv::Mat to_rgb8(const fs::path& path, const cv::Mat& decoded) {
  cv::Mat eight_bit;
  if (decoded.depth() == CV_8U) {
    eight_bit = decoded;
  } else if (decoded.depth() == CV_16U) {
    // Pillow opens 16-bit greyscale as "I;16" and converting that to RGB saturates at 255; 16-bit
    // colour (and grey+alpha) is opened as 8-bit by keeping the high byte of each sample.
    if (decoded.channels() == 1) {
      decoded.convertTo(eight_bit, CV_8U);  // saturate_cast: min(v, 255)
    } else {
      // Not convertTo(.., 1/256.): OpenCV rounds, Pillow truncates.
      eight_bit.create(decoded.size(), CV_MAKETYPE(CV_8U, decoded.channels()));
      for (int y = 0; y < decoded.rows; ++y) {
        const uint16_t* src = decoded.ptr<uint16_t>(y);
        uint8_t* dst = eight_bit.ptr<uint8_t>(y);
        for (int i = 0; i < decoded.cols * decoded.channels(); ++i) dst[i] = static_cast<uint8_t>(src[i] >> 8);
      }
    }
  } else {
    input_error(path, "has an unsupported sample format (floating-point or signed pixels); "
                      "convert it to an 8-bit RGB PNG or JPEG");
  }
  cv::Mat rgb;
  switch (eight_bit.channels()) {
    case 1: cv::cvtColor(eight_bit, rgb, cv::COLOR_GRAY2RGB); break;
    case 3: cv::cvtColor(eight_bit, rgb, cv::COLOR_BGR2RGB); break;
    case 4: cv::cvtColor(eight_bit, rgb, cv::COLOR_BGRA2RGB); break;  // alpha dropped, like Pillow
    default:
      input_error(path, "has " + std::to_string(eight_bit.channels()) +
                            " channels; convert it to an RGB PNG or JPEG");
  }
  return rgb;
}

}  // namespace

cv::Mat load_image_rgb(const fs::path& path) { return load_image_rgb_from_memory(read_bytes(path), path); }

cv::Mat load_image_rgb_from_memory(std::string_view view, const fs::path& path) {
  if (view.empty()) input_error(path, "the file is empty; pass a JPEG, PNG, BMP, TIFF or WebP image");
  const std::string bytes(view);
  const cv::Mat decoded = decode(path, bytes);
  cv::Mat rgb = to_rgb8(path, decoded);
  if (const auto colour = detail::png_transparent_colour(bytes)) {
    const cv::Vec3b key(cv::saturate_cast<uint8_t>((*colour)[0]), cv::saturate_cast<uint8_t>((*colour)[1]),
                        cv::saturate_cast<uint8_t>((*colour)[2]));
    const bool representable = (*colour)[0] <= 255 && (*colour)[1] <= 255 && (*colour)[2] <= 255;
    if (representable) {
      rgb.forEach<cv::Vec3b>([&](cv::Vec3b& px, const int*) {
        if (px == key) px = cv::Vec3b(255, 255, 255);
      });
    }
  }
  return detail::apply_orientation(rgb, detail::read_orientation(bytes));
}

}  // namespace attnmap
