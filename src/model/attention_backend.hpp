// How a Model runs its forward: one implementation per export format. TorchScriptBackend is the
// only one today; a torch.export / AOTInductor backend would be a second implementation beside it,
// picked in Model::load, with Model's API and everything above it unchanged.
#pragma once

#include <torch/types.h>

#include <memory>

#include "attnmap/model.hpp"
#include "attnmap/model_file.hpp"

namespace attnmap {

class AttentionBackend {
 public:
  virtual ~AttentionBackend() = default;

  // Loads the weights of `file` onto `device` in `dtype`. Throws Error(Model) naming the file when
  // it cannot be loaded and Error(Resource) when the weights do not fit.
  virtual void load(const ModelFile& file, torch::Device device, torch::ScalarType dtype) = 0;

  // One forward of the loaded model, results as float32 on the CPU. Throws Error(Resource) when it
  // runs out of device memory (the cached blocks handed back first), Error(Internal) otherwise.
  virtual AttentionResult run(const ModelInputs& inputs, const AttentionRequest& request) = 0;

  // The vision tower's attention maps (Model::vision_attention), with the same errors; Error(Model)
  // when the export predates them.
  virtual VisionAttentionResult vision_attention(const ModelInputs& inputs, const VisionAttentionRequest& request) = 0;

  // Generation's two calls (Model::prefill, Model::decode_step), with the same errors; Error(Model)
  // when the export predates them.
  virtual AttentionResult prefill(const ModelInputs& inputs, const AttentionRequest& request, DecodeCache& cache) = 0;
  virtual AttentionResult decode_step(int64_t token, const torch::Tensor& position_ids, DecodeCache& cache,
                                      const std::vector<int64_t>& layers, HeadReduce head_reduce) = 0;
};

}  // namespace attnmap
