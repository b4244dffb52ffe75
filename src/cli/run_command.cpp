#include "cli/run_command.hpp"

#include <algorithm>

#include "attnmap/error.hpp"
#include "log/log.hpp"
#include "attnmap/run_folder.hpp"

#include "cli/cli_common.hpp"
#include "run/stopwatch.hpp"

namespace attnmap::cli {

void add_run_command(CLI::App& app, int& exit_code) {
  CLI::App* cmd = app.add_subcommand("run", "one image + one prompt -> per-layer heatmaps, maps.npy, attention.json");
  auto flags = std::make_shared<SharedRunFlags>();
  auto item = std::make_shared<RunItem>();
  auto dump = std::make_shared<std::string>();
  auto frames = std::make_shared<std::string>();
  CLI::Option* image = cmd->add_option("--image", item->image, "input image (JPEG, PNG, WebP, BMP, TIFF, ...)");
  CLI::Option* video = cmd->add_option("--video", item->video, "input video (MP4, MOV, WebM, ...; FFmpeg decodes it)");
  CLI::Option* frame_list =
      cmd->add_option("--frames", *frames, "a video given as frames: a.png,b.png,... or a folder (name order)");
  image->excludes(video)->excludes(frame_list);
  video->excludes(frame_list);
  cmd->add_option("--prompt", item->prompt, "the user's text about the image")->required();
  cmd->add_option("--out", item->out_dir, "output folder (created if missing)")->required();
  cmd->add_option("--dump-inputs", *dump, "also write the model inputs (.npy) to this folder");
  add_shared_run_flags(*cmd, *flags);
  cmd->callback([&exit_code, flags, item, dump, frames] {
    exit_code = guarded([&] {
      if (item->image.empty() && item->video.empty() && frames->empty()) {
        throw Error(ErrorKind::Usage, "give the input: --image FILE, --video FILE or --frames a.png,b.png|DIR");
      }
      if (!frames->empty() && (flags->fps != 0 || flags->num_frames != 0)) {
        throw Error(ErrorKind::Usage, "--frames takes every frame given, as transformers does for a frame list; "
                                      "drop --fps/--num-frames or pass --video");
      }
      Stopwatch clock;
      const RunSpec spec = run_spec_from(*flags);  // every option string parsed before the model loads
      auto model = load_model_from(*flags);
      const double load_ms = clock.lap();
      Runner runner(model, spec);
      RunItem it = *item;
      if (!frames->empty()) it.frames = parse_frames_option(*frames);
      it.id = it.input().stem().string();
      PreparedItem prepared = runner.prepare(it);
      prepared.timings["load_model"] = load_ms;
      if (!dump->empty()) {
        const ModelInputs& in = prepared.inputs;
        output::dump_model_inputs(*dump, in.input_ids, in.pixel_values, in.image_grid_thw, in.position_ids,
                                  prepared.query_rows);
        if (in.pixel_values_videos.defined()) {
          output::dump_video_inputs(*dump, in.pixel_values_videos, in.video_grid_thw);
        }
      }
      const RunRecord record = runner.write(runner.infer(std::move(prepared)));
      if (record.answer) {
        log::info("answer (" + std::to_string(record.answer->tokens.size()) + " tokens" +
                  (record.answer->stopped_on_eos ? "" : ", stopped at --max-new-tokens") + "): '" +
                  record.answer->text + "'");
      } else if (record.prediction) {
        log::info("next token: '" + record.prediction->text + "' (p=" + log::fixed(record.prediction->probability, 3) + ")");
      }
      // Point at the focus layer's image only when this run wrote it.
      const bool focus_written = record.focus_layer && spec.write_images &&
                                 std::any_of(record.layers.begin(), record.layers.end(),
                                             [&](const LayerStats& s) { return s.layer == *record.focus_layer; });
      if (focus_written) {
        log::info("the model's focus layer is " + std::to_string(*record.focus_layer) + ": see " +
                  output::layer_file_name(*record.focus_layer));
      }
      log::info("wrote " + std::to_string(record.layers.size()) + " layer map(s) to " + it.out_dir.string() +
                " in " + log::fixed(load_ms + clock.lap(), 0) + " ms");
      return 0;
    });
  });
}

}  // namespace attnmap::cli
