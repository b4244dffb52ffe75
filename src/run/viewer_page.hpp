// One run's viewer.html (docs/viewer.md): the record, the tokens and the kept per-head rows turned
// into the viewer's plain ViewerData, then into the page.
#pragma once

#include <opencv2/core.hpp>
#include <torch/types.h>

#include <string>
#include <vector>

#include "attnmap/run_folder.hpp"
#include "attnmap/viewer.hpp"

namespace attnmap {

class Tokenizer;

struct ViewerRows {
  // Per layer float32 [heads, prompt tokens, S]: every head's row of every prompt token.
  std::vector<torch::Tensor> prompt;
  // Per answer token k, per layer float32 [heads, S + k]: the row that chose token k (design.md).
  std::vector<std::vector<torch::Tensor>> answer;
  // float32 [layers, merged_h, merged_w] (a video: [layers, t, merged_h, merged_w]): heads mean over the
  // prompt tokens (the page's default view).
  torch::Tensor default_maps;
  // --vision-blocks (record.vision): InferredItem::vision_maps and vision_windows; undefined otherwise.
  torch::Tensor vision_maps;
  torch::Tensor vision_windows;
};

// The page's data. The answer tokens (when the run generated some) follow the prompt in the
// sequence; the query of answer token k is its own position, showing the row that chose it. A video
// (record.video) gets a time axis: `frames` holds the picture of each temporal patch (InferredItem::frames).
// Temporal patch k's label, on the viewer's slider and over the frame strips and animations:
// "t1 · frames 8–12 · 1.00–1.50 s", or "t2 · frame 4 · 0.17 s" for a patch of one repeated frame.
std::string temporal_patch_label(std::size_t k, const VideoRecord::TemporalPatch& patch);

ViewerData make_viewer_data(const RunRecord& record, const Tokenizer& tokenizer, const cv::Mat& original_rgb,
                            const std::vector<cv::Mat>& frames, const ViewerRows& rows);

}  // namespace attnmap
