// The Qwen-VL family implementation shared by qwen2_5_vl and qwen2_vl: the chat template of
// src/prompt/chat_prompt.cpp, M-RoPE positions as transformers' get_rope_index, the Qwen2-VL image
// processor's preprocessing, the video processor's settings. The two families differ on this side only
// in what their metadata says (e.g. the video's temporal positions, video.temporal_positions), so one
// class routes the metadata and each family file names it.
#pragma once

#include <string>
#include <utility>

#include "attnmap/prompt.hpp"
#include "model/family.hpp"

namespace attnmap {

class QwenVLFamily : public Family {
 public:
  QwenVLFamily(std::string name, ModelMetadata metadata) : name_(std::move(name)), metadata_(std::move(metadata)) {}

  const std::string& name() const override { return name_; }

  ChatPrompt build_chat_prompt(const Tokenizer& tokenizer, const std::string& user_text, int64_t image_tokens,
                               const std::string& system_prompt, VisualKind kind) const override {
    return attnmap::build_chat_prompt(tokenizer, metadata_, user_text, image_tokens, system_prompt, kind);
  }

  torch::Tensor position_ids(const std::vector<int64_t>& ids, const std::vector<VisualGrid>& grids) const override {
    return mrope_position_ids(ids, metadata_.tokens.image_token_id, metadata_.tokens.video_token_id, grids);
  }

  torch::Tensor decode_position_ids(const torch::Tensor& prompt_position_ids, int64_t index) const override {
    return mrope_decode_position_ids(prompt_position_ids, index);
  }

  PreprocessParams preprocess_params() const override { return PreprocessParams::from_json(metadata_.preprocess); }

  // VideoParams::from_json reads the metadata's temporal_positions: "seconds" (Qwen2.5-VL) scales the
  // temporal patches by tokens_per_second, "index" (Qwen2-VL) does not.
  VideoParams video_params() const override { return VideoParams::from_json(metadata_.video); }

  const SpecialTokens& special_tokens() const override { return metadata_.tokens; }

 private:
  std::string name_;
  ModelMetadata metadata_;
};

}  // namespace attnmap
