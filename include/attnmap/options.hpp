// Typed option values. The CLI turns option strings into these once (parse_* below, src/options/);
// the library only takes typed values and validates them against the model where that needs it
// (layer range, head count, query rows), so no string is parsed twice or after a model loads.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace attnmap {

// What an index selection names, for its messages: --layers picks decoder layers, --vision-blocks
// blocks of the vision tower. The syntax is the same.
struct SelectionNames {
  const char* flag;     // "--layers"
  const char* item;     // "layer"
  const char* items;    // "decoder layers"
  const char* example;  // "4,8,12"
};
inline constexpr SelectionNames kDecoderLayerNames{"--layers", "layer", "decoder layers", "4,8,12"};
inline constexpr SelectionNames kVisionBlockNames{"--vision-blocks", "block", "vision blocks", "7,15,23,31"};

// --layers: "all", a list "4,8,12", a range "0-5", or a mix "0-2,8,30-35" (0-based decoder layers).
// --vision-blocks uses the same type for vision blocks.
struct LayerSelection {
  struct Range {
    int first = 0, last = 0;  // inclusive, first <= last
    bool operator==(const Range&) const = default;
  };
  bool all = true;
  std::vector<Range> ranges;  // in the order written; empty when all

  // The layers, in the order written, for a model with `num_layers` decoder layers (or vision
  // blocks). Throws Error(Usage) naming the flag, the layer and the valid range for one the model lacks.
  std::vector<int> resolve(int num_layers, const SelectionNames& names = kDecoderLayerNames) const;
  // Canonical text ("all", "0-2,8"): what attention.json records and messages quote.
  std::string text() const;
  bool operator==(const LayerSelection&) const = default;
};

// --heads: the mean or max over heads, or one head.
struct HeadSelection {
  enum class Kind { Mean, Max, Index };
  Kind kind = Kind::Mean;
  int index = -1;  // Kind::Index only

  // Throws Error(Usage) naming --heads when the index is not a head of a model with `num_heads`.
  void check(int num_heads) const;
  std::string text() const;  // "mean" | "max" | "3"
  bool operator==(const HeadSelection&) const = default;
};

// --query: which attention rows are averaged into a map. The Answer kinds name rows of the
// generated answer (they need generation: `--answer`): every answer token, the tokens that spell a
// word, or the I-th token.
struct QuerySpec {
  enum class Kind { Prompt, Last, All, Rows, Word, Answer, AnswerWord, AnswerIndex };
  Kind kind = Kind::Prompt;
  std::vector<int64_t> rows;  // Kind::Rows: positions; Kind::AnswerIndex: one index; negative counts from the end
  std::string word;           // Kind::Word, Kind::AnswerWord: non-empty, valid UTF-8

  bool is_answer() const { return kind == Kind::Answer || kind == Kind::AnswerWord || kind == Kind::AnswerIndex; }
  // "prompt" | "last" | "all" | "5,7,-1" | "word:cat" | "answer" | "answer:cat" | "answer:0"
  std::string text() const;
  bool operator==(const QuerySpec&) const = default;
};

// --vision-query: whose attention inside the vision tower a --vision-blocks map averages.
struct VisionQuery {
  enum class Kind {
    Mean,      // every patch: the attention each patch receives, averaged over all query patches
    Box,       // the patches inside a box of the original image (pixels, as displayed)
    TextPeak,  // the 2x2 patches under the peak of a decoder layer's map (maps.npy)
  };
  Kind kind = Kind::Mean;
  std::array<double, 4> box{};  // Box: x0, y0, x1, y1 with 0 <= x0 < x1 and 0 <= y0 < y1
  std::optional<int> layer;     // TextPeak: the decoder layer; unset: the model's focus layer
  std::string text() const;     // "mean" | "box:10,20,110,90" | "text-peak" | "text-peak:12"
  bool operator==(const VisionQuery&) const = default;
};

// --shard K/N: every N-th item of the sorted listing, starting at K.
struct Shard {
  int index = 0;
  int count = 1;
  std::string text() const;  // "K/N"
  bool operator==(const Shard&) const = default;
};

// --device and --dtype. Auto: CUDA device 0 when one is visible, else the CPU; bf16 on CUDA, fp32 on CPU.
struct DeviceChoice {
  enum class Device { Auto, Cpu, Cuda };
  enum class Dtype { Auto, Float32, BFloat16, Float16 };
  Device device = Device::Auto;
  int cuda_index = -1;  // Device::Cuda: the GPU ("cuda:N"), -1 for "cuda" (the current one)
  Dtype dtype = Dtype::Auto;

  std::string device_text() const;  // "auto" | "cpu" | "cuda" | "cuda:N"
  std::string dtype_text() const;   // "auto" | "fp32" | "bf16" | "fp16"
  bool operator==(const DeviceChoice&) const = default;
};

enum class CompareMetric;  // attnmap/compare.hpp

// Parsers: each throws Error(Usage) with one line naming the flag, the value and what to use.
LayerSelection parse_layer_selection(const std::string& text, const SelectionNames& names = kDecoderLayerNames);
// --vision-blocks: "none" (nullopt: no vision maps), else a selection like --layers' over vision blocks.
std::optional<LayerSelection> parse_vision_blocks(const std::string& text);
VisionQuery parse_vision_query(const std::string& text);
HeadSelection parse_head_selection(const std::string& text);
QuerySpec parse_query_spec(const std::string& text);
Shard parse_shard(const std::string& text);  // also checks 0 <= K < N
DeviceChoice parse_device_choice(const std::string& device, const std::string& dtype);
CompareMetric parse_metric(const std::string& name);  // "max-abs" | "cosine" | "iou-top-k" | "peak-shift"

}  // namespace attnmap
