// The animated GIF writer (src/render/write_gif.cpp) against a GIF decoder written here from the GIF89a
// spec, independent of the encoder's code, and, where OpenCV was built with GDAL, against GDAL's reader.
#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "attnmap/error.hpp"
#include "error_kind.hpp"
#include "render/write_gif.hpp"
#include "test_files.hpp"

namespace fs = std::filesystem;

namespace {

struct DecodedGif {
  int width = 0, height = 0;
  std::vector<cv::Vec3b> palette;  // BGR
  int loop = -1;                   // -1: no NETSCAPE2.0 extension
  std::vector<int> delays_cs;
  std::vector<cv::Mat> frames;  // BGR
  int clear_codes = 0;          // over all frames, the initial ones included
};

class Reader {
 public:
  explicit Reader(std::string bytes) : b_(std::move(bytes)) {}
  uint8_t u8() {
    if (at_ >= b_.size()) throw std::runtime_error("GIF ends early");
    return static_cast<uint8_t>(b_[at_++]);
  }
  int u16() {
    const int lo = u8();
    return lo | (u8() << 8);
  }
  std::string take(size_t n) {
    if (at_ + n > b_.size()) throw std::runtime_error("GIF ends early");
    at_ += n;
    return b_.substr(at_ - n, n);
  }
  std::string sub_blocks() {
    std::string out;
    for (uint8_t n = u8(); n != 0; n = u8()) out += take(n);
    return out;
  }

