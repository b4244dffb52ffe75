// RunRecord -> attention.json. The key order is the documented one (docs/design.md); tests and
// users' scripts read these keys, so a change here is a schema change.
#include "attnmap/run_folder.hpp"

namespace attnmap {

int RunRecord::recorded_model_layers() const {
  if (!model.metadata.is_object() || !model.metadata.contains("text")) return 0;
  const nlohmann::json& text = model.metadata["text"];
  if (!text.is_object() || !text.contains("num_hidden_layers") || !text["num_hidden_layers"].is_number_integer()) return 0;
  return text["num_hidden_layers"].get<int>();
}

nlohmann::ordered_json RunRecord::to_json() const {
  using json = nlohmann::ordered_json;
  const auto layer_list_of = [](const std::vector<LayerStats>& stats) {
    json list = json::array();
    for (const LayerStats& s : stats) {
      list.push_back({{"layer", s.layer}, {"min", s.min}, {"max", s.max}, {"sum", s.sum}, {"entropy", s.entropy},
                      {"top1_share", s.top1_share}});
    }
    return list;
  };
  const json layer_list = layer_list_of(layers);
  // One run (empty image_token_runs) is the span itself.
  json runs = json::array();
  for (const Span& run : image_token_runs.empty() ? std::vector<Span>{image_token_span} : image_token_runs) {
    runs.push_back({{"start", run.start}, {"end", run.end}});
  }
  json doc = {
      {"schema_version", kAttentionSchemaVersion},
      {"attnmap_version", attnmap_version},
      {"model",
       {{"path", model.path},
        {"sha256", model.sha256},
        {"model_family", model.model_family},
        {"model_name", model.model_name},
        {"format_version", model.format_version},
        {"exported_dtype", model.exported_dtype},
        {"metadata", model.metadata}}},
      {"options",
       {{"query", options.query.text()},
        {"layers", options.layers.text()},
        {"heads", options.heads.text()},
        {"colormap", options.colormap},
        {"alpha", options.alpha},
        {"blur", options.blur},
        {"predict", options.predict},
        {"system_prompt", options.system_prompt},
        {"min_pixels", options.min_pixels},
        {"max_pixels", options.max_pixels}}},
      {"device", device},
      {"dtype", dtype},
      {"image",
       {{"path", image.path},
        {"width", image.width},
        {"height", image.height},
        {"resized_width", image.resized_width},
        {"resized_height", image.resized_height}}},
      {"grid", {{"t", grid.t}, {"h", grid.h}, {"w", grid.w}, {"merged_h", grid.merged_h}, {"merged_w", grid.merged_w}}},
      {"id", id},
      {"prompt", prompt},
      {"tokens", {{"ids", token_ids}, {"strings", token_strings}}},
      {"image_token_span", {{"start", image_token_span.start}, {"end", image_token_span.end}}},
      {"image_token_runs", runs},
      {"prompt_token_span", {{"start", prompt_token_span.start}, {"end", prompt_token_span.end}}},
      {"query_positions", query_positions},
      {"layers", layer_list},
      {"maps", {{"file", output::kMapsFile}, {"shape", maps_shape}, {"dtype", "float32"}}},
      {"focus_layer", focus_layer ? json(*focus_layer) : json(nullptr)},
      {"prediction", nullptr},
      {"timings_ms", timings},
  };
  if (peak_device_memory_mib) doc["peak_device_memory_mib"] = *peak_device_memory_mib;
  if (prediction) {
    doc["prediction"] = {{"token_id", prediction->token_id},
                         {"token", prediction->token},
                         {"text", prediction->text},
                         {"probability", prediction->probability}};
  }
  if (answer) {
    json tokens = json::array();
    for (const AnswerToken& t : answer->tokens) {
      tokens.push_back({{"id", t.id}, {"token", t.token}, {"text", t.text}, {"probability", t.probability},
                        {"position", t.position}});
    }
    doc["answer"] = {{"text", answer->text},
                     {"tokens", tokens},
                     {"stopped_on_eos", answer->stopped_on_eos},
                     {"max_new_tokens", answer->max_new_tokens},
                     {"repetition_penalty", answer->repetition_penalty},
                     {"query_tokens", answer->query_tokens},
                     {"strip_labels", answer->strip_labels},
                     {"maps", {{"file", output::kAnswerMapsFile}, {"shape", answer->maps_shape}, {"dtype", "float32"}}}};
  }
  if (baseline) {
    doc["baseline"] = {{"prompt", baseline->prompt},
                       {"token_ids", baseline->token_ids},
                       {"query_positions", baseline->query_positions},
                       {"epsilon", baseline->epsilon},
                       {"layers", layer_list_of(baseline->layers)},
                       {"relative_maps",
                        {{"file", output::kRelativeMapsFile}, {"shape", baseline->maps_shape}, {"dtype", "float32"}}}};
  }
  if (viewer) {
    doc["viewer"] = {{"file", viewer->file}, {"detail", viewer->detail}, {"html_bytes", viewer->html_bytes},
                     {"notes", viewer->notes}};
  }
  if (video) {
    json patches = json::array();
    for (const VideoRecord::TemporalPatch& t : video->temporal_patches) {
      patches.push_back({{"frames", t.frames}, {"timestamps", t.timestamps}, {"time_position", t.time_position}});
    }
    doc["video"] = {{"source", video->source},
                    {"path", video->path},
                    {"frame_files", video->frame_files},
                    {"fps", video->fps ? json(*video->fps) : json(nullptr)},
                    {"total_frames", video->total_frames},
                    {"frame_indices", video->frame_indices},
                    {"sampled_fps", video->sampled_fps},
                    {"second_per_grid_t", video->second_per_grid_t},
                    {"time_interval", video->time_interval},
                    {"temporal_patches", patches}};
  }
  if (vision) {
    json blocks = json::array();
    for (const VisionRecord::Block& b : vision->blocks) {
      blocks.push_back({{"block", b.index}, {"attention", b.attention}, {"min", b.min}, {"max", b.max}, {"sum", b.sum}});
    }
    doc["vision"] = {{"blocks_requested", vision->blocks_requested},
                     {"query", vision->query},
                     {"heads", vision->heads},
                     {"blocks", blocks},
                     {"query_patches", vision->query_patches},
                     {"window_size", vision->window_size},
                     {"patch_size", vision->patch_size},
                     {"maps", {{"file", output::kVisionMapsFile}, {"shape", vision->maps_shape}, {"dtype", "float32"}}}};
    if (vision->peak) {  // text-peak only
      doc["vision"]["peak"] = {{"layer", vision->peak->layer}, {"t", vision->peak->t}, {"row", vision->peak->row},
                               {"col", vision->peak->col}, {"value", vision->peak->value}};
    }
  }
  return doc;
}

}  // namespace attnmap
