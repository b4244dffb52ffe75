#include "run/viewer_page.hpp"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "attnmap/error.hpp"
#include "attnmap/tokenizer.hpp"
#include "tokenizer/display_labels.hpp"

namespace attnmap {
namespace {

// The page shows the image under the heatmap at screen size: a 4,000-pixel photo would spend the
// page's 20 MB budget on pixels nobody sees.
constexpr int kViewerImageLongSide = 1024;
// A video's pictures (one per temporal patch) share the page's 20 MB budget with the attention data:
// together they get at most this many JPEG bytes (base64 makes it 4/3 of that on the page), so a
// long video shows smaller frames rather than crowding out the per-head detail.
constexpr std::size_t kFramePicturesBytes = 8'000'000;
constexpr int kFrameMinLongSide = 96;  // below this a frame is not worth showing; the budget rule takes over

std::vector<unsigned char> screen_jpeg(const cv::Mat& original_rgb, int long_side = kViewerImageLongSide) {
  cv::Mat bgr;
  const double scale = std::min(1.0, double(long_side) / std::max(original_rgb.cols, original_rgb.rows));
  if (scale < 1.0) {
    cv::resize(original_rgb, bgr, cv::Size(), scale, scale, cv::INTER_AREA);
    cv::cvtColor(bgr, bgr, cv::COLOR_RGB2BGR);
  } else {
    cv::cvtColor(original_rgb, bgr, cv::COLOR_RGB2BGR);
  }
  std::vector<unsigned char> jpeg;
  cv::imencode(".jpg", bgr, jpeg, {cv::IMWRITE_JPEG_QUALITY, 88});
  return jpeg;
}

struct FramePictures {
  std::vector<std::vector<unsigned char>> jpegs;
  int long_side = 0;  // the long side they were encoded at (0: the frames' own size)
};

// Every temporal patch's picture at screen size, shrunk until they fit kFramePicturesBytes together.
FramePictures frame_pictures(const std::vector<cv::Mat>& frames) {
  FramePictures out;
  if (frames.empty()) return out;
  const int own = std::max(frames.front().cols, frames.front().rows);
  int long_side = std::min(own, kViewerImageLongSide);
  for (;;) {
    out.jpegs.clear();
    std::size_t total = 0;
    for (const cv::Mat& f : frames) {
      out.jpegs.push_back(screen_jpeg(f, long_side));
      total += out.jpegs.back().size();
    }
    out.long_side = long_side < own ? long_side : 0;
    if (total <= kFramePicturesBytes || long_side <= kFrameMinLongSide) return out;
    // JPEG bytes grow about with the pixel count: scale the side by the square root of the excess.
    const double shrink = std::sqrt(double(kFramePicturesBytes) / double(total)) * 0.95;
    long_side = std::max(kFrameMinLongSide, static_cast<int>(long_side * shrink));
  }
}

// The time axis of a video's page: the temporal patches' labels and pictures.
void fill_video(ViewerData& d, const VideoRecord& video, const std::vector<cv::Mat>& frames) {
  d.frames = static_cast<int>(video.temporal_patches.size());
  for (std::size_t k = 0; k < video.temporal_patches.size(); ++k) {
    d.frame_labels.push_back(temporal_patch_label(k, video.temporal_patches[k]));
  }
  FramePictures pictures = frame_pictures(frames);
  d.frame_jpegs = std::move(pictures.jpegs);
  if (pictures.long_side > 0 && pictures.long_side < kViewerImageLongSide) {
    d.metadata.push_back("frames shown at " + std::to_string(pictures.long_side) +
                         " pixels on their long side, to keep the page within its size budget");
  }
}

void append(std::vector<float>& out, const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kFloat32).contiguous();
  const size_t at = out.size();
  out.resize(at + static_cast<size_t>(c.numel()));
  std::memcpy(out.data() + at, c.data_ptr<float>(), static_cast<size_t>(c.numel()) * sizeof(float));
}

// The "Vision tower" section: the maps [blocks, t, h, w] and each patch's window, as plain vectors.
ViewerVision vision_data(const VisionRecord& vision, const RunRecord& record, const torch::Tensor& maps,
                         const torch::Tensor& windows) {
  ViewerVision v;
  for (const VisionRecord::Block& b : vision.blocks) {
    v.blocks.push_back(static_cast<int>(b.index));
    v.attention.push_back(b.attention);
  }
  v.grid_t = static_cast<int>(record.grid.t);
  v.grid_h = static_cast<int>(record.grid.h);
  v.grid_w = static_cast<int>(record.grid.w);
  v.patch_size = static_cast<int>(vision.patch_size);
  v.window_patches = vision.patch_size > 0 ? static_cast<int>(vision.window_size / vision.patch_size) : 0;
  append(v.maps, maps);
  const torch::Tensor ids = windows.to(torch::kInt64).contiguous();
  v.windows.assign(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
  v.query = vision.query;
  v.query_patches.assign(vision.query_patches.begin(), vision.query_patches.end());
  return v;
}

}  // namespace

namespace {
// "a–b", or "a" when the range is one value.
std::string range_text(const std::string& a, const std::string& b) { return a == b ? a : a + "–" + b; }

std::string seconds_text(double s) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2f", s);
  return buffer;
}

}  // namespace

