// The image path of `attnmap run`: decode a file the way transformers' `load_image` does, then
// reproduce the Hugging Face Qwen2-VL image processor (PIL backend, transformers v5) bit for bit.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <opencv2/core.hpp>
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <string_view>
#include <utility>

namespace attnmap {

// The `preprocess` object of the model metadata (docs/design.md). The defaults are the Qwen2.5-VL
// checkpoints' preprocessor_config.json values and exist for tests; the runner always reads the model's.
struct PreprocessParams {
  int patch_size = 14;
  int temporal_patch_size = 2;
  int merge_size = 2;
  int64_t min_pixels = 3136;
  int64_t max_pixels = 12845056;
  std::array<float, 3> image_mean{0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> image_std{0.26862954f, 0.26130258f, 0.27577711f};
  double rescale_factor = 1.0 / 255;

  // Reads every field above from the metadata's `preprocess` object; missing or invalid values throw
  // Error(Model), since a well-formed export always has them.
  static PreprocessParams from_json(const nlohmann::json& preprocess);
};

// Decodes an image file into CV_8UC3 in RGB order, as transformers' `load_image(path)` (Pillow open,
// `ImageOps.exif_transpose`, `convert("RGB")`) followed by the processor's convert_to_rgb would:
// EXIF/XMP orientation applied, grayscale replicated, alpha dropped (not composited), palette
// expanded, 16-bit grayscale saturated at 255, 16-bit colour reduced to its high byte, and pixels of
// a PNG tRNS single transparent colour turned white. Throws Error(Input) naming the file for a
// missing, unreadable, truncated or non-image file.
cv::Mat load_image_rgb(const std::filesystem::path& path);

// The same decode for bytes already in memory (`name` only labels error messages); load_image_rgb
// reads the file and calls this. Throws Error(Input) for empty, truncated or non-image bytes.
cv::Mat load_image_rgb_from_memory(std::string_view bytes, const std::filesystem::path& name);

// transformers' smart_resize (v5): returns {height, width}, both multiples of `factor`, with the area
// brought into [min_pixels, max_pixels] keeping the aspect ratio. Same double arithmetic and Python
// round-half-to-even. Throws Error(Input) for an aspect ratio over 200 or a side shorter than `factor`.
std::pair<int, int> smart_resize(int height, int width, int factor, int64_t min_pixels, int64_t max_pixels);

// Pillow's `Image.resize((out_width, out_height), Image.BICUBIC)` for a CV_8UC3 (or CV_8UC1) image:
// the same fixed-point coefficients and passes, so the output equals Pillow's byte for byte.
cv::Mat resize_bicubic_pillow(const cv::Mat& image, int out_width, int out_height);

struct PreprocessedImage {
  torch::Tensor pixel_values;    // float32 [grid_t*grid_h*grid_w, C*T*P*P], rows in merge-block order
  torch::Tensor image_grid_thw;  // int64 [1, 3]
  int64_t grid_t = 0, grid_h = 0, grid_w = 0;
  int resized_height = 0, resized_width = 0;
  cv::Mat resized_rgb;  // CV_8UC3 RGB image after the resize (what the model sees), for debugging
};

// smart_resize -> Pillow bicubic -> rescale -> normalize -> patchify, exactly as
// Qwen2VLImageProcessorPil does for one RGB uint8 image (CV_8UC3, RGB order).
PreprocessedImage preprocess_image(const cv::Mat& rgb, const PreprocessParams& params);

}  // namespace attnmap
