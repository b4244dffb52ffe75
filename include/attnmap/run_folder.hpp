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
inline constexpr const char* kAnswerMapsFile = "answer_maps.npy";      // --answer: [tokens, layers, h, w]
inline constexpr const char* kRelativeMapsFile = "relative_maps.npy";  // --baseline-prompt: [layers, h, w]
inline constexpr const char* kViewerFile = "viewer.html";              // the self-contained viewer (docs/viewer.md)
inline constexpr const char* kIndexFile = "index.html";                // batch --out: one row per item
inline constexpr const char* kVisionMapsFile = "vision_maps.npy";      // --vision-blocks: [blocks, grid_h, grid_w]
inline constexpr const char* kVisionGridFile = "vision_grid.jpg";      // --vision-blocks: every block's overlay

// "layer_07.jpg": the overlay of decoder layer `layer`.
std::string layer_file_name(int64_t layer);
// "layer_07.gif": a video's maps of decoder layer `layer`, one frame per temporal patch (docs/video.md).
std::string layer_animation_file_name(int64_t layer);
// "answer_strip_layer_07.jpg": every answer token's map of decoder layer `layer`, side by side.
std::string answer_strip_file_name(int64_t layer);
// "relative_layer_07.jpg": the relative map (map / baseline map) of decoder layer `layer`.
std::string relative_layer_file_name(int64_t layer);
// "vision_block_07.jpg": the overlay of vision block `block` (--vision-blocks).
std::string vision_block_file_name(int64_t block);
// index.html, or index.shard-K-of-N.html for a shard of several (the batch's viewer index).
std::string index_file_name(const Shard& shard);
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
  // Share of the map's mass on its top 1% cells (at least one cell): near 1 when a few sink cells
  // take the attention whatever the question (docs/design.md, "Relative maps").
  double top1_share = 0;
  bool operator==(const LayerStats&) const = default;
};

struct Prediction {
  int64_t token_id = -1;
  std::string token;
  std::string text;
  double probability = 0;
  bool operator==(const Prediction&) const = default;
};

// One generated token (attention.json "answer.tokens").
struct AnswerToken {
  int64_t id = -1;
  std::string token;        // the vocabulary string
  std::string text;         // its decoded text (may hold U+FFFD where a token cuts a character)
  double probability = 0;   // softmax of the raw logits that chose it
  int64_t position = 0;     // its sequence index once appended (S + k)
  bool operator==(const AnswerToken&) const = default;
};

// `--answer`: the greedy answer and how it was made. Its maps are answer_maps.npy.
struct AnswerRecord {
  std::string text;
  std::vector<AnswerToken> tokens;
  bool stopped_on_eos = false;
  int64_t max_new_tokens = 0;
  double repetition_penalty = 1.0;     // applied (1 with --raw-argmax)
  std::vector<int64_t> query_tokens;   // answer tokens averaged into maps.npy (answer queries only)
  std::string strip_labels = "text";   // answer strips label tokens by "text" or, without a font, "index"
  std::vector<int64_t> maps_shape;     // answer_maps.npy: [tokens, layers, merged_h, merged_w]
  bool operator==(const AnswerRecord&) const = default;
};

// `--baseline-prompt`: the same query for a generic prompt, and maps.npy divided by its map.
struct BaselineRecord {
  std::string prompt;
  std::vector<int64_t> token_ids;
  std::vector<int64_t> query_positions;  // in the baseline prompt's sequence
  double epsilon = 0;                    // relative = map / (baseline + epsilon)
  std::vector<LayerStats> layers;        // the baseline map's statistics, in maps.npy order
  std::vector<int64_t> maps_shape;       // relative_maps.npy: [layers, merged_h, merged_w]
  bool operator==(const BaselineRecord&) const = default;
};

// A video run (docs/video.md): where the frames came from, which were sampled, and which frames and
// times each temporal patch of maps.npy's second axis covers.
struct VideoRecord {
  struct TemporalPatch {
    std::vector<int64_t> frames;       // source frame indices (the last one repeated to fill an odd count)
    std::vector<double> timestamps;    // seconds: frame index / fps (24 fps for a frame list)
    int64_t time_position = 0;         // M-RoPE time index, relative to the video's first token
    bool operator==(const TemporalPatch&) const = default;
  };
  std::string source;                  // "video" | "frames"
  std::string path;                    // the video file, or the first frame
  std::vector<std::string> frame_files;  // --frames: every file, in order
  std::optional<double> fps;           // the container's; unset for a frame list
  int64_t total_frames = 0;
  std::vector<int64_t> frame_indices;  // the sampled frames
  double sampled_fps = 0;              // transformers' VideoMetadata.sampled_fps
  double second_per_grid_t = 0;        // temporal_patch_size / sampled_fps
  double time_interval = 0;            // tokens_per_second * second_per_grid_t (float32)
  std::vector<TemporalPatch> temporal_patches;
  bool operator==(const VideoRecord&) const = default;
};

