// What differs between model families on the C++ side: the chat prompt around an image, the
// position ids the decoder expects, the image preprocessing and the special tokens. A Family is
// built over one export's metadata (its numbers come from there, never from constants); the
// registry picks it by the metadata's model_family. The exporter has the matching Python registry
// (tools/attnmap_tools/export/families.py).
#pragma once

#include <torch/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attnmap/image.hpp"
#include "attnmap/metadata.hpp"
#include "attnmap/prompt.hpp"
#include "attnmap/video.hpp"

namespace attnmap {

class Tokenizer;

class Family {
 public:
  virtual ~Family() = default;

  // The metadata's model_family, e.g. "qwen2_5_vl".
  virtual const std::string& name() const = 0;

  // The chat prompt for one user turn "image (or video), then text", with the visual tokens of
  // `visual` (its merged grid; a video's per-patch times for families that write them into the
  // text). `system_prompt` empty means the model's default. Throws Error(Input) for an empty prompt.
  virtual ChatPrompt build_chat_prompt(const Tokenizer& tokenizer, const std::string& user_text,
                                       const VisualGrid& visual, const std::string& system_prompt) const = 0;

  // The forward's position_ids for `ids`, given each image's or video's merged grid in order of appearance.
  virtual torch::Tensor position_ids(const std::vector<int64_t>& ids, const std::vector<VisualGrid>& grids) const = 0;

  // The position_ids of the token at sequence index `index` (>= S) while generating, for a prompt
  // whose forward took `prompt_position_ids` ([3, S] for M-RoPE): decode_step's position input.
  virtual torch::Tensor decode_position_ids(const torch::Tensor& prompt_position_ids, int64_t index) const = 0;

  // The export's image preprocessing (before any --min-pixels/--max-pixels override).
  virtual PreprocessParams preprocess_params() const = 0;

  // The export's video processing (VideoParams::from_json: Error(Model) asking for a re-export when
  // the file predates videos).
  virtual VideoParams video_params() const = 0;

  virtual const SpecialTokens& special_tokens() const = 0;
};

// The model families this build supports, in the order the registry lists them.
std::vector<std::string> supported_families();

// Throws Error(Model), one line naming `source`, the family and the supported ones, unless the
// registry knows `model_family`.
void require_supported_family(const std::string& model_family, const std::string& source);

// The family `metadata.model_family` names, built over `metadata`; the same error for an unknown one.
std::unique_ptr<const Family> make_family(const ModelMetadata& metadata, const std::string& source);

}  // namespace attnmap
