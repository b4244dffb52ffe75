#include "cli/run_command.hpp"

#include <spdlog/spdlog.h>

#include "cli/cli_common.hpp"
#include "run/stopwatch.hpp"

namespace attnmap::cli {

void add_run_command(CLI::App& app, int& exit_code) {
  CLI::App* cmd = app.add_subcommand("run", "one image + one prompt -> per-layer heatmaps, maps.npy, attention.json");
  auto flags = std::make_shared<SharedRunFlags>();
  auto item = std::make_shared<RunItem>();
  auto dump = std::make_shared<std::string>();
  cmd->add_option("--image", item->image, "input image (JPEG, PNG, WebP, BMP, TIFF, ...)")->required();
  cmd->add_option("--prompt", item->prompt, "the user's text about the image")->required();
  cmd->add_option("--out", item->out_dir, "output folder (created if missing)")->required();
  cmd->add_option("--dump-inputs", *dump, "also write the model inputs (.npy) to this folder");
  add_shared_run_flags(*cmd, *flags);
  cmd->callback([&exit_code, flags, item, dump] {
    exit_code = guarded([&] {
      Stopwatch clock;
      RunOptions options = run_options_from(*flags);
      options.dump_inputs = *dump;
      auto model = load_model_from(*flags);
      const double load_ms = clock.lap();
      Runner runner(model, options);
      RunItem it = *item;
      it.id = it.image.stem().string();
      PreparedItem prepared = runner.prepare(it);
      prepared.timings["load_model"] = load_ms;
      InferredItem inferred = runner.infer(std::move(prepared));
      runner.write(inferred);
      if (inferred.prediction) {
        spdlog::info("next token: {:?} (p={:.3f})", inferred.prediction->text, inferred.prediction->probability);
      }
      spdlog::info("wrote {} layer map(s) to {} in {:.0f} ms", inferred.maps.size(0), it.out_dir.string(),
                   load_ms + clock.lap());
      return 0;
    });
  });
}

}  // namespace attnmap::cli
