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
  // Keys newer exports state; exports made before them are Qwen2-VL's or Qwen2.5-VL's, whose values
  // are the defaults here.
  const std::string sampling = video.value("frame_sampling", std::string("stride"));
  if (sampling == "linspace") {
    p.sampling.method = FrameSampling::Linspace;
  } else if (sampling != "stride") {
    bad_field("frame_sampling", "must be \"stride\" or \"linspace\"");
  }
  const std::string budget = video.value("pixel_budget", std::string("frame"));
  if (budget != "frame" && budget != "clip") bad_field("pixel_budget", "must be \"frame\" or \"clip\"");
  p.clip_budget = budget == "clip";
  if (video.contains("cap_pixels_per_frame") && !video["cap_pixels_per_frame"].is_null()) {
    if (!video["cap_pixels_per_frame"].is_boolean()) bad_field("cap_pixels_per_frame", "must be true or false");
    p.cap_pixels_per_frame = video["cap_pixels_per_frame"].get<bool>();
  }
  if (video.contains("max_video_tokens") && !video["max_video_tokens"].is_null()) {
    p.max_video_tokens = positive_int(video, "max_video_tokens");
  }
  if (video.contains("timestamp_text") && !video["timestamp_text"].is_null()) {
    const nlohmann::json& t = video["timestamp_text"];
    if (!t.is_object() || !t.contains("before") || !t["before"].is_string() || !t.contains("after") ||
        !t["after"].is_string() || !t.contains("decimals") || !t["decimals"].is_number_integer() ||
        t["decimals"].get<int>() < 0 || t["decimals"].get<int>() > 9) {
      bad_field("timestamp_text", "must be {\"before\": text, \"after\": text, \"decimals\": 0..9}");
    }
    p.timestamp_text = TimestampText{t["before"].get<std::string>(), t["after"].get<std::string>(),
                                     t["decimals"].get<int>()};
  }
  // "seconds" (Qwen2.5-VL): temporal patch k at int(k * tokens_per_second * second_per_grid_t).
  // "index" (Qwen2-VL): at k, tokens_per_second unused. "frame_runs" (Qwen3-VL): every temporal patch
  // its own grid where its run of pads begins (the timestamps in the text carry the time).
  const nlohmann::json temporal = video.value("temporal_positions", nlohmann::json("seconds"));
  if (temporal == "index" || temporal == "frame_runs") {
    p.positions = temporal == "index" ? TemporalPositions::Index : TemporalPositions::FrameRuns;
    p.tokens_per_second = 0;
    if (p.positions == TemporalPositions::FrameRuns && !p.timestamp_text) {
      bad_field("timestamp_text", "is missing (temporal_positions \"frame_runs\" writes a time before each patch)");
    }
    return p;
  }
  if (temporal != "seconds") bad_field("temporal_positions", "must be \"seconds\", \"index\" or \"frame_runs\"");
  if (!video.contains("tokens_per_second") || !video["tokens_per_second"].is_number() ||
      !(video["tokens_per_second"].get<double>() > 0)) {
    bad_field("tokens_per_second", "must be a positive number");
  }
  p.tokens_per_second = video["tokens_per_second"].get<double>();
  return p;
}

}  // namespace attnmap
