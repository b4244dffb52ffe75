// The export's `video` object -> VideoParams. The numbers come from the checkpoint (the exporter
// resolves the video processor's config as transformers does), never from constants here.
#include <nlohmann/json.hpp>

#include "attnmap/error.hpp"
#include "attnmap/video.hpp"

namespace attnmap {
namespace {

[[noreturn]] void bad_field(const std::string& key, const std::string& what) {
  throw Error(ErrorKind::Model, "model metadata: video." + key + " " + what +
                                    "; re-export the model with attnmap-export");
}

int64_t positive_int(const nlohmann::json& video, const std::string& key) {
  if (!video.contains(key)) bad_field(key, "is missing");
  const auto& v = video.at(key);
  if (!v.is_number_integer() || v.get<int64_t>() <= 0) bad_field(key, "must be a positive integer");
  return v.get<int64_t>();
}

}  // namespace

VideoParams VideoParams::from_json(const nlohmann::json& video) {
  if (!video.is_object()) {
    throw Error(ErrorKind::Model,
                "this model file was exported before attnmap read videos (its metadata has no 'video' section); "
                "re-export it with attnmap-export to use --video or --frames");
  }
  VideoParams p;
  // The pixel settings have the image preprocessing's keys and checks.
  p.pixels = PreprocessParams::from_json(video);
  p.sampling.min_frames = positive_int(video, "min_frames");
  p.sampling.max_frames = positive_int(video, "max_frames");
  p.sampling.temporal_patch_size = p.pixels.temporal_patch_size;
  if (video.contains("fps") && !video["fps"].is_null()) {
    if (!video["fps"].is_number() || !(video["fps"].get<double>() > 0)) bad_field("fps", "must be a positive number");
    p.sampling.fps = video["fps"].get<double>();
  }
  if (video.contains("num_frames") && !video["num_frames"].is_null()) p.sampling.num_frames = positive_int(video, "num_frames");
  p.sample_by_default = video.value("do_sample_frames", false);
  // "seconds" (Qwen2.5-VL; exports made before the key existed are all Qwen2.5-VL): temporal patch k at
  // int(k * tokens_per_second * second_per_grid_t). "index" (Qwen2-VL): at k, tokens_per_second unused.
  const nlohmann::json temporal = video.value("temporal_positions", nlohmann::json("seconds"));
  if (temporal == "index") {
    p.tokens_per_second = 0;
    return p;
  }
  if (temporal != "seconds") bad_field("temporal_positions", "must be \"seconds\" or \"index\"");
  if (!video.contains("tokens_per_second") || !video["tokens_per_second"].is_number() ||
      !(video["tokens_per_second"].get<double>() > 0)) {
    bad_field("tokens_per_second", "must be a positive number");
  }
  p.tokens_per_second = video["tokens_per_second"].get<double>();
  return p;
}

}  // namespace attnmap
