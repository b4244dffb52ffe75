#include <algorithm>

#include "attnmap/error.hpp"
#include "attnmap/prompt.hpp"
#include "attnmap/tokenizer.hpp"

namespace attnmap {

namespace {

// The chat template for one user turn "visual, then text" (Qwen2-VL .. Qwen3-VL share it), tokenized
// in pieces split at added tokens, which HF matches atomically before any pre-tokenization: the ids
// equal tokenizing the whole rendered template at once, and we learn exactly where the visual runs
// and the user's text are. `labels` empty: one run of `tokens_per_run` pads right inside the
// template's <|vision_start|>...<|vision_end|>; else one labelled, bracketed run per label inside it.
ChatPrompt render(const Tokenizer& tokenizer, const ModelMetadata& metadata, const std::string& user_text,
                  const std::string& system_prompt, int64_t pad, int64_t tokens_per_run,
                  const std::vector<std::string>& labels) {
  if (user_text.find_first_not_of(" \t\r\n") == std::string::npos) {
    throw Error(ErrorKind::Input, "the prompt is empty; pass the question about the image with --prompt");
  }
  if (pad < 0) throw Error(ErrorKind::Model, "the model metadata names no video token; re-export it with attnmap-export");
  const std::string im_start = tokenizer.id_to_token(metadata.tokens.im_start_token_id);
  const std::string im_end = tokenizer.id_to_token(metadata.tokens.im_end_token_id);
  const std::string vision_start = tokenizer.id_to_token(metadata.tokens.vision_start_token_id);
  const std::string vision_end = tokenizer.id_to_token(metadata.tokens.vision_end_token_id);
  const std::string& system = system_prompt.empty() ? metadata.default_system_prompt : system_prompt;

  // No system turn at all when none is given and the model's template writes none by default (Qwen3-VL).
  const bool system_turn = !system_prompt.empty() || metadata.default_system_turn;
  const std::string head = (system_turn ? im_start + "system\n" + system + im_end + "\n" : std::string()) + im_start +
                           "user\n" + vision_start;
  const std::string tail = im_end + "\n" + im_start + "assistant\n";

  ChatPrompt p;
  p.ids = tokenizer.encode(head);
  const auto append = [&p](const std::vector<int64_t>& ids) { p.ids.insert(p.ids.end(), ids.begin(), ids.end()); };
  const auto append_run = [&] {
    const int64_t start = static_cast<int64_t>(p.ids.size());
    p.ids.insert(p.ids.end(), tokens_per_run, pad);
    p.visual_runs.push_back({start, static_cast<int64_t>(p.ids.size())});
  };
  if (labels.empty()) {
    append_run();
  } else {
    for (const std::string& label : labels) {
      append(tokenizer.encode(label + vision_start));
      append_run();
      append(tokenizer.encode(vision_end));
    }
  }
  p.image_start = p.visual_runs.front().start;
  p.image_end = p.visual_runs.back().end;
  const int64_t closing = static_cast<int64_t>(p.ids.size());  // the template's <|vision_end|>
  append(tokenizer.encode(vision_end + user_text));
  p.prompt_start = closing + 1;
  p.prompt_end = static_cast<int64_t>(p.ids.size());
  append(tokenizer.encode(tail));
  return p;
}

}  // namespace

ChatPrompt build_chat_prompt(const Tokenizer& tokenizer, const ModelMetadata& metadata, const std::string& user_text,
                             int64_t image_tokens, const std::string& system_prompt, VisualKind kind) {
  const int64_t pad = kind == VisualKind::Video ? metadata.tokens.video_token_id : metadata.tokens.image_token_id;
  return render(tokenizer, metadata, user_text, system_prompt, pad, image_tokens, {});
}

ChatPrompt build_labelled_video_prompt(const Tokenizer& tokenizer, const ModelMetadata& metadata,
                                       const std::string& user_text, int64_t tokens_per_patch,
                                       const std::vector<std::string>& patch_labels, const std::string& system_prompt) {
  if (patch_labels.empty()) throw Error(ErrorKind::Internal, "build_labelled_video_prompt: no temporal patch");
  return render(tokenizer, metadata, user_text, system_prompt, metadata.tokens.video_token_id, tokens_per_patch,
                patch_labels);
}

}  // namespace attnmap
