// The video path of `attnmap run --video/--frames`: frames decoded with OpenCV's videoio (FFmpeg
// backend), sampled as transformers' Qwen2-VL video processor samples them (`sample_frames`), then
// preprocessed as its torchvision path does (docs/video.md).
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <opencv2/core.hpp>
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "attnmap/image.hpp"

namespace attnmap {

// What the container says about a video, the inputs of frame sampling (transformers' VideoMetadata).
struct VideoInfo {
  int64_t total_frames = 0;    // decodable frames (counted by decoding when the container's count is unusable)
  std::optional<double> fps;   // average frame rate of the stream; unset for a frame list
  int width = 0, height = 0;
  std::string codec;           // FFmpeg's codec name ("h264", "png", ...), empty for a frame list
};

// How the video processor picks frames (metadata video.frame_sampling).
enum class FrameSampling {
  Stride,    // Qwen2VLVideoProcessor: whole temporal patches, arange(0, total, total / n)
  Linspace,  // Qwen3VLVideoProcessor: n frames, linspace(0, total - 1, n).round(), repeats allowed
};

// --fps / --num-frames and the processor's bounds. Neither fps nor num_frames set: every frame.
struct VideoSampling {
  FrameSampling method = FrameSampling::Stride;
  std::optional<double> fps;           // target frames per second
  std::optional<int64_t> num_frames;   // a fixed number of frames (rounded to temporal_patch_size)
  int64_t min_frames = 4;
  int64_t max_frames = 768;
  int temporal_patch_size = 2;
};

// transformers' Qwen2VLVideoProcessor.sample_frames (v5) for `info` (FrameSampling::Stride), or
// Qwen3VLVideoProcessor.sample_frames (Linspace): the same float arithmetic, rounding and errors.
// Throws Error(Input) (the message names no file; callers add it) when the sampling asks for more
// frames than the video has (Stride only: Linspace repeats frames as transformers does), or fps is
// asked of a video without one.
std::vector<int64_t> sample_frame_indices(const VideoInfo& info, const VideoSampling& sampling);

// Frames in the order the model reads them, RGB CV_8UC3, all of one size.
struct DecodedVideo {
  VideoInfo info;
  std::vector<int64_t> indices;    // index in the source of each frame (0..n-1 for a frame list)
  std::vector<cv::Mat> frames;     // RGB CV_8UC3
  // The fps transformers derives for the sampled frames (VideoMetadata.sampled_fps):
  // len(indices) / total_frames * fps, or 24 when the source has no fps.
  double sampled_fps = 24.0;
};

// Reads the container's metadata without decoding the frames. Throws Error(Input), one line naming
// the file, for a missing, unreadable, corrupt or frameless file or a codec FFmpeg cannot decode.
VideoInfo probe_video(const std::filesystem::path& path);

// probe_video, sample_frame_indices, then decodes the sampled frames (RGB). Throws Error(Input)
// naming the file for the cases above and for a file that ends before a sampled frame (truncated).
DecodedVideo decode_video(const std::filesystem::path& path, const VideoSampling& sampling);

// `--frames a.png,b.png` or `--frames DIR` (the images in it, in name order): each image decoded as
// load_image_rgb does; fps unset (transformers' 24 fps default); no sampling. Throws Error(Input)
// naming the file for an unreadable frame, frames of different sizes, or an empty list/folder.
DecodedVideo load_frames(const std::vector<std::filesystem::path>& frames);
std::vector<std::filesystem::path> list_frame_files(const std::filesystem::path& dir);

// How a video's M-RoPE positions are laid out (metadata video.temporal_positions).
enum class TemporalPositions {
  Seconds,    // Qwen2.5-VL: one grid, temporal patch k at int(k * tokens_per_second * second_per_grid_t)
  Index,      // Qwen2-VL: one grid, temporal patch k at k
  FrameRuns,  // Qwen3-VL: every temporal patch its own grid (t = 1) where its run of pads begins
};

// The text written before each temporal patch's <|vision_start|> (metadata video.timestamp_text):
// before + the patch's time in seconds with `decimals` decimals + after, e.g. "<1.5 seconds>".
struct TimestampText {
  std::string before, after;
  int decimals = 1;
  std::string format(double seconds) const;  // printf's %.Nf, which rounds as Python's format does
};

// The export's `video` object (metadata, docs/video.md): the video processor's settings as
// transformers builds it from the checkpoint, and the M-RoPE time scale.
struct VideoParams {
  PreprocessParams pixels;             // patch/merge sizes, mean/std, rescale; min/max_pixels (see clip_budget)
  VideoSampling sampling;              // the processor's method, min/max frames; its fps/num_frames when set
  bool sample_by_default = false;      // the processor's do_sample_frames
  TemporalPositions positions = TemporalPositions::Seconds;
  // vision_config.tokens_per_second (positions Seconds, Qwen2.5-VL); 0 otherwise.
  double tokens_per_second = 2;
  // metadata video.pixel_budget "clip" (Qwen3-VL): min/max_pixels bound frames * h * w of the whole
  // sampled clip (Qwen3's smart_resize with num_frames); "frame" (false): one frame's h * w.
  bool clip_budget = false;
  // The processor's per-frame cap (cap_pixels_per_frame, max_video_tokens); off by default in
  // transformers 5.23.
  bool cap_pixels_per_frame = false;
  int64_t max_video_tokens = 768;
  // Set when the prompt writes each temporal patch's time before it (Qwen3-VL).
  std::optional<TimestampText> timestamp_text;

