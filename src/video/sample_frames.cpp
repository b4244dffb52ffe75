// transformers' Qwen2VLVideoProcessor.sample_frames and Qwen3VLVideoProcessor.sample_frames (v5.23),
// line for line. The order of the double
// operations and the final torch.arange are the Python source's: a different order can move an index
// by one at the floor/round edges, and the model would then see other frames than the HF processor.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "attnmap/error.hpp"
#include "attnmap/video.hpp"

namespace attnmap {

namespace {

// Python's round() on a float: ties go to the even neighbour (5/2 = 2.5 -> 2); std::nearbyint does
// the same in the default FE_TONEAREST mode, std::round would not.
int64_t python_round(double x) { return static_cast<int64_t>(std::nearbyint(x)); }

std::string format_number(double x) {
  std::string s = std::to_string(x);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

// Qwen3VLVideoProcessor.sample_frames: n frames spread evenly over the whole video,
// np.linspace(0, total - 1, n).round() (i * step in doubles, the last one exactly total - 1; round
// half to even). n from fps is int(total / video_fps * fps) clamped to [min_frames, max_frames] and
// to the video's length; a video without a rate counts as 24 fps, as transformers does.
std::vector<int64_t> linspace_indices(const VideoInfo& info, const VideoSampling& sampling) {
  const int64_t total = info.total_frames;
  int64_t n = 0;
  if (sampling.num_frames) {
    n = *sampling.num_frames;
  } else if (sampling.fps) {
    const double video_fps = info.fps && *info.fps > 0 ? *info.fps : 24.0;
    n = static_cast<int64_t>(static_cast<double>(total) / video_fps * *sampling.fps);  // int(): toward zero
    n = std::min({std::max(n, sampling.min_frames), sampling.max_frames, total});
  } else {
    n = std::min(std::max(total, sampling.min_frames), sampling.max_frames);
  }
  if (n <= 0) throw Error(ErrorKind::Input, "sampling picks no frame; ask for at least one with --num-frames");
  std::vector<int64_t> indices(static_cast<size_t>(n));
  const double stop = static_cast<double>(total - 1);
  const double step = n > 1 ? stop / static_cast<double>(n - 1) : 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double y = i == n - 1 && n > 1 ? stop : static_cast<double>(i) * step;
    indices[static_cast<size_t>(i)] = python_round(y);
  }
  return indices;
}

}  // namespace

std::vector<int64_t> sample_frame_indices(const VideoInfo& info, const VideoSampling& sampling) {
  if (sampling.fps && sampling.num_frames) {
    throw Error(ErrorKind::Usage, "--fps and --num-frames are mutually exclusive; give only one");
  }
  if (info.total_frames <= 0) {
    throw Error(ErrorKind::Input, "the video has no frames; use a video with at least one frame");
  }
  if (sampling.method == FrameSampling::Linspace) return linspace_indices(info, sampling);
  const int64_t total = info.total_frames;
  const int64_t tps = sampling.temporal_patch_size;
  if (tps <= 0) throw Error(ErrorKind::Internal, "sample_frame_indices: temporal_patch_size must be positive");
  if (sampling.fps && sampling.num_frames) {
    throw Error(ErrorKind::Usage, "--fps and --num-frames are mutually exclusive; give only one");
  }
  if (total <= 0) throw Error(ErrorKind::Input, "the video has no frames; use a video with at least one frame");

  std::optional<int64_t> num_frames;
  if (sampling.num_frames) {
    num_frames = python_round(static_cast<double>(*sampling.num_frames) / static_cast<double>(tps)) * tps;
    if (*num_frames <= 0) {
      // Python fails here too (a division by zero in torch.arange's step, or a negative step).
      throw Error(ErrorKind::Input, "--num-frames " + std::to_string(*sampling.num_frames) + " rounds to " +
                                        std::to_string(*num_frames) + " frames (a multiple of " +
                                        std::to_string(tps) + "); ask for at least " + std::to_string(tps));
    }
  } else if (sampling.fps) {
    if (!info.fps || *info.fps <= 0) {
      throw Error(ErrorKind::Input, "the video has no frame rate, so --fps cannot be applied; use --num-frames");
    }
    // max_frames = floor(min(max_frames, total) / tps) * tps, in doubles as Python's true division.
    const double max_frames =
        static_cast<double>(static_cast<int64_t>(
            std::floor(static_cast<double>(std::min(sampling.max_frames, total)) / static_cast<double>(tps))) *
                            tps);
    double n = static_cast<double>(total) / *info.fps * *sampling.fps;
    // min(max(n, min_frames), max_frames, total): Python compares int and float exactly; the values
    // here are far below 2^53, so the doubles compare the same.
    n = std::min({std::max(n, static_cast<double>(sampling.min_frames)), max_frames, static_cast<double>(total)});
    num_frames = static_cast<int64_t>(std::floor(n / static_cast<double>(tps))) * tps;
    if (*num_frames <= 0) {
      throw Error(ErrorKind::Input, "--fps " + format_number(*sampling.fps) + " samples no frames from a video of " +
                                        std::to_string(total) + " frames (whole groups of " + std::to_string(tps) +
                                        " are needed); use a video with at least " + std::to_string(tps) +
                                        " frames or raise --fps");
    }
  }

  if (num_frames && *num_frames > total) {
    throw Error(ErrorKind::Input, "sampling asks for " + std::to_string(*num_frames) + " frames but the video has " +
                                      std::to_string(total) + "; lower --num-frames or --fps");
  }

  // torch.arange(0, total, total / num_frames).int(): Python float arguments make a float32 tensor
  // (the default dtype) whose values torch computes as start + i * step in double and then rounds
  // to float32; .int() truncates. Calling the same kernel with the same dtypes gives the same bits.
  torch::Tensor t;
  if (num_frames) {
    const double step = static_cast<double>(total) / static_cast<double>(*num_frames);
    t = torch::arange(torch::Scalar(int64_t{0}), torch::Scalar(total), torch::Scalar(step),
                      torch::TensorOptions().dtype(torch::kFloat32));
  } else {
    t = torch::arange(total, torch::TensorOptions().dtype(torch::kInt64));
  }
  t = t.to(torch::kInt32).to(torch::kInt64).contiguous();
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
}

}  // namespace attnmap
