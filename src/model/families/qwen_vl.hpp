// The Qwen-VL family implementation shared by qwen2_5_vl, qwen2_vl and qwen3_vl: the chat template of
// src/prompt/chat_prompt.cpp, M-RoPE positions as transformers' get_rope_index, the Qwen2-VL image
// processor's preprocessing, the video processor's settings. The families differ on this side only
// in what their metadata says (the video's temporal positions, frame sampling, pixel budget and
// timestamp text; the default system turn), so one class routes the metadata and each family file
// names it.
#pragma once

#include <algorithm>
#include <string>
#include <utility>

#include "attnmap/error.hpp"
#include "attnmap/prompt.hpp"
#include "model/family.hpp"

namespace attnmap {

class QwenVLFamily : public Family {
 public:
  QwenVLFamily(std::string name, ModelMetadata metadata) : name_(std::move(name)), metadata_(std::move(metadata)) {}

  const std::string& name() const override { return name_; }

  // A video whose metadata has timestamp_text (Qwen3-VL) is written as labelled runs, one per
  // temporal patch; anything else as one run of pads.
  ChatPrompt build_chat_prompt(const Tokenizer& tokenizer, const std::string& user_text, const VisualGrid& visual,
                               const std::string& system_prompt) const override {
    if (visual.kind == VisualKind::Video) {
      const VideoParams video = video_params();
      if (video.timestamp_text) {
        if (static_cast<int64_t>(visual.seconds.size()) != visual.t) {
          throw Error(ErrorKind::Internal, "a video prompt needs one time per temporal patch");
        }
        std::vector<std::string> labels;
        for (const double s : visual.seconds) labels.push_back(video.timestamp_text->format(s));
        return build_labelled_video_prompt(tokenizer, metadata_, user_text, visual.h * visual.w, labels, system_prompt);
      }
    }
    return attnmap::build_chat_prompt(tokenizer, metadata_, user_text, visual.tokens(), system_prompt, visual.kind);
  }

  // transformers' get_rope_index; with video positions "frame_runs" (Qwen3-VL) every temporal patch
  // is its own grid of t = 1, as Qwen3VLModel.get_rope_index splits video_grid_thw.
  torch::Tensor position_ids(const std::vector<int64_t>& ids, const std::vector<VisualGrid>& grids) const override {
    const bool has_video = std::any_of(grids.begin(), grids.end(), [](const VisualGrid& g) { return g.kind == VisualKind::Video; });
    const bool frame_runs = has_video && video_params().positions == TemporalPositions::FrameRuns;
    std::vector<VisualGrid> split;
    for (const VisualGrid& g : grids) {
      if (g.kind == VisualKind::Video && frame_runs) {
        for (int64_t k = 0; k < g.t; ++k) split.push_back({VisualKind::Video, 1, g.h, g.w, 1.0f, {}});
      } else {
        split.push_back(g);
      }
    }
    return mrope_position_ids(ids, metadata_.tokens.image_token_id, metadata_.tokens.video_token_id, split);
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
