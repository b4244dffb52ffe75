#include "run/viewer_page.hpp"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cstring>

#include "attnmap/error.hpp"
#include "attnmap/tokenizer.hpp"
#include "tokenizer/display_labels.hpp"

namespace attnmap {
namespace {

// The page shows the image under the heatmap at screen size: a 4,000-pixel photo would spend the
// page's 20 MB budget on pixels nobody sees.
constexpr int kViewerImageLongSide = 1024;

std::vector<unsigned char> screen_jpeg(const cv::Mat& original_rgb) {
  cv::Mat bgr;
  const double scale = std::min(1.0, double(kViewerImageLongSide) / std::max(original_rgb.cols, original_rgb.rows));
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

void append(std::vector<float>& out, const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kFloat32).contiguous();
  const size_t at = out.size();
  out.resize(at + static_cast<size_t>(c.numel()));
  std::memcpy(out.data() + at, c.data_ptr<float>(), static_cast<size_t>(c.numel()) * sizeof(float));
}

}  // namespace

ViewerData make_viewer_data(const RunRecord& record, const Tokenizer& tokenizer, const cv::Mat& original_rgb,
                            const ViewerRows& rows) {
  ViewerData d;
  d.image_jpeg = screen_jpeg(original_rgb);
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
  for (int64_t i = 0; i < seq; ++i) {
    TokenRole role = TokenRole::System;
    if (i >= record.image_token_span.start && i < record.image_token_span.end) role = TokenRole::Image;
    if (i >= record.prompt_token_span.start && i < record.prompt_token_span.end) role = TokenRole::Prompt;
    if (i >= prompt_length) role = TokenRole::Answer;
    d.roles.push_back(role);
  }
  d.image_start = static_cast<size_t>(record.image_token_span.start);
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
  d.metadata.push_back("image: " + record.image.path + " (" + std::to_string(record.image.width) + "x" +
                       std::to_string(record.image.height) + ", " + std::to_string(record.grid.merged_h) + "x" +
                       std::to_string(record.grid.merged_w) + " image tokens)");
  d.metadata.push_back("device: " + record.device + ", " + record.dtype);
  return d;
}

}  // namespace attnmap
