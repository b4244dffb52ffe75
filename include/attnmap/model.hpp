// An exported model on one device and dtype: its file (metadata, tokenizer), its family (prompt,
// positions, preprocessing) and the backend that runs its forward.
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <string_view>

#include "attnmap/metadata.hpp"
#include "attnmap/options.hpp"
#include "attnmap/model_file.hpp"
#include "attnmap/tokenizer.hpp"

namespace attnmap {

class AttentionBackend;
class Family;

// How a layer's heads are reduced: None keeps every head, Mean and Max reduce them to one row.
enum class HeadReduce { None, Mean, Max };
// The forward contract's name of a reduction ("keep", "mean", "max"); the one C++ definition.
std::string_view head_reduce_name(HeadReduce reduce);

struct ModelInputs {
  torch::Tensor input_ids;       // int64 [S]
  torch::Tensor pixel_values;    // float32 [N, C*T*P*P], merge-block order
  torch::Tensor image_grid_thw;  // int64 [1, 3]
  torch::Tensor position_ids;    // int64 [3, S]
  // A video (docs/video.md): defined only then; pixel_values and image_grid_thw are then empty.
  torch::Tensor pixel_values_videos;  // float32 [N, C*T*P*P]
  torch::Tensor video_grid_thw;       // int64 [1, 3]
};

struct AttentionRequest {
  std::vector<int64_t> layers;          // decoder layers, in output order
  std::vector<int64_t> query_rows;      // attention rows
  HeadReduce head_reduce = HeadReduce::Mean;
  bool mean_queries = true;             // average the rows after the head reduction
  bool return_logits = true;            // also the last position's logits (runs every layer)
};

struct AttentionResult {
  std::vector<torch::Tensor> layers;  // float32 on CPU, [H', Q', S] per requested layer
  torch::Tensor logits;               // float32 [vocab] on CPU, undefined when not requested
  std::optional<int64_t> peak_device_memory_bytes;  // during this forward; CUDA only
};

// Attention inside the vision tower (docs/design.md, "vision_attention"): per requested block, the
// attention each patch of the unmerged grid receives, averaged over the query patches.
struct VisionAttentionRequest {
  std::vector<int64_t> blocks;         // vision blocks, in output order
  std::vector<int64_t> query_patches;  // raster patch indexes (t, row, col); empty: every patch
  HeadReduce head_reduce = HeadReduce::Mean;
};

struct VisionAttentionResult {
  std::vector<torch::Tensor> blocks;  // float32 on CPU, [H', P] per requested block, raster order
  torch::Tensor windows;              // int64 [P] on CPU: each patch's attention window
  std::optional<int64_t> peak_device_memory_bytes;  // during this call; CUDA only
};

// Greedy generation's key/value cache, on the model's device in its dtype: per decoder layer the
// keys (after M-RoPE) and values of every position so far, [KV heads, S, head_dim]. Filled by
// Model::prefill, grown by one position by every Model::decode_step.
struct DecodeCache {
  std::vector<torch::Tensor> keys, values;
  int64_t length() const { return keys.empty() ? 0 : keys.front().size(1); }
};

class Model {
 public:
  // Loads the file; throws Error(Model) naming it when it is missing, not TorchScript, not an
  // attnmap export, of another format version or of an unsupported family, and Error(Resource)
  // when the device is unusable.
  static std::shared_ptr<Model> load(const std::filesystem::path& path, const DeviceChoice& choice);
  ~Model();

  const ModelFile& file() const { return file_; }
  const ModelMetadata& metadata() const { return metadata_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  // What is specific to the model's family (model/family.hpp): prompt, positions, preprocessing.
  const Family& family() const { return *family_; }
  const std::filesystem::path& path() const { return file_.path(); }
  // Computed beside the weight load; the first call waits for it.
  const std::string& sha256() const;
  torch::Device device() const { return device_; }
  torch::ScalarType dtype() const { return dtype_; }
  std::string device_name() const;
  std::string dtype_name() const;

  // Not thread-safe: one forward at a time per Model (batch mode runs the device stage on one thread).
  AttentionResult attention(const ModelInputs& inputs, const AttentionRequest& request);

  // The vision tower's own attention for the image or video of `inputs` (its pixel values and grid).
  // Error(Model) asking for a re-export when the file predates vision maps.
  VisionAttentionResult vision_attention(const ModelInputs& inputs, const VisionAttentionRequest& request);

  // Generation (docs/design.md, "Generation"). prefill: attention(inputs, request) with the logits
  // always returned, and every layer's cache stored in `cache`; the device's peak memory is reset
  // here. decode_step: the token chosen last, at `position_ids` (Family::decode_position_ids), over
  // `cache` (grown by one): result.layers[i] is float32 [H', 1, cache length] on the CPU, its logits
  // the next token's, and peak_device_memory_bytes the peak since prefill.
  AttentionResult prefill(const ModelInputs& inputs, const AttentionRequest& request, DecodeCache& cache);
  AttentionResult decode_step(int64_t token, const torch::Tensor& position_ids, DecodeCache& cache,
                              const std::vector<int64_t>& layers, HeadReduce head_reduce);

 private:
  explicit Model(ModelFile file);
  ModelFile file_;
  std::shared_future<std::string> sha256_;
  ModelMetadata metadata_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<const Family> family_;
  std::unique_ptr<AttentionBackend> backend_;  // the forward; torch/script.h stays in its .cpp
  torch::Device device_{torch::kCPU};
  torch::ScalarType dtype_ = torch::kFloat32;
};

}  // namespace attnmap