 private:
  std::string b_;
  size_t at_ = 0;
};

// LZW decoding as the spec's appendix F describes it (the decoder side, adding entries one code late).
std::vector<uint8_t> lzw_decode(const std::string& data, int min_size, int& clear_codes) {
  const uint32_t clear = 1u << min_size, end = clear + 1;
  std::vector<std::vector<uint8_t>> table;
  int size = 0;
  const auto reset = [&] {
    table.assign(end + 1, {});
    for (uint32_t i = 0; i < clear; ++i) table[i] = {static_cast<uint8_t>(i)};
    size = min_size + 1;
  };
  reset();
  std::vector<uint8_t> out;
  size_t bit = 0;
  int64_t prev = -1;  // the previous code; -1 right after a clear code
  while (true) {
    if (bit + static_cast<size_t>(size) > data.size() * 8) throw std::runtime_error("LZW data ends without end code");
    uint32_t code = 0;
    for (int i = 0; i < size; ++i, ++bit) code |= ((static_cast<uint8_t>(data[bit / 8]) >> (bit % 8)) & 1u) << i;
    if (code == clear) {
      ++clear_codes;
      reset();
      prev = -1;
      continue;
    }
    if (code == end) break;
    std::vector<uint8_t> entry;
    if (code < table.size() && (code < clear || code > end)) {
      entry = table[code];
    } else if (code == table.size() && prev >= 0) {
      entry = table[static_cast<size_t>(prev)];
      entry.push_back(entry.front());
    } else {
      throw std::runtime_error("LZW code " + std::to_string(code) + " is not in the table");
    }
    if (prev >= 0 && table.size() < 4096) {
      std::vector<uint8_t> added = table[static_cast<size_t>(prev)];
      added.push_back(entry.front());
      table.push_back(added);
      if (table.size() >= (1u << size) && size < 12) ++size;
    }
    out.insert(out.end(), entry.begin(), entry.end());
    prev = code;
  }
  return out;
}

DecodedGif decode_gif(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  Reader r(std::string(std::istreambuf_iterator<char>(in), {}));
  if (r.take(6) != "GIF89a") throw std::runtime_error("not a GIF89a");
  DecodedGif gif;
  gif.width = r.u16();
  gif.height = r.u16();
  const uint8_t flags = r.u8();
  r.take(2);
  if (flags & 0x80) {
    for (int i = 0; i < (2 << (flags & 7)); ++i) {
      const uint8_t red = r.u8(), green = r.u8(), blue = r.u8();
      gif.palette.emplace_back(blue, green, red);
    }
  }
  for (uint8_t block = r.u8(); block != 0x3B; block = r.u8()) {
    if (block == 0x21) {
      const uint8_t label = r.u8();
      const std::string body = r.sub_blocks();
      if (label == 0xF9) gif.delays_cs.push_back(static_cast<uint8_t>(body[1]) | (static_cast<uint8_t>(body[2]) << 8));
      if (label == 0xFF && body.substr(0, 11) == "NETSCAPE2.0") {
        gif.loop = static_cast<uint8_t>(body[12]) | (static_cast<uint8_t>(body[13]) << 8);
      }
    } else if (block == 0x2C) {
      r.take(4);
      const int w = r.u16(), h = r.u16();
      if (r.u8() != 0) throw std::runtime_error("unexpected local colour table or interlace");
      const int min_size = r.u8();
      const std::vector<uint8_t> idx = lzw_decode(r.sub_blocks(), min_size, gif.clear_codes);
      if (idx.size() != static_cast<size_t>(w) * static_cast<size_t>(h)) throw std::runtime_error("wrong pixel count");
      cv::Mat frame(h, w, CV_8UC3);
      for (size_t i = 0; i < idx.size(); ++i) frame.at<cv::Vec3b>(static_cast<int>(i)) = gif.palette.at(idx[i]);
      gif.frames.push_back(frame);
    } else {
      throw std::runtime_error("unexpected block " + std::to_string(block));
    }
  }
  return gif;
}

using attnmap_test::kind_of;

double max_abs_diff(const cv::Mat& a, const cv::Mat& b) { return cv::norm(a, b, cv::NORM_INF); }

// Writes and decodes frames, expecting each decoded frame to equal its source exactly.
DecodedGif round_trip(const std::string& name, const std::vector<cv::Mat>& frames, int delay_ms = 100, int loop = 0) {
  const fs::path path = attnmap_test::fresh_dir("gif", name) / "out.gif";
  attnmap::write_gif_atomically(path, frames, delay_ms, loop);
  DecodedGif gif = decode_gif(path);
  EXPECT_EQ(gif.frames.size(), frames.size());
  for (size_t i = 0; i < std::min(frames.size(), gif.frames.size()); ++i) {
    EXPECT_EQ(max_abs_diff(gif.frames[i], frames[i]), 0) << name << " frame " << i;
  }
  return gif;
}

// A jet heatmap of a Gaussian at (cx, cy) blended 50/50 over smooth noise: what video attention looks like.
cv::Mat heatmap_frame(cv::Size size, double cx, double cy, const cv::Mat& background) {
  cv::Mat map(size, CV_32F);
  for (int y = 0; y < size.height; ++y) {
    for (int x = 0; x < size.width; ++x) {
      const double dx = (x - cx) / (0.2 * size.width), dy = (y - cy) / (0.2 * size.height);
      map.at<float>(y, x) = static_cast<float>(std::exp(-(dx * dx + dy * dy)));
    }
  }
  cv::Mat u8, colour, out;
  map.convertTo(u8, CV_8U, 255.0);
  cv::applyColorMap(u8, colour, cv::COLORMAP_JET);
  cv::addWeighted(colour, 0.5, background, 0.5, 0.0, out);
  return out;
}

cv::Mat smooth_noise(cv::Size size) {
  cv::Mat noise(size, CV_8UC3);
  cv::RNG rng(7);
  rng.fill(noise, cv::RNG::UNIFORM, 0, 256);
  cv::GaussianBlur(noise, noise, cv::Size(0, 0), 4.0);
  cv::normalize(noise, noise, 0, 255, cv::NORM_MINMAX);
  return noise;
}

}  // namespace

TEST(Gif, SolidColoursRoundTripWithDelayAndLoop) {
  const cv::Size size(16, 8);
  const DecodedGif gif = round_trip("solid", {cv::Mat(size, CV_8UC3, cv::Scalar(0, 0, 255)),
                                              cv::Mat(size, CV_8UC3, cv::Scalar(0, 255, 0)),
                                              cv::Mat(size, CV_8UC3, cv::Scalar(255, 0, 0))});
  EXPECT_EQ(gif.width, 16);
  EXPECT_EQ(gif.height, 8);
  EXPECT_EQ(gif.loop, 0);
  EXPECT_EQ(gif.delays_cs, (std::vector<int>{10, 10, 10}));
}

