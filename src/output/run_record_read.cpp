// attention.json -> RunRecord, and maps.npy and answer_maps.npy checked against it. Every read is checked: the files
// may be hand-edited, truncated or forged (compare runs on CI artefacts), and each problem must be
// one line naming the file and the field, never a library exception or a huge allocation.
#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "attnmap/error.hpp"
#include "io/npy.hpp"
#include "attnmap/run_folder.hpp"

namespace attnmap {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* kRegenerate = "; regenerate the folder with attnmap run/batch";

// attention.json of a real run is well under a megabyte (token ids, per-layer figures); the caps
// keep a forged or wrong file from costing gigabytes or a parser stack overflow.
constexpr std::uintmax_t kMaxJsonBytes = 64u << 20;
constexpr int kMaxJsonDepth = 64;
// No decoder has more layers, and no image more merged cells per side, than these.
constexpr int64_t kMaxLayers = 100000;
constexpr int64_t kMaxGridSide = 1 << 20;

Error corrupt(const fs::path& file, const std::string& what) {
  return Error(ErrorKind::Input, "'" + file.string() + "' " + what + kRegenerate);
}

json read_json(const fs::path& file) {
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(file, ec);
  if (!ec && size > kMaxJsonBytes) {
    throw corrupt(file, "is " + std::to_string(size >> 20) + " MiB, far larger than any attention.json (at most " +
                            std::to_string(kMaxJsonBytes >> 20) + " MiB are read)");
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(ErrorKind::Input, "cannot open '" + file.string() + "': no such file or not readable");
  std::stringstream buffer;
  buffer << in.rdbuf();
  try {
    const json::parser_callback_t depth_guard = [](int depth, json::parse_event_t, json&) {
      if (depth > kMaxJsonDepth) throw std::length_error("nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels");
      return true;
    };
    return json::parse(buffer.str(), depth_guard);
  } catch (const json::exception& e) {
    // nlohmann's messages are single-line; keep only the part after "[json.exception...] ".
    std::string why = e.what();
    if (const auto at = why.find("] "); at != std::string::npos) why = why.substr(at + 2);
    // It quotes the bytes last read, which may be anything: keep the message printable ASCII.
    for (char& ch : why) {
      if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) >= 0x7f) ch = '?';
    }
    throw corrupt(file, "is not valid JSON (" + why + ")");
  } catch (const std::length_error& e) {
    throw corrupt(file, std::string("is not an attention.json (") + e.what() + ")");
  }
}

// Typed access to one document; `where` is the dotted path of the object ("grid.", "" for the top).
class Fields {
 public:
  explicit Fields(const fs::path& file) : file_(file) {}

  Error corrupt(const std::string& what) const { return attnmap::corrupt(file_, what); }

  int64_t required_int(const json& object, const char* key, const std::string& where) const {
    if (!object.is_object() || !object.contains(key) || !object[key].is_number_integer()) {
      throw corrupt("lacks the integer '" + where + key + "'");
    }
    return object[key].get<int64_t>();
  }

  // nullptr when absent; throws when present but not of `type_name` (checked by `ok`).
  template <typename Check>
  const json* optional(const json& object, const char* key, const std::string& where, Check ok, const char* type_name) const {
    if (!object.is_object() || !object.contains(key)) return nullptr;
    const json& value = object[key];
    if (!ok(value)) throw corrupt("has '" + where + key + "' that is not " + type_name);
    return &value;
  }

