// File names of an output folder and the one completeness rule.
#include <cstdio>
#include <system_error>

#include "attnmap/run_folder.hpp"

namespace attnmap::output {

namespace fs = std::filesystem;

std::string layer_file_name(int64_t layer) {
  char name[40];
  std::snprintf(name, sizeof name, "layer_%02lld.jpg", static_cast<long long>(layer));
  return name;
}

std::string layer_animation_file_name(int64_t layer) {
  std::string name = layer_file_name(layer);
  return name.replace(name.size() - 4, 4, ".gif");
}

std::string answer_strip_file_name(int64_t layer) { return "answer_strip_" + layer_file_name(layer); }

std::string relative_layer_file_name(int64_t layer) { return "relative_" + layer_file_name(layer); }

std::string vision_block_file_name(int64_t block) {
  char name[48];
  std::snprintf(name, sizeof name, "vision_block_%02lld.jpg", static_cast<long long>(block));
  return name;
}

std::string index_file_name(const Shard& shard) {
  if (shard.count <= 1) return kIndexFile;
  return "index.shard-" + std::to_string(shard.index) + "-of-" + std::to_string(shard.count) + ".html";
}

std::string summary_file_name(const Shard& shard) {
  if (shard.count <= 1) return kSummaryFile;
  return "summary.shard-" + std::to_string(shard.index) + "-of-" + std::to_string(shard.count) + ".jsonl";
}

bool is_complete(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / kAttentionFile, ec) && fs::is_regular_file(dir / kMapsFile, ec);
}

}  // namespace attnmap::output