TEST(Gif, GreyGradientOf256ColoursIsExact) {
  cv::Mat ramp(4, 256, CV_8UC3);
  for (int x = 0; x < 256; ++x) ramp.col(x).setTo(cv::Scalar(x, x, x));
  round_trip("gradient", {ramp, cv::Scalar::all(255) - ramp});
}

TEST(Gif, OnePixelAndOddSizes) {
  round_trip("one_pixel", {cv::Mat(1, 1, CV_8UC3, cv::Scalar(1, 2, 3))});
  cv::Mat odd(23, 37, CV_8UC3);
  for (int y = 0; y < odd.rows; ++y) {
    for (int x = 0; x < odd.cols; ++x) {
      odd.at<cv::Vec3b>(y, x) = cv::Vec3b(uchar(x * 7 % 5 * 50), uchar(y % 3 * 100), 9);
    }
  }
  cv::Mat flipped;
  cv::flip(odd, flipped, -1);
  const DecodedGif gif = round_trip("odd", {odd, flipped, cv::Mat(23, 37, CV_8UC3, cv::Scalar(200, 10, 10))});
  EXPECT_EQ(gif.width, 37);
  EXPECT_EQ(gif.height, 23);
}

// 40000 pixels drawn at random from 256 colours: far more than 4096 LZW strings, so the code table fills
// and the encoder must emit clear codes; the colours still round-trip exactly.
TEST(Gif, LzwTableResetsOnNoisyFrames) {
  std::mt19937 rng(3);
  std::vector<cv::Vec3b> colours;
  for (int i = 0; i < 256; ++i) colours.emplace_back(uchar(i), uchar(255 - i), uchar(i * 37 % 256));
  std::vector<cv::Mat> frames;
  for (int f = 0; f < 2; ++f) {
    cv::Mat m(200, 200, CV_8UC3);
    for (int i = 0; i < 200 * 200; ++i) m.at<cv::Vec3b>(i) = colours[rng() % 256];
    frames.push_back(m);
  }
  const DecodedGif gif = round_trip("lzw_reset", frames);
  EXPECT_GT(gif.clear_codes, 2 * 4);  // one at the start of each frame, several more within
}

// The palette's quality on what the writer is for (the bound of the brief: mean abs error <= 4 per channel).
TEST(Gif, HeatmapOverNoiseStaysWithinTheErrorBound) {
  const cv::Size size(160, 120);
  const cv::Mat background = smooth_noise(size);
  std::vector<cv::Mat> frames;
  for (int f = 0; f < 6; ++f) frames.push_back(heatmap_frame(size, 30 + 20 * f, 40 + 8 * f, background));
  const fs::path path = attnmap_test::fresh_dir("gif", "heatmap") / "out.gif";
  attnmap::write_gif_atomically(path, frames, 40);
  const DecodedGif gif = decode_gif(path);
  ASSERT_EQ(gif.frames.size(), frames.size());
  for (size_t i = 0; i < frames.size(); ++i) {
    cv::Mat diff;
    cv::absdiff(gif.frames[i], frames[i], diff);
    const cv::Scalar mean = cv::mean(diff);
    const double mae = (mean[0] + mean[1] + mean[2]) / 3;
    EXPECT_LE(mae, 4.0) << "frame " << i;
    EXPECT_LE(max_abs_diff(gif.frames[i], frames[i]), 48) << "frame " << i;
    std::cout << "frame " << i << ": mean abs error " << mae << ", max " << max_abs_diff(gif.frames[i], frames[i])
              << "\n";
  }
}

TEST(Gif, DelayIsRoundedToCentisecondsAndAtLeastTwo) {
  const std::vector<cv::Mat> one{cv::Mat(2, 2, CV_8UC3, cv::Scalar::all(9))};
  EXPECT_EQ(round_trip("delay33", one, 33, 3).delays_cs, std::vector<int>{3});
  EXPECT_EQ(round_trip("delay35", one, 35).delays_cs, std::vector<int>{4});
  EXPECT_EQ(round_trip("delay5", one, 5).delays_cs, std::vector<int>{2});
  EXPECT_EQ(round_trip("delay0", one, 0).delays_cs, std::vector<int>{2});
  EXPECT_EQ(round_trip("loop3", one, 100, 3).loop, 3);
}

