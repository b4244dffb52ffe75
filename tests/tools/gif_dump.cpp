// Test-only bridge from pytest to the GIF writer: tests/python/test_gif_writer.py decodes what it
// writes with Pillow.
//
//   attnmap_gif_dump FRAMES.npy DELAY_MS OUT.gif [LOOP]   FRAMES: uint8 [N, H, W, 3], BGR
//
// On an attnmap::Error it prints the message and exits with the error's exit code.
#include <torch/torch.h>

#include <iostream>
#include <string>
#include <vector>

#include "attnmap/error.hpp"
#include "tool_main.hpp"
#include "io/npy.hpp"
#include "render/write_gif.hpp"

namespace {

std::vector<cv::Mat> frames_of(const torch::Tensor& t) {
  if (t.scalar_type() != torch::kUInt8 || t.dim() != 4 || t.size(3) != 3) {
    throw attnmap::Error(attnmap::ErrorKind::Usage, "FRAMES must be a uint8 [N, H, W, 3] array");
  }
  const torch::Tensor c = t.contiguous();
  std::vector<cv::Mat> frames;
  for (int64_t i = 0; i < c.size(0); ++i) {
    const torch::Tensor f = c[i];
    frames.push_back(cv::Mat(static_cast<int>(c.size(1)), static_cast<int>(c.size(2)), CV_8UC3, f.data_ptr()).clone());
  }
  return frames;
}

int run(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::cerr << "usage: attnmap_gif_dump FRAMES.npy DELAY_MS OUT.gif [LOOP]\n";
    return 2;
  }
  const int loop = argc == 5 ? std::stoi(argv[4]) : 0;
  attnmap::write_gif_atomically(argv[3], frames_of(attnmap::load_npy(argv[1])), std::stoi(argv[2]), loop);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return attnmap_test::run_tool(argc, argv, run); }
