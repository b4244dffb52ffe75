// Qwen3-VL (dense, transformers' qwen3_vl): the chat prompt of src/prompt/chat_prompt.cpp (its
// template writes no system turn unless one is given: metadata chat.default_system_turn false), the
// M-RoPE positions of transformers' Qwen3VLModel.get_rope_index, which for images are Qwen2.5-VL's
// (text +1 on all axes; an image's (t, row, col) from its start, the text after it from start +
// max(merged h, w)), and the Qwen2-VL image processor with the export's own patch 16 and mean/std 0.5
// from the metadata. Interleaved M-RoPE and DeepStack live inside the exported module. Videos (with
// Qwen3-VL's timestamp text) are not supported for this family yet.
#include "attnmap/error.hpp"
#include "attnmap/prompt.hpp"
#include "model/families/families.hpp"

namespace attnmap {
namespace {

class Qwen3_VL final : public Family {
 public:
  explicit Qwen3_VL(ModelMetadata metadata) : metadata_(std::move(metadata)) {}

  const std::string& name() const override { return name_; }

  ChatPrompt build_chat_prompt(const Tokenizer& tokenizer, const std::string& user_text, int64_t image_tokens,
                               const std::string& system_prompt, VisualKind kind) const override {
    if (kind == VisualKind::Video) throw unsupported_video();
    return attnmap::build_chat_prompt(tokenizer, metadata_, user_text, image_tokens, system_prompt, kind);
  }

  torch::Tensor position_ids(const std::vector<int64_t>& ids, const std::vector<VisualGrid>& grids) const override {
    return mrope_position_ids(ids, metadata_.tokens.image_token_id, metadata_.tokens.video_token_id, grids);
  }

  torch::Tensor decode_position_ids(const torch::Tensor& prompt_position_ids, int64_t index) const override {
    return mrope_decode_position_ids(prompt_position_ids, index);
  }

  PreprocessParams preprocess_params() const override { return PreprocessParams::from_json(metadata_.preprocess); }

  VideoParams video_params() const override { throw unsupported_video(); }

  const SpecialTokens& special_tokens() const override { return metadata_.tokens; }

 private:
  static Error unsupported_video() {
    return Error(ErrorKind::Input, "videos are not supported for model family qwen3_vl yet (images only)");
  }

  const std::string name_ = "qwen3_vl";
  ModelMetadata metadata_;
};

}  // namespace

std::unique_ptr<const Family> make_qwen3_vl_family(const ModelMetadata& metadata) {
  return std::make_unique<Qwen3_VL>(metadata);
}

}  // namespace attnmap
