// The three stages of one item. The Runner holds the typed options checked against the model;
// files are written only by write(), through the output module.
#include "maps/attention_maps.hpp"
#include "attnmap/error.hpp"
#include "attnmap/run.hpp"
#include "attnmap/run_folder.hpp"
#include "attnmap/tokenizer.hpp"
#include "model/family.hpp"
#include "run/stopwatch.hpp"

namespace attnmap {

Runner::Runner(std::shared_ptr<Model> model, RunSpec options)
    : model_(std::move(model)), options_(std::move(options)) {
  preprocess_ = model_->family().preprocess_params();
  if (options_.min_pixels) preprocess_.min_pixels = *options_.min_pixels;
  if (options_.max_pixels) preprocess_.max_pixels = *options_.max_pixels;
  if (preprocess_.min_pixels <= 0 || preprocess_.max_pixels < preprocess_.min_pixels) {
    throw Error(ErrorKind::Usage, "--min-pixels " + std::to_string(preprocess_.min_pixels) + " / --max-pixels " +
                                      std::to_string(preprocess_.max_pixels) +
                                      ": need 0 < min-pixels <= max-pixels");
  }
  options_.heads.check(model_->metadata().text.num_attention_heads);
  head_reduce_ = options_.heads.kind == HeadSelection::Kind::Max    ? HeadReduce::Max
                 : options_.heads.kind == HeadSelection::Kind::Mean ? HeadReduce::Mean
                                                                    : HeadReduce::None;
  single_head_ = options_.heads.kind == HeadSelection::Kind::Index ? options_.heads.index : -1;
  options_.render.validate();
  // Resolved once, here, so that a layer the model lacks fails before any image is read.
  const std::vector<int> layers = options_.layers.resolve(model_->metadata().text.num_hidden_layers);
  layers_.assign(layers.begin(), layers.end());
}

PreparedItem Runner::prepare(const RunItem& item) const {
  Stopwatch clock;
  PreparedItem p;
  p.item = item;
  p.original_rgb = load_image_rgb(item.image);
  p.timings["decode"] = clock.lap();
  try {
    p.image = preprocess_image(p.original_rgb, preprocess_);
  } catch (const Error& e) {
    // The size checks know the pixels, not the file: name it so batch summaries and users can act.
    if (e.kind() != ErrorKind::Input) throw;
    throw Error(ErrorKind::Input, "image '" + item.image.string() + "': " + e.what());
  }
  p.timings["preprocess"] = clock.lap();

  const ModelMetadata& meta = model_->metadata();
  const int64_t merge = meta.vision.spatial_merge_size;
  const int64_t merged_h = p.image.grid_h / merge, merged_w = p.image.grid_w / merge;
  const int64_t image_tokens = p.image.grid_t * merged_h * merged_w;
  p.prompt = model_->family().build_chat_prompt(model_->tokenizer(), item.prompt, image_tokens, options_.system_prompt);
  p.layers = layers_;
  p.query_rows = resolve_query_rows(options_.query, p.prompt, model_->tokenizer());
  p.inputs.input_ids = torch::tensor(p.prompt.ids, torch::kInt64);
  p.inputs.pixel_values = p.image.pixel_values;
  p.inputs.image_grid_thw = p.image.image_grid_thw;
  p.inputs.position_ids = model_->family().position_ids(p.prompt.ids, {{p.image.grid_t, merged_h, merged_w}});
  p.timings["tokenize"] = clock.lap();
  return p;
}

InferredItem Runner::infer(PreparedItem prepared) {
  Stopwatch clock;
  AttentionRequest request;
  request.layers = prepared.layers;
  request.query_rows = prepared.query_rows;
  request.head_reduce = head_reduce_;
  request.mean_queries = true;
  request.return_logits = options_.predict;
  AttentionResult result = model_->attention(prepared.inputs, request);
  prepared.timings["forward"] = clock.lap();

  const ModelMetadata& meta = model_->metadata();
  const int64_t merge = meta.vision.spatial_merge_size;
  InferredItem out;
  out.maps = image_maps(result.layers, single_head_, prepared.prompt.image_start, prepared.prompt.image_end,
                        prepared.image.grid_h / merge, prepared.image.grid_w / merge);
  RunRecord& r = out.record;
  for (size_t i = 0; i < prepared.layers.size(); ++i) {
    const torch::Tensor map = out.maps[static_cast<int64_t>(i)];
    r.layers.push_back({prepared.layers[i], map.min().item<double>(), map.max().item<double>(),
                        map.to(torch::kFloat64).sum().item<double>(), map_entropy(map)});
  }
  if (result.logits.defined()) {
    const torch::Tensor probs = torch::softmax(result.logits.to(torch::kFloat64), 0);
    Prediction pred;
    pred.token_id = probs.argmax().item<int64_t>();
    pred.probability = probs[pred.token_id].item<double>();
    pred.token = model_->tokenizer().id_to_token(pred.token_id);
    pred.text = model_->tokenizer().decode({pred.token_id});
    r.prediction = pred;
  }
  prepared.timings["maps"] = clock.lap();
  if (result.peak_device_memory_bytes) {
    r.peak_device_memory_mib = static_cast<double>(*result.peak_device_memory_bytes) / (1024.0 * 1024.0);
  }

  // The rest of the record: the run's settings and what prepare() worked out for this item.
  r.attnmap_version = ATTNMAP_VERSION;
  r.model.path = model_->path().string();  // model.sha256: in write(), off the device thread
  r.model.model_family = meta.model_family;
  r.model.model_name = meta.model_name;
  r.model.format_version = meta.format_version;
  r.model.exported_dtype = meta.dtype;
  r.model.metadata = meta.raw;
  r.options.query = options_.query;
  r.options.layers = options_.layers;
  r.options.heads = options_.heads;
  r.options.colormap = options_.render.colormap;
  r.options.alpha = options_.render.alpha;
  r.options.blur = options_.render.blur_sigma;
  r.options.predict = options_.predict;
  r.options.system_prompt = options_.system_prompt;
  r.options.min_pixels = preprocess_.min_pixels;
  r.options.max_pixels = preprocess_.max_pixels;
  r.device = model_->device_name();
  r.dtype = model_->dtype_name();
  r.image = {prepared.item.image.string(), prepared.original_rgb.cols, prepared.original_rgb.rows,
             prepared.image.resized_width, prepared.image.resized_height};
  r.grid = {prepared.image.grid_t, prepared.image.grid_h, prepared.image.grid_w, prepared.image.grid_h / merge,
            prepared.image.grid_w / merge};
  r.id = prepared.item.id;
  r.prompt = prepared.item.prompt;
  r.token_ids = prepared.prompt.ids;
  for (const int64_t id : prepared.prompt.ids) r.token_strings.push_back(model_->tokenizer().id_to_token(id));
  r.image_token_span = {prepared.prompt.image_start, prepared.prompt.image_end};
  r.prompt_token_span = {prepared.prompt.prompt_start, prepared.prompt.prompt_end};
  r.query_positions = prepared.query_rows;
  r.maps_shape = out.maps.sizes().vec();
  r.focus_layer = meta.focus_layer;
  r.timings = prepared.timings;
  out.item = std::move(prepared.item);
  out.original_rgb = std::move(prepared.original_rgb);
  return out;
}

RunRecord Runner::write(const InferredItem& inferred) const {
  Stopwatch clock;
  RunRecord record = inferred.record;
  record.model.sha256 = model_->sha256();
  output::RunFolderWriter folder(inferred.item.out_dir);
  if (options_.write_images) {
    std::vector<torch::Tensor> maps;
    std::vector<std::string> labels;
    for (size_t i = 0; i < record.layers.size(); ++i) {
      const torch::Tensor map = inferred.maps[static_cast<int64_t>(i)];
      folder.write_layer_image(record.layers[i].layer, render_overlay(inferred.original_rgb, map, options_.render));
      maps.push_back(map);
      labels.push_back("layer " + std::to_string(record.layers[i].layer));
    }
    folder.write_grid_image(render_grid(inferred.original_rgb, maps, labels, options_.render));
  }
  record.timings["render"] = clock.lap();
  folder.write_maps(inferred.maps);
  record.timings["write"] = clock.lap();
  double total = 0;
  for (const auto& [stage, ms] : record.timings) {
    if (stage != "total") total += ms;
  }
  record.timings["total"] = total;
  folder.commit(record);
  return record;
}

RunRecord Runner::run(const RunItem& item) { return write(infer(prepare(item))); }

}  // namespace attnmap
