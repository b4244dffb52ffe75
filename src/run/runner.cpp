// The three stages of one item. The Runner holds the typed options checked against the model;
// files are written only by write(), through the output module.
#include <opencv2/imgproc.hpp>

#include <algorithm>

#include "attnmap/answer.hpp"
#include "maps/attention_maps.hpp"
#include "run/item_outputs.hpp"
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
  if (options_.query.is_answer() && !options_.answer) {
    throw Error(ErrorKind::Usage, "--query '" + options_.query.text() + "' maps answer tokens; add --answer");
  }
  if (options_.answer && options_.answer->max_new_tokens < 1) {
    throw Error(ErrorKind::Usage, "--max-new-tokens " + std::to_string(options_.answer->max_new_tokens) +
                                      ": need at least 1");
  }
  if (options_.baseline_prompt && options_.baseline_prompt->empty()) {
    throw Error(ErrorKind::Usage, "--baseline-prompt is empty; give a text or leave the value out for the default");
  }
  check_vision_options();
  const VideoSpec& v = options_.video;
  if (v.fps && v.num_frames) throw Error(ErrorKind::Usage, "--fps and --num-frames exclude each other; give one");
  if (v.fps && !(*v.fps > 0)) throw Error(ErrorKind::Usage, "--fps " + std::to_string(*v.fps) + ": need a positive rate");
  if (v.num_frames && *v.num_frames < 1) {
    throw Error(ErrorKind::Usage, "--num-frames " + std::to_string(*v.num_frames) + ": need at least 1");
  }
  if (!model_->metadata().video.is_null()) {
    video_ = model_->family().video_params();
    if (v.min_pixels) video_->pixels.min_pixels = *v.min_pixels;
    if (v.max_pixels) video_->pixels.max_pixels = *v.max_pixels;
    if (video_->pixels.min_pixels <= 0 || video_->pixels.max_pixels < video_->pixels.min_pixels) {
      throw Error(ErrorKind::Usage, "--video-min-pixels " + std::to_string(video_->pixels.min_pixels) +
                                        " / --video-max-pixels " + std::to_string(video_->pixels.max_pixels) +
                                        ": need 0 < min <= max");
    }
    // The command's choice, else the processor config's, else kDefaultVideoFps.
    if (v.fps || v.num_frames) {
      video_->sampling.fps = v.fps;
      video_->sampling.num_frames = v.num_frames;
    } else if (!video_->sampling.fps && !video_->sampling.num_frames) {
      video_->sampling.fps = kDefaultVideoFps;
    }
  }
}

namespace {

// The rows of the baseline prompt that stand for the user's query: the same kind for prompt, last
// and all; for positions, words and answer tokens (which need not exist in the baseline) the prompt's
// last row, the one that starts the answer (the choice of "MLLMs know where to look").
QuerySpec baseline_query(const QuerySpec& query) {
  if (query.kind == QuerySpec::Kind::Prompt || query.kind == QuerySpec::Kind::Last ||
      query.kind == QuerySpec::Kind::All) {
    return query;
  }
  QuerySpec last;
  last.kind = QuerySpec::Kind::Last;
  return last;
}

}  // namespace

