#include "run/item_outputs.hpp"

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

void write_item_images(output::RunFolderWriter& folder, RunRecord& record, const InferredItem& inferred,
                       const Tokenizer& tokenizer, const RenderOptions& render) {
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
      make_viewer_data(record, tokenizer, inferred.original_rgb,
                       {inferred.viewer_prompt_rows, inferred.viewer_answer_rows, inferred.viewer_default_maps}),
      page, &report);
  folder.write_viewer(html);
  // Recorded in attention.json, which is written after the page.
  record.viewer = ViewerRecord{output::kViewerFile, viewer_detail_name(report.detail),
                               static_cast<int64_t>(report.html_bytes), report.notes};
}

}  // namespace attnmap
