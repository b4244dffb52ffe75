#include "attnmap/metadata.hpp"

#include "attnmap/error.hpp"
#include "model/family.hpp"

namespace attnmap {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& source, const std::string& what) {
  throw Error(ErrorKind::Model, "model '" + source + "': " + what +
                                    "; re-export it with this attnmap's attnmap-export");
}

const json& object_at(const json& doc, const char* key, const std::string& source) {
  if (!doc.contains(key) || !doc[key].is_object()) fail(source, std::string("metadata has no '") + key + "' object");
  return doc[key];
}

template <typename T>
T value_at(const json& obj, const char* key, const std::string& source, const char* section) {
  if (!obj.contains(key)) fail(source, std::string("metadata field '") + section + "." + key + "' is missing");
  try {
    return obj[key].get<T>();
  } catch (const json::exception&) {
    fail(source, std::string("metadata field '") + section + "." + key + "' has the wrong type");
  }
}

}  // namespace

ModelMetadata ModelMetadata::parse(const std::string& json_text, const std::string& source) {
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::exception& e) {
    fail(source, std::string("metadata is not valid JSON (") + e.what() + ")");
  }
  if (!doc.is_object() || doc.value("format", "") != "attnmap-model") fail(source, "metadata is not attnmap's");

  ModelMetadata m;
  m.raw = doc;
  m.format_version = value_at<int>(doc, "format_version", source, "");
  // Before any other field: another version may lay them out differently.
  if (m.format_version < kModelFormatVersion) {
    throw Error(ErrorKind::Model, "model '" + source + "' is an attnmap export of format version " +
                                      std::to_string(m.format_version) + ", which this attnmap (format version " +
                                      std::to_string(kModelFormatVersion) +
                                      ") no longer reads; re-export its checkpoint: attnmap-export --checkpoint "
                                      "<hugging-face-folder> --out " + source);
  }
  if (m.format_version > kModelFormatVersion) {
    throw Error(ErrorKind::Model, "model '" + source + "' has format version " + std::to_string(m.format_version) +
                                      " but this attnmap reads version " + std::to_string(kModelFormatVersion) +
                                      "; upgrade attnmap to read it (a newer attnmap-export wrote it)");
  }
  m.model_family = value_at<std::string>(doc, "model_family", source, "");
  // Before the architecture fields, which belong to the family.
  require_supported_family(m.model_family, source);
  m.model_name = doc.value("model_name", "");
  m.dtype = doc.value("dtype", "float32");

  const json& text = object_at(doc, "text", source);
  m.text.hidden_size = value_at<int>(text, "hidden_size", source, "text");
  m.text.num_hidden_layers = value_at<int>(text, "num_hidden_layers", source, "text");
  m.text.num_attention_heads = value_at<int>(text, "num_attention_heads", source, "text");
  m.text.num_key_value_heads = value_at<int>(text, "num_key_value_heads", source, "text");
  m.text.head_dim = value_at<int>(text, "head_dim", source, "text");
  m.text.vocab_size = value_at<int>(text, "vocab_size", source, "text");

  const json& vision = object_at(doc, "vision", source);
  m.vision.depth = value_at<int>(vision, "depth", source, "vision");
  m.vision.hidden_size = value_at<int>(vision, "hidden_size", source, "vision");
  m.vision.num_heads = value_at<int>(vision, "num_heads", source, "vision");
  m.vision.patch_size = value_at<int>(vision, "patch_size", source, "vision");
  m.vision.temporal_patch_size = value_at<int>(vision, "temporal_patch_size", source, "vision");
  m.vision.spatial_merge_size = value_at<int>(vision, "spatial_merge_size", source, "vision");
  m.vision.window_size = value_at<int>(vision, "window_size", source, "vision");
  m.vision.fullatt_block_indexes = value_at<std::vector<int>>(vision, "fullatt_block_indexes", source, "vision");

  const json& tokens = object_at(doc, "tokens", source);
  m.tokens.image_token_id = value_at<int64_t>(tokens, "image_token_id", source, "tokens");
  if (tokens.contains("video_token_id") && tokens["video_token_id"].is_number_integer()) {
    m.tokens.video_token_id = tokens["video_token_id"].get<int64_t>();
  }
  m.tokens.vision_start_token_id = value_at<int64_t>(tokens, "vision_start_token_id", source, "tokens");
  m.tokens.vision_end_token_id = value_at<int64_t>(tokens, "vision_end_token_id", source, "tokens");
  m.tokens.im_start_token_id = value_at<int64_t>(tokens, "im_start_token_id", source, "tokens");
  m.tokens.im_end_token_id = value_at<int64_t>(tokens, "im_end_token_id", source, "tokens");

  m.default_system_prompt = doc.contains("chat") ? doc["chat"].value("default_system_prompt", "") : "";
  m.default_system_turn = doc.contains("chat") ? doc["chat"].value("default_system_turn", true) : true;
  m.preprocess = object_at(doc, "preprocess", source);
  if (doc.contains("focus_layer") && doc["focus_layer"].is_number_integer()) {
    m.focus_layer = doc["focus_layer"].get<int>();
  }
  const json& generation = object_at(doc, "generation", source);
  m.generation.eos_token_ids = value_at<std::vector<int64_t>>(generation, "eos_token_ids", source, "generation");
  m.generation.repetition_penalty = value_at<double>(generation, "repetition_penalty", source, "generation");
  if (m.generation.eos_token_ids.empty()) fail(source, "metadata field 'generation.eos_token_ids' is empty");
  if (!(m.generation.repetition_penalty > 0)) fail(source, "metadata field 'generation.repetition_penalty' is not positive");
  if (doc.contains("video") && doc["video"].is_object()) m.video = doc["video"];
  return m;
}

}  // namespace attnmap
