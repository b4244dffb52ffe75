// Test-only bridge from pytest to the C++ video path (tests/python/test_video_decode.py compares it
// with PyAV and transformers' Qwen2VLVideoProcessor.sample_frames):
//
//   attnmap_video_dump probe VIDEO                                   -> JSON info on stdout
//   attnmap_video_dump sample TOTAL FPS|none FPS_TARGET|none NUM|none MIN MAX TPS
//                                                                    -> JSON indices on stdout
//   attnmap_video_dump sample-batch < CASES                         -> one JSON line per case line (the
//                                                                    arguments of sample), an error as
//                                                                    {"error": message, "exit": code}
//   attnmap_video_dump decode VIDEO OUT_DIR [--fps F|--num-frames N] -> frames.npy (uint8 [T,H,W,3]), meta.json
//   attnmap_video_dump frames OUT_DIR FILE...|DIR                    -> frames.npy, meta.json
//
// On an attnmap::Error it prints the message and exits with the error's exit code.
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "attnmap/error.hpp"
#include "tool_main.hpp"
#include "attnmap/video.hpp"
#include "io/npy.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json info_json(const attnmap::VideoInfo& info) {
  return {{"total_frames", info.total_frames},
          {"fps", info.fps ? json(*info.fps) : json(nullptr)},
          {"width", info.width},
          {"height", info.height},
          {"codec", info.codec}};
}

std::optional<double> optional_double(const std::string& s) {
  if (s == "none") return std::nullopt;
  return std::stod(s);
}

std::optional<int64_t> optional_int(const std::string& s) {
  if (s == "none") return std::nullopt;
  return std::stoll(s);
}

// TOTAL FPS|none FPS_TARGET|none NUM|none MIN MAX TPS
json sample(const std::vector<std::string>& a) {
  attnmap::VideoInfo info;
  info.total_frames = std::stoll(a.at(0));
  info.fps = optional_double(a.at(1));
  attnmap::VideoSampling sampling;
  sampling.fps = optional_double(a.at(2));
  sampling.num_frames = optional_int(a.at(3));
  sampling.min_frames = std::stoll(a.at(4));
  sampling.max_frames = std::stoll(a.at(5));
  sampling.temporal_patch_size = std::stoi(a.at(6));
  return attnmap::sample_frame_indices(info, sampling);
}

void write_video(const fs::path& out, const attnmap::DecodedVideo& video, json meta) {
  fs::create_directories(out);
  std::vector<torch::Tensor> frames;
  for (const cv::Mat& m : video.frames) {
    const cv::Mat c = m.isContinuous() ? m : m.clone();
    frames.push_back(torch::from_blob(c.data, {c.rows, c.cols, 3}, torch::kUInt8).clone());
  }
  attnmap::save_npy(out / "frames.npy", torch::stack(frames));
  meta["indices"] = video.indices;
  meta["sampled_fps"] = video.sampled_fps;
  meta["info"] = info_json(video.info);
  std::ofstream(out / "meta.json") << meta.dump(2) << "\n";
}

int run(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "probe" && argc == 3) {
    std::cout << info_json(attnmap::probe_video(argv[2])).dump() << "\n";
    return 0;
  }
  if (mode == "sample" && argc == 9) {
    std::cout << sample(std::vector<std::string>(argv + 2, argv + argc)).dump() << "\n";
    return 0;
  }
  // One process for a grid of thousands of cases: starting libtorch per case would take minutes.
  if (mode == "sample-batch" && argc == 2) {
    std::string line;
    while (std::getline(std::cin, line)) {
      std::istringstream words(line);
      std::vector<std::string> a{std::istream_iterator<std::string>(words), std::istream_iterator<std::string>()};
      try {
        std::cout << sample(a).dump() << "\n";
      } catch (const attnmap::Error& e) {
        std::cout << json{{"error", e.what()}, {"exit", e.exit_code()}}.dump() << "\n";
      }
    }
    return 0;
  }
  if (mode == "decode" && (argc == 4 || argc == 6)) {
    attnmap::VideoSampling sampling;
    if (argc == 6) {
      const std::string option = argv[4];
      if (option == "--fps") {
        sampling.fps = std::stod(argv[5]);
      } else if (option == "--num-frames") {
        sampling.num_frames = std::stoll(argv[5]);
      } else {
        throw attnmap::Error(attnmap::ErrorKind::Usage, "decode: unknown option " + option);
      }
    }
    write_video(argv[3], attnmap::decode_video(argv[2], sampling), json::object());
    return 0;
  }
  if (mode == "frames" && argc >= 4) {
    std::vector<fs::path> files;
    if (argc == 4 && fs::is_directory(argv[3])) {
      files = attnmap::list_frame_files(argv[3]);
    } else {
      files.assign(argv + 3, argv + argc);
    }
    json names = json::array();
    for (const fs::path& f : files) names.push_back(f.filename().string());
    write_video(argv[2], attnmap::load_frames(files), {{"files", names}});
    return 0;
  }
  std::cerr << "usage: attnmap_video_dump probe VIDEO | sample TOTAL FPS|none FPS_TARGET|none NUM|none MIN MAX TPS | "
               "decode VIDEO OUT_DIR [--fps F|--num-frames N] | frames OUT_DIR FILE...|DIR\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) { return attnmap_test::run_tool(argc, argv, run); }
