// Test-only tool for tests/python/test_viewer_browser.py: renders a viewer page or a batch index
// from a JSON description through the library's render functions, and prints what it made.
//
//   attnmap_viewer_fixture viewer DESC.json OUT.html
//     DESC: {"image_jpeg": path|null, "merged_h", "merged_w", "layers": [...], "heads",
//            "tokens": [...], "roles": ["system"|"image"|"prompt"|"answer", ...], "image_start",
//            "query_positions": [...], "rows": path of raw float32 [layers, heads, queries, seq],
//            "maps": path of raw float32 [layers, merged_h, merged_w] ([layers, frames, merged_h, merged_w]
//            for a video), "frames": t, "frame_jpegs": [path, ...], "frame_labels": [...] (a video), "next_token",
//            "next_token_probability", "answer", "metadata": [...], "title",
//            "vision": {"blocks": [...], "attention": ["full"|"window", ...], "grid_t", "grid_h", "grid_w",
//                       "patch_size", "window_patches", "maps": path of raw float32 [blocks, grid_t, grid_h, grid_w],
//                       "windows": [window id per patch, t-major raster], "query", "query_patches": [...]}
//            (optional: ViewerData::vision, the --vision-blocks section; absent or null: none),
//            "options": {"budget_bytes", "compression_level", "colormap", "opacity", "initial_layer_index"}}
//   attnmap_viewer_fixture index DESC.json OUT.html
//     DESC: {"title", "page_size", "items": [{"id", "image", "prompt", "answer", "probability",
//            "status", "error", "viewer_href", "thumbnail_href"}, ...]}
// Prints one JSON line: {"detail", "html_bytes", "data_bytes_raw", "data_bytes_compressed", "notes"}.
#include "attnmap/error.hpp"
#include "attnmap/viewer.hpp"

#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <stdexcept>

namespace {

using nlohmann::json;

std::vector<unsigned char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<float> read_f32(const std::string& path) {
  const auto bytes = read_bytes(path);
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

attnmap::TokenRole role_of(const std::string& name) {
  if (name == "image") return attnmap::TokenRole::Image;
  if (name == "prompt") return attnmap::TokenRole::Prompt;
  if (name == "answer") return attnmap::TokenRole::Answer;
  return attnmap::TokenRole::System;
}

void write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: attnmap_viewer_fixture viewer|index DESC.json OUT.html\n";
    return 2;
  }
  try {
    const std::string mode = argv[1];
    std::ifstream in(argv[2]);
    const json desc = json::parse(in);
    if (mode == "index") {
      std::vector<attnmap::BatchIndexItem> items;
      for (const auto& it : desc.at("items")) {
        attnmap::BatchIndexItem item;
        item.id = it.value("id", "");
        item.image = it.value("image", "");
        item.prompt = it.value("prompt", "");
        item.answer = it.value("answer", "");
        item.probability = it.value("probability", -1.0);
        item.status = it.value("status", "ok");
        item.error = it.value("error", "");
        item.viewer_href = it.value("viewer_href", "");
        item.thumbnail_href = it.value("thumbnail_href", "");
        items.push_back(std::move(item));
      }
      attnmap::BatchIndexOptions options;
      options.title = desc.value("title", options.title);
      options.page_size = desc.value("page_size", options.page_size);
      const std::string page = attnmap::render_batch_index_html(items, options);
      write(argv[3], page);
      std::cout << json{{"html_bytes", page.size()}}.dump() << "\n";
      return 0;
    }
    attnmap::ViewerData d;
    if (desc.contains("image_jpeg") && desc["image_jpeg"].is_string()) d.image_jpeg = read_bytes(desc["image_jpeg"]);
    d.merged_h = desc.at("merged_h");
    d.merged_w = desc.at("merged_w");
    d.frames = desc.value("frames", 1);
    for (const auto& path : desc.value("frame_jpegs", std::vector<std::string>{}))
      d.frame_jpegs.push_back(read_bytes(path));
    d.frame_labels = desc.value("frame_labels", std::vector<std::string>{});
    d.layers = desc.at("layers").get<std::vector<int>>();
    d.heads = desc.at("heads");
    d.tokens = desc.at("tokens").get<std::vector<std::string>>();
    for (const auto& r : desc.at("roles")) d.roles.push_back(role_of(r.get<std::string>()));
    d.image_start = desc.at("image_start");
    d.query_positions = desc.at("query_positions").get<std::vector<int>>();
    d.rows = read_f32(desc.at("rows"));
    d.maps = read_f32(desc.at("maps"));
    d.next_token = desc.value("next_token", "");
    d.next_token_probability = desc.value("next_token_probability", -1.0);
    d.answer = desc.value("answer", "");
    d.metadata = desc.value("metadata", std::vector<std::string>{});
    d.title = desc.value("title", d.title);
    if (desc.contains("vision") && desc["vision"].is_object()) {
      const auto& j = desc["vision"];
      attnmap::ViewerVision v;
      v.blocks = j.at("blocks").get<std::vector<int>>();
      v.attention = j.at("attention").get<std::vector<std::string>>();
      v.grid_t = j.value("grid_t", v.grid_t);
      v.grid_h = j.at("grid_h");
      v.grid_w = j.at("grid_w");
      v.patch_size = j.value("patch_size", v.patch_size);
      v.window_patches = j.value("window_patches", v.window_patches);
      v.maps = read_f32(j.at("maps"));
      v.windows = j.at("windows").get<std::vector<int>>();
      v.query = j.value("query", "mean");
      v.query_patches = j.value("query_patches", std::vector<int>{});
      d.vision = std::move(v);
    }
    attnmap::ViewerOptions options;
    if (desc.contains("options")) {
      const auto& o = desc["options"];
      options.budget_bytes = o.value("budget_bytes", options.budget_bytes);
      options.compression_level = o.value("compression_level", options.compression_level);
      options.colormap = o.value("colormap", options.colormap);
      options.opacity = o.value("opacity", options.opacity);
      options.initial_layer_index = o.value("initial_layer_index", options.initial_layer_index);
    }
    attnmap::ViewerReport report;
    const std::string page = attnmap::render_viewer_html(d, options, &report);
    write(argv[3], page);
    std::cout << json{{"detail", attnmap::viewer_detail_name(report.detail)},
                      {"html_bytes", report.html_bytes},
                      {"data_bytes_raw", report.data_bytes_raw},
                      {"data_bytes_compressed", report.data_bytes_compressed},
                      {"notes", report.notes}}
                     .dump()
              << "\n";
    return 0;
  } catch (const attnmap::Error& e) {
    std::cerr << "attnmap_viewer_fixture: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "attnmap_viewer_fixture: " << e.what() << "\n";
    return 1;
  }
}
