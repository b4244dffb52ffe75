// An exported Qwen2.5-VL (TorchScript) with its metadata and tokenizer, on one device and dtype.
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attnmap/metadata.hpp"
#include "attnmap/tokenizer.hpp"

namespace attnmap {

enum class HeadReduce { None = 0, Mean = 1, Max = 2 };

struct ModelInputs {
  torch::Tensor input_ids;       // int64 [S]
  torch::Tensor pixel_values;    // float32 [N, C*T*P*P], merge-block order
  torch::Tensor image_grid_thw;  // int64 [1, 3]
  torch::Tensor position_ids;    // int64 [3, S]
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

// Which device and dtype to run on: "auto" picks CUDA when available, and bf16 on CUDA, fp32 on CPU.
struct DeviceChoice {
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  std::string dtype = "auto";   // auto | fp32 | bf16 | fp16
};

class Model {
 public:
  // Loads the file; throws Error(Model) naming it when it is missing, not TorchScript, not an
  // attnmap export or of another format version, and Error(Resource) when the device is unusable.
  static std::shared_ptr<Model> load(const std::filesystem::path& path, const DeviceChoice& choice);

  const ModelMetadata& metadata() const { return metadata_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const std::filesystem::path& path() const { return path_; }
  // Computed beside the weight load; the first call waits for it.
  const std::string& sha256() const;
  torch::Device device() const { return device_; }
  torch::ScalarType dtype() const { return dtype_; }
  std::string device_name() const;
  std::string dtype_name() const;

  // Not thread-safe: one forward at a time per Model (batch mode runs the device stage on one thread).
  AttentionResult attention(const ModelInputs& inputs, const AttentionRequest& request);

 private:
  struct Scripted;  // the TorchScript module; torch/script.h stays out of every other file
  Model();
  std::filesystem::path path_;
  std::shared_future<std::string> sha256_;
  ModelMetadata metadata_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::shared_ptr<Scripted> scripted_;
  torch::Device device_{torch::kCPU};
  torch::ScalarType dtype_ = torch::kFloat32;
};

// Reads only the metadata (for `attnmap info` and the tokenizer of `attnmap tokenize --model`).
struct ModelFileContents {
  ModelMetadata metadata;
  std::string tokenizer_json;
};
ModelFileContents read_model_file_contents(const std::filesystem::path& path);

}  // namespace attnmap
