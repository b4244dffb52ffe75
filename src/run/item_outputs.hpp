// What the Runner's stages hand off to smaller functions: the answer's record (infer) and the files
// drawn from an inferred item (write): JPEGs and viewer.html.
#pragma once

#include "attnmap/answer.hpp"
#include "attnmap/render.hpp"
#include "attnmap/run.hpp"
#include "attnmap/run_folder.hpp"

namespace attnmap {

class Tokenizer;

// The answer as attention.json records it (tokens with id, string, text, probability, position);
// maps_shape and query_tokens are the caller's.
AnswerRecord answer_record(const GreedyAnswer& answer, const GenerationSettings& settings, const Tokenizer& tokenizer);

// attention.json's `video`: the source, the sampled frames and each temporal patch's frames, times
// and M-RoPE time index.
VideoRecord video_record(const RunItem& item, const DecodedVideo& video, const PreprocessedVideo& inputs,
                         int temporal_patch_size, const ChatPrompt& prompt, const torch::Tensor& position_ids);

// layer_XX.jpg and grid.jpg; with an answer answer_strip_layer_XX.jpg (labels: token_display_labels,
// and record.answer->strip_labels); with a baseline relative_layer_XX.jpg.
void write_item_images(output::RunFolderWriter& folder, RunRecord& record, const InferredItem& inferred,
                       const Tokenizer& tokenizer, const RenderOptions& render);

// viewer.html, and record.viewer (the detail the page's size budget kept).
void write_item_viewer(output::RunFolderWriter& folder, RunRecord& record, const InferredItem& inferred,
                       const Tokenizer& tokenizer, const RenderOptions& render);

}  // namespace attnmap