TEST(Gif, RejectsInvalidFramesAsInternal) {
  const fs::path path = attnmap_test::fresh_dir("gif", "invalid") / "out.gif";
  const cv::Mat a(4, 4, CV_8UC3, cv::Scalar::all(0));
  using attnmap::ErrorKind;
  EXPECT_EQ(kind_of([&] { attnmap::write_gif_atomically(path, {}, 100); }), ErrorKind::Internal);
  EXPECT_EQ(kind_of([&] { attnmap::write_gif_atomically(path, {a, cv::Mat(4, 5, CV_8UC3)}, 100); }),
            ErrorKind::Internal);
  EXPECT_EQ(kind_of([&] { attnmap::write_gif_atomically(path, {cv::Mat(4, 4, CV_8UC1)}, 100); }), ErrorKind::Internal);
  EXPECT_EQ(kind_of([&] { attnmap::write_gif_atomically(path, {a}, -1); }), ErrorKind::Internal);
  EXPECT_FALSE(fs::exists(path));
}

TEST(Gif, UnwritablePathIsAnOutputErrorNamingIt) {
  const fs::path dir = attnmap_test::fresh_dir("gif", "unwritable");
  attnmap_test::write_bytes(dir / "file", "x");
  const fs::path path = dir / "file" / "out.gif";  // a folder that is a file
  try {
    attnmap::write_gif_atomically(path, {cv::Mat(2, 2, CV_8UC3, cv::Scalar::all(0))}, 100);
    FAIL() << "no error";
  } catch (const attnmap::Error& e) {
    EXPECT_EQ(e.kind(), attnmap::ErrorKind::Output);
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
}

TEST(Gif, SameFramesGiveTheSameBytes) {
  const cv::Mat background = smooth_noise(cv::Size(64, 48));
  const std::vector<cv::Mat> frames{heatmap_frame({64, 48}, 10, 10, background),
                                    heatmap_frame({64, 48}, 40, 30, background)};
  const fs::path dir = attnmap_test::fresh_dir("gif", "deterministic");
  attnmap::write_gif_atomically(dir / "a.gif", frames, 100);
  attnmap::write_gif_atomically(dir / "b.gif", frames, 100);
  std::ifstream a(dir / "a.gif", std::ios::binary), b(dir / "b.gif", std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(a), {}), std::string(std::istreambuf_iterator<char>(b), {}));
}

// Debian's OpenCV 4.6 has no GIF decoder of its own (cv::haveImageReader is false for .gif), but it is
// built with GDAL, whose GIF driver is a second, unrelated decoder. One frame only: of a two-frame GIF,
// cv::imread(IMREAD_LOAD_GDAL) returned the last frame, not the first.
TEST(Gif, GdalThroughOpenCvReadsASingleFrame) {
  cv::Mat first(23, 37, CV_8UC3);  // 256 colours at most, so exact
  for (int y = 0; y < first.rows; ++y) {
    for (int x = 0; x < first.cols; ++x) {
      first.at<cv::Vec3b>(y, x) = cv::Vec3b(uchar(x % 8 * 30), uchar(y % 8 * 30), uchar((x + y) % 4 * 80));
    }
  }
  const fs::path path = attnmap_test::fresh_dir("gif", "gdal") / "out.gif";
  attnmap::write_gif_atomically(path, {first}, 100);
  cv::Mat read;
  try {
    read = cv::imread(path.string(), cv::IMREAD_LOAD_GDAL | cv::IMREAD_COLOR);
  } catch (const cv::Exception&) {
  }
  if (read.empty()) GTEST_SKIP() << "this OpenCV cannot read GIFs (no GDAL)";
  ASSERT_EQ(read.type(), CV_8UC3);
  EXPECT_EQ(max_abs_diff(read, first), 0);
}
