// The text side of one item: the Qwen2.5-VL chat prompt around one image, its token ids, the
// M-RoPE positions transformers' get_rope_index gives them, and which rows are "the prompt".
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "attnmap/metadata.hpp"
#include "attnmap/options.hpp"

namespace attnmap {

class Tokenizer;

struct ChatPrompt {
  std::vector<int64_t> ids;      // the whole sequence, image tokens expanded
  int64_t image_start = 0;       // first image-pad position
  int64_t image_end = 0;         // one past the last image-pad position
  int64_t prompt_start = 0;      // first token of the user's text
  int64_t prompt_end = 0;        // one past its last token
};

// Renders the Qwen2.5-VL chat template for one user turn "image, then text" with the generation
// prompt, expands the image pad to `image_tokens` copies and tokenizes it as HF's processor does.
// `system_prompt` empty means the model's default. Throws Error(Input) for an empty prompt.
ChatPrompt build_chat_prompt(const Tokenizer& tokenizer, const ModelMetadata& metadata, const std::string& user_text,
                             int64_t image_tokens, const std::string& system_prompt = "");

// 3-axis M-RoPE positions [3, S] (int64) for a sequence with image-pad runs, as transformers'
// get_rope_index does for images: text advances by one on all axes; an image of merged grid
// (t, h, w) takes (L + t_i, L + row, L + col) and the text after it resumes at L + max(h, w).
// `grids` lists each image's merged (t, h, w), in order of appearance.
torch::Tensor mrope_position_ids(const std::vector<int64_t>& ids, int64_t image_token_id,
                                 const std::vector<std::array<int64_t, 3>>& merged_grids);

// The M-RoPE position ids int64 [3, 1] of the token at sequence index `index` (>= S, the prompt's
// length) during generation: index + rope_delta on all three axes, rope_delta = max(prompt
// positions) + 1 - S, as transformers' `cache_position + rope_deltas`. Error(Internal) for index < S.
torch::Tensor mrope_decode_position_ids(const torch::Tensor& prompt_position_ids, int64_t index);

// The attention rows a query names in this item's sequence. Throws Error(Usage) naming --query and
// the valid range when it names no row, a row out of range or a word the prompt lacks.
std::vector<int64_t> resolve_query_rows(const QuerySpec& query, const ChatPrompt& prompt, const Tokenizer& tokenizer);

// The answer tokens (indices into `answer_ids`) an answer query names: every one (answer), those
// overlapping the first case-insensitive occurrence of the word in the answer's raw bytes
// (answer:WORD), or the I-th (answer:I, negative from the end). Throws Error(Usage) naming --query
// and the answer when it lacks the word or the index.
std::vector<int64_t> resolve_answer_tokens(const QuerySpec& query, const std::vector<int64_t>& answer_ids,
                                           const Tokenizer& tokenizer);

}  // namespace attnmap
