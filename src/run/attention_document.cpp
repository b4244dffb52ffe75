#include "run/attention_document.hpp"

#include "attnmap/tokenizer.hpp"

namespace attnmap {

nlohmann::ordered_json attention_document(const Runner& runner, const InferredItem& inferred, const StageTimings& timings) {
  using json = nlohmann::ordered_json;
  const Model& model = runner.model();
  const RunOptions& options = runner.options();
  const PreparedItem& p = inferred.prepared;
  const ModelMetadata& meta = model.metadata();
  const int64_t merge = meta.vision.spatial_merge_size;

  json tokens_strings = json::array();
  for (const int64_t id : p.prompt.ids) tokens_strings.push_back(model.tokenizer().id_to_token(id));

  json layers = json::array();
  for (const LayerStats& s : inferred.stats) {
    layers.push_back({{"layer", s.layer}, {"min", s.min}, {"max", s.max}, {"sum", s.sum}, {"entropy", s.entropy}});
  }

  json doc = {
      {"schema_version", kAttentionSchemaVersion},
      {"attnmap_version", ATTNMAP_VERSION},
      {"model",
       {{"path", model.path().string()},
        {"sha256", model.sha256()},
        {"model_family", meta.model_family},
        {"model_name", meta.model_name},
        {"format_version", meta.format_version},
        {"exported_dtype", meta.dtype},
        {"metadata", meta.raw}}},
      {"options",
       {{"query", options.query},
        {"layers", options.layers},
        {"heads", options.heads},
        {"colormap", options.render.colormap},
        {"alpha", options.render.alpha},
        {"blur", options.render.blur_sigma},
        {"predict", options.predict},
        {"system_prompt", options.system_prompt},
        {"min_pixels", runner.preprocess_params().min_pixels},
        {"max_pixels", runner.preprocess_params().max_pixels}}},
      {"device", model.device_name()},
      {"dtype", model.dtype_name()},
      {"image",
       {{"path", p.item.image.string()},
        {"width", p.original_rgb.cols},
        {"height", p.original_rgb.rows},
        {"resized_width", p.image.resized_width},
        {"resized_height", p.image.resized_height}}},
      {"grid",
       {{"t", p.image.grid_t},
        {"h", p.image.grid_h},
        {"w", p.image.grid_w},
        {"merged_h", p.image.grid_h / merge},
        {"merged_w", p.image.grid_w / merge}}},
      {"id", p.item.id},
      {"prompt", p.item.prompt},
      {"tokens", {{"ids", p.prompt.ids}, {"strings", tokens_strings}}},
      {"image_token_span", {{"start", p.prompt.image_start}, {"end", p.prompt.image_end}}},
      {"prompt_token_span", {{"start", p.prompt.prompt_start}, {"end", p.prompt.prompt_end}}},
      {"query_positions", p.query_rows},
      {"layers", layers},
      {"maps", {{"file", "maps.npy"}, {"shape", inferred.maps.sizes().vec()}, {"dtype", "float32"}}},
      {"focus_layer", meta.focus_layer ? json(*meta.focus_layer) : json(nullptr)},
      {"prediction", nullptr},
      {"timings_ms", timings},
  };
  if (inferred.peak_device_memory_bytes) {
    doc["peak_device_memory_mib"] = static_cast<double>(*inferred.peak_device_memory_bytes) / (1024.0 * 1024.0);
  }
  if (inferred.prediction) {
    doc["prediction"] = {{"token_id", inferred.prediction->token_id},
                         {"token", inferred.prediction->token},
                         {"text", inferred.prediction->text},
                         {"probability", inferred.prediction->probability}};
  }
  return doc;
}

}  // namespace attnmap
