// One item, end to end: image + prompt -> per-layer attention maps -> files. Split into three
// stages so that batch mode can overlap them: prepare (CPU, thread-safe), infer (device, one at a
// time), write (CPU, thread-safe).
#pragma once

#include <opencv2/core.hpp>
#include <torch/types.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attnmap/image.hpp"
#include "attnmap/model.hpp"
#include "attnmap/prompt.hpp"
#include "attnmap/options.hpp"
#include "attnmap/render.hpp"
#include "attnmap/run_folder.hpp"
#include "attnmap/video.hpp"

namespace attnmap {

// `--answer`: generate the model's greedy answer and a map for every answer token.
struct AnswerSpec {
  int64_t max_new_tokens = 32;
  bool raw_argmax = false;  // ignore the checkpoint's repetition penalty (plain argmax)
};

// The generic prompt `--baseline-prompt` uses when given without text ("MLLMs know where to look",
// ICLR 2025).
inline constexpr const char* kDefaultBaselinePrompt = "Write a general description of the image.";

// relative = map / (baseline + kRelativeEpsilon): attention probabilities of real models are far above
// it, and a cell where both maps underflow to 0 stays 0 instead of NaN.
inline constexpr double kRelativeEpsilon = 1e-6;

// --video / --frames: overrides of the model's video processing (docs/video.md).
struct VideoSpec {
  std::optional<double> fps;            // --fps: frames sampled per second of video
  std::optional<int64_t> num_frames;    // --num-frames: a fixed number of frames
  std::optional<int64_t> min_pixels;    // --video-min-pixels / --video-max-pixels: bounds of each frame's area
  std::optional<int64_t> max_pixels;
};

// Frames sampled per second of video when neither the command nor the model's processor config says
// (qwen-vl-utils' FPS, what the Qwen2.5-VL cookbooks feed the model).
inline constexpr double kDefaultVideoFps = 2.0;

// What to compute and draw for every item, as typed values (the CLI parses the strings once:
// attnmap/options.hpp). The Runner checks them against the model when it is constructed.
struct RunSpec {
  QuerySpec query;                     // prompt | last | all | I,J,K | word:WORD
  LayerSelection layers;               // all | 4,8,12 | 0-5
  HeadSelection heads;                 // mean | max | N (one head)
  RenderOptions render;                // colormap, alpha, blur
  bool predict = true;                 // also report the greedy next token (runs every layer)
  bool write_images = true;            // layer_XX.jpg and grid.jpg
  bool write_viewer = true;            // viewer.html (keeps every head's rows of the prompt and answer tokens)
  std::optional<int64_t> min_pixels;   // override the model's preprocessing bounds
  std::optional<int64_t> max_pixels;
  std::string system_prompt;           // empty: the model's default
  std::optional<AnswerSpec> answer;    // generate an answer (needed by the answer queries)
  std::optional<std::string> baseline_prompt;  // also write relative_maps.npy against this prompt
  VideoSpec video;                     // how videos and frame lists are sampled and sized
  std::optional<LayerSelection> vision_blocks;  // --vision-blocks: vision-tower maps of these blocks; unset: none
  VisionQuery vision_query;            // --vision-query: which patches' attention those maps average
};
using RunOptions = RunSpec;  // the name before v2

struct RunItem {
  std::string id;                      // name in batch summaries; the image stem by default
  std::filesystem::path image;        // one of image, video, frames
  std::filesystem::path video;        // --video: a video file
  std::vector<std::filesystem::path> frames;  // --frames: the frames of a video, in order (or one folder of them)
  std::string prompt;
  std::filesystem::path out_dir;

