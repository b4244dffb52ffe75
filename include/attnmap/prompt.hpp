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

// What the prompt shows the model: one image, or one video (docs/video.md).
enum class VisualKind { Image, Video };

// Sequence positions [start, end).
struct TokenRun {
  int64_t start = 0, end = 0;
  int64_t size() const { return end - start; }
  bool operator==(const TokenRun&) const = default;
};

struct ChatPrompt {
  std::vector<int64_t> ids;      // the whole sequence, image (or video) tokens expanded
  int64_t image_start = 0;       // first image-pad (video-pad) position
  int64_t image_end = 0;         // one past the last one
  // The runs of pads, in order: one for an image, one per temporal patch when the prompt writes text
  // between them (Qwen3-VL's timestamps), else one for the whole video. Their tokens, concatenated,
  // are the visual tokens in the order of the merged grid (t-major).
  std::vector<TokenRun> visual_runs;
  int64_t prompt_start = 0;      // first token of the user's text
  int64_t prompt_end = 0;        // one past its last token
};

// Renders the Qwen2.5-VL chat template for one user turn "image, then text" with the generation
// prompt, expands the image pad to `image_tokens` copies and tokenizes it as HF's processor does.
// `system_prompt` empty means the model's default. Throws Error(Input) for an empty prompt.
// With VisualKind::Video the pad is <|video_pad|> (the template's video item).
ChatPrompt build_chat_prompt(const Tokenizer& tokenizer, const ModelMetadata& metadata, const std::string& user_text,
                             int64_t image_tokens, const std::string& system_prompt = "",
                             VisualKind kind = VisualKind::Image);

// The same template with a video written as Qwen3VLProcessor writes it: inside the template's
// <|vision_start|>...<|vision_end|>, per temporal patch its label (e.g. "<1.5 seconds>"), then
// <|vision_start|>, `tokens_per_patch` video pads and <|vision_end|>. visual_runs has one run per label.
ChatPrompt build_labelled_video_prompt(const Tokenizer& tokenizer, const ModelMetadata& metadata,
                                       const std::string& user_text, int64_t tokens_per_patch,
                                       const std::vector<std::string>& patch_labels,
                                       const std::string& system_prompt = "");

// One image or video in the sequence: its merged grid and, for a video, the M-RoPE time step of its
// temporal patches (tokens_per_second * second_per_grid_t, float32 as transformers computes it) and
// each temporal patch's time in seconds (the families that write it into the prompt read it).
struct VisualGrid {
  VisualKind kind = VisualKind::Image;
  int64_t t = 1, h = 0, w = 0;  // merged
  float time_interval = 1.0f;   // images: 1 (their single temporal index is 0 either way)
  std::vector<double> seconds;  // videos: per temporal patch (Qwen3VLProcessor's timestamps)
  int64_t tokens() const { return t * h * w; }
};

// 3-axis M-RoPE positions [3, S] (int64) for a sequence with image-pad runs, as transformers'
// get_rope_index does for images: text advances by one on all axes; an image of merged grid
// (t, h, w) takes (L + t_i, L + row, L + col) and the text after it resumes at L + max(h, w).
// `grids` lists each image's merged (t, h, w), in order of appearance.
torch::Tensor mrope_position_ids(const std::vector<int64_t>& ids, int64_t image_token_id,
                                 const std::vector<std::array<int64_t, 3>>& merged_grids);

// The same for images and videos in order of appearance: an image's run is of `image_token_id`, a
// video's of `video_token_id`. Temporal patch k of a video takes time position L + int(k * interval)
// (float32, truncated); the text after a video resumes at L + max(h, w), ignoring time, as transformers
// 5 does (so text after a long video can share positions with its last temporal patches).
torch::Tensor mrope_position_ids(const std::vector<int64_t>& ids, int64_t image_token_id, int64_t video_token_id,
                                 const std::vector<VisualGrid>& grids);

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