PreparedItem Runner::prepare(const RunItem& item) const {
  Stopwatch clock;
  PreparedItem p;
  p.item = item;
  const bool is_video = item.is_video();
  if (is_video) {
    if (!video_) (void)model_->family().video_params();  // throws: the export predates videos
    // A frame list is taken whole, as transformers does; --fps/--num-frames sample videos only
    // (`run --frames` refuses them, a batch applies them to its video items).
    std::error_code ec;
    if (item.frames.size() == 1 && std::filesystem::is_directory(item.frames.front(), ec)) {
      p.item.frames = list_frame_files(item.frames.front());  // a folder of frames, in name order
    }
    p.video = p.item.frames.empty() ? decode_video(item.video, video_->sampling) : load_frames(p.item.frames);
    p.original_rgb = p.video->frames.front();
  } else {
    p.original_rgb = load_image_rgb(item.image);
  }
  p.timings["decode"] = clock.lap();
  const std::string source = std::string(!item.video.empty() ? "video" : is_video ? "frames" : "image") + " '" +
                             item.input().string() + "'";
  try {
    if (is_video) {
      p.video_inputs = preprocess_video(p.video->frames, *video_, p.video->sampled_fps);
      // The grid fields the rest of the run reads (maps, records) describe the video's grid.
      p.image.grid_t = p.video_inputs.grid_t;
      p.image.grid_h = p.video_inputs.grid_h;
      p.image.grid_w = p.video_inputs.grid_w;
      p.image.resized_height = p.video_inputs.resized_height;
      p.image.resized_width = p.video_inputs.resized_width;
      p.image.pixel_values = torch::zeros({0, p.video_inputs.pixel_values_videos.size(1)}, torch::kFloat32);
      p.image.image_grid_thw = torch::zeros({0, 3}, torch::kInt64);
    } else {
      p.image = preprocess_image(p.original_rgb, preprocess_);
    }
  } catch (const Error& e) {
    // The size checks know the pixels, not the file: name it so batch summaries and users can act.
    if (e.kind() != ErrorKind::Input) throw;
    throw Error(ErrorKind::Input, source + ": " + e.what());
  }
  p.timings["preprocess"] = clock.lap();

  const ModelMetadata& meta = model_->metadata();
  const int64_t merge = meta.vision.spatial_merge_size;
  const int64_t merged_h = p.image.grid_h / merge, merged_w = p.image.grid_w / merge;
  const VisualKind kind = is_video ? VisualKind::Video : VisualKind::Image;
  VisualGrid grid{kind, p.image.grid_t, merged_h, merged_w, is_video ? p.video_inputs.time_interval : 1.0f, {}};
  if (is_video) {
    // transformers' 24 fps for frames without a rate (a frame list).
    grid.seconds = temporal_patch_seconds(p.video->indices, p.video->info.fps.value_or(24.0),
                                          static_cast<int>(meta.vision.temporal_patch_size));
  }
  p.prompt = model_->family().build_chat_prompt(model_->tokenizer(), item.prompt, grid, options_.system_prompt);
  p.layers = layers_;
  if (!options_.query.is_answer()) p.query_rows = resolve_query_rows(options_.query, p.prompt, model_->tokenizer());
  const auto inputs_for = [&](const ChatPrompt& prompt) {
    ModelInputs in;
    in.input_ids = torch::tensor(prompt.ids, torch::kInt64);
    in.pixel_values = p.image.pixel_values;
    in.image_grid_thw = p.image.image_grid_thw;
    if (is_video) {
      in.pixel_values_videos = p.video_inputs.pixel_values_videos;
      in.video_grid_thw = p.video_inputs.video_grid_thw;
    }
    in.position_ids = model_->family().position_ids(prompt.ids, {grid});
    return in;
  };
  p.inputs = inputs_for(p.prompt);
  p.vision_box_patches = vision_box_patches(p);
  if (options_.baseline_prompt) {
    p.baseline_prompt =
        model_->family().build_chat_prompt(model_->tokenizer(), *options_.baseline_prompt, grid, options_.system_prompt);
    p.baseline_inputs = inputs_for(*p.baseline_prompt);
    p.baseline_query_rows = resolve_query_rows(baseline_query(options_.query), *p.baseline_prompt, model_->tokenizer());
  }
  p.timings["tokenize"] = clock.lap();
  return p;
}

