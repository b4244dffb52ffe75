#include <algorithm>

#include "attnmap/error.hpp"
#include "attnmap/prompt.hpp"
#include "attnmap/tokenizer.hpp"

namespace attnmap {

ChatPrompt build_chat_prompt(const Tokenizer& tokenizer, const ModelMetadata& metadata, const std::string& user_text,
                             int64_t image_tokens, const std::string& system_prompt, VisualKind kind) {
  if (user_text.find_first_not_of(" \t\r\n") == std::string::npos) {
    throw Error(ErrorKind::Input, "the prompt is empty; pass the question about the image with --prompt");
  }
  const std::string im_start = tokenizer.id_to_token(metadata.tokens.im_start_token_id);
  const std::string im_end = tokenizer.id_to_token(metadata.tokens.im_end_token_id);
  const std::string vision_start = tokenizer.id_to_token(metadata.tokens.vision_start_token_id);
  const std::string vision_end = tokenizer.id_to_token(metadata.tokens.vision_end_token_id);
  const std::string& system = system_prompt.empty() ? metadata.default_system_prompt : system_prompt;

  // Tokenized in three pieces split at added tokens, which HF matches atomically before any
  // pre-tokenization: the ids equal tokenizing the whole rendered template at once, and we learn
  // exactly where the user's text starts and ends.
  // No system turn at all when none is given and the model's template writes none by default (Qwen3-VL).
  const bool system_turn = !system_prompt.empty() || metadata.default_system_turn;
  const std::string head = (system_turn ? im_start + "system\n" + system + im_end + "\n" : std::string()) + im_start +
                           "user\n" + vision_start;
  const std::string tail = im_end + "\n" + im_start + "assistant\n";

  ChatPrompt p;
  p.ids = tokenizer.encode(head);
  p.image_start = static_cast<int64_t>(p.ids.size());
  const int64_t pad = kind == VisualKind::Video ? metadata.tokens.video_token_id : metadata.tokens.image_token_id;
  if (pad < 0) throw Error(ErrorKind::Model, "the model metadata names no video token; re-export it with attnmap-export");
  p.ids.insert(p.ids.end(), image_tokens, pad);
  p.image_end = static_cast<int64_t>(p.ids.size());
  const std::vector<int64_t> middle = tokenizer.encode(vision_end + user_text);
  p.ids.insert(p.ids.end(), middle.begin(), middle.end());
  p.prompt_start = p.image_end + 1;  // after <|vision_end|>
  p.prompt_end = static_cast<int64_t>(p.ids.size());
  const std::vector<int64_t> end = tokenizer.encode(tail);
  p.ids.insert(p.ids.end(), end.begin(), end.end());
  return p;
}

}  // namespace attnmap
