// Reading the two files of a run folder that compare relies on, with one-line errors that say
// which file is wrong and how to get a good one.
#include <nlohmann/json.hpp>

#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "attnmap/error.hpp"
#include "attnmap/npy.hpp"
#include "internal.hpp"

namespace attnmap::compare_detail {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* kRegenerate = "; regenerate the folder with attnmap run/batch";

Error corrupt(const fs::path& file, const std::string& what) {
  return Error(ErrorKind::Input, "'" + file.string() + "' " + what + kRegenerate);
}

// attention.json of a real run is well under a megabyte (token ids, per-layer figures); the caps
// keep a forged or wrong file from costing gigabytes or a parser stack overflow.
constexpr std::uintmax_t kMaxJsonBytes = 64u << 20;
constexpr int kMaxJsonDepth = 64;
// No decoder has more layers, and no image more merged cells per side, than these.
constexpr int64_t kMaxLayers = 100000;
constexpr int64_t kMaxGridSide = 1 << 20;

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

int64_t required_int(const json& object, const char* key, const std::string& where, const fs::path& file) {
  if (!object.is_object() || !object.contains(key) || !object[key].is_number_integer()) {
    throw corrupt(file, "lacks the integer '" + where + key + "'");
  }
  return object[key].get<int64_t>();
}

// attention.json may carry the export's metadata; older or partial files do not (0), but a value
// that is there must be a plausible layer count.
int recorded_model_layers(const json& doc, const fs::path& file) {
  if (!doc.contains("model")) return 0;
  const json& model = doc["model"];
  if (!model.is_object()) throw corrupt(file, "has a 'model' that is not an object");
  if (!model.contains("metadata")) return 0;
  const json& metadata = model["metadata"];
  if (!metadata.is_object()) throw corrupt(file, "has a 'model.metadata' that is not an object");
  if (!metadata.contains("text")) return 0;
  const json& text = metadata["text"];
  if (!text.is_object()) throw corrupt(file, "has a 'model.metadata.text' that is not an object");
  if (!text.contains("num_hidden_layers")) return 0;
  const json& n = text["num_hidden_layers"];
  if (!n.is_number_integer() || n.get<int64_t>() < 1 || n.get<int64_t>() > kMaxLayers) {
    throw corrupt(file, "has 'model.metadata.text.num_hidden_layers' " + n.dump().substr(0, 40) +
                            "; expected an integer from 1 to " + std::to_string(kMaxLayers));
  }
  return static_cast<int>(n.get<int64_t>());
}

}  // namespace

RunFolder load_run_folder(const fs::path& dir, bool with_maps) {
  const fs::path file = dir / "attention.json";
  const json doc = read_json(file);
  if (!doc.is_object()) throw corrupt(file, "is not a JSON object");
  if (!doc.contains("schema_version") || doc["schema_version"] != 1) {
    throw corrupt(file, "has schema_version " + (doc.contains("schema_version") ? doc["schema_version"].dump() : "missing") +
                            "; attnmap compare reads schema_version 1");
  }

  RunFolder run;
  run.dir = dir;
  if (!doc.contains("prompt") || !doc["prompt"].is_string()) throw corrupt(file, "lacks the string 'prompt'");
  run.prompt = doc["prompt"].get<std::string>();

  if (!doc.contains("grid")) throw corrupt(file, "lacks 'grid'");
  const json& grid = doc["grid"];
  run.grid_t = grid.is_object() && grid.contains("t") ? required_int(grid, "t", "grid.", file) : 1;
  run.grid_h = grid.is_object() && grid.contains("h") ? required_int(grid, "h", "grid.", file) : 0;
  run.grid_w = grid.is_object() && grid.contains("w") ? required_int(grid, "w", "grid.", file) : 0;
  run.merged_h = required_int(grid, "merged_h", "grid.", file);
  run.merged_w = required_int(grid, "merged_w", "grid.", file);
  if (run.merged_h <= 0 || run.merged_w <= 0) throw corrupt(file, "has an empty grid");
  if (run.merged_h > kMaxGridSide || run.merged_w > kMaxGridSide) {
    throw corrupt(file, "has a grid of " + std::to_string(run.merged_h) + "x" + std::to_string(run.merged_w) +
                            " merged cells, more than any image gives (at most " + std::to_string(kMaxGridSide) + " a side)");
  }

  if (!doc.contains("layers") || !doc["layers"].is_array() || doc["layers"].empty()) {
    throw corrupt(file, "lacks a non-empty 'layers' array");
  }
  if (doc["layers"].size() > static_cast<size_t>(kMaxLayers)) {
    throw corrupt(file, "lists " + std::to_string(doc["layers"].size()) + " entries in 'layers', more than any model has (" +
                            std::to_string(kMaxLayers) + ")");
  }
  std::set<int> seen;
  for (const json& entry : doc["layers"]) {
    const int64_t layer = required_int(entry, "layer", "layers[].", file);
    if (layer < 0 || layer >= kMaxLayers) {
      throw corrupt(file, "has 'layers[].layer' " + std::to_string(layer) + "; expected 0 to " + std::to_string(kMaxLayers - 1));
    }
    if (!seen.insert(static_cast<int>(layer)).second) throw corrupt(file, "lists layer " + std::to_string(layer) + " twice");
    run.layers.push_back(static_cast<int>(layer));
  }
  run.model_layers = std::max(recorded_model_layers(doc, file), *seen.rbegin() + 1);

  if (with_maps) {
    // Header first: its dtype, shape and size are checked against attention.json and the file
    // before the data is read, so a forged header cannot make compare allocate.
    const fs::path npy = dir / "maps.npy";
    const NpyHeader header = read_npy_header(npy);  // throws Error(Input) naming the file
    if (header.dtype != torch::kFloat32 && header.dtype != torch::kFloat64) throw corrupt(npy, "is not a float array");
    const std::vector<int64_t> expected{static_cast<int64_t>(run.layers.size()), run.merged_h, run.merged_w};
    if (header.shape != expected) {
      throw corrupt(npy, "has shape " + npy_shape_text(header.shape) + " but '" + file.string() + "' records " +
                             std::to_string(run.layers.size()) + " layers of " + std::to_string(run.merged_h) + "x" +
                             std::to_string(run.merged_w) + " cells");
    }
    run.maps = load_npy(npy);
  }
  return run;
}

}  // namespace attnmap::compare_detail
