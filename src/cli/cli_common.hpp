// What every subcommand shares: how errors become exit codes and where the default model lives.
#pragma once

#include <CLI/CLI.hpp>

#include <filesystem>
#include <functional>
#include <string>

#include "attnmap/model.hpp"
#include "attnmap/run.hpp"

namespace attnmap::cli {

// Runs body; maps attnmap::Error and other exceptions to one stderr line and an exit code.
int guarded(const std::function<int()>& body);

// --model's default: models/demo.pt next to the executable (the build exports it there), else
// ../share/attnmap/models/demo.pt (where `cmake --install` puts it).
std::filesystem::path default_model_path();

// Options shared by `run` and `batch`: the strings as typed, turned into a RunSpec once by run_spec_from.
struct SharedRunFlags {
  std::string model;
  std::string device = "auto";
  std::string dtype = "auto";
  std::string query;  // empty: "prompt", or "answer" with --answer
  std::string layers = "all";
  std::string heads = "mean";
  RenderOptions render;
  std::string system_prompt;
  bool no_predict = false;
  bool no_images = false;
  bool no_viewer = false;
  int64_t min_pixels = 0;
  int64_t max_pixels = 0;
  bool answer = false;
  int64_t max_new_tokens = 32;
  const CLI::Option* max_new_tokens_option = nullptr;
  bool raw_argmax = false;
  std::string baseline_prompt;
  const CLI::Option* baseline_option = nullptr;  // given at all (its value may be left out)
  double fps = 0;                 // 0: not given
  int64_t num_frames = 0;
  int64_t video_min_pixels = 0;
  int64_t video_max_pixels = 0;
  std::string vision_blocks = "none";
  std::string vision_query;  // empty: "mean"
};
void add_shared_run_flags(CLI::App& cmd, SharedRunFlags& flags);
// Parses the option strings into typed values (Error(Usage) naming the flag for a bad one) and
// resolves the 0 = "model default" sentinels. Checks against the model happen in the Runner.
RunSpec run_spec_from(const SharedRunFlags& flags);
// `--frames a.png,b.png` (comma-separated files, in that order) or `--frames DIR` (its images in
// name order). Error(Input) for an empty list or folder.
std::vector<std::filesystem::path> parse_frames_option(const std::string& value);

// Parses --device/--dtype (Error(Usage) for a bad spelling) and loads --model or the default model.
std::shared_ptr<Model> load_model_from(const SharedRunFlags& flags);

}  // namespace attnmap::cli
