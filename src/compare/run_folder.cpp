// Reading the two files of a run folder that compare relies on, with one-line errors that say
// which file is wrong and how to get a good one.
#include <nlohmann/json.hpp>

#include <fstream>
#include <set>
#include <sstream>

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

json read_json(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(ErrorKind::Input, "cannot open '" + file.string() + "': no such file or not readable");
  std::stringstream buffer;
  buffer << in.rdbuf();
  try {
    return json::parse(buffer.str());
  } catch (const json::exception& e) {
    // nlohmann's messages are single-line; keep only the part after "[json.exception...] ".
    std::string why = e.what();
    if (const auto at = why.find("] "); at != std::string::npos) why = why.substr(at + 2);
    throw corrupt(file, "is not valid JSON (" + why + ")");
  }
}

int64_t required_int(const json& object, const char* key, const std::string& where, const fs::path& file) {
  if (!object.is_object() || !object.contains(key) || !object[key].is_number_integer()) {
    throw corrupt(file, "lacks the integer '" + where + key + "'");
  }
  return object[key].get<int64_t>();
}

int recorded_model_layers(const json& doc) {
  // attention.json may carry the export's metadata; older or partial files do not.
  const json* node = &doc;
  for (const char* key : {"model", "metadata", "text", "num_hidden_layers"}) {
    if (!node->is_object() || !node->contains(key)) return 0;
    node = &(*node)[key];
  }
  return node->is_number_integer() ? node->get<int>() : 0;
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

  if (!doc.contains("layers") || !doc["layers"].is_array() || doc["layers"].empty()) {
    throw corrupt(file, "lacks a non-empty 'layers' array");
  }
  std::set<int> seen;
  for (const json& entry : doc["layers"]) {
    const int64_t layer = required_int(entry, "layer", "layers[].", file);
    if (layer < 0 || !seen.insert(static_cast<int>(layer)).second) {
      throw corrupt(file, "lists layer " + std::to_string(layer) + " twice or as negative");
    }
    run.layers.push_back(static_cast<int>(layer));
  }
  run.model_layers = std::max(recorded_model_layers(doc), *seen.rbegin() + 1);

  if (with_maps) {
    const fs::path npy = dir / "maps.npy";
    run.maps = load_npy(npy);  // throws Error(Input) naming the file when it is missing or corrupt
    if (!run.maps.is_floating_point()) throw corrupt(npy, "is not a float array");
    const std::vector<int64_t> expected{static_cast<int64_t>(run.layers.size()), run.merged_h, run.merged_w};
    if (run.maps.sizes().vec() != expected) {
      std::ostringstream msg;
      msg << "has shape " << run.maps.sizes() << " but attention.json records " << run.layers.size() << " layers of "
          << run.merged_h << "x" << run.merged_w << " cells";
      throw corrupt(npy, msg.str());
    }
  }
  return run;
}

}  // namespace attnmap::compare_detail
