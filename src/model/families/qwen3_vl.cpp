// Qwen3-VL (dense, model_family "qwen3_vl"): the Qwen-VL family of qwen_vl.hpp over its own metadata.
// The chat prompt writes no system turn unless one is given (metadata chat.default_system_turn false,
// as Qwen3-VL's template); transformers' Qwen3VLModel.get_rope_index gives images the positions of
// Qwen2.5-VL's (text +1 on all axes; an image's (t, row, col) from its start, the text after it from
// start + max(merged h, w)); preprocessing is the Qwen2-VL image processor with the export's patch 16
// and mean/std 0.5. Interleaved M-RoPE, q/k norms and DeepStack live inside the exported module.
// Videos (Qwen3-VL's "<t seconds>" text per temporal patch, each its own grid, its own video
// processor) are not built here yet: refused in one line.
#include "attnmap/error.hpp"
#include "model/families/families.hpp"
#include "model/families/qwen_vl.hpp"

namespace attnmap {
namespace {

class Qwen3_VL final : public QwenVLFamily {
 public:
  explicit Qwen3_VL(const ModelMetadata& metadata) : QwenVLFamily("qwen3_vl", metadata) {}

  ChatPrompt build_chat_prompt(const Tokenizer& tokenizer, const std::string& user_text, int64_t image_tokens,
                               const std::string& system_prompt, VisualKind kind) const override {
    if (kind == VisualKind::Video) throw unsupported_video();
    return QwenVLFamily::build_chat_prompt(tokenizer, user_text, image_tokens, system_prompt, kind);
  }

  VideoParams video_params() const override { throw unsupported_video(); }

 private:
  static Error unsupported_video() {
    return Error(ErrorKind::Input, "videos are not supported for model family qwen3_vl yet (images only)");
  }
};

}  // namespace

std::unique_ptr<const Family> make_qwen3_vl_family(const ModelMetadata& metadata) {
  return std::make_unique<Qwen3_VL>(metadata);
}

}  // namespace attnmap
