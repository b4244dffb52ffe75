#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "attnmap/batch.hpp"
#include "attnmap/error.hpp"

namespace attnmap {
namespace fs = std::filesystem;

namespace {

bool has_image_extension(const fs::path& path) {
  static const std::set<std::string> kExtensions = {".jpg", ".jpeg", ".png", ".webp", ".bmp",
                                                    ".tif", ".tiff", ".pgm", ".ppm", ".pnm"};
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return kExtensions.count(ext) > 0;
}

// Ids become folder names: keep them to one path component.
std::string sanitize_id(std::string id) {
  for (char& c : id) {
    if (c == '/' || c == '\\' || c == ':' || static_cast<unsigned char>(c) < 0x20) c = '_';
  }
  if (id.empty() || id == "." || id == "..") id = "_" + id;
  return id;
}

std::vector<RunItem> from_folder(const fs::path& root) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::follow_directory_symlink, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file() && has_image_extension(it->path())) files.push_back(it->path());
  }
  if (ec) throw Error(ErrorKind::Input, "cannot list folder '" + root.string() + "': " + ec.message());
  std::sort(files.begin(), files.end());
  std::vector<RunItem> items;
  for (const fs::path& file : files) {
    RunItem item;
    item.image = file;
    item.id = file.stem().string();
    items.push_back(item);
  }
  return items;
}

std::vector<RunItem> from_list(const fs::path& list) {
  std::ifstream in(list);
  if (!in) throw Error(ErrorKind::Input, "cannot read image list '" + list.string() + "'");
  std::vector<RunItem> items;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    RunItem item;
    item.image = fs::path(line).is_absolute() ? fs::path(line) : list.parent_path() / line;
    item.id = item.image.stem().string();
    items.push_back(item);
  }
  return items;
}

std::vector<RunItem> from_manifest(const fs::path& manifest) {
  std::ifstream in(manifest);
  if (!in) throw Error(ErrorKind::Input, "cannot read manifest '" + manifest.string() + "'");
  std::vector<RunItem> items;
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      throw Error(ErrorKind::Input, "manifest '" + manifest.string() + "' line " + std::to_string(line_no) +
                                        " is not JSON; each line must be {\"image\": ..., \"prompt\": ..., \"id\": ...}");
    }
    if (!j.is_object() || !j.contains("image") || !j["image"].is_string()) {
      throw Error(ErrorKind::Input, "manifest '" + manifest.string() + "' line " + std::to_string(line_no) +
                                        " has no \"image\" string");
    }
    if (j.contains("prompt") && !j["prompt"].is_string()) {
      throw Error(ErrorKind::Input, "manifest '" + manifest.string() + "' line " + std::to_string(line_no) +
                                        " has a \"prompt\" that is not a string");
    }
    RunItem item;
    const std::string image = j["image"].get<std::string>();
    item.image = fs::path(image).is_absolute() ? fs::path(image) : manifest.parent_path() / image;
    item.prompt = j.value("prompt", "");
    item.id = j.contains("id") ? (j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump())
                               : item.image.stem().string();
    items.push_back(item);
  }
  return items;
}

// Two images with the same stem in different folders must not share an output folder.
void make_ids_unique(std::vector<RunItem>& items) {
  std::map<std::string, int> seen;
  for (RunItem& item : items) {
    item.id = sanitize_id(item.id);
    const int n = seen[item.id]++;
    if (n > 0) item.id += "-" + std::to_string(n + 1);
  }
}

}  // namespace

std::vector<RunItem> list_batch_items(const BatchOptions& options) {
  const fs::path& source = options.images;
  std::error_code ec;
  std::vector<RunItem> items;
  if (fs::is_directory(source, ec)) {
    items = from_folder(source);
  } else if (!fs::exists(source, ec)) {
    throw Error(ErrorKind::Input, "--images '" + source.string() +
                                      "' does not exist; pass a folder, a .txt list of paths or a .jsonl manifest");
  } else if (source.extension() == ".jsonl") {
    items = from_manifest(source);
  } else {
    items = from_list(source);
  }
  if (items.empty()) {
    throw Error(ErrorKind::Input, "--images '" + source.string() + "' lists no image (looked for .jpg .jpeg .png "
                                                                    ".webp .bmp .tif .tiff in folders)");
  }
  for (RunItem& item : items) {
    if (item.prompt.empty()) item.prompt = options.prompt;
  }
  make_ids_unique(items);
  for (RunItem& item : items) item.out_dir = options.out_dir / item.id;
  return items;
}

std::vector<RunItem> shard_items(const std::vector<RunItem>& items, int shard_index, int shard_count) {
  if (shard_count < 1 || shard_index < 0 || shard_index >= shard_count) {
    throw Error(ErrorKind::Usage, "--shard " + std::to_string(shard_index) + "/" + std::to_string(shard_count) +
                                      ": use K/N with 0 <= K < N");
  }
  std::vector<RunItem> mine;
  for (size_t i = static_cast<size_t>(shard_index); i < items.size(); i += static_cast<size_t>(shard_count)) {
    mine.push_back(items[i]);
  }
  return mine;
}

}  // namespace attnmap
