#include "run/item_outputs.hpp"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "attnmap/tokenizer.hpp"
#include "attnmap/viewer.hpp"
#include "run/viewer_page.hpp"
#include "tokenizer/display_labels.hpp"

namespace attnmap {

AnswerRecord answer_record(const GreedyAnswer& answer, const GenerationSettings& settings, const Tokenizer& tokenizer) {
  AnswerRecord a;
  std::vector<int64_t> ids;
  for (const AnswerStep& step : answer.tokens) {
    ids.push_back(step.id);
    a.tokens.push_back({step.id, tokenizer.id_to_token(step.id), tokenizer.decode({step.id}), step.probability,
                        step.position});
  }
  a.text = tokenizer.decode(ids);
  a.stopped_on_eos = answer.stopped_on_eos;
  a.max_new_tokens = settings.max_new_tokens;
  a.repetition_penalty = settings.repetition_penalty;
  return a;
}

VideoRecord video_record(const RunItem& item, const DecodedVideo& video, const PreprocessedVideo& inputs,
                         int temporal_patch_size, const ChatPrompt& prompt, const torch::Tensor& position_ids) {
  VideoRecord v;
  v.source = item.frames.empty() ? "video" : "frames";
  v.path = item.frames.empty() ? item.video.string() : item.frames.front().string();
  for (const auto& f : item.frames) v.frame_files.push_back(f.string());
  v.fps = video.info.fps;
  v.total_frames = video.info.total_frames;
  v.frame_indices = video.indices;
  v.sampled_fps = video.sampled_fps;
  v.second_per_grid_t = inputs.second_per_grid_t;
  v.time_interval = inputs.time_interval;
  const double fps = video.info.fps.value_or(24.0);  // transformers' default for frames without a rate
  const size_t n = video.indices.size();
  // Each temporal patch's first token: its own run when the prompt writes text between the patches
  // (Qwen3-VL), else its place in the one run.
  int64_t tokens = 0;
  for (const TokenRun& run : prompt.visual_runs) tokens += run.size();
  const int64_t per_patch = tokens / std::max<int64_t>(1, inputs.grid_t);
  const auto first_token = [&](int64_t k) {
    return static_cast<int64_t>(prompt.visual_runs.size()) == inputs.grid_t
               ? prompt.visual_runs[static_cast<size_t>(k)].start
               : prompt.visual_runs.front().start + k * per_patch;
  };
  const auto time_axis = position_ids.select(0, 0);
  for (int64_t k = 0; k < inputs.grid_t; ++k) {
    VideoRecord::TemporalPatch t;
    for (int j = 0; j < temporal_patch_size; ++j) {
      // The processor fills the last temporal patch with copies of the last frame.
      const size_t at = std::min(n - 1, static_cast<size_t>(k * temporal_patch_size + j));
      t.frames.push_back(video.indices[at]);
      t.timestamps.push_back(static_cast<double>(video.indices[at]) / fps);
    }
    // Read off the positions the forward took, relative to the video's first token.
    t.time_position = time_axis[first_token(k)].item<int64_t>() - time_axis[first_token(0)].item<int64_t>();
    v.temporal_patches.push_back(t);
  }
  return v;
}

namespace {

// A video's JPEGs: layer_XX.jpg is the layer's frame strip (every temporal patch over its frame, one
// scale); grid.jpg stacks the strips of all layers. Answer and relative maps stay in their .npy.
void write_video_images(output::RunFolderWriter& folder, const RunRecord& record, const InferredItem& inferred,
                        const RenderOptions& render) {
  std::vector<std::string> labels;
  for (size_t k = 0; k < record.video->temporal_patches.size(); ++k) {
    labels.push_back(temporal_patch_label(k, record.video->temporal_patches[k]));
  }
  // Real time: a temporal patch lasts second_per_grid_t; at least 100 ms so that short clips stay readable.
  const int delay_ms = std::max(100, static_cast<int>(std::lround(record.video->second_per_grid_t * 1000.0)));
  std::vector<cv::Mat> strips;
  std::vector<std::string> titles;
  for (size_t i = 0; i < record.layers.size(); ++i) {
    const torch::Tensor layer_maps = inferred.maps[static_cast<int64_t>(i)];  // [t, h, w]
    std::vector<torch::Tensor> per_patch;
    for (int64_t k = 0; k < layer_maps.size(0); ++k) per_patch.push_back(layer_maps[k]);
    cv::Mat strip = render_frame_strip(inferred.frames, per_patch, labels, render);
    folder.write_layer_image(record.layers[i].layer, strip);
    std::vector<std::string> titles_k;
    for (const std::string& l : labels) titles_k.push_back("layer " + std::to_string(record.layers[i].layer) + " · " + l);
    folder.write_layer_animation(record.layers[i].layer, render_frame_sequence(inferred.frames, per_patch, titles_k, render),
                                 delay_ms);
    strips.push_back(std::move(strip));
    titles.push_back("layer " + std::to_string(record.layers[i].layer));
  }
  const cv::Mat grid = stack_strips(strips, titles);
  folder.write_grid_image(grid);
}

// vision_block_XX.jpg per block and vision_grid.jpg: the vision maps over the image, or for a video
// each block's frame strip (the temporal patches side by side) and the strips stacked.
void write_vision_images(output::RunFolderWriter& folder, const RunRecord& record, const InferredItem& inferred,
                         const RenderOptions& render) {
  std::vector<torch::Tensor> maps;
  std::vector<cv::Mat> strips;
  std::vector<std::string> labels;
  for (size_t i = 0; i < record.vision->blocks.size(); ++i) {
    const VisionRecord::Block& b = record.vision->blocks[i];
    const torch::Tensor map = inferred.vision_maps[static_cast<int64_t>(i)];
    labels.push_back("vision block " + std::to_string(b.index) + (b.attention == "full" ? " · full" : " · windowed"));
    if (record.video) {
      std::vector<torch::Tensor> per_patch;
      std::vector<std::string> frame_labels;
      for (int64_t k = 0; k < map.size(0); ++k) {
        per_patch.push_back(map[k]);
        frame_labels.push_back("t" + std::to_string(k));
      }
      strips.push_back(render_frame_strip(inferred.frames, per_patch, frame_labels, render));
      folder.write_vision_block_image(b.index, strips.back());
    } else {
      folder.write_vision_block_image(b.index, render_overlay(inferred.original_rgb, map, render));
      maps.push_back(map);
    }
  }
  folder.write_vision_grid_image(record.video ? stack_strips(strips, labels)
                                              : render_grid(inferred.original_rgb, maps, labels, render,
                                                            "one scale shared by all blocks"));
}

}  // namespace

void write_item_images(output::RunFolderWriter& folder, RunRecord& record, const InferredItem& inferred,
                       const Tokenizer& tokenizer, const RenderOptions& render) {
  if (record.vision) write_vision_images(folder, record, inferred, render);
  if (record.video) {
    write_video_images(folder, record, inferred, render);
    return;
  }
  std::vector<torch::Tensor> maps;
  std::vector<std::string> labels;
  for (size_t i = 0; i < record.layers.size(); ++i) {
    const torch::Tensor map = inferred.maps[static_cast<int64_t>(i)];
    folder.write_layer_image(record.layers[i].layer, render_overlay(inferred.original_rgb, map, render));
    maps.push_back(map);
    labels.push_back("layer " + std::to_string(record.layers[i].layer));
  }
  folder.write_grid_image(render_grid(inferred.original_rgb, maps, labels, render));
  if (record.answer) {
    std::vector<int64_t> ids;
    for (const AnswerToken& t : record.answer->tokens) ids.push_back(t.id);
    const std::vector<std::string> token_labels = token_display_labels(ids, tokenizer);
    bool as_text = true;
    for (size_t i = 0; i < record.layers.size(); ++i) {
      std::vector<torch::Tensor> per_token;
      for (int64_t k = 0; k < inferred.answer_maps.size(0); ++k) {
        per_token.push_back(inferred.answer_maps[k][static_cast<int64_t>(i)]);
      }
      bool layer_as_text = true;
      folder.write_answer_strip(record.layers[i].layer, render_answer_strip(inferred.original_rgb, per_token,
                                                                            token_labels, render, &layer_as_text));
      as_text = as_text && layer_as_text;
    }
    record.answer->strip_labels = as_text ? "text" : "index";
  }
  if (record.baseline) {
    for (size_t i = 0; i < record.layers.size(); ++i) {
      folder.write_relative_layer_image(
          record.layers[i].layer,
          render_overlay(inferred.original_rgb, inferred.relative_maps[static_cast<int64_t>(i)], render));
    }
  }
}

void write_item_viewer(output::RunFolderWriter& folder, RunRecord& record, const InferredItem& inferred,
                       const Tokenizer& tokenizer, const RenderOptions& render) {
  ViewerOptions page;
  page.colormap = render.colormap;
  page.opacity = render.alpha;
  ViewerReport report;
  const std::string html = render_viewer_html(
      make_viewer_data(record, tokenizer, inferred.original_rgb, inferred.frames,
                       {inferred.viewer_prompt_rows, inferred.viewer_answer_rows, inferred.viewer_default_maps,
                        inferred.vision_maps, inferred.vision_windows}),
      page, &report);
  folder.write_viewer(html);
  // Recorded in attention.json, which is written after the page.
  record.viewer = ViewerRecord{output::kViewerFile, viewer_detail_name(report.detail),
                               static_cast<int64_t>(report.html_bytes), report.notes};
}

}  // namespace attnmap
