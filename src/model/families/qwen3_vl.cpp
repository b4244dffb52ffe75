// Qwen3-VL (dense, model_family "qwen3_vl"): the Qwen-VL family of qwen_vl.hpp over its own metadata.
// The chat prompt writes no system turn unless one is given (metadata chat.default_system_turn false,
// as Qwen3-VL's template); transformers' Qwen3VLModel.get_rope_index gives images the positions of
// Qwen2.5-VL's (text +1 on all axes; an image's (t, row, col) from its start, the text after it from
// start + max(merged h, w)); preprocessing is the Qwen2-VL image processor with the export's patch 16
// and mean/std 0.5. A video is written as Qwen3VLProcessor writes it, "<t seconds>" text and a
// bracketed run of pads per temporal patch, each its own grid in the positions, frames sampled and
// sized by Qwen3VLVideoProcessor's rules: all of it stated by the metadata's video section
// (timestamp_text, temporal_positions "frame_runs", frame_sampling "linspace", pixel_budget "clip").
// Interleaved M-RoPE, q/k norms and DeepStack live inside the exported module.
#include "model/families/families.hpp"
#include "model/families/qwen_vl.hpp"

namespace attnmap {

std::unique_ptr<const Family> make_qwen3_vl_family(const ModelMetadata& metadata) {
  return std::make_unique<QwenVLFamily>("qwen3_vl", metadata);
}

}  // namespace attnmap
