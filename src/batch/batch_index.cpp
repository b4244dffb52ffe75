#include "batch/batch_index.hpp"

#include <system_error>

#include "attnmap/error.hpp"
#include "attnmap/run_folder.hpp"
#include "attnmap/viewer.hpp"
#include "io/atomic_file.hpp"

namespace attnmap {
namespace fs = std::filesystem;

namespace {

bool is_file(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

// A link from the index to a file of the item's folder, relative (the index sits in --out, the
// folder is --out/<id>), so the whole tree can be moved or served anywhere.
std::string href(const fs::path& out_dir, const fs::path& file) {
  return file.lexically_relative(out_dir).generic_string();
}

BatchIndexItem index_row(const BatchItemResult& r, const fs::path& out_dir) {
  BatchIndexItem row;
  row.id = r.item.id;
  row.image = r.item.input().string();
  row.prompt = r.item.prompt;
  row.status = r.status == "error" ? "error" : "ok";
  row.error = r.error;
  if (r.status == "error") return row;
  try {
    const RunRecord record = RunRecord::read(r.item.out_dir);
    if (record.answer) {
      row.answer = record.answer->text;
    } else if (record.prediction) {
      row.answer = record.prediction->text;
      row.probability = record.prediction->probability;
    }
    if (is_file(r.item.out_dir / output::kViewerFile)) row.viewer_href = href(out_dir, r.item.out_dir / output::kViewerFile);
    // The thumbnail: the model's focus layer when it was drawn, else the last layer drawn (a video: its GIF).
    std::vector<int64_t> candidates;
    if (record.focus_layer) candidates.push_back(*record.focus_layer);
    if (!record.layers.empty()) candidates.push_back(record.layers.back().layer);
    for (const int64_t layer : candidates) {
      // A video's layer_XX.jpg is a wide strip that a square thumbnail crops to its captions; its
      // animation shows every temporal patch at thumbnail size.
      const fs::path image =
          r.item.out_dir / (record.video ? output::layer_animation_file_name(layer) : output::layer_file_name(layer));
      if (is_file(image)) {
        row.thumbnail_href = href(out_dir, image);
        break;
      }
    }
  } catch (const Error& e) {
    row.status = "error";
    row.error = e.what();
  }
  return row;
}

}  // namespace

void write_batch_index(const BatchSummary& summary, const fs::path& out_dir, const Shard& shard) {
  std::vector<BatchIndexItem> rows;
  rows.reserve(summary.items.size());
  for (const BatchItemResult& r : summary.items) rows.push_back(index_row(r, out_dir));
  BatchIndexOptions options;
  options.title = "attnmap batch: " + out_dir.filename().string() + (shard.count > 1 ? " (shard " + shard.text() + ")" : "");
  write_file_atomically(out_dir / output::index_file_name(shard), render_batch_index_html(rows, options));
}

}  // namespace attnmap