// --vision-blocks (docs/vision.md): the attention inside the vision tower, one map per block on the
// unmerged patch grid, and which query patches it averages.
struct VisionRecord {
  struct Block {
    int64_t index = 0;
    std::string attention;  // "full" | "window" (metadata vision.fullatt_block_indexes)
    double min = 0, max = 0, sum = 0;
    bool operator==(const Block&) const = default;
  };
  // text-peak: the merged decoder cell whose 2x2 patches are the query.
  struct Peak {
    int64_t layer = 0, t = 0, row = 0, col = 0;
    double value = 0;
    bool operator==(const Peak&) const = default;
  };
  std::string blocks_requested;          // the --vision-blocks text: "all" | "7,15" | "0-3"
  std::string query;                     // the --vision-query text: "mean" | "box:..." | "text-peak[:L]"
  std::string heads;                     // the --heads selection the maps use
  std::vector<Block> blocks;             // in vision_maps.npy order
  std::vector<int64_t> query_patches;    // raster indexes (t, row, col) of the unmerged grid; empty for mean
  std::optional<Peak> peak;              // text-peak only
  int64_t window_size = 0;               // pixels of the resized image per window side (0: no windows)
  int64_t patch_size = 0;
  std::vector<int64_t> maps_shape;       // vision_maps.npy: [blocks, grid_h, grid_w] ([blocks, t, grid_h, grid_w] for a video)
  bool operator==(const VisionRecord&) const = default;
};

// viewer.html as written: the detail the 20 MB budget kept, its size, what was dropped.
struct ViewerRecord {
  std::string file = "viewer.html";
  std::string detail;  // full | no-head-per-query | no-per-query | maps-only
  int64_t html_bytes = 0;
  std::vector<std::string> notes;
  bool operator==(const ViewerRecord&) const = default;
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
  // The runs of visual tokens in grid order when there are several (one per temporal patch when the
  // prompt writes text between them, Qwen3-VL's timestamps). Empty: image_token_span is the one run.
  // attention.json always lists them ("image_token_runs"); a file with one run (or none, from older
  // versions) reads back empty.
  std::vector<Span> image_token_runs;
  std::vector<int64_t> query_positions;
  std::vector<LayerStats> layers;      // in maps.npy order
  std::vector<int64_t> maps_shape;     // [layers, merged_h, merged_w]
  std::optional<int64_t> focus_layer;
  std::optional<Prediction> prediction;
  std::optional<AnswerRecord> answer;
  std::optional<BaselineRecord> baseline;
  std::optional<ViewerRecord> viewer;
  std::optional<VideoRecord> video;
  std::optional<VisionRecord> vision;
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
// DIR/answer_maps.npy checked the same way (float dtype, shape [answer tokens, layers, merged_h,
// merged_w], which record.answer->maps_shape must agree with when recorded). Error(Input) naming the
// file, also when the record has no answer.
torch::Tensor read_answer_maps(const std::filesystem::path& dir, const RunRecord& record);

// Writes one item's folder all-or-nothing: the constructor drops a stale attention.json (so the
// folder stops counting as complete before anything in it changes) and stale answer/relative maps
// and viewer (whose presence would claim this run made them); each write_* is atomic;
// commit() writes attention.json last. Files written by a writer destroyed without commit() are
// removed, so a failure never leaves a folder that looks like a partial result.
class RunFolderWriter {
 public:
  explicit RunFolderWriter(std::filesystem::path dir);
  ~RunFolderWriter();
  RunFolderWriter(const RunFolderWriter&) = delete;
  RunFolderWriter& operator=(const RunFolderWriter&) = delete;

  void write_layer_image(int64_t layer, const cv::Mat& bgr);
  // layer_XX.gif: frames BGR of one size, each shown delay_ms, looping.
  void write_layer_animation(int64_t layer, const std::vector<cv::Mat>& frames_bgr, int delay_ms);
  void write_grid_image(const cv::Mat& bgr);
  void write_maps(const torch::Tensor& maps);
  void write_answer_maps(const torch::Tensor& maps);
  void write_answer_strip(int64_t layer, const cv::Mat& bgr);
  void write_relative_maps(const torch::Tensor& maps);
  void write_relative_layer_image(int64_t layer, const cv::Mat& bgr);
  void write_vision_maps(const torch::Tensor& maps);
  void write_vision_block_image(int64_t block, const cv::Mat& bgr);
  void write_vision_grid_image(const cv::Mat& bgr);
  void write_viewer(const std::string& html);
  void commit(const RunRecord& record);

 private:
  std::filesystem::path dir_;
  void write_jpeg(const std::string& name, const cv::Mat& bgr);
  void write_npy(const std::string& name, const torch::Tensor& array);
  std::vector<std::filesystem::path> written_;
  bool committed_ = false;
};

// `attnmap run --dump-inputs DIR`: the model inputs as .npy, for parity checks against Python.
void dump_model_inputs(const std::filesystem::path& dir, const torch::Tensor& input_ids,
                       const torch::Tensor& pixel_values, const torch::Tensor& image_grid_thw,
                       const torch::Tensor& position_ids, const std::vector<int64_t>& query_rows);
// A video's inputs beside them: pixel_values_videos.npy, video_grid_thw.npy.
void dump_video_inputs(const std::filesystem::path& dir, const torch::Tensor& pixel_values_videos,
                       const torch::Tensor& video_grid_thw);

}  // namespace output
}  // namespace attnmap
