#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "attnmap/batch.hpp"
#include "attnmap/error.hpp"
#include "batch/item_ids.hpp"

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

// An item before its folder name is settled: the id it asks for and where it came from.
struct Listed {
  RunItem item;
  IdRequest id;
};

Listed generated(fs::path image, const std::string& origin) {
  Listed l;
  l.item.image = std::move(image);
  l.id = {l.item.image.stem().string(), false, origin + " '" + l.item.image.string() + "'"};
  return l;
}

// A folder entry that is an item: a file, or a link whose target is gone or unreadable (that item
// then fails with the file's name, like any unreadable image, instead of vanishing from the run).
bool is_listed_file(const fs::directory_entry& entry) {
  std::error_code ec;
  if (entry.is_regular_file(ec)) return true;
  return entry.is_symlink(ec) && !fs::exists(entry.path(), ec);
}

std::vector<Listed> from_folder(const fs::path& root) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::follow_directory_symlink, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (is_listed_file(*it) && has_image_extension(it->path())) files.push_back(it->path());
  }
  if (ec) throw Error(ErrorKind::Input, "cannot list folder '" + root.string() + "': " + ec.message());
  std::sort(files.begin(), files.end());
  std::vector<Listed> items;
  for (const fs::path& file : files) items.push_back(generated(file, "image"));
  return items;
}

std::vector<Listed> from_list(const fs::path& list) {
  std::ifstream in(list);
  if (!in) throw Error(ErrorKind::Input, "cannot read image list '" + list.string() + "'");
  std::vector<Listed> items;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    items.push_back(generated(fs::path(line).is_absolute() ? fs::path(line) : list.parent_path() / line, "image"));
  }
  return items;
}

std::vector<Listed> from_manifest(const fs::path& manifest) {
  std::ifstream in(manifest);
  if (!in) throw Error(ErrorKind::Input, "cannot read manifest '" + manifest.string() + "'");
  std::vector<Listed> items;
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
    const auto where = [&] { return "manifest '" + manifest.string() + "' line " + std::to_string(line_no); };
    const auto resolve = [&](const std::string& path) {
      return fs::path(path).is_absolute() ? fs::path(path) : manifest.parent_path() / path;
    };
    if (!j.is_object()) throw Error(ErrorKind::Input, where() + " is not a JSON object");
    const int inputs = int(j.contains("image")) + int(j.contains("video")) + int(j.contains("frames"));
    if (inputs != 1) {
      throw Error(ErrorKind::Input, where() + " needs exactly one of \"image\", \"video\" (a file) or \"frames\" "
                                              "(a folder or a list of files)");
    }
    if (j.contains("prompt") && !j["prompt"].is_string()) {
      throw Error(ErrorKind::Input, where() + " has a \"prompt\" that is not a string");
    }
    const std::string origin = "line " + std::to_string(line_no);
    Listed l;
    if (j.contains("frames")) {
      const nlohmann::json& frames = j["frames"];
      const bool strings = frames.is_array() && !frames.empty() &&
                           std::all_of(frames.begin(), frames.end(), [](const nlohmann::json& f) { return f.is_string(); });
      if (!frames.is_string() && !strings) {
        throw Error(ErrorKind::Input, where() + " has \"frames\" that is neither a folder nor a list of file names");
      }
      // A folder stays one entry: the Runner lists it when the item runs, so a bad folder costs that item only.
      if (frames.is_string()) l.item.frames.push_back(resolve(frames.get<std::string>()));
      for (const auto& f : frames.is_array() ? frames : nlohmann::json::array()) l.item.frames.push_back(resolve(f.get<std::string>()));
    } else {
      const char* key = j.contains("video") ? "video" : "image";
      if (!j[key].is_string()) throw Error(ErrorKind::Input, where() + " has a \"" + key + "\" that is not a string");
      (j.contains("video") ? l.item.video : l.item.image) = resolve(j[key].get<std::string>());
    }
    const fs::path& named = l.item.input();
    l.item.prompt = j.value("prompt", "");
    if (j.contains("id")) {
      l.id = {j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump(), true, origin};
    } else {
      l.id = {named.stem().string(), false, origin};
    }
    items.push_back(l);
  }
  return items;
}

}  // namespace

std::vector<RunItem> list_batch_items(const BatchOptions& options) {
  const fs::path& source = options.images;
  std::error_code ec;
  std::vector<Listed> listed;
  if (fs::is_directory(source, ec)) {
    listed = from_folder(source);
  } else if (!fs::exists(source, ec)) {
    throw Error(ErrorKind::Input, "--images '" + source.string() +
                                      "' does not exist; pass a folder, a .txt list of paths or a .jsonl manifest");
  } else if (source.extension() == ".jsonl") {
    listed = from_manifest(source);
  } else {
    listed = from_list(source);
  }
  if (listed.empty()) {
    throw Error(ErrorKind::Input, "--images '" + source.string() + "' lists no image (looked for .jpg .jpeg .png "
                                                                    ".webp .bmp .tif .tiff in folders)");
  }
  std::vector<IdRequest> requests;
  for (const Listed& l : listed) requests.push_back(l.id);
  std::vector<std::string> ids;
  try {
    ids = assign_unique_ids(requests);
  } catch (const Error& e) {  // only manifest lines have explicit ids that can collide
    throw Error(e.kind(), "manifest '" + source.string() + "': " + e.what());
  }
  std::vector<RunItem> items;
  for (size_t i = 0; i < listed.size(); ++i) {
    RunItem item = std::move(listed[i].item);
    if (item.prompt.empty()) item.prompt = options.prompt;
    item.id = ids[i];
    item.out_dir = options.out_dir / item.id;
    items.push_back(std::move(item));
  }
  return items;
}

std::vector<RunItem> shard_items(const std::vector<RunItem>& items, const Shard& shard) {
  if (shard.count < 1 || shard.index < 0 || shard.index >= shard.count) {
    throw Error(ErrorKind::Usage, "--shard " + shard.text() + ": use K/N with 0 <= K < N");
  }
  std::vector<RunItem> mine;
  for (size_t i = static_cast<size_t>(shard.index); i < items.size(); i += static_cast<size_t>(shard.count)) {
    mine.push_back(items[i]);
  }
  return mine;
}

}  // namespace attnmap
