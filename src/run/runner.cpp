#include <cmath>
#include <cstdio>

#include "attnmap/atomic_file.hpp"
#include "attnmap/attention_maps.hpp"
#include "attnmap/error.hpp"
#include "attnmap/layer_spec.hpp"
#include "attnmap/npy.hpp"
#include "attnmap/run.hpp"
#include "model/family.hpp"
#include "run/attention_document.hpp"
#include "run/stopwatch.hpp"

namespace attnmap {
namespace fs = std::filesystem;

namespace {

std::string layer_file_name(int64_t layer) {
  char name[32];
  std::snprintf(name, sizeof name, "layer_%02lld.jpg", static_cast<long long>(layer));
  return name;
}

void dump_inputs(const fs::path& dir, const PreparedItem& p) {
  ensure_directory(dir);
  save_npy(dir / "input_ids.npy", p.inputs.input_ids);
  save_npy(dir / "pixel_values.npy", p.inputs.pixel_values);
  save_npy(dir / "image_grid_thw.npy", p.inputs.image_grid_thw);
  save_npy(dir / "position_ids.npy", p.inputs.position_ids);
  save_npy(dir / "query_positions.npy", torch::tensor(p.query_rows, torch::kInt64));
}

// Removes what a failed write() left, so a folder never looks like a partial result.
class WrittenFiles {
 public:
  void add(const fs::path& path) { paths_.push_back(path); }
  void commit() { paths_.clear(); }
  ~WrittenFiles() {
    std::error_code ignored;
    for (const fs::path& path : paths_) fs::remove(path, ignored);
  }

 private:
  std::vector<fs::path> paths_;
};

}  // namespace

Runner::Runner(std::shared_ptr<Model> model, RunOptions options)
    : model_(std::move(model)), options_(std::move(options)) {
  preprocess_ = model_->family().preprocess_params();
  if (options_.min_pixels) preprocess_.min_pixels = *options_.min_pixels;
  if (options_.max_pixels) preprocess_.max_pixels = *options_.max_pixels;
  if (preprocess_.min_pixels <= 0 || preprocess_.max_pixels < preprocess_.min_pixels) {
    throw Error(ErrorKind::Usage, "--min-pixels " + std::to_string(preprocess_.min_pixels) + " / --max-pixels " +
                                      std::to_string(preprocess_.max_pixels) +
                                      ": need 0 < min-pixels <= max-pixels");
  }
  const int heads = model_->metadata().text.num_attention_heads;
  if (options_.heads == "mean") {
    head_reduce_ = HeadReduce::Mean;
  } else if (options_.heads == "max") {
    head_reduce_ = HeadReduce::Max;
  } else {
    size_t used = 0;
    int head = -1;
    try {
      head = std::stoi(options_.heads, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != options_.heads.size() || head < 0 || head >= heads) {
      throw Error(ErrorKind::Usage, "--heads '" + options_.heads + "': use mean, max or a head index 0.." +
                                        std::to_string(heads - 1) + " (the model has " + std::to_string(heads) +
                                        " attention heads)");
    }
    head_reduce_ = HeadReduce::None;
    single_head_ = head;
  }
  options_.render.validate();
  // Parse once now so that a bad --layers fails before any image is read.
  parse_layer_spec(options_.layers, model_->metadata().text.num_hidden_layers);
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
  const std::vector<int> layers = parse_layer_spec(options_.layers, meta.text.num_hidden_layers);
  p.layers.assign(layers.begin(), layers.end());
  p.query_rows = resolve_query_rows(options_.query, p.prompt, model_->tokenizer());
  p.inputs.input_ids = torch::tensor(p.prompt.ids, torch::kInt64);
  p.inputs.pixel_values = p.image.pixel_values;
  p.inputs.image_grid_thw = p.image.image_grid_thw;
  p.inputs.position_ids = model_->family().position_ids(p.prompt.ids, {{p.image.grid_t, merged_h, merged_w}});
  p.timings["tokenize"] = clock.lap();
  if (!options_.dump_inputs.empty()) dump_inputs(options_.dump_inputs, p);
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

  InferredItem out;
  const int64_t merge = model_->metadata().vision.spatial_merge_size;
  out.maps = image_maps(result.layers, single_head_, prepared.prompt.image_start, prepared.prompt.image_end,
                        prepared.image.grid_h / merge, prepared.image.grid_w / merge);
  for (size_t i = 0; i < prepared.layers.size(); ++i) {
    const torch::Tensor map = out.maps[static_cast<int64_t>(i)];
    out.stats.push_back({prepared.layers[i], map.min().item<double>(), map.max().item<double>(),
                         map.to(torch::kFloat64).sum().item<double>(), map_entropy(map)});
  }
  if (result.logits.defined()) {
    const torch::Tensor probs = torch::softmax(result.logits.to(torch::kFloat64), 0);
    Prediction pred;
    pred.token_id = probs.argmax().item<int64_t>();
    pred.probability = probs[pred.token_id].item<double>();
    pred.token = model_->tokenizer().id_to_token(pred.token_id);
    pred.text = model_->tokenizer().decode({pred.token_id});
    out.prediction = pred;
  }
  prepared.timings["maps"] = clock.lap();
  out.peak_device_memory_bytes = result.peak_device_memory_bytes;
  out.prepared = std::move(prepared);
  return out;
}

void Runner::write(const InferredItem& inferred) const {
  Stopwatch clock;
  const PreparedItem& p = inferred.prepared;
  const fs::path& dir = p.item.out_dir;
  ensure_directory(dir);
  // attention.json marks a complete item: drop a stale one before anything else changes.
  std::error_code ignored;
  fs::remove(dir / "attention.json", ignored);

  WrittenFiles written;
  StageTimings timings = p.timings;
  if (options_.write_images) {
    std::vector<torch::Tensor> maps;
    std::vector<std::string> labels;
    for (size_t i = 0; i < p.layers.size(); ++i) {
      const torch::Tensor map = inferred.maps[static_cast<int64_t>(i)];
      const fs::path file = dir / layer_file_name(p.layers[i]);
      written.add(file);
      write_jpeg_atomically(file, render_overlay(p.original_rgb, map, options_.render));
      maps.push_back(map);
      labels.push_back("layer " + std::to_string(p.layers[i]));
    }
    written.add(dir / "grid.jpg");
    write_jpeg_atomically(dir / "grid.jpg", render_grid(p.original_rgb, maps, labels, options_.render));
  }
  timings["render"] = clock.lap();
  written.add(dir / "maps.npy");
  save_npy(dir / "maps.npy", inferred.maps);
  timings["write"] = clock.lap();
  double total = 0;
  for (const auto& [stage, ms] : timings) total += ms;
  timings["total"] = total;
  write_file_atomically(dir / "attention.json", attention_document(*this, inferred, timings).dump(2) + "\n");
  written.commit();
}

StageTimings Runner::run(const RunItem& item) {
  InferredItem inferred = infer(prepare(item));
  write(inferred);
  return inferred.prepared.timings;
}

}  // namespace attnmap
