// A port of Pillow's ImagingResample (src/libImaging/Resample.c) for 8-bit images with the BICUBIC
// filter. Every constant, rounding and clipping step mirrors the C source, because the HF processor's
// output is defined by it and a one-LSB difference survives normalisation.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "attnmap/error.hpp"
#include "attnmap/image.hpp"

namespace attnmap {

namespace {

// 8 bits for the result, 2 for overshoot of the negative-lobed kernel; the rest is fraction.
constexpr int kPrecisionBits = 32 - 8 - 2;

double bicubic_filter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// One output coordinate's taps: source indices [first, first + weights.size()).
struct Coefficients {
  int ksize = 0;
  std::vector<int> first;     // per output pixel
  std::vector<int> count;     // per output pixel
  std::vector<int32_t> kk;    // outSize * ksize fixed-point weights
};

// precompute_coeffs + normalize_coeffs_8bpc for the box (0, in_size).
Coefficients precompute(int in_size, int out_size) {
  constexpr double filter_support = 2.0;
  // Pillow passes the box as float; (in1 - in0) is exact for any realistic size.
  const float in0 = 0.0f, in1 = static_cast<float>(in_size);
  const double scale = static_cast<double>(in1 - in0) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = filter_support * filterscale;

  Coefficients c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.kk.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> k(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);  // C truncation, as in Pillow
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double w = bicubic_filter((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; ++x) {
      if (ww != 0.0) k[x] /= ww;
    }
    for (int x = 0; x < xmax; ++x) {
      const double scaled = k[x] * (1 << kPrecisionBits);
      c.kk[static_cast<size_t>(xx) * c.ksize + x] =
          k[x] < 0 ? static_cast<int32_t>(-0.5 + scaled) : static_cast<int32_t>(0.5 + scaled);
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

// Pillow's clip8 is a lookup on (ss >> PRECISION_BITS) clamped to [0, 255].
inline uint8_t clip8(int32_t ss) {
  const int32_t v = ss >> kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Horizontal pass over rows [row0, row0 + rows) of `in` into `out` (rows x out_width).
void resample_horizontal(const cv::Mat& in, cv::Mat& out, int row0, const Coefficients& c) {
  const int channels = in.channels();
  for (int y = 0; y < out.rows; ++y) {
    const uint8_t* src = in.ptr<uint8_t>(row0 + y);
    uint8_t* dst = out.ptr<uint8_t>(y);
    for (int xx = 0; xx < out.cols; ++xx) {
      const int32_t* k = &c.kk[static_cast<size_t>(xx) * c.ksize];
      const uint8_t* s = src + static_cast<size_t>(c.first[xx]) * channels;
      for (int ch = 0; ch < channels; ++ch) {
        int32_t ss = 1 << (kPrecisionBits - 1);
        for (int x = 0; x < c.count[xx]; ++x) ss += static_cast<int32_t>(s[x * channels + ch]) * k[x];
        dst[xx * channels + ch] = clip8(ss);
      }
    }
  }
}

// Vertical pass; row indices of `c` are relative to row_offset in `in`.
void resample_vertical(const cv::Mat& in, cv::Mat& out, int row_offset, const Coefficients& c) {
  const int width = in.cols * in.channels();
  std::vector<int32_t> acc(width);
  for (int yy = 0; yy < out.rows; ++yy) {
    const int32_t* k = &c.kk[static_cast<size_t>(yy) * c.ksize];
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    // Row-major accumulation: same sums as Pillow's per-pixel loop (integer addition is exact).
    for (int y = 0; y < c.count[yy]; ++y) {
      const uint8_t* src = in.ptr<uint8_t>(c.first[yy] - row_offset + y);
      const int32_t w = k[y];
      for (int i = 0; i < width; ++i) acc[i] += static_cast<int32_t>(src[i]) * w;
    }
    uint8_t* dst = out.ptr<uint8_t>(yy);
    for (int i = 0; i < width; ++i) dst[i] = clip8(acc[i]);
  }
}

}  // namespace

cv::Mat resize_bicubic_pillow(const cv::Mat& image, int out_width, int out_height) {
  if (image.empty() || image.depth() != CV_8U || (image.channels() != 1 && image.channels() != 3)) {
    throw Error(ErrorKind::Internal, "resize_bicubic_pillow needs a non-empty CV_8UC1 or CV_8UC3 image");
  }
  if (out_width <= 0 || out_height <= 0) {
    throw Error(ErrorKind::Internal, "resize_bicubic_pillow: invalid output size " + std::to_string(out_width) +
                                         "x" + std::to_string(out_height));
  }
  // Pillow's Image.resize returns a copy when the size does not change.
  if (image.cols == out_width && image.rows == out_height) return image.clone();

  const bool need_horizontal = out_width != image.cols;
  const bool need_vertical = out_height != image.rows;
  const Coefficients vert = precompute(image.rows, out_height);

  cv::Mat current = image;
  int row_offset = 0;
  if (need_horizontal) {
    // Like Pillow, only the source rows the vertical pass reads are resampled horizontally.
    const int first_row = vert.first.front();
    const int last_row = vert.first.back() + vert.count.back();
    const Coefficients horiz = precompute(image.cols, out_width);
    cv::Mat temp(last_row - first_row, out_width, image.type());
    resample_horizontal(image, temp, first_row, horiz);
    current = temp;
    row_offset = first_row;
  }
  if (!need_vertical) return current;  // the horizontal result, which covers every row here
  cv::Mat out(out_height, out_width, image.type());
  resample_vertical(current, out, row_offset, vert);
  return out;
}

}  // namespace attnmap
