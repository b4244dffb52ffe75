// Qwen2-VL (model_family "qwen2_vl"): the same chat template, M-RoPE and preprocessing as Qwen2.5-VL
// (qwen_vl.hpp). Its vision tower differs (LayerNorms, fc1/act/fc2 MLP, no window attention), which
// lives in the exported module, and its videos' temporal patch k sits at position k whatever the frame
// rate (transformers' Qwen2VLModel.get_rope_index), which its metadata says
// (video.temporal_positions "index").
#include "model/families/families.hpp"
#include "model/families/qwen_vl.hpp"

namespace attnmap {

std::unique_ptr<const Family> make_qwen2_vl_family(const ModelMetadata& metadata) {
  return std::make_unique<QwenVLFamily>("qwen2_vl", metadata);
}

}  // namespace attnmap