  void read(const json& o, const char* key, const std::string& where, std::string& out) const {
    if (auto* v = optional(o, key, where, [](const json& j) { return j.is_string(); }, "a string")) out = v->get<std::string>();
  }
  void read(const json& o, const char* key, const std::string& where, int64_t& out) const {
    if (auto* v = optional(o, key, where, [](const json& j) { return j.is_number_integer(); }, "an integer")) out = v->get<int64_t>();
  }
  void read(const json& o, const char* key, const std::string& where, bool& out) const {
    if (auto* v = optional(o, key, where, [](const json& j) { return j.is_boolean(); }, "true or false")) out = v->get<bool>();
  }
  // JSON has no NaN: nlohmann writes a NaN statistic (a map that overflowed in fp16) as null.
  void read(const json& o, const char* key, const std::string& where, double& out) const {
    const auto number_or_null = [](const json& j) { return j.is_number() || j.is_null(); };
    if (auto* v = optional(o, key, where, number_or_null, "a number")) {
      out = v->is_null() ? std::numeric_limits<double>::quiet_NaN() : v->get<double>();
    }
  }
  void read(const json& o, const char* key, const std::string& where, std::vector<int64_t>& out) const {
    const auto ints = [](const json& j) {
      if (!j.is_array()) return false;
      for (const json& e : j) {
        if (!e.is_number_integer()) return false;
      }
      return true;
    };
    if (auto* v = optional(o, key, where, ints, "an array of integers")) out = v->get<std::vector<int64_t>>();
  }
  void read(const json& o, const char* key, const std::string& where, std::vector<std::string>& out) const {
    const auto strings = [](const json& j) {
      if (!j.is_array()) return false;
      for (const json& e : j) {
        if (!e.is_string()) return false;
      }
      return true;
    };
    if (auto* v = optional(o, key, where, strings, "an array of strings")) out = v->get<std::vector<std::string>>();
  }
  const json* object(const json& o, const char* key, const std::string& where) const {
    return optional(o, key, where, [](const json& j) { return j.is_object(); }, "an object");
  }

  // An option as attention.json records it, read back with the CLI's own parser.
  template <typename T, typename Parse>
  T option(const json& options, const char* key, Parse parse, T fallback) const {
    std::string text;
    read(options, key, "options.", text);
    if (text.empty()) return fallback;
    try {
      return parse(text);
    } catch (const Error& e) {
      throw corrupt("has 'options." + std::string(key) + "' that attnmap does not accept (" + e.what() + ")");
    }
  }

 private:
  const fs::path& file_;
};

// attention.json may carry the export's metadata; older or partial files do not (0), but a value
// that is there must be a plausible layer count.
void check_model_metadata(const json& doc, const Fields& f) {
  if (!doc.contains("model")) return;
  const json& model = doc["model"];
  if (!model.is_object()) throw f.corrupt("has a 'model' that is not an object");
  if (!model.contains("metadata")) return;
  const json& metadata = model["metadata"];
  if (!metadata.is_object()) throw f.corrupt("has a 'model.metadata' that is not an object");
  if (!metadata.contains("text")) return;
  const json& text = metadata["text"];
  if (!text.is_object()) throw f.corrupt("has a 'model.metadata.text' that is not an object");
  if (!text.contains("num_hidden_layers")) return;
  const json& n = text["num_hidden_layers"];
  if (!n.is_number_integer() || n.get<int64_t>() < 1 || n.get<int64_t>() > kMaxLayers) {
    throw f.corrupt("has 'model.metadata.text.num_hidden_layers' " + n.dump().substr(0, 40) +
                    "; expected an integer from 1 to " + std::to_string(kMaxLayers));
  }
}

}  // namespace

