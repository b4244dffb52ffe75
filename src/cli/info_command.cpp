#include "cli/info_command.hpp"

#include <torch/version.h>

#include <iostream>
#include <string>

#include "model/device_memory.hpp"
#include "attnmap/model_file.hpp"
#include "cli/cli_common.hpp"

namespace attnmap::cli {
namespace {

// The family's parts as the metadata names them (vision.norm / mlp / hidden_act and
// video.temporal_positions; exports made before those keys are Qwen2.5-VL's: RMSNorm, SwiGLU, seconds).
std::string family_parts(const ModelMetadata& m) {
  const nlohmann::json vision = m.raw.value("vision", nlohmann::json::object());
  const std::string norm = vision.value("norm", std::string("rms")) == "layer" ? "LayerNorm" : "RMSNorm";
  const std::string act = vision.value("hidden_act", std::string("silu"));
  const std::string mlp = vision.value("mlp", std::string("swiglu")) == "fc" ? "fc1/" + act + "/fc2 MLP"
                                                                           : "SwiGLU (" + act + ") MLP";
  std::string windows = m.vision.window_size > 0 ? "window attention" : "no window attention";
  // Qwen3-VL: learned position embeddings and DeepStack mergers (vision.deepstack_visual_indexes),
  // q/k RMSNorm and interleaved M-RoPE in the decoder (text.qk_norm, text.mrope_interleaved).
  if (vision.contains("deepstack_visual_indexes")) {
    windows += ", learned position embeddings, DeepStack from blocks " + vision["deepstack_visual_indexes"].dump();
  }
  const nlohmann::json text = m.raw.value("text", nlohmann::json::object());
  std::string decoder = text.value("qk_norm", false) ? "decoder Qwen3 (q/k RMSNorm)" : "decoder Qwen2";
  decoder += text.value("mrope_interleaved", false) ? " with interleaved M-RoPE" : " with M-RoPE";
  std::string time = "video positions ";
  if (!m.video.is_object()) {
    time = "no video in this export";  // the `video` line says why
  } else if (m.video.value("temporal_positions", std::string("seconds")) == "index") {
    time += "by temporal patch";
  } else if (m.video.value("temporal_positions", std::string("seconds")) == "frame_runs") {
    time += "per temporal patch after its timestamp text";
  } else {
    time += "by time (tokens_per_second)";
  }
  return m.model_family + ": vision " + norm + ", " + mlp + ", " + windows + "; " + decoder + "; " + time;
}

// "window 112 px, full attention at [7,15]", or, for a tower without windows (Qwen2-VL), that every
// block attends within its whole image.
std::string attention_layout(const VisionConfig& v) {
  if (v.window_size <= 0) return "no windows (full attention in every block)";
  return "window " + std::to_string(v.window_size) + " px, full attention at " +
         nlohmann::json(v.fullatt_block_indexes).dump();
}

void print_info(const std::filesystem::path& path, const ModelMetadata& m, bool as_json) {
  if (as_json) {
    std::cout << m.raw.dump(2) << "\n";
    return;
  }
  const auto& raw = m.raw;
  const auto& pre = m.preprocess;
  std::cout << "model         " << path.string() << "\n"
            << "name          " << m.model_name << " (" << m.model_family << ", format v" << m.format_version
            << ", exported as " << m.dtype << ")\n"
            << "family        " << family_parts(m) << "\n"
            << "vision tower  " << m.vision.depth << " blocks, hidden " << m.vision.hidden_size << ", "
            << m.vision.num_heads << " heads, patch " << m.vision.patch_size << ", merge "
            << m.vision.spatial_merge_size << ", " << attention_layout(m.vision) << "\n"
            << "decoder       " << m.text.num_hidden_layers << " layers, hidden " << m.text.hidden_size << ", "
            << m.text.num_attention_heads << " heads, " << m.text.num_key_value_heads << " kv heads, head dim "
            << m.text.head_dim << ", vocab " << m.text.vocab_size << "\n";
  if (raw.contains("parameters")) {
    const auto& p = raw["parameters"];
    std::cout << "parameters    " << p.value("total", 0LL) << " (vision " << p.value("vision", 0LL) << ", text "
              << p.value("text", 0LL) << ")\n";
  }
  std::cout << "preprocess    min_pixels " << pre.value("min_pixels", 0LL) << ", max_pixels "
            << pre.value("max_pixels", 0LL) << ", mean " << pre.value("image_mean", nlohmann::json()).dump()
            << ", std " << pre.value("image_std", nlohmann::json()).dump() << ", resample "
            << pre.value("resample", std::string("?")) << "\n"
            << "image token   " << m.tokens.image_token_id << "\n";
  // The video processor's settings, or why --video will not work with this file.
  if (m.video.is_object()) {
    const auto& v = m.video;
    const auto opt = [&](const char* key) { return v.contains(key) && !v[key].is_null() ? v[key].dump() : std::string("unset"); };
    // pixel_budget "clip" (Qwen3-VL): the bounds weigh frames x height x width of the whole clip.
    const bool clip = v.value("pixel_budget", std::string("frame")) == "clip";
    std::cout << "video         min_pixels " << v.value("min_pixels", 0LL) << ", max_pixels " << v.value("max_pixels", 0LL)
              << (clip ? " per clip" : " per frame") << ", frames " << v.value("min_frames", 0LL) << "-"
              << v.value("max_frames", 0LL) << " (" << v.value("frame_sampling", std::string("stride"))
              << " sampling), fps " << opt("fps") << ", tokens_per_second " << opt("tokens_per_second") << " (from "
              << v.value("source", std::string("?")) << "); video token " << m.tokens.video_token_id << "\n";
  } else {
    std::cout << "video         not in this export (made before attnmap read videos); re-export for --video\n";
  }
  std::cout
            << "focus layer   " << (m.focus_layer ? std::to_string(*m.focus_layer) : std::string("none")) << "\n"
            << "this attnmap  " << ATTNMAP_VERSION << ", libtorch " << TORCH_VERSION << ", " << cuda_runtime_summary()
            << "\n";
}

}  // namespace

void add_info_command(CLI::App& app, int& exit_code) {
  CLI::App* cmd = app.add_subcommand("info", "the architecture and preprocessing of an exported model");
  auto model = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("--model", *model, "exported model (.pt); default: the bundled demo model");
  cmd->add_flag("--json", *as_json, "print the model's metadata JSON");
  cmd->callback([&exit_code, model, as_json] {
    exit_code = guarded([&] {
      const std::filesystem::path path = model->empty() ? default_model_path() : std::filesystem::path(*model);
      print_info(path, ModelFile::open(path).read_metadata(), *as_json);
      return 0;
    });
  });
}

}  // namespace attnmap::cli
