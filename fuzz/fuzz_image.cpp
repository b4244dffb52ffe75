// Image path of `attnmap run`: bytes -> decode from memory (EXIF orientation, tRNS, 16-bit, ...)
// -> Qwen2-VL preprocessing to pixel_values. max_pixels is lowered so a large decoded image does not
// make each execution slow; the code paths are the same.
#include <cstdint>
#include <string_view>

#include "attnmap/image.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  attnmap::fuzz::expect_clean_failure([&] {
    const cv::Mat rgb = attnmap::load_image_rgb_from_memory(bytes, "fuzz-input");
    if (rgb.type() != CV_8UC3 || rgb.empty()) std::abort();
    attnmap::PreprocessParams params;
    params.max_pixels = 28 * 28 * 64;
    const attnmap::PreprocessedImage pre = attnmap::preprocess_image(rgb, params);
    if (pre.pixel_values.size(0) != pre.grid_t * pre.grid_h * pre.grid_w) std::abort();
  });
  return 0;
}
