// All-or-nothing writes of one item's folder: attention.json, the completion marker, goes last.
#include <system_error>

#include "io/atomic_file.hpp"
#include "io/npy.hpp"
#include "attnmap/render.hpp"
#include "attnmap/run_folder.hpp"
#include "render/write_gif.hpp"

namespace attnmap::output {

namespace fs = std::filesystem;

RunFolderWriter::RunFolderWriter(fs::path dir) : dir_(std::move(dir)) {
  ensure_directory(dir_);
  // A stale attention.json would mark the folder complete while its other files change.
  std::error_code ignored;
  fs::remove(dir_ / kAttentionFile, ignored);
  fs::remove(dir_ / kAnswerMapsFile, ignored);
  fs::remove(dir_ / kRelativeMapsFile, ignored);
  fs::remove(dir_ / kViewerFile, ignored);
  fs::remove(dir_ / kVisionMapsFile, ignored);
}

RunFolderWriter::~RunFolderWriter() {
  if (committed_) return;
  std::error_code ignored;
  for (const fs::path& path : written_) fs::remove(path, ignored);
}

void RunFolderWriter::write_jpeg(const std::string& name, const cv::Mat& bgr) {
  const fs::path file = dir_ / name;
  written_.push_back(file);
  write_jpeg_atomically(file, bgr);
}

void RunFolderWriter::write_npy(const std::string& name, const torch::Tensor& array) {
  const fs::path file = dir_ / name;
  written_.push_back(file);
  save_npy(file, array);
}

void RunFolderWriter::write_layer_image(int64_t layer, const cv::Mat& bgr) { write_jpeg(layer_file_name(layer), bgr); }
void RunFolderWriter::write_layer_animation(int64_t layer, const std::vector<cv::Mat>& frames_bgr, int delay_ms) {
  const fs::path file = dir_ / layer_animation_file_name(layer);
  written_.push_back(file);
  write_gif_atomically(file, frames_bgr, delay_ms);
}
void RunFolderWriter::write_grid_image(const cv::Mat& bgr) { write_jpeg(kGridFile, bgr); }
void RunFolderWriter::write_maps(const torch::Tensor& maps) { write_npy(kMapsFile, maps); }
void RunFolderWriter::write_answer_maps(const torch::Tensor& maps) { write_npy(kAnswerMapsFile, maps); }
void RunFolderWriter::write_answer_strip(int64_t layer, const cv::Mat& bgr) {
  write_jpeg(answer_strip_file_name(layer), bgr);
}
void RunFolderWriter::write_relative_maps(const torch::Tensor& maps) { write_npy(kRelativeMapsFile, maps); }
void RunFolderWriter::write_relative_layer_image(int64_t layer, const cv::Mat& bgr) {
  write_jpeg(relative_layer_file_name(layer), bgr);
}

void RunFolderWriter::write_vision_maps(const torch::Tensor& maps) { write_npy(kVisionMapsFile, maps); }
void RunFolderWriter::write_vision_block_image(int64_t block, const cv::Mat& bgr) {
  write_jpeg(vision_block_file_name(block), bgr);
}
void RunFolderWriter::write_vision_grid_image(const cv::Mat& bgr) { write_jpeg(kVisionGridFile, bgr); }

void RunFolderWriter::write_viewer(const std::string& html) {
  const fs::path file = dir_ / kViewerFile;
  written_.push_back(file);
  write_file_atomically(file, html);
}

void RunFolderWriter::commit(const RunRecord& record) {
  write_file_atomically(dir_ / kAttentionFile, record.to_json().dump(2) + "\n");
  committed_ = true;
}

void dump_model_inputs(const fs::path& dir, const torch::Tensor& input_ids, const torch::Tensor& pixel_values,
                       const torch::Tensor& image_grid_thw, const torch::Tensor& position_ids,
                       const std::vector<int64_t>& query_rows) {
  ensure_directory(dir);
  save_npy(dir / "input_ids.npy", input_ids);
  save_npy(dir / "pixel_values.npy", pixel_values);
  save_npy(dir / "image_grid_thw.npy", image_grid_thw);
  save_npy(dir / "position_ids.npy", position_ids);
  save_npy(dir / "query_positions.npy", torch::tensor(query_rows, torch::kInt64));
}

void dump_video_inputs(const fs::path& dir, const torch::Tensor& pixel_values_videos, const torch::Tensor& video_grid_thw) {
  ensure_directory(dir);
  save_npy(dir / "pixel_values_videos.npy", pixel_values_videos);
  save_npy(dir / "video_grid_thw.npy", video_grid_thw);
}

}  // namespace attnmap::output
