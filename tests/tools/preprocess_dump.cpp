// Test-only bridge from pytest to the C++ image path: writes what each stage produced as .npy so
// tests/python/test_preprocess_parity.py can compare it with Pillow and the HF image processor.
//
//   attnmap_preprocess_dump load IMAGE OUT_DIR                  -> loaded.npy
//   attnmap_preprocess_dump preprocess IMAGE OUT_DIR MIN MAX    -> loaded.npy resized.npy
//                                                                  pixel_values.npy image_grid_thw.npy
//   attnmap_preprocess_dump resize IN.npy WIDTH HEIGHT OUT.npy  -> resize_bicubic_pillow of a uint8 array
//
// On an attnmap::Error it prints the message and exits with the error's exit code.
#include <torch/torch.h>

#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>

#include "attnmap/error.hpp"
#include "tool_main.hpp"
#include "attnmap/image.hpp"
#include "io/npy.hpp"

namespace fs = std::filesystem;

namespace {

torch::Tensor to_tensor(const cv::Mat& m) {
  const cv::Mat c = m.isContinuous() ? m : m.clone();
  return torch::from_blob(c.data, {c.rows, c.cols, c.channels()}, torch::kUInt8).clone();
}

cv::Mat from_tensor(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  if (c.scalar_type() != torch::kUInt8 || (c.dim() != 3 && c.dim() != 2)) {
    throw attnmap::Error(attnmap::ErrorKind::Usage, "resize: input must be a uint8 HxW or HxWxC array");
  }
  const int channels = c.dim() == 3 ? static_cast<int>(c.size(2)) : 1;
  cv::Mat m(static_cast<int>(c.size(0)), static_cast<int>(c.size(1)), CV_MAKETYPE(CV_8U, channels), c.data_ptr());
  return m.clone();
}

int run(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "load" && argc == 4) {
    fs::create_directories(argv[3]);
    attnmap::save_npy(fs::path(argv[3]) / "loaded.npy", to_tensor(attnmap::load_image_rgb(argv[2])));
    return 0;
  }
  if (mode == "preprocess" && argc == 6) {
    const fs::path out = argv[3];
    fs::create_directories(out);
    attnmap::PreprocessParams params;
    params.min_pixels = std::stoll(argv[4]);
    params.max_pixels = std::stoll(argv[5]);
    const cv::Mat rgb = attnmap::load_image_rgb(argv[2]);
    attnmap::save_npy(out / "loaded.npy", to_tensor(rgb));
    const attnmap::PreprocessedImage p = attnmap::preprocess_image(rgb, params);
    attnmap::save_npy(out / "resized.npy", to_tensor(p.resized_rgb));
    attnmap::save_npy(out / "pixel_values.npy", p.pixel_values);
    attnmap::save_npy(out / "image_grid_thw.npy", p.image_grid_thw);
    return 0;
  }
  if (mode == "resize" && argc == 6) {
    const cv::Mat in = from_tensor(attnmap::load_npy(argv[2]));
    const cv::Mat resized = attnmap::resize_bicubic_pillow(in, std::stoi(argv[3]), std::stoi(argv[4]));
    torch::Tensor t = to_tensor(resized);
    if (in.channels() == 1) t = t.squeeze(2);
    attnmap::save_npy(argv[5], t);
    return 0;
  }
  std::cerr << "usage: attnmap_preprocess_dump load IMAGE OUT_DIR | preprocess IMAGE OUT_DIR MIN MAX | "
               "resize IN.npy WIDTH HEIGHT OUT.npy\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) { return attnmap_test::run_tool(argc, argv, run); }