  // Throws Error(Model) naming the field for a missing or invalid one, and, for a null object (an
  // export made before attnmap read videos), one line asking to re-export.
  static VideoParams from_json(const nlohmann::json& video);
};

// A video after the processor: the patches and grid the vision tower takes, and the time scale of its
// M-RoPE positions.
struct PreprocessedVideo {
  torch::Tensor pixel_values_videos;   // float32 [grid_t*grid_h*grid_w, C*T*P*P], merge-block order per temporal patch
  torch::Tensor video_grid_thw;        // int64 [1, 3]
  int64_t grid_t = 0, grid_h = 0, grid_w = 0;
  int resized_height = 0, resized_width = 0;
  // temporal_patch_size / sampled_fps, as the processor's second_per_grid_ts (stored as float32 there)
  double second_per_grid_t = 0;
  // tokens_per_second * second_per_grid_t in float32, or 1 when tokens_per_second is 0 (positions
  // "index", Qwen2-VL): temporal patch k sits at time position int(k * time_interval)
  // (transformers' get_vision_position_ids).
  float time_interval = 0;
};

// smart_resize with the video bounds -> torchvision's antialiased bicubic resize of the uint8 frames
// (the same ATen kernel torchvision calls) -> fused rescale+normalize in float32 -> temporal patches
// of temporal_patch_size frames (the last frame repeated to fill the last one), exactly as
// transformers' Qwen2VLVideoProcessor (v5, torchvision backend), or Qwen3VLVideoProcessor when
// `params.clip_budget`. Throws Error(Input) for frames of different sizes or a size smart_resize refuses.
PreprocessedVideo preprocess_video(const std::vector<cv::Mat>& frames_rgb, const VideoParams& params,
                                   double sampled_fps);

// transformers' Qwen3-VL smart_resize for videos: the bounds apply to num_frames * h * w (the frame
// count rounded to temporal_factor for the test, unrounded for the scale), sides under `factor` are
// scaled up first. Throws Error(Input) for fewer frames than temporal_factor or an aspect ratio over 200.
std::pair<int, int> smart_resize_clip(int num_frames, int height, int width, int temporal_factor, int factor,
                                      int64_t min_pixels, int64_t max_pixels);

// Each temporal patch's time as Qwen3VLProcessor writes it (_calculate_timestamps): the sampled
// frame indices padded with the last one to whole patches, index / fps, the mean of each patch's
// first and last.
std::vector<double> temporal_patch_seconds(const std::vector<int64_t>& indices, double fps, int temporal_patch_size);

}  // namespace attnmap