std::string temporal_patch_label(std::size_t k, const VideoRecord::TemporalPatch& patch) {
  std::string label = "t" + std::to_string(k);
  if (!patch.frames.empty()) {
    const std::string a = std::to_string(patch.frames.front()), b = std::to_string(patch.frames.back());
    label += (a == b ? " · frame " : " · frames ") + range_text(a, b);
  }
  if (!patch.timestamps.empty()) {
    label += " · " + range_text(seconds_text(patch.timestamps.front()), seconds_text(patch.timestamps.back())) + " s";
  }
  return label;
}


ViewerData make_viewer_data(const RunRecord& record, const Tokenizer& tokenizer, const cv::Mat& original_rgb,
                            const std::vector<cv::Mat>& frames, const ViewerRows& rows) {
  ViewerData d;
  if (!record.video) d.image_jpeg = screen_jpeg(original_rgb);
  d.merged_h = static_cast<int>(record.grid.merged_h);
  d.merged_w = static_cast<int>(record.grid.merged_w);
  for (const LayerStats& s : record.layers) d.layers.push_back(static_cast<int>(s.layer));
  d.heads = rows.prompt.empty() ? 0 : static_cast<int>(rows.prompt.front().size(0));

  std::vector<int64_t> ids = record.token_ids;
  const int64_t prompt_length = static_cast<int64_t>(ids.size());
  if (record.answer) {
    for (const AnswerToken& t : record.answer->tokens) ids.push_back(t.id);
  }
  const int64_t seq = static_cast<int64_t>(ids.size());
  d.tokens = token_display_labels(ids, tokenizer);
  // The visual tokens are the runs (a Qwen3-VL video has timestamp text between its temporal patches).
  const std::vector<RunRecord::Span> runs =
      record.image_token_runs.empty() ? std::vector<RunRecord::Span>{record.image_token_span} : record.image_token_runs;
  std::vector<bool> in_runs(static_cast<size_t>(seq), false);
  for (const RunRecord::Span& r : runs) {
    for (int64_t i = std::max<int64_t>(0, r.start); i < std::min(r.end, seq); ++i) in_runs[static_cast<size_t>(i)] = true;
  }
  const auto visual = [&](int64_t i) { return in_runs[static_cast<size_t>(i)]; };
  for (int64_t i = 0; i < seq; ++i) {
    TokenRole role = TokenRole::System;
    if (visual(i)) role = TokenRole::Image;
    if (i >= record.prompt_token_span.start && i < record.prompt_token_span.end) role = TokenRole::Prompt;
    if (i >= prompt_length) role = TokenRole::Answer;
    d.roles.push_back(role);
  }
  d.image_start = static_cast<size_t>(record.image_token_span.start);
  if (runs.size() > 1) {
    for (const RunRecord::Span& r : runs) d.frame_starts.push_back(static_cast<size_t>(r.start));
  }
  for (int64_t i = record.prompt_token_span.start; i < record.prompt_token_span.end; ++i) {
    d.query_positions.push_back(static_cast<int>(i));
  }
  const size_t answers = rows.answer.size();
  for (size_t k = 0; k < answers; ++k) d.query_positions.push_back(static_cast<int>(prompt_length + static_cast<int64_t>(k)));

  // [layers, heads, queries, seq]: prompt rows padded with zeros over the answer (a prompt token
  // cannot see it), then each answer token's row padded to the whole sequence.
  for (size_t l = 0; l < rows.prompt.size(); ++l) {
    std::vector<torch::Tensor> queries;
    queries.push_back(torch::constant_pad_nd(rows.prompt[l], {0, seq - rows.prompt[l].size(-1)}));
    for (size_t k = 0; k < answers; ++k) {
      const torch::Tensor& row = rows.answer[k][l];  // [heads, S + k]
      queries.push_back(torch::constant_pad_nd(row, {0, seq - row.size(-1)}).unsqueeze(1));
    }
    append(d.rows, torch::cat(queries, 1));  // [heads, queries, seq]
  }
  append(d.maps, rows.default_maps);

  if (record.prediction) {
    d.next_token = record.prediction->text;
    d.next_token_probability = record.prediction->probability;
  }
  if (record.answer) d.answer = record.answer->text;
  d.title = "attnmap: " + (record.id.empty() ? std::string("run") : record.id);
  d.metadata.push_back("model: " + (record.model.model_name.empty() ? record.model.path : record.model.model_name));
  d.metadata.push_back("prompt: " + record.prompt);
  const std::string size = std::to_string(record.image.width) + "x" + std::to_string(record.image.height);
  const std::string grid = std::to_string(record.grid.merged_h) + "x" + std::to_string(record.grid.merged_w);
  if (record.video) {
    d.metadata.push_back("video: " + record.image.path + " (" + size + ", " +
                         std::to_string(record.video->frame_indices.size()) + " frames sampled, " +
                         std::to_string(record.video->temporal_patches.size()) + "x" + grid + " video tokens)");
  } else {
    d.metadata.push_back("image: " + record.image.path + " (" + size + ", " + grid + " image tokens)");
  }
  d.metadata.push_back("device: " + record.device + ", " + record.dtype);
  // After the other metadata lines: a note on shrunk frames comes last.
  if (record.video) fill_video(d, *record.video, frames);
  if (record.vision && rows.vision_maps.defined()) {
    d.vision = vision_data(*record.vision, record, rows.vision_maps, rows.vision_windows);
  }
  return d;
}

}  // namespace attnmap
