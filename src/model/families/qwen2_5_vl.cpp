// Qwen2.5-VL: the chat template of src/prompt/chat_prompt.cpp, M-RoPE positions as transformers'
// get_rope_index, the Qwen2-VL image processor's preprocessing. This class only routes the
// metadata to those functions.
#include "attnmap/prompt.hpp"
#include "model/families/families.hpp"

namespace attnmap {
namespace {

class Qwen2_5_VL final : public Family {
 public:
  explicit Qwen2_5_VL(ModelMetadata metadata) : metadata_(std::move(metadata)) {}

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

  VideoParams video_params() const override { return VideoParams::from_json(metadata_.video); }

  const SpecialTokens& special_tokens() const override { return metadata_.tokens; }

 private:
  const std::string name_ = "qwen2_5_vl";
  ModelMetadata metadata_;
};

}  // namespace

std::unique_ptr<const Family> make_qwen2_5_vl_family(const ModelMetadata& metadata) {
  return std::make_unique<Qwen2_5_VL>(metadata);
}

}  // namespace attnmap
