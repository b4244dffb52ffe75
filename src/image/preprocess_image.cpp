#include <torch/torch.h>

#include <string>

#include "attnmap/error.hpp"
#include "attnmap/image.hpp"

namespace attnmap {

namespace {

// value(u8) = (float32(float64(u8) * rescale) - mean_f32) / std_f32, all float32 after the first
// product: transformers' rescale() upcasts to float64 and casts back, normalize() works in float32
// and divides (not multiplies by 1/std). A per-channel table of the 256 results is exact.
std::array<std::array<float, 256>, 3> normalisation_tables(const PreprocessParams& p) {
  std::array<std::array<float, 256>, 3> lut{};
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v) {
      const float rescaled = static_cast<float>(static_cast<double>(v) * p.rescale_factor);
      lut[c][v] = (rescaled - p.image_mean[c]) / p.image_std[c];
    }
  }
  return lut;
}

void check_params(const PreprocessParams& p) {
  if (p.patch_size <= 0 || p.temporal_patch_size <= 0 || p.merge_size <= 0) {
    throw Error(ErrorKind::Internal, "preprocess_image: patch_size, temporal_patch_size and merge_size must be "
                                     "positive");
  }
}

}  // namespace

PreprocessedImage preprocess_image(const cv::Mat& rgb, const PreprocessParams& p) {
  if (rgb.empty() || rgb.type() != CV_8UC3) {
    throw Error(ErrorKind::Internal, "preprocess_image needs a non-empty CV_8UC3 RGB image");
  }
  check_params(p);
  const int factor = p.patch_size * p.merge_size;
  const auto [height, width] = smart_resize(rgb.rows, rgb.cols, factor, p.min_pixels, p.max_pixels);
  const cv::Mat resized = resize_bicubic_pillow(rgb, width, height);

  const int P = p.patch_size, M = p.merge_size, T = p.temporal_patch_size;
  const int64_t grid_h = height / P, grid_w = width / P;
  const int64_t row_width = int64_t(3) * T * P * P;
  torch::Tensor pixel_values = torch::empty({grid_h * grid_w, row_width}, torch::kFloat32);
  float* out = pixel_values.data_ptr<float>();
  const auto lut = normalisation_tables(p);

  // Row order is HF's: merge blocks in raster order, the M x M patches of a block in raster order.
  // Column = c*T*P*P + t*P*P + py*P + px; a still image repeats its single frame over t.
  int64_t row = 0;
  for (int64_t bh = 0; bh < grid_h / M; ++bh) {
    for (int64_t bw = 0; bw < grid_w / M; ++bw) {
      for (int mh = 0; mh < M; ++mh) {
        for (int mw = 0; mw < M; ++mw, ++row) {
          float* dst = out + row * row_width;
          const int y0 = static_cast<int>((bh * M + mh) * P), x0 = static_cast<int>((bw * M + mw) * P);
          for (int py = 0; py < P; ++py) {
            const uint8_t* src = resized.ptr<uint8_t>(y0 + py) + size_t(x0) * 3;
            for (int px = 0; px < P; ++px) {
              for (int c = 0; c < 3; ++c) {
                const float v = lut[c][src[px * 3 + c]];
                for (int t = 0; t < T; ++t) dst[(int64_t(c) * T + t) * P * P + py * P + px] = v;
              }
            }
          }
        }
      }
    }
  }

  PreprocessedImage result;
  result.pixel_values = pixel_values;
  result.grid_t = 1;  // one frame, padded to temporal_patch_size by repetition
  result.grid_h = grid_h;
  result.grid_w = grid_w;
  result.image_grid_thw = torch::tensor({int64_t(1), grid_h, grid_w}, torch::kInt64).reshape({1, 3});
  result.resized_height = height;
  result.resized_width = width;
  result.resized_rgb = resized;
  return result;
}

}  // namespace attnmap