namespace {

// A list of objects, capped: an answer has at most a few thousand tokens, a model a few hundred layers.
const json& array_at(const json& o, const char* key, const std::string& where, const Fields& f, size_t cap) {
  if (!o.contains(key) || !o[key].is_array()) throw f.corrupt("lacks the array '" + where + key + "'");
  if (o[key].size() > cap) {
    throw f.corrupt("has " + std::to_string(o[key].size()) + " entries in '" + where + key + "', more than " +
                    std::to_string(cap));
  }
  return o[key];
}

AnswerRecord read_answer(const json& a, const Fields& f) {
  AnswerRecord answer;
  f.read(a, "text", "answer.", answer.text);
  for (const json& t : array_at(a, "tokens", "answer.", f, 1u << 20)) {
    if (!t.is_object()) throw f.corrupt("has an 'answer.tokens[]' entry that is not an object");
    AnswerToken token;
    token.id = f.required_int(t, "id", "answer.tokens[].");
    f.read(t, "token", "answer.tokens[].", token.token);
    f.read(t, "text", "answer.tokens[].", token.text);
    f.read(t, "probability", "answer.tokens[].", token.probability);
    f.read(t, "position", "answer.tokens[].", token.position);
    answer.tokens.push_back(token);
  }
  f.read(a, "stopped_on_eos", "answer.", answer.stopped_on_eos);
  f.read(a, "max_new_tokens", "answer.", answer.max_new_tokens);
  f.read(a, "repetition_penalty", "answer.", answer.repetition_penalty);
  f.read(a, "query_tokens", "answer.", answer.query_tokens);
  f.read(a, "strip_labels", "answer.", answer.strip_labels);
  if (const json* maps = f.object(a, "maps", "answer.")) f.read(*maps, "shape", "answer.maps.", answer.maps_shape);
  return answer;
}

VideoRecord read_video(const json& v, const Fields& f) {
  VideoRecord video;
  f.read(v, "source", "video.", video.source);
  f.read(v, "path", "video.", video.path);
  f.read(v, "frame_files", "video.", video.frame_files);
  if (v.contains("fps") && !v["fps"].is_null()) {
    double fps = 0;
    f.read(v, "fps", "video.", fps);
    video.fps = fps;
  }
  f.read(v, "total_frames", "video.", video.total_frames);
  f.read(v, "frame_indices", "video.", video.frame_indices);
  f.read(v, "sampled_fps", "video.", video.sampled_fps);
  f.read(v, "second_per_grid_t", "video.", video.second_per_grid_t);
  f.read(v, "time_interval", "video.", video.time_interval);
  for (const json& entry : array_at(v, "temporal_patches", "video.", f, static_cast<size_t>(kMaxGridSide))) {
    VideoRecord::TemporalPatch t;
    f.read(entry, "frames", "video.temporal_patches[].", t.frames);
    if (entry.contains("timestamps")) {
      const json& ts = entry["timestamps"];
      if (!ts.is_array()) throw f.corrupt("has 'video.temporal_patches[].timestamps' that is not a list");
      for (const json& x : ts) {
        if (!x.is_number()) throw f.corrupt("has 'video.temporal_patches[].timestamps' with a non-number");
        t.timestamps.push_back(x.get<double>());
      }
    }
    f.read(entry, "time_position", "video.temporal_patches[].", t.time_position);
    video.temporal_patches.push_back(t);
  }
  return video;
}

VisionRecord read_vision(const json& v, const Fields& f) {
  VisionRecord vision;
  f.read(v, "blocks_requested", "vision.", vision.blocks_requested);
  f.read(v, "query", "vision.", vision.query);
  f.read(v, "heads", "vision.", vision.heads);
  for (const json& entry : array_at(v, "blocks", "vision.", f, static_cast<size_t>(kMaxLayers))) {
    VisionRecord::Block b;
    b.index = f.required_int(entry, "block", "vision.blocks[].");
    f.read(entry, "attention", "vision.blocks[].", b.attention);
    f.read(entry, "min", "vision.blocks[].", b.min);
    f.read(entry, "max", "vision.blocks[].", b.max);
    f.read(entry, "sum", "vision.blocks[].", b.sum);
    vision.blocks.push_back(b);
  }
  f.read(v, "query_patches", "vision.", vision.query_patches);
  if (const json* p = f.object(v, "peak", "vision.")) {
    VisionRecord::Peak peak;
    peak.layer = f.required_int(*p, "layer", "vision.peak.");
    f.read(*p, "t", "vision.peak.", peak.t);
    f.read(*p, "row", "vision.peak.", peak.row);
    f.read(*p, "col", "vision.peak.", peak.col);
    f.read(*p, "value", "vision.peak.", peak.value);
    vision.peak = peak;
  }
  f.read(v, "window_size", "vision.", vision.window_size);
  f.read(v, "patch_size", "vision.", vision.patch_size);
  if (const json* maps = f.object(v, "maps", "vision.")) f.read(*maps, "shape", "vision.maps.", vision.maps_shape);
  return vision;
}

BaselineRecord read_baseline(const json& b, const Fields& f) {
  BaselineRecord baseline;
  f.read(b, "prompt", "baseline.", baseline.prompt);
  f.read(b, "token_ids", "baseline.", baseline.token_ids);
  f.read(b, "query_positions", "baseline.", baseline.query_positions);
  f.read(b, "epsilon", "baseline.", baseline.epsilon);
  for (const json& entry : array_at(b, "layers", "baseline.", f, static_cast<size_t>(kMaxLayers))) {
    LayerStats s;
    s.layer = f.required_int(entry, "layer", "baseline.layers[].");
    f.read(entry, "min", "baseline.layers[].", s.min);
    f.read(entry, "max", "baseline.layers[].", s.max);
    f.read(entry, "sum", "baseline.layers[].", s.sum);
    f.read(entry, "entropy", "baseline.layers[].", s.entropy);
    f.read(entry, "top1_share", "baseline.layers[].", s.top1_share);
    baseline.layers.push_back(s);
  }
  if (const json* maps = f.object(b, "relative_maps", "baseline.")) {
    f.read(*maps, "shape", "baseline.relative_maps.", baseline.maps_shape);
  }
  return baseline;
}

}  // namespace