InferredItem Runner::infer(PreparedItem prepared) {
  Stopwatch clock;
  const ModelMetadata& meta = model_->metadata();
  const int64_t merge = meta.vision.spatial_merge_size;
  const int64_t merged_h = prepared.image.grid_h / merge, merged_w = prepared.image.grid_w / merge;
  const int64_t grid_t = prepared.image.grid_t;
  // rows [H', Q, S] per layer -> the --heads selection [1, Q, S] (as is when the forward reduced them).
  const auto select_heads = [&](const torch::Tensor& rows) {
    if (rows.size(0) == 1) return rows;
    if (head_reduce_ == HeadReduce::Mean) return rows.mean(0, /*keepdim=*/true);
    if (head_reduce_ == HeadReduce::Max) return rows.amax(0, /*keepdim=*/true);
    return rows.slice(0, single_head_, single_head_ + 1);
  };
  // [1, Q, S] -> [1, 1, S]; a sum then a division, the exported forward's mean_queries.
  const auto mean_rows = [](const torch::Tensor& rows) {
    return rows.sum(1, /*keepdim=*/true) / static_cast<double>(std::max<int64_t>(1, rows.size(1)));
  };
  const auto to_maps = [&](const std::vector<torch::Tensor>& rows, const ChatPrompt& prompt) {
    std::vector<torch::Tensor> one;
    for (const torch::Tensor& layer : rows) one.push_back(mean_rows(select_heads(layer)));
    // A video's tokens are t-major raster order: [t*h, w] rows are its [t, h, w] maps.
    const torch::Tensor maps = image_maps(one, 0, prompt.visual_runs, grid_t * merged_h, merged_w);
    return prepared.video ? maps.view({maps.size(0), grid_t, merged_h, merged_w}) : maps;
  };
  // With the viewer, the forward keeps every head and row: the prompt tokens' rows follow the
  // query's, and maps.npy is reduced here from the same rows the page shows.
  const bool viewer = options_.write_viewer;
  const int64_t query_count = static_cast<int64_t>(prepared.query_rows.size());
  AttentionRequest request;
  request.layers = prepared.layers;
  request.query_rows = prepared.query_rows;
  if (viewer) {
    for (int64_t i = prepared.prompt.prompt_start; i < prepared.prompt.prompt_end; ++i) request.query_rows.push_back(i);
  }
  request.head_reduce = viewer ? HeadReduce::None : head_reduce_;
  request.mean_queries = !viewer;
  request.return_logits = options_.predict;
  const auto split = [&](const std::vector<torch::Tensor>& rows, InferredItem& item) {
    std::vector<torch::Tensor> query;
    for (const torch::Tensor& layer : rows) {
      query.push_back(layer.slice(1, 0, query_count));
      if (viewer) item.viewer_prompt_rows.push_back(layer.slice(1, query_count).contiguous());
    }
    return query;
  };

  InferredItem out;
  RunRecord& r = out.record;
  torch::Tensor logits;
  std::optional<int64_t> peak_bytes;
  if (!options_.answer) {
    AttentionResult result = model_->attention(prepared.inputs, request);
    prepared.timings["forward"] = clock.lap();
    out.maps = to_maps(viewer ? split(result.layers, out) : result.layers, prepared.prompt);
    logits = result.logits;
    peak_bytes = result.peak_device_memory_bytes;
  } else {
    GenerationSettings settings;
    settings.max_new_tokens = options_.answer->max_new_tokens;
    settings.repetition_penalty = options_.answer->raw_argmax ? 1.0 : meta.generation.repetition_penalty;
    settings.eos_token_ids = meta.generation.eos_token_ids;
    std::vector<torch::Tensor> token_maps;  // each [layers, h, w]: the rows are reduced as they come
    const GreedyAnswer answer = generate_greedy_answer(
        *model_, prepared.inputs, request, settings,
        [&](size_t k, const AnswerStep&, const std::vector<torch::Tensor>& rows) {
          std::vector<torch::Tensor> one_query;
          for (const torch::Tensor& row : rows) one_query.push_back(row.unsqueeze(1));  // [H', 1, S + k]
          token_maps.push_back(to_maps(one_query, prepared.prompt));
          if (viewer) out.viewer_answer_rows.push_back(rows);
          if (k == 0) prepared.timings["forward"] = clock.lap();  // the prefill
        });
    prepared.timings["generate"] = clock.lap();
    out.answer_maps = torch::stack(token_maps).contiguous();
    logits = answer.prompt_logits;
    peak_bytes = answer.peak_device_memory_bytes;
    const std::vector<torch::Tensor> query_rows = split(answer.prompt_rows, out);

    AnswerRecord a = answer_record(answer, settings, model_->tokenizer());
    a.maps_shape = out.answer_maps.sizes().vec();
    if (options_.query.is_answer()) {
      std::vector<int64_t> ids;
      for (const AnswerToken& t : a.tokens) ids.push_back(t.id);
      a.query_tokens = resolve_answer_tokens(options_.query, ids, model_->tokenizer());
      out.maps = out.answer_maps.index_select(0, torch::tensor(a.query_tokens, torch::kInt64)).mean(0).contiguous();
    } else {
      out.maps = to_maps(query_rows, prepared.prompt);
    }
    r.answer = a;
  }
  if (viewer && options_.query.kind == QuerySpec::Kind::Prompt && head_reduce_ == HeadReduce::Mean) {
    out.viewer_default_maps = out.maps;  // the page's default view is maps.npy itself, bit for bit
  } else if (viewer) {
    std::vector<torch::Tensor> mean_of_heads;
    for (const torch::Tensor& layer : out.viewer_prompt_rows) mean_of_heads.push_back(mean_rows(layer.mean(0, true)));
    // As to_maps: a video's span is [t*h, w] rows, viewed as [layers, t, h, w].
    const torch::Tensor maps = image_maps(mean_of_heads, 0, prepared.prompt.visual_runs, grid_t * merged_h, merged_w);
    out.viewer_default_maps = prepared.video ? maps.view({maps.size(0), grid_t, merged_h, merged_w}) : maps;
  }

  if (prepared.baseline_prompt) {
    AttentionRequest base = request;
    base.query_rows = prepared.baseline_query_rows;
    base.head_reduce = head_reduce_;
    base.mean_queries = true;
    base.return_logits = false;
    const AttentionResult result = model_->attention(prepared.baseline_inputs, base);
    const torch::Tensor baseline_maps = to_maps(result.layers, *prepared.baseline_prompt);
    out.relative_maps = (out.maps / (baseline_maps + kRelativeEpsilon)).to(torch::kFloat32).contiguous();
    if (result.peak_device_memory_bytes) {
      peak_bytes = std::max(peak_bytes.value_or(0), *result.peak_device_memory_bytes);
    }
    BaselineRecord b;
    b.prompt = *options_.baseline_prompt;
    b.token_ids = prepared.baseline_prompt->ids;
    b.query_positions = prepared.baseline_query_rows;
    b.epsilon = kRelativeEpsilon;
    b.layers = layer_stats(prepared.layers, baseline_maps);
    b.maps_shape = out.relative_maps.sizes().vec();
    r.baseline = b;
    prepared.timings["baseline"] = clock.lap();
  }

  if (!vision_blocks_.empty()) {
    const std::optional<int64_t> vision_peak = infer_vision(prepared, out);
    if (vision_peak) peak_bytes = std::max(peak_bytes.value_or(0), *vision_peak);
    prepared.timings["vision"] = clock.lap();
  }

  r.layers = layer_stats(prepared.layers, out.maps);
  if (options_.predict && logits.defined()) {
    const torch::Tensor probs = torch::softmax(logits.to(torch::kFloat64), 0);
    Prediction pred;
    pred.token_id = probs.argmax().item<int64_t>();
    pred.probability = probs[pred.token_id].item<double>();
    pred.token = model_->tokenizer().id_to_token(pred.token_id);
    pred.text = model_->tokenizer().decode({pred.token_id});
    r.prediction = pred;
  }
  prepared.timings["maps"] = clock.lap();
  if (peak_bytes) r.peak_device_memory_mib = static_cast<double>(*peak_bytes) / (1024.0 * 1024.0);

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
  r.image = {prepared.item.input().string(), prepared.original_rgb.cols, prepared.original_rgb.rows, prepared.image.resized_width,
             prepared.image.resized_height};
  if (prepared.video) {
    r.video = video_record(prepared.item, *prepared.video, prepared.video_inputs,
                           model_->metadata().vision.temporal_patch_size, prepared.prompt, prepared.inputs.position_ids);
    // What each temporal patch's map is drawn over: its frames averaged, as the patch embedding sees
    // them together (a moving object shows at both places).
    const auto& frames = prepared.video->frames;
    const size_t tps = static_cast<size_t>(meta.vision.temporal_patch_size);
    for (size_t k = 0; k < r.video->temporal_patches.size(); ++k) {
      cv::Mat sum;
      frames[std::min(frames.size() - 1, k * tps)].convertTo(sum, CV_32FC3);
      for (size_t j = 1; j < tps; ++j) cv::accumulate(frames[std::min(frames.size() - 1, k * tps + j)], sum);
      cv::Mat mean;
      sum.convertTo(mean, CV_8UC3, 1.0 / static_cast<double>(tps));
      out.frames.push_back(mean);
    }
  }
  r.grid = {prepared.image.grid_t, prepared.image.grid_h, prepared.image.grid_w, prepared.image.grid_h / merge,
            prepared.image.grid_w / merge};
  r.id = prepared.item.id;
  r.prompt = prepared.item.prompt;
  r.token_ids = prepared.prompt.ids;
  for (const int64_t id : prepared.prompt.ids) r.token_strings.push_back(model_->tokenizer().id_to_token(id));
  r.image_token_span = {prepared.prompt.image_start, prepared.prompt.image_end};
  if (prepared.prompt.visual_runs.size() > 1) {
    for (const TokenRun& run : prepared.prompt.visual_runs) r.image_token_runs.push_back({run.start, run.end});
  }
  r.prompt_token_span = {prepared.prompt.prompt_start, prepared.prompt.prompt_end};
  r.query_positions = prepared.query_rows;
  if (r.answer) {
    // An answer query's rows are the positions of the answer tokens it names.
    for (const int64_t k : r.answer->query_tokens) r.query_positions.push_back(r.answer->tokens[static_cast<size_t>(k)].position);
  }
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
  if (options_.write_images) write_item_images(folder, record, inferred, model_->tokenizer(), options_.render);
  if (options_.write_viewer) write_item_viewer(folder, record, inferred, model_->tokenizer(), options_.render);
  record.timings["render"] = clock.lap();
  folder.write_maps(inferred.maps);
  if (inferred.answer_maps.defined()) folder.write_answer_maps(inferred.answer_maps);
  if (inferred.relative_maps.defined()) folder.write_relative_maps(inferred.relative_maps);
  if (inferred.vision_maps.defined()) folder.write_vision_maps(inferred.vision_maps);
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
