// Shared by the src/compare/*.cpp files only: loading one run folder and matching items.
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "attnmap/compare.hpp"
#include "attnmap/run_folder.hpp"

namespace attnmap::compare_detail {

// What compare needs from one `attnmap run` folder, checked for internal consistency.
struct RunFolder {
  std::filesystem::path dir;
  std::string prompt;
  int64_t grid_t = 0, grid_h = 0, grid_w = 0, merged_h = 0, merged_w = 0;
  std::vector<int> layers;  // attention.json layers[].layer, in maps.npy order
  int model_layers = 0;     // the model's decoder layer count when recorded, else max(layers) + 1
  torch::Tensor maps;       // float [layers, merged_h, merged_w]; undefined unless loaded
  std::optional<AnswerRecord> answer;  // `run --answer` only
  torch::Tensor answer_maps;  // float [answer tokens, layers, merged_h, merged_w]; undefined unless loaded
};

// Reads DIR/attention.json, DIR/maps.npy when with_maps, and DIR/answer_maps.npy when with_maps and
// with_answer_maps and the run has an answer; throws Error(Input) naming the file and what is wrong
// for an unreadable, corrupt or inconsistent folder.
RunFolder load_run_folder(const std::filesystem::path& dir, bool with_maps, bool with_answer_maps = false);

// How the two sides' answers relate (nullopt when neither has one); where they are the same tokens,
// every token's map of the selected `layers` (their rows index answer_maps.npy's layer axis).
// Needs answer_maps loaded on both sides.
std::optional<AnswerResult> compare_answers(const RunFolder& baseline, const RunFolder& candidate,
                                            const std::vector<LayerResult>& layers, const CompareOptions& options);

// One item to compare: the id and the folder on each side.
struct ItemPair {
  std::string id;
  std::filesystem::path baseline, candidate;
};

// Detects whether each side is a single-run or a batch folder and pairs the items by id. Throws
// Error(Input) for missing folders, mixed kinds, no complete items, or items on one side only.
std::vector<ItemPair> match_items(const std::filesystem::path& baseline, const std::filesystem::path& candidate,
                                  std::string& kind);

// "0-3,8,10-11": compact text for a list of layers, for messages and summaries.
std::string format_layers(const std::vector<int>& layers);

// Prompts and answers in one-line messages: line breaks and tabs as spaces, cut to `max_bytes`
// (at a UTF-8 character boundary) with "..." when longer.
std::string one_line(std::string text, size_t max_bytes = 60);

// The items that have an answer on either side, worst first: failing before passing, a changed or
// one-sided answer before a map difference, then by the decisive figure of the worst answer map, then by id.
std::vector<const ItemResult*> items_by_answer(const CompareResult& result);

// Why an item's answer fails or what it is, in one line: "answer changed at token 2 (baseline 5
// tokens, candidate 6)", "baseline has an answer, candidate has none; ...", "answer the same (3 tokens)".
std::string answer_summary(const AnswerResult& answer);

}  // namespace attnmap::compare_detail

namespace attnmap::compare_detail {

// The decisive figure as people read it: max-abs in %.3e, cosine to 6 places, IoU to 3, cells to 2.
std::string format_figure(CompareMetric metric, double value);
// "max-abs (atol 1e-06, rtol 0.0001)", "cosine (min-cosine 0.999)", ...
std::string criterion_text(const CompareOptions& options);

}  // namespace attnmap::compare_detail