RunRecord RunRecord::from_json(const json& doc, const fs::path& file) {
  const Fields f(file);
  if (!doc.is_object()) throw f.corrupt("is not a JSON object");
  if (!doc.contains("schema_version") || doc["schema_version"] != kAttentionSchemaVersion) {
    throw f.corrupt("has schema_version " + (doc.contains("schema_version") ? doc["schema_version"].dump().substr(0, 40) : "missing") +
                    "; attnmap reads schema_version " + std::to_string(kAttentionSchemaVersion));
  }

  RunRecord r;
  // What compare needs first, in the order it has always been checked.
  if (!doc.contains("prompt") || !doc["prompt"].is_string()) throw f.corrupt("lacks the string 'prompt'");
  r.prompt = doc["prompt"].get<std::string>();

  if (!doc.contains("grid")) throw f.corrupt("lacks 'grid'");
  const json& grid = doc["grid"];
  r.grid.t = grid.is_object() && grid.contains("t") ? f.required_int(grid, "t", "grid.") : 1;
  r.grid.h = grid.is_object() && grid.contains("h") ? f.required_int(grid, "h", "grid.") : 0;
  r.grid.w = grid.is_object() && grid.contains("w") ? f.required_int(grid, "w", "grid.") : 0;
  r.grid.merged_h = f.required_int(grid, "merged_h", "grid.");
  r.grid.merged_w = f.required_int(grid, "merged_w", "grid.");
  if (r.grid.merged_h <= 0 || r.grid.merged_w <= 0) throw f.corrupt("has an empty grid");
  if (r.grid.merged_h > kMaxGridSide || r.grid.merged_w > kMaxGridSide) {
    throw f.corrupt("has a grid of " + std::to_string(r.grid.merged_h) + "x" + std::to_string(r.grid.merged_w) +
                    " merged cells, more than any image gives (at most " + std::to_string(kMaxGridSide) + " a side)");
  }

  if (!doc.contains("layers") || !doc["layers"].is_array() || doc["layers"].empty()) {
    throw f.corrupt("lacks a non-empty 'layers' array");
  }
  if (doc["layers"].size() > static_cast<size_t>(kMaxLayers)) {
    throw f.corrupt("lists " + std::to_string(doc["layers"].size()) + " entries in 'layers', more than any model has (" +
                    std::to_string(kMaxLayers) + ")");
  }
  std::set<int64_t> seen;
  for (const json& entry : doc["layers"]) {
    LayerStats s;
    s.layer = f.required_int(entry, "layer", "layers[].");
    if (s.layer < 0 || s.layer >= kMaxLayers) {
      throw f.corrupt("has 'layers[].layer' " + std::to_string(s.layer) + "; expected 0 to " + std::to_string(kMaxLayers - 1));
    }
    if (!seen.insert(s.layer).second) throw f.corrupt("lists layer " + std::to_string(s.layer) + " twice");
    f.read(entry, "min", "layers[].", s.min);
    f.read(entry, "max", "layers[].", s.max);
    f.read(entry, "sum", "layers[].", s.sum);
    f.read(entry, "entropy", "layers[].", s.entropy);
    f.read(entry, "top1_share", "layers[].", s.top1_share);
    r.layers.push_back(s);
  }
  check_model_metadata(doc, f);

  // The rest: optional in hand-made files, typed when present.
  f.read(doc, "attnmap_version", "", r.attnmap_version);
  if (const json* model = f.object(doc, "model", "")) {
    f.read(*model, "path", "model.", r.model.path);
    f.read(*model, "sha256", "model.", r.model.sha256);
    f.read(*model, "model_family", "model.", r.model.model_family);
    f.read(*model, "model_name", "model.", r.model.model_name);
    f.read(*model, "format_version", "model.", r.model.format_version);
    f.read(*model, "exported_dtype", "model.", r.model.exported_dtype);
    if (const json* metadata = f.object(*model, "metadata", "model.")) r.model.metadata = *metadata;
  }
  if (const json* options = f.object(doc, "options", "")) {
    r.options.query = f.option(*options, "query", parse_query_spec, QuerySpec{});
    r.options.layers = f.option(
        *options, "layers", [](const std::string& text) { return parse_layer_selection(text); }, LayerSelection{});
    r.options.heads = f.option(*options, "heads", parse_head_selection, HeadSelection{});
    f.read(*options, "colormap", "options.", r.options.colormap);
    f.read(*options, "alpha", "options.", r.options.alpha);
    f.read(*options, "blur", "options.", r.options.blur);
    f.read(*options, "predict", "options.", r.options.predict);
    f.read(*options, "system_prompt", "options.", r.options.system_prompt);
    f.read(*options, "min_pixels", "options.", r.options.min_pixels);
    f.read(*options, "max_pixels", "options.", r.options.max_pixels);
  }
  f.read(doc, "device", "", r.device);
  f.read(doc, "dtype", "", r.dtype);
  if (const json* image = f.object(doc, "image", "")) {
    f.read(*image, "path", "image.", r.image.path);
    f.read(*image, "width", "image.", r.image.width);
    f.read(*image, "height", "image.", r.image.height);
    f.read(*image, "resized_width", "image.", r.image.resized_width);
    f.read(*image, "resized_height", "image.", r.image.resized_height);
  }
  f.read(doc, "id", "", r.id);
  if (const json* tokens = f.object(doc, "tokens", "")) {
    f.read(*tokens, "ids", "tokens.", r.token_ids);
    f.read(*tokens, "strings", "tokens.", r.token_strings);
  }
  if (const json* span = f.object(doc, "image_token_span", "")) {
    f.read(*span, "start", "image_token_span.", r.image_token_span.start);
    f.read(*span, "end", "image_token_span.", r.image_token_span.end);
  }
  const auto span_list = [](const json& j) {
    if (!j.is_array()) return false;
    for (const json& e : j) {
      if (!e.is_object() || !e.contains("start") || !e.contains("end") || !e["start"].is_number_integer() ||
          !e["end"].is_number_integer()) {
        return false;
      }
    }
    return true;
  };
  if (const json* runs = f.optional(doc, "image_token_runs", "", span_list, "a list of {start, end}")) {
    if (runs->size() > 1) {
      for (const json& e : *runs) r.image_token_runs.push_back({e["start"].get<int64_t>(), e["end"].get<int64_t>()});
    }
  }
  if (const json* span = f.object(doc, "prompt_token_span", "")) {
    f.read(*span, "start", "prompt_token_span.", r.prompt_token_span.start);
    f.read(*span, "end", "prompt_token_span.", r.prompt_token_span.end);
  }
  f.read(doc, "query_positions", "", r.query_positions);
  if (const json* maps = f.object(doc, "maps", "")) f.read(*maps, "shape", "maps.", r.maps_shape);
  if (doc.contains("focus_layer") && !doc["focus_layer"].is_null()) {
    int64_t focus = 0;
    f.read(doc, "focus_layer", "", focus);
    r.focus_layer = focus;
  }
  if (doc.contains("prediction") && !doc["prediction"].is_null()) {
    const json* p = f.object(doc, "prediction", "");
    Prediction pred;
    f.read(*p, "token_id", "prediction.", pred.token_id);
    f.read(*p, "token", "prediction.", pred.token);
    f.read(*p, "text", "prediction.", pred.text);
    f.read(*p, "probability", "prediction.", pred.probability);
    r.prediction = pred;
  }
  if (const json* a = f.object(doc, "answer", "")) r.answer = read_answer(*a, f);
  if (const json* b = f.object(doc, "baseline", "")) r.baseline = read_baseline(*b, f);
  if (const json* v = f.object(doc, "viewer", "")) {
    ViewerRecord viewer;
    f.read(*v, "file", "viewer.", viewer.file);
    f.read(*v, "detail", "viewer.", viewer.detail);
    f.read(*v, "html_bytes", "viewer.", viewer.html_bytes);
    f.read(*v, "notes", "viewer.", viewer.notes);
    r.viewer = viewer;
  }
  if (const json* v = f.object(doc, "video", "")) r.video = read_video(*v, f);
  if (const json* v = f.object(doc, "vision", "")) r.vision = read_vision(*v, f);
  if (const json* timings = f.object(doc, "timings_ms", "")) {
    for (const auto& [stage, ms] : timings->items()) {
      if (!ms.is_number()) throw f.corrupt("has 'timings_ms." + stage.substr(0, 40) + "' that is not a number");
      r.timings[stage] = ms.get<double>();
    }
  }
  if (doc.contains("peak_device_memory_mib")) {
    double mib = 0;
    f.read(doc, "peak_device_memory_mib", "", mib);
    r.peak_device_memory_mib = mib;
  }
  return r;
}

