#include "render/write_gif.hpp"

#include <cmath>
#include <string>
#include <string_view>

#include "attnmap/error.hpp"
#include "io/atomic_file.hpp"
#include "render/gif_lzw.hpp"
#include "render/gif_palette.hpp"

namespace attnmap {
namespace {

// Browsers raise delays under 2 centiseconds to 10; 2 is the shortest that plays as asked.
constexpr int kMinDelayCs = 2;
constexpr int kMaxU16 = 65535;

void put_u16(std::string& out, int v) {
  out.push_back(static_cast<char>(v & 0xFF));
  out.push_back(static_cast<char>((v >> 8) & 0xFF));
}

void check_frames(const std::vector<cv::Mat>& frames, int delay_ms, int loop) {
  if (frames.empty()) throw Error(ErrorKind::Internal, "write_gif_atomically needs at least one frame");
  for (const cv::Mat& f : frames) {
    if (f.empty() || f.type() != CV_8UC3 || f.size() != frames.front().size()) {
      throw Error(ErrorKind::Internal, "write_gif_atomically needs non-empty BGR CV_8UC3 frames of one size");
    }
  }
  if (delay_ms < 0 || loop < 0 || loop > kMaxU16) {
    throw Error(ErrorKind::Internal, "write_gif_atomically: delay " + std::to_string(delay_ms) + " ms or loop count " +
                                         std::to_string(loop) + " is out of range");
  }
}

// Header, logical screen descriptor and the global colour table (always 256 entries, RGB order).
void put_header(std::string& out, cv::Size size, const gif::Palette& palette) {
  out += "GIF89a";
  put_u16(out, size.width);
  put_u16(out, size.height);
  out.push_back(static_cast<char>(0xF7));  // global table, 8-bit colour resolution, 2^(7+1) entries
  out.push_back('\0');                     // background colour index
  out.push_back('\0');                     // no pixel aspect ratio
  for (size_t i = 0; i < 256; ++i) {
    const cv::Vec3b c = i < palette.size() ? palette[i] : cv::Vec3b(0, 0, 0);
    out.push_back(static_cast<char>(c[2]));
    out.push_back(static_cast<char>(c[1]));
    out.push_back(static_cast<char>(c[0]));
  }
}

// The NETSCAPE2.0 application extension: without it, browsers play the animation once.
void put_loop(std::string& out, int loop) {
  out += "\x21\xFF\x0B";
  out += "NETSCAPE2.0";
  out += "\x03\x01";
  put_u16(out, loop);
  out.push_back('\0');
}

// Graphic control extension, image descriptor and the LZW data of one full-size frame.
void put_frame(std::string& out, cv::Size size, const std::vector<uint8_t>& indices, int delay_cs) {
  out += "\x21\xF9\x04";
  out.push_back(static_cast<char>(1 << 2));  // disposal 1 (leave in place): each frame covers the whole image
  put_u16(out, delay_cs);
  out.push_back('\0');  // transparent index (unused: the flag is off)
  out.push_back('\0');
  out.push_back('\x2C');
  put_u16(out, 0);
  put_u16(out, 0);
  put_u16(out, size.width);
  put_u16(out, size.height);
  out.push_back('\0');  // no local colour table, not interlaced
  out.push_back('\x08');  // LZW minimum code size
  gif::append_sub_blocks(out, gif::lzw_encode(indices));
}

}  // namespace

void write_gif_atomically(const std::filesystem::path& path, const std::vector<cv::Mat>& frames_bgr, int delay_ms,
                          int loop) {
  check_frames(frames_bgr, delay_ms, loop);
  const cv::Size size = frames_bgr.front().size();
  if (size.width > kMaxU16 || size.height > kMaxU16) {
    throw Error(ErrorKind::Output, "cannot write '" + path.string() + "' as GIF: " + std::to_string(size.width) +
                                       "x" + std::to_string(size.height) + " exceeds GIF's 65535x65535 pixels");
  }
  const int delay_cs = std::min(kMaxU16, std::max(kMinDelayCs, static_cast<int>(std::lround(delay_ms / 10.0))));
  const gif::Palette palette = gif::build_palette(frames_bgr);
  gif::PaletteMapper mapper(palette);
  std::string bytes;
  put_header(bytes, size, palette);
  put_loop(bytes, loop);
  for (const cv::Mat& frame : frames_bgr) put_frame(bytes, size, mapper.map(frame), delay_cs);
  bytes.push_back('\x3B');  // trailer
  write_file_atomically(path, bytes);
}

}  // namespace attnmap
