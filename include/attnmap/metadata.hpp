// What an exported model file says about itself (attnmap/metadata.json inside the .pt).
// Every model-specific number the C++ side uses comes from here, never from a constant.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace attnmap {

// The format this build reads; tools/attnmap_tools writes the same number. 2: the forward takes
// named inputs and returns named outputs (docs/design.md). Any other version is refused.
inline constexpr int kModelFormatVersion = 2;

struct TextConfig {
  int hidden_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;
  int head_dim = 0;
  int vocab_size = 0;
};

struct VisionConfig {
  int depth = 0;
  int hidden_size = 0;
  int num_heads = 0;
  int patch_size = 0;
  int temporal_patch_size = 0;
  int spatial_merge_size = 0;
  int window_size = 0;
  std::vector<int> fullatt_block_indexes;
};

struct SpecialTokens {
  int64_t image_token_id = -1;
  int64_t video_token_id = -1;
  int64_t vision_start_token_id = -1;
  int64_t vision_end_token_id = -1;
  int64_t im_start_token_id = -1;
  int64_t im_end_token_id = -1;
};

// What greedy generation needs from the checkpoint (metadata "generation", docs/design.md): the ids
// that end an answer and the repetition penalty transformers' generate() applies by default.
struct GenerationConfig {
  std::vector<int64_t> eos_token_ids;
  double repetition_penalty = 1.0;
};

struct ModelMetadata {
  int format_version = 0;
  std::string model_family;
  std::string model_name;
  std::string dtype;  // dtype the weights were exported in
  TextConfig text;
  VisionConfig vision;
  SpecialTokens tokens;
  std::string default_system_prompt;
  // chat.default_system_turn: false when the model's chat template writes no system turn unless the
  // caller gives a system prompt (Qwen3-VL); true (Qwen2.5-VL's "You are a helpful assistant.") if absent.
  bool default_system_turn = true;
  nlohmann::json preprocess;  // the `preprocess` object, read by PreprocessParams::from_json
  std::optional<int> focus_layer;
  GenerationConfig generation;
  // The `video` object (docs/video.md), read by VideoParams::from_json; null in exports made before
  // attnmap read videos (then --video asks for a re-export).
  nlohmann::json video;
  nlohmann::json raw;  // the whole document, repeated in attention.json

  // Parses and validates; throws Error(Model) naming `source` and the missing/invalid field, another
  // format version (with the fix) or a model family the registry (model/family.hpp) does not know.
  static ModelMetadata parse(const std::string& json_text, const std::string& source);
};

}  // namespace attnmap
