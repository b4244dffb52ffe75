// Regression checks between two attnmap outputs (`attnmap compare`): a baseline and a candidate,
// both single-run folders or both batch folders, compared map by map, layer by layer.
// Thresholds and the meaning of each metric are documented in docs/compare.md.
#pragma once

#include <torch/types.h>

#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "attnmap/options.hpp"

namespace attnmap {

enum class CompareMetric { MaxAbs, Cosine, IouTopK, PeakShift };

// "max-abs" | "cosine" | "iou-top-k" | "peak-shift" (parse_metric, attnmap/options.hpp, reads them).
std::string metric_name(CompareMetric metric);

struct CompareOptions {
  CompareMetric metric = CompareMetric::MaxAbs;  // the figure that decides pass/fail (all figures are reported)
  double atol = 1e-6;                  // max-abs: a cell passes if |b - c| <= atol + rtol * |b| (b = baseline)
  double rtol = 1e-4;                  // max-abs: relative part of that bound
  double min_cosine = 0.999;           // cosine: a layer passes if cosine(b, c) >= min_cosine
  double top_k_percent = 10.0;         // iou-top-k: share of cells (0, 100] that forms each map's top set
  double min_iou = 0.8;                // iou-top-k: a layer passes if IoU of the two top sets >= min_iou
  double max_peak_shift = 1.0;         // peak-shift: a layer passes if the argmax cells are <= this many cells apart (Euclidean)
  LayerSelection layers;               // decoder layers to compare (`--layers`); all by default
  std::filesystem::path report_path;   // empty: no report; *.json or *.md selects the format
  std::filesystem::path diff_images_dir;  // empty: no diff images; else JPEGs for failing layers go here
  bool allow_answer_change = false;    // `--allow-answer-change`: a changed answer is reported but does not fail
};

// Throws Error(Usage) naming the option for a threshold outside its domain or a report name
// that ends neither in .json nor in .md.
void validate(const CompareOptions& options);

// Every figure for one layer of one item, whichever metric decides.
struct LayerFigures {
  double max_abs = 0;                 // max |b - c| over the cells
  double tolerance_ratio = 0;         // max |b - c| / (atol + rtol * |b|): above 1 means outside max-abs tolerance
  int64_t cells_outside = 0;          // cells where |b - c| > atol + rtol * |b| (NaN counts as outside)
  double cosine = 1;                  // cosine similarity of the flattened maps
  double iou_top_k = 1;               // IoU of the top-k% cell sets
  double peak_shift = 0;              // Euclidean distance between the argmax cells, in merged-grid cells
  std::array<int64_t, 2> baseline_peak{0, 0};   // argmax (row, col) of the baseline map
  std::array<int64_t, 2> candidate_peak{0, 0};  // argmax (row, col) of the candidate map
};

struct LayerResult {
  int layer = 0;           // decoder layer index (attention.json layers[].layer)
  int64_t baseline_row = 0;   // index along the first axis of the baseline maps.npy
  int64_t candidate_row = 0;  // same for the candidate
  LayerFigures figures;
  bool pass = true;
};

// `attnmap run --answer` on one side or both: how the two answers relate.
enum class AnswerStatus {
  Same,           // the same token ids: answer_maps.npy compared token by token
  Changed,        // different token ids: the maps of different tokens are not comparable, so not compared
  BaselineOnly,   // the candidate has no answer
  CandidateOnly,  // the baseline has no answer
};

// "same" | "changed" | "baseline-only" | "candidate-only" (the JSON report's answer.status).
std::string answer_status_name(AnswerStatus status);

// One answer token's maps (AnswerStatus::Same only), for the item's selected layers.
struct AnswerTokenResult {
  int64_t index = 0;                // k: the token's place in the answer, the first axis of answer_maps.npy
  int64_t id = -1;                  // its token id (the same on both sides)
  std::string text;                 // its decoded text (attention.json answer.tokens[k].text)
  std::vector<LayerResult> layers;  // rows index the second axis of answer_maps.npy on each side
  bool pass = true;
};

// Where an agreeing answer's maps differ most: the decisive figure's worst token and layer.
struct AnswerWorst {
  int64_t token = 0;
  std::string text;
  int layer = 0;
  double value = 0;
  bool pass = true;
};

struct AnswerResult {
  AnswerStatus status = AnswerStatus::Same;
  std::optional<std::string> baseline_text, candidate_text;  // absent on the side without an answer
  size_t baseline_tokens = 0, candidate_tokens = 0;
  // Changed: the first k whose ids differ (the shorter answer's length when one extends the other).
  std::optional<int64_t> first_difference;
  std::vector<AnswerTokenResult> tokens;  // Same only: every answer token, in answer order
  std::optional<AnswerWorst> worst;       // Same with at least one token and layer
  // Same: every token map within tolerance; Changed: allow_answer_change; one-sided: false.
  bool pass = true;
};

struct ItemResult {
  std::string id;                        // batch: the item folder's name; single run: "run"
  std::filesystem::path baseline_dir;    // the folder holding attention.json and maps.npy
  std::filesystem::path candidate_dir;
  std::string prompt;
  int64_t merged_h = 0, merged_w = 0;
  std::vector<LayerResult> layers;       // in the baseline's maps.npy order
  std::optional<AnswerResult> answer;    // absent when neither side has an answer
  bool pass = true;                      // every layer and the answer (if any) pass
};

// One entry of the worst-items or worst-layers lists: where the decisive figure is worst.
struct WorstEntry {
  std::string id;
  int layer = 0;
  double value = 0;  // the decisive metric's figure
  bool pass = true;
};

struct CompareResult {
  std::filesystem::path baseline, candidate;  // as given
  std::string kind;                           // "run" or "batch"
  CompareOptions options;
  std::vector<ItemResult> items;              // sorted by id
  std::vector<WorstEntry> worst_items;        // one per item (its worst layer), worst first
  std::vector<WorstEntry> worst_layers;       // one per layer (its worst item), worst first
  size_t layers_compared = 0, layers_failed = 0, items_failed = 0;
  // Items with an answer on both sides, those whose answers differ, those with an answer on one side
  // only; answer maps (token x layer) compared and outside tolerance.
  size_t answers_compared = 0, answers_changed = 0, answers_one_sided = 0;
  size_t answer_maps_compared = 0, answer_maps_failed = 0;
  bool pass = true;
};

// The first answer token index whose ids differ; the shorter length when one answer extends the
// other; nullopt when the two answers are the same tokens.
std::optional<int64_t> first_answer_difference(const std::vector<int64_t>& baseline_ids,
                                               const std::vector<int64_t>& candidate_ids);

// Loads both sides, matches items and layers, and measures every selected layer (and, where both
// sides answered alike, every answer token's map of those layers; see docs/compare.md "Answers"). Throws
// Error(Input) for a missing folder, items present on one side only, different grids, layers or
// prompts, or unreadable files, and Error(Usage) for bad options; each message names the item.
CompareResult compare_runs(const std::filesystem::path& baseline, const std::filesystem::path& candidate,
                           const CompareOptions& options);

// --- metrics on one layer: 2-D maps [h, w] of any floating dtype, computed in double ---------

double max_abs_difference(const torch::Tensor& baseline, const torch::Tensor& candidate);
// 1 for two all-zero maps (they are identical), 0 when exactly one is all zero.
double cosine_similarity(const torch::Tensor& baseline, const torch::Tensor& candidate);
// Each top set holds ceil(percent/100 * cells) cells (at least 1); ties go to the earlier cell in raster order.
double top_k_iou(const torch::Tensor& baseline, const torch::Tensor& candidate, double percent);
// (row, col) of the largest value; the first in raster order on ties.
std::array<int64_t, 2> peak_cell(const torch::Tensor& map);
// Euclidean distance in cells between the two peak cells.
double peak_shift(const torch::Tensor& baseline, const torch::Tensor& candidate);
// All figures for one layer.
LayerFigures measure_layer(const torch::Tensor& baseline, const torch::Tensor& candidate, const CompareOptions& options);
// Whether the figures pass under options.metric and its threshold.
bool layer_passes(const LayerFigures& figures, const CompareOptions& options);
// The decisive figure for options.metric (max-abs: max |b - c|).
double decisive_value(const LayerFigures& figures, CompareMetric metric);

// --- outputs ----------------------------------------------------------------------------------

// Short human summary: verdict, counts, worst items and layers (at most `max_entries` each).
std::string summary_text(const CompareResult& result, size_t max_entries = 5);
// The report documents (docs/compare.md): every item/layer figure, worst lists, verdict, options.
std::string report_json(const CompareResult& result);
std::string report_markdown(const CompareResult& result);
// Writes report_json or report_markdown (by extension) atomically.
void write_report(const CompareResult& result, const std::filesystem::path& path);
// For each failing prompt-map layer (answer maps get none) of each item: baseline | candidate | |difference| JPEG, written
// atomically to DIR/<id>/layer_XX.jpg (batch) or DIR/layer_XX.jpg (single run). Returns the paths.
std::vector<std::filesystem::path> write_diff_images(const CompareResult& result, const std::filesystem::path& dir);
// Writes what result.options asks for: the report and the diff images.
void write_compare_outputs(const CompareResult& result);

}  // namespace attnmap
