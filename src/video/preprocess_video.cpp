// transformers' Qwen2VLVideoProcessor and Qwen3VLVideoProcessor (v5) for decoded frames (they differ
// in the resize target only). It runs on torchvision, not Pillow, so
// this file calls the same ATen operations torchvision's resize and normalize call, in the same
// dtypes: the results are the processor's bit for bit on the same libtorch.
#include <torch/torch.h>

#include <algorithm>
#include <string>

#include "attnmap/error.hpp"
#include "attnmap/video.hpp"

namespace attnmap {
namespace {

// [T, H, W, 3] uint8 -> [T, 3, H, W] contiguous, as the processor's _prepare_input_videos makes it.
torch::Tensor stack_frames(const std::vector<cv::Mat>& frames) {
  const int h = frames.front().rows, w = frames.front().cols;
  torch::Tensor video = torch::empty({static_cast<int64_t>(frames.size()), h, w, 3}, torch::kUInt8);
  for (size_t i = 0; i < frames.size(); ++i) {
    const cv::Mat& f = frames[i];
    if (f.type() != CV_8UC3 || f.rows != h || f.cols != w) {
      throw Error(ErrorKind::Input, "frame " + std::to_string(i) + " is " + std::to_string(f.cols) + "x" +
                                        std::to_string(f.rows) + ", the first is " + std::to_string(w) + "x" +
                                        std::to_string(h) + "; every frame of a video must have one size");
    }
    const cv::Mat c = f.isContinuous() ? f : f.clone();
    video[static_cast<int64_t>(i)].copy_(torch::from_blob(c.data, {h, w, 3}, torch::kUInt8));
  }
  return video.permute({0, 3, 1, 2}).contiguous();
}

// The processor's resize target. cap_pixels_per_frame lowers max_pixels as each processor's resize
// does (Qwen2-VL: a per-frame bound; Qwen3-VL: a bound on the clip); int(x * 1.05) truncates a double.
std::pair<int, int> resized_size(const VideoParams& v, int64_t num_frames, int height, int width) {
  const PreprocessParams& p = v.pixels;
  const int factor = p.patch_size * p.merge_size;
  const int64_t floor_pixels = static_cast<int64_t>(static_cast<double>(p.min_pixels) * 1.05);
  int64_t max_pixels = p.max_pixels;
  if (v.clip_budget) {
    if (v.cap_pixels_per_frame) {
      const int64_t frame_cap = v.max_video_tokens * factor * factor;
      max_pixels = std::max(std::min(frame_cap, p.max_pixels / num_frames), floor_pixels) * num_frames;
    }
    return smart_resize_clip(static_cast<int>(num_frames), height, width, p.temporal_patch_size, factor, p.min_pixels,
                             max_pixels);
  }
  if (v.cap_pixels_per_frame) {
    const int64_t total_pixels =
        static_cast<int64_t>(static_cast<double>(v.max_video_tokens * factor * factor) * 0.9);
    max_pixels = std::max(std::min(max_pixels, total_pixels * p.temporal_patch_size / num_frames), floor_pixels);
  }
  return smart_resize(height, width, factor, p.min_pixels, max_pixels);
}

}  // namespace

PreprocessedVideo preprocess_video(const std::vector<cv::Mat>& frames_rgb, const VideoParams& params,
                                   double sampled_fps) {
  if (frames_rgb.empty()) throw Error(ErrorKind::Input, "the video has no frames");
  if (!(sampled_fps > 0)) throw Error(ErrorKind::Internal, "preprocess_video: sampled_fps must be positive");
  const PreprocessParams& p = params.pixels;
  const double tokens_per_second = params.tokens_per_second;
  torch::Tensor video = stack_frames(frames_rgb);
  const int64_t height = video.size(2), width = video.size(3);
  const auto [resized_h, resized_w] =
      resized_size(params, video.size(0), static_cast<int>(height), static_cast<int>(width));
  // torchvision's resize_image: unchanged at the same size; else uint8 bicubic with antialias on the
  // CPU goes straight to the uint8 kernel (no float round trip).
  if (resized_h != height || resized_w != width) {
    video = at::_upsample_bicubic2d_aa(video, {resized_h, resized_w}, /*align_corners=*/false, std::nullopt,
                                       std::nullopt);
  }
  // _fuse_mean_std_and_rescale_factor: mean and std become float32 tensors times 1/rescale_factor,
  // then tvF.normalize subtracts and divides in float32.
  const torch::Tensor mean =
      torch::tensor(std::vector<float>(p.image_mean.begin(), p.image_mean.end()), torch::kFloat32) *
      (1.0 / p.rescale_factor);
  const torch::Tensor std_dev =
      torch::tensor(std::vector<float>(p.image_std.begin(), p.image_std.end()), torch::kFloat32) *
      (1.0 / p.rescale_factor);
  torch::Tensor pixels = video.to(torch::kFloat32).sub_(mean.view({-1, 1, 1})).div_(std_dev.view({-1, 1, 1}));

  // patchify: pad the frame count to a multiple of temporal_patch_size with copies of the last frame.
  const int64_t T = p.temporal_patch_size, P = p.patch_size, M = p.merge_size;
  int64_t frames = pixels.size(0);
  if (const int64_t pad = (T - frames % T) % T; pad > 0) {
    pixels = torch::cat({pixels, pixels.slice(0, frames - 1, frames).expand({pad, -1, -1, -1})}, 0);
    frames += pad;
  }
  const int64_t grid_t = frames / T, grid_h = resized_h / P, grid_w = resized_w / P;
  torch::Tensor patches = pixels.view({1, grid_t, T, 3, grid_h / M, M, P, grid_w / M, M, P})
                              .permute({0, 1, 4, 7, 5, 8, 3, 2, 6, 9})
                              .reshape({grid_t * grid_h * grid_w, 3 * T * P * P});

  PreprocessedVideo out;
  out.pixel_values_videos = patches.contiguous();
  out.video_grid_thw = torch::tensor({grid_t, grid_h, grid_w}, torch::kInt64).reshape({1, 3});
  out.grid_t = grid_t;
  out.grid_h = grid_h;
  out.grid_w = grid_w;
  out.resized_height = resized_h;
  out.resized_width = resized_w;
  // The processor: second_per_grid_ts = temporal_patch_size / sampled_fps (Python floats), made a
  // float32 tensor; the model multiplies it by tokens_per_second in float32. tokens_per_second 0
  // (Qwen2-VL and Qwen3-VL, whose processors make no second_per_grid_ts): get_rope_index's time_interval 1.
  out.second_per_grid_t = static_cast<double>(T) / sampled_fps;
  out.time_interval = tokens_per_second > 0
                          ? static_cast<float>(tokens_per_second) * static_cast<float>(out.second_per_grid_t)
                          : 1.0f;
  return out;
}

}  // namespace attnmap
