#include "cli/cli_common.hpp"

#include <unistd.h>

#include <climits>
#include <iostream>

#include "attnmap/error.hpp"
#include "log/log.hpp"
#include "attnmap/options.hpp"
#include "model/torch_failure.hpp"

namespace attnmap::cli {
namespace fs = std::filesystem;

int guarded(const std::function<int()>& body) {
  try {
    return body();
  } catch (const Error& e) {
    std::cerr << "attnmap: error: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    const Error error = error_from_exception(e);
    if (error.kind() == ErrorKind::Internal) {
      std::cerr << "attnmap: internal error: " << error.what() << "; please report it with the command line\n";
    } else {
      std::cerr << "attnmap: error: " << error.what() << "\n";
    }
    return error.exit_code();
  }
}

fs::path default_model_path() {
  char exe[PATH_MAX] = {0};
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  const fs::path dir = n > 0 ? fs::path(std::string(exe, static_cast<size_t>(n))).parent_path() : fs::current_path();
  // The build tree keeps the model beside the binary; `cmake --install` puts the binary in
  // PREFIX/bin and the model in PREFIX/share/attnmap/models.
  const fs::path in_build_tree = dir / "models" / "demo.pt";
  const fs::path installed = dir.parent_path() / "share" / "attnmap" / "models" / "demo.pt";
  std::error_code ec;
  if (!fs::exists(in_build_tree, ec) && fs::exists(installed, ec)) return installed;
  return in_build_tree;
}

void add_shared_run_flags(CLI::App& cmd, SharedRunFlags& f) {
  cmd.add_option("--model", f.model, "exported model (.pt); default: the bundled demo model")
      ->default_str(default_model_path().string());
  cmd.add_option("--query", f.query,
                 "attention rows: prompt | last | all | I,J,K | word:WORD | answer | answer:WORD | answer:I "
                 "(default: prompt, or answer with --answer)");
  cmd.add_option("--layers", f.layers, "decoder layers: all | 4,8,12 | 0-5")->capture_default_str();
  cmd.add_option("--heads", f.heads, "head reduction: mean | max | a head index")->capture_default_str();
  cmd.add_option("--colormap", f.render.colormap, "jet | viridis | turbo | inferno")->capture_default_str();
  cmd.add_option("--alpha", f.render.alpha, "heatmap opacity over the image, 0..1")->capture_default_str();
  cmd.add_option("--blur", f.render.blur_sigma, "Gaussian blur sigma in original pixels, 0 = off")
      ->capture_default_str();
  cmd.add_option("--device", f.device, "auto | cpu | cuda | cuda:N (auto: CUDA when available)")
      ->capture_default_str();
  cmd.add_option("--dtype", f.dtype, "auto | fp32 | bf16 | fp16 (auto: bf16 on CUDA, fp32 on CPU)")
      ->capture_default_str();
  cmd.add_option("--min-pixels", f.min_pixels, "lower bound of the resized image area (default: model's)");
  cmd.add_option("--max-pixels", f.max_pixels, "upper bound of the resized image area, caps image tokens (default: model's)");
  cmd.add_option("--system-prompt", f.system_prompt, "system message (default: the model's)");
  cmd.add_flag("--no-predict", f.no_predict, "skip the next-token prediction; stops after the last requested layer");
  cmd.add_flag("--no-images", f.no_images, "write no JPEGs (layer, grid, strips)");
  cmd.add_flag("--no-viewer", f.no_viewer,
               "write no viewer.html (batch: no index.html); the forward then reduces heads itself");
  cmd.add_flag("--answer", f.answer,
               "generate the model's greedy answer and a map for every answer token (answer_maps.npy, "
               "answer_strip_layer_XX.jpg); implied by an answer query, --max-new-tokens or --raw-argmax");
  f.max_new_tokens_option = cmd.add_option("--max-new-tokens", f.max_new_tokens, "longest answer, in tokens")
                                ->capture_default_str();
  cmd.add_flag("--raw-argmax", f.raw_argmax,
               "decode by plain argmax, without the checkpoint's repetition penalty (which generate() applies)");
  f.baseline_option =
      cmd.add_option("--baseline-prompt", f.baseline_prompt,
                     std::string("also map the same query for this generic prompt and write relative_maps.npy = "
                                 "map / baseline map; without TEXT: \"") + kDefaultBaselinePrompt + "\"")
          ->expected(0, 1);
  cmd.add_option("--fps", f.fps,
                 "video frames sampled per second (default: the model's video processor setting, else 2)");
  cmd.add_option("--num-frames", f.num_frames, "sample this many video frames, evenly (instead of --fps)");
  cmd.add_option("--video-min-pixels", f.video_min_pixels, "lower bound of each video frame's resized area (default: model's)");
  cmd.add_option("--video-max-pixels", f.video_max_pixels,
                 "upper bound of each video frame's resized area, caps tokens per frame (default: model's)");
  cmd.add_option("--vision-blocks", f.vision_blocks,
                 "also map the attention inside these vision-tower blocks (vision_maps.npy, vision_block_XX.jpg): "
                 "none | all | 7,15,23,31 | 0-3")
      ->capture_default_str();
  cmd.add_option("--vision-query", f.vision_query,
                 "whose attention the vision maps average: mean (every patch) | box:x0,y0,x1,y1 (original-image "
                 "pixels) | text-peak[:LAYER] (the patches under the decoder map's peak; default layer: the focus "
                 "layer) (default: mean)");
}

RunSpec run_spec_from(const SharedRunFlags& f) {
  RunSpec options;
  options.query = parse_query_spec(f.query.empty() ? "prompt" : f.query);
  options.layers = parse_layer_selection(f.layers);
  options.heads = parse_head_selection(f.heads);
  options.render = f.render;
  options.render.validate();
  options.system_prompt = f.system_prompt;
  options.predict = !f.no_predict;
  options.write_images = !f.no_images;
  options.write_viewer = !f.no_viewer;
  if (f.min_pixels > 0) options.min_pixels = f.min_pixels;
  if (f.max_pixels > 0) options.max_pixels = f.max_pixels;
  const bool max_given = f.max_new_tokens_option != nullptr && f.max_new_tokens_option->count() > 0;
  const bool answer = f.answer || options.query.is_answer() || max_given || f.raw_argmax;
  if (f.query.empty() && answer) options.query = parse_query_spec("answer");
  if (answer) {
    options.answer = AnswerSpec{};
    options.answer->max_new_tokens = f.max_new_tokens;
    options.answer->raw_argmax = f.raw_argmax;
    if (options.answer->max_new_tokens < 1) {
      throw Error(ErrorKind::Usage, "--max-new-tokens " + std::to_string(f.max_new_tokens) + ": need at least 1");
    }
  }
  if (f.fps != 0) options.video.fps = f.fps;
  if (f.num_frames != 0) options.video.num_frames = f.num_frames;
  if (f.video_min_pixels > 0) options.video.min_pixels = f.video_min_pixels;
  if (f.video_max_pixels > 0) options.video.max_pixels = f.video_max_pixels;
  if (f.baseline_option != nullptr && f.baseline_option->count() > 0) {
    options.baseline_prompt = f.baseline_prompt.empty() ? std::string(kDefaultBaselinePrompt) : f.baseline_prompt;
  }
  options.vision_blocks = parse_vision_blocks(f.vision_blocks);
  options.vision_query = parse_vision_query(f.vision_query.empty() ? "mean" : f.vision_query);
  if (!f.vision_query.empty() && !options.vision_blocks) {
    throw Error(ErrorKind::Usage, "--vision-query '" + f.vision_query +
                                      "' chooses the query of the vision-tower maps; add --vision-blocks (e.g. all)");
  }
  return options;
}

std::vector<fs::path> parse_frames_option(const std::string& value) {
  // A folder stays one entry: the Runner lists its frames (as for batch manifests).
  std::vector<fs::path> frames;
  size_t start = 0;
  while (start <= value.size()) {
    const size_t comma = std::min(value.find(',', start), value.size());
    if (comma > start) frames.emplace_back(value.substr(start, comma - start));
    start = comma + 1;
  }
  if (frames.empty()) {
    throw Error(ErrorKind::Input, "--frames '" + value + "' names no file; give a,b,c or a folder of frames");
  }
  return frames;
}

std::shared_ptr<Model> load_model_from(const SharedRunFlags& f) {
  const DeviceChoice choice = parse_device_choice(f.device, f.dtype);
  const fs::path path = f.model.empty() ? default_model_path() : fs::path(f.model);
  log::info("loading model " + path.string());
  return Model::load(path, choice);
}

}  // namespace attnmap::cli