RunRecord RunRecord::read(const fs::path& dir) {
  const fs::path file = dir / output::kAttentionFile;
  return from_json(read_json(file), file);
}

namespace output {

torch::Tensor read_maps(const fs::path& dir, const RunRecord& record) {
  // Header first: its dtype, shape and size are checked against attention.json and the file
  // before the data is read, so a forged header cannot make the reader allocate.
  const fs::path npy = dir / kMapsFile;
  const NpyHeader header = read_npy_header(npy);  // throws Error(Input) naming the file
  if (header.dtype != torch::kFloat32 && header.dtype != torch::kFloat64) throw corrupt(npy, "is not a float array");
  // A video's maps have a time axis: [layers, t, merged_h, merged_w] (docs/video.md).
  std::vector<int64_t> expected{static_cast<int64_t>(record.layers.size()), record.grid.merged_h, record.grid.merged_w};
  if (record.video) expected.insert(expected.begin() + 1, record.grid.t);
  if (header.shape != expected) {
    throw corrupt(npy, "has shape " + npy_shape_text(header.shape) + " but '" + (dir / kAttentionFile).string() +
                           "' records " + std::to_string(record.layers.size()) + " layers of " +
                           (record.video ? std::to_string(record.grid.t) + " x " : std::string()) +
                           std::to_string(record.grid.merged_h) + "x" + std::to_string(record.grid.merged_w) + " cells");
  }
  return load_npy(npy);
}

namespace {

// [tokens, layers, merged_h, merged_w] as attention.json's answer and grid describe it. A recorded
// answer.maps.shape must agree with that; hand-made files that lack it get the derived shape.
std::vector<int64_t> expected_answer_shape(const fs::path& dir, const RunRecord& record) {
  const fs::path json_file = dir / kAttentionFile;
  if (!record.answer) {
    throw corrupt(json_file, "records no 'answer', so '" + (dir / kAnswerMapsFile).string() + "' cannot be read against it");
  }
  std::vector<int64_t> derived{static_cast<int64_t>(record.answer->tokens.size()),
                               static_cast<int64_t>(record.layers.size()), record.grid.merged_h, record.grid.merged_w};
  if (record.video) derived.insert(derived.begin() + 2, record.grid.t);  // a video's time axis
  const std::vector<int64_t>& recorded = record.answer->maps_shape;
  if (!recorded.empty() && recorded != derived) {
    throw corrupt(json_file, "has 'answer.maps.shape' " + npy_shape_text(recorded) + " but records " +
                                 std::to_string(derived[0]) + " answer tokens, " + std::to_string(derived[1]) +
                                 " layers and a grid of " + npy_shape_text(std::vector<int64_t>(derived.begin() + 2, derived.end())) +
                                 " cells " + npy_shape_text(derived));
  }
  return derived;
}

}  // namespace

torch::Tensor read_answer_maps(const fs::path& dir, const RunRecord& record) {
  // As read_maps: the header is checked against attention.json before any data is read.
  const std::vector<int64_t> expected = expected_answer_shape(dir, record);
  const fs::path npy = dir / kAnswerMapsFile;
  const NpyHeader header = read_npy_header(npy);  // throws Error(Input) naming the file
  if (header.dtype != torch::kFloat32 && header.dtype != torch::kFloat64) throw corrupt(npy, "is not a float array");
  if (header.shape != expected) {
    throw corrupt(npy, "has shape " + npy_shape_text(header.shape) + " but '" + (dir / kAttentionFile).string() +
                           "' records " + std::to_string(expected[0]) + " answer tokens of " +
                           std::to_string(expected[1]) + " layers of " +
                           npy_shape_text(std::vector<int64_t>(expected.begin() + 2, expected.end())) + " cells");
  }
  return load_npy(npy);
}

}  // namespace output
}  // namespace attnmap
