// The output folder of one item (`attnmap run --out DIR`, `attnmap batch --out DIR/<id>`): its file
// names, when it counts as complete, attention.json's schema as a typed RunRecord, and the writer
// that commits a folder all-or-nothing. run and batch write through here, compare reads through
// here; docs/design.md ("Outputs") documents the same contract.
#pragma once

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "attnmap/options.hpp"

namespace attnmap {

// attention.json's schema_version. Readers refuse any other; the fixture writer
// (tools/attnmap_tools/testing/make_compare_fixtures.py) is tested to write the same number.
inline constexpr int kAttentionSchemaVersion = 1;

namespace output {

inline constexpr const char* kAttentionFile = "attention.json";  // written last: the completion marker
inline constexpr const char* kMapsFile = "maps.npy";
inline constexpr const char* kGridFile = "grid.jpg";
inline constexpr const char* kSummaryFile = "summary.jsonl";    // batch --out, one shard

// "layer_07.jpg": the overlay of decoder layer `layer`.
std::string layer_file_name(int64_t layer);
// summary.jsonl, or summary.shard-K-of-N.jsonl for a shard of several.
std::string summary_file_name(const Shard& shard);

// THE rule for "this folder holds a finished item", used by batch --resume, compare's discovery and
// documented in docs/design.md: attention.json and maps.npy are both regular files. attention.json is
// written last and atomically, so its presence means everything before it was written; maps.npy is
// checked too because it is what compare and users read. Contents are not parsed here (resume must
// stay cheap over millions of items; compare parses and reports a damaged file by name and field).
bool is_complete(const std::filesystem::path& dir);

}  // namespace output

using StageTimings = std::map<std::string, double>;  // stage -> milliseconds (docs/design.md: Timings)

struct LayerStats {
  int64_t layer = 0;
  double min = 0, max = 0, sum = 0, entropy = 0;
  bool operator==(const LayerStats&) const = default;
};

struct Prediction {
  int64_t token_id = -1;
  std::string token;
  std::string text;
  double probability = 0;
  bool operator==(const Prediction&) const = default;
};

// Everything attention.json holds, typed. to_json() writes the documented document key for key;
// from_json() checks every field it reads (type, range, size caps) and throws Error(Input) naming
// the file and the field. Fields that older or hand-made files may lack (everything but
// schema_version, prompt, grid.merged_h/merged_w and layers) keep their defaults when absent, but
// must have the right type when present.
struct RunRecord {
  struct Model {
    std::string path, sha256, model_family, model_name, exported_dtype;
    int64_t format_version = 0;
    nlohmann::json metadata = nlohmann::json::object();  // the export's metadata.json, verbatim
    bool operator==(const Model&) const = default;
  };
  struct Options {
    QuerySpec query;
    LayerSelection layers;
    HeadSelection heads;
    std::string colormap = "jet";
    double alpha = 0.5, blur = 0;
    bool predict = true;
    std::string system_prompt;
    int64_t min_pixels = 0, max_pixels = 0;  // the bounds used (the model's unless overridden)
    bool operator==(const Options&) const = default;
  };
  struct Image {
    std::string path;
    int64_t width = 0, height = 0, resized_width = 0, resized_height = 0;
    bool operator==(const Image&) const = default;
  };
  struct Grid {
    int64_t t = 1, h = 0, w = 0, merged_h = 0, merged_w = 0;
    bool operator==(const Grid&) const = default;
  };
  struct Span {
    int64_t start = 0, end = 0;
    bool operator==(const Span&) const = default;
  };

  std::string attnmap_version;
  Model model;
  Options options;
  std::string device, dtype;
  Image image;
  Grid grid;
  std::string id, prompt;
  std::vector<int64_t> token_ids;
  std::vector<std::string> token_strings;
  Span image_token_span, prompt_token_span;
  std::vector<int64_t> query_positions;
  std::vector<LayerStats> layers;      // in maps.npy order
  std::vector<int64_t> maps_shape;     // [layers, merged_h, merged_w]
  std::optional<int64_t> focus_layer;
  std::optional<Prediction> prediction;
  StageTimings timings;                // the same dictionary batch's summary.jsonl carries
  std::optional<double> peak_device_memory_mib;  // CUDA only

  // The model's decoder layer count from model.metadata.text.num_hidden_layers; 0 when not recorded.
  int recorded_model_layers() const;

  nlohmann::ordered_json to_json() const;
  // `file` names the document in error messages.
  static RunRecord from_json(const nlohmann::json& doc, const std::filesystem::path& file);
  // DIR/attention.json, read with a size and nesting cap.
  static RunRecord read(const std::filesystem::path& dir);

  bool operator==(const RunRecord&) const = default;
};

namespace output {

// DIR/maps.npy checked against the record before its data is read (float dtype, shape
// [layers, merged_h, merged_w]), so a forged header cannot make the reader allocate. Error(Input).
torch::Tensor read_maps(const std::filesystem::path& dir, const RunRecord& record);

// Writes one item's folder all-or-nothing: the constructor drops a stale attention.json (so the
// folder stops counting as complete before anything in it changes); each write_* is atomic;
// commit() writes attention.json last. Files written by a writer destroyed without commit() are
// removed, so a failure never leaves a folder that looks like a partial result.
class RunFolderWriter {
 public:
  explicit RunFolderWriter(std::filesystem::path dir);
  ~RunFolderWriter();
  RunFolderWriter(const RunFolderWriter&) = delete;
  RunFolderWriter& operator=(const RunFolderWriter&) = delete;

  void write_layer_image(int64_t layer, const cv::Mat& bgr);
  void write_grid_image(const cv::Mat& bgr);
  void write_maps(const torch::Tensor& maps);
  void commit(const RunRecord& record);

 private:
  std::filesystem::path dir_;
  std::vector<std::filesystem::path> written_;
  bool committed_ = false;
};

// `attnmap run --dump-inputs DIR`: the model inputs as .npy, for parity checks against Python.
void dump_model_inputs(const std::filesystem::path& dir, const torch::Tensor& input_ids,
                       const torch::Tensor& pixel_values, const torch::Tensor& image_grid_thw,
                       const torch::Tensor& position_ids, const std::vector<int64_t>& query_rows);

}  // namespace output
}  // namespace attnmap