  bool is_video() const { return !video.empty() || !frames.empty(); }
  // The file that names the item in messages: the image, the video or the first frame (or folder).
  const std::filesystem::path& input() const {
    return !video.empty() ? video : !frames.empty() ? frames.front() : image;
  }
};

// Stage 1's result: the decoded image and everything the forward needs. No file is written.
struct PreparedItem {
  RunItem item;
  cv::Mat original_rgb;                // the image, or a video's first sampled frame
  PreprocessedImage image;             // grid_t/h/w also describe a video's grid
  std::optional<DecodedVideo> video;   // --video / --frames: the sampled frames
  PreprocessedVideo video_inputs;
  ChatPrompt prompt;
  ModelInputs inputs;
  std::vector<int64_t> layers;
  std::vector<int64_t> query_rows;     // empty for an answer query (resolved after generation)
  // --baseline-prompt: the same image with the baseline prompt, and the rows its map averages.
  std::optional<ChatPrompt> baseline_prompt;
  ModelInputs baseline_inputs;
  std::vector<int64_t> baseline_query_rows;
  // --vision-query box: the query patches, resolved here so that a box off the image fails before the forward.
  std::vector<int64_t> vision_box_patches;
  StageTimings timings;
};

// Stage 2's result: the record of the item (everything attention.json holds but the write stage's
// timings) plus what the write stage renders from.
struct InferredItem {
  RunRecord record;
  RunItem item;
  cv::Mat original_rgb;
  std::vector<cv::Mat> frames;  // a video: per temporal patch its frames averaged, RGB (what its maps are drawn over)
  torch::Tensor maps;  // float32 [layers, merged_h, merged_w]; a video: [layers, t, merged_h, merged_w]
  torch::Tensor answer_maps;    // --answer: float32 [answer tokens, layers, merged_h, merged_w]
  torch::Tensor relative_maps;  // --baseline-prompt: float32 [layers, merged_h, merged_w]
  // For viewer.html (write_viewer): per layer every head's rows of the prompt tokens [H, prompt, S];
  // per answer token, per layer the row that chose it [H, S + k]; heads mean over the prompt tokens.
  std::vector<torch::Tensor> viewer_prompt_rows;
  std::vector<std::vector<torch::Tensor>> viewer_answer_rows;
  torch::Tensor viewer_default_maps;
  // --vision-blocks: float32 [blocks, grid_h, grid_w] ([blocks, t, grid_h, grid_w] for a video) and each
  // patch's attention window, int64 [t * grid_h * grid_w] in raster order.
  torch::Tensor vision_maps;
  torch::Tensor vision_windows;
};

class Runner {
 public:
  // Throws Error(Usage) naming the flag when a typed value does not fit the model (a layer or head
  // it lacks, pixel bounds out of order, a bad colormap/alpha/blur).
  Runner(std::shared_ptr<Model> model, RunSpec options);

  // Reads and preprocesses the image, builds the prompt and the model inputs; reads no other file
  // and writes none.
  PreparedItem prepare(const RunItem& item) const;
  // The forward and the maps; returns the item's record (timings up to "maps").
  InferredItem infer(PreparedItem prepared);
  // Renders and commits the folder through the output module (attention.json last; nothing left
  // behind on failure). Returns the record as written, with its final timings.
  RunRecord write(const InferredItem& inferred) const;

  // All three stages; returns the record written.
  RunRecord run(const RunItem& item);

  const Model& model() const { return *model_; }
  const RunSpec& options() const { return options_; }
  const PreprocessParams& preprocess_params() const { return preprocess_; }

 private:
  // infer()'s vision-tower part (runner_vision.cpp): the query patches, the forward through the
  // tower, vision_maps and the record's `vision`. Returns the call's peak device memory.
  std::optional<int64_t> infer_vision(const PreparedItem& prepared, InferredItem& out);
  void check_vision_options();
  // prepare()'s part: the box query's patches (Error(Input) naming the item when the box misses it).
  std::vector<int64_t> vision_box_patches(const PreparedItem& prepared) const;

  std::shared_ptr<Model> model_;
  RunSpec options_;
  PreprocessParams preprocess_;
  std::optional<VideoParams> video_;  // the model's video processing, overrides applied; unset for an export without
  HeadReduce head_reduce_ = HeadReduce::Mean;
  int64_t single_head_ = -1;
  std::vector<int64_t> layers_;  // options_.layers resolved against the model, once
  std::vector<int64_t> vision_blocks_;  // options_.vision_blocks resolved against the tower; empty: none
  int64_t peak_layer_ = -1;             // --vision-query text-peak: the decoder layer whose map's peak is the query
};

}  // namespace attnmap
