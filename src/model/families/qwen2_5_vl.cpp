// Qwen2.5-VL (model_family "qwen2_5_vl"): the shared Qwen-VL routing (qwen_vl.hpp). Its videos'
// temporal positions are scaled by time (metadata video.temporal_positions "seconds").
#include "model/families/families.hpp"
#include "model/families/qwen_vl.hpp"

namespace attnmap {

std::unique_ptr<const Family> make_qwen2_5_vl_family(const ModelMetadata& metadata) {
  return std::make_unique<QwenVLFamily>("qwen2_5_vl", metadata);
}

}  // namespace attnmap
