// One item, end to end: image + prompt -> per-layer attention maps -> files. Split into three
// stages so that batch mode can overlap them: prepare (CPU, thread-safe), infer (device, one at a
// time), write (CPU, thread-safe).
#pragma once

#include <opencv2/core.hpp>
#include <torch/types.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attnmap/image.hpp"
#include "attnmap/model.hpp"
#include "attnmap/prompt.hpp"
#include "attnmap/render.hpp"

namespace attnmap {

struct RunOptions {
  std::string query = "prompt";        // prompt | last | all | I,J,K | word:WORD
  std::string layers = "all";          // all | 4,8,12 | 0-5
  std::string heads = "mean";          // mean | max | N (one head)
  RenderOptions render;                // colormap, alpha, blur
  bool predict = true;                 // also report the greedy next token (runs every layer)
  bool write_images = true;            // layer_XX.jpg and grid.jpg
  std::optional<int64_t> min_pixels;   // override the model's preprocessing bounds
  std::optional<int64_t> max_pixels;
  std::string system_prompt;           // empty: the model's default
  std::filesystem::path dump_inputs;   // empty: off; else write the model inputs as .npy here
};

struct RunItem {
  std::string id;                      // name in batch summaries; the image stem by default
  std::filesystem::path image;
  std::string prompt;
  std::filesystem::path out_dir;
};

using StageTimings = std::map<std::string, double>;  // stage -> milliseconds

struct PreparedItem {
  RunItem item;
  cv::Mat original_rgb;
  PreprocessedImage image;
  ChatPrompt prompt;
  ModelInputs inputs;
  std::vector<int64_t> layers;
  std::vector<int64_t> query_rows;
  StageTimings timings;
};

struct LayerStats {
  int64_t layer = 0;
  double min = 0, max = 0, sum = 0, entropy = 0;
};

struct Prediction {
  int64_t token_id = -1;
  std::string token;
  std::string text;
  double probability = 0;
};

struct InferredItem {
  PreparedItem prepared;
  torch::Tensor maps;  // float32 [layers, merged_h, merged_w]
  std::vector<LayerStats> stats;
  std::optional<Prediction> prediction;
  std::optional<int64_t> peak_device_memory_bytes;  // CUDA only
};

class Runner {
 public:
  Runner(std::shared_ptr<Model> model, RunOptions options);

  PreparedItem prepare(const RunItem& item) const;
  InferredItem infer(PreparedItem prepared);
  void write(const InferredItem& inferred) const;

  // All three stages; returns the total timings.
  StageTimings run(const RunItem& item);

  const Model& model() const { return *model_; }
  const RunOptions& options() const { return options_; }
  const PreprocessParams& preprocess_params() const { return preprocess_; }

 private:
  std::shared_ptr<Model> model_;
  RunOptions options_;
  PreprocessParams preprocess_;
  HeadReduce head_reduce_ = HeadReduce::Mean;
  int64_t single_head_ = -1;
};

}  // namespace attnmap
