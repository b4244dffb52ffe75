#include "cli/batch_command.hpp"

#include "log/log.hpp"

#include "attnmap/batch.hpp"
#include "attnmap/error.hpp"
#include "attnmap/options.hpp"
#include "cli/cli_common.hpp"

namespace attnmap::cli {
void add_batch_command(CLI::App& app, int& exit_code) {
  CLI::App* cmd = app.add_subcommand("batch", "many images through one loaded model; one output folder per item");
  auto flags = std::make_shared<SharedRunFlags>();
  auto options = std::make_shared<BatchOptions>();
  auto shard = std::make_shared<std::string>("0/1");
  auto no_progress = std::make_shared<bool>(false);
  cmd->add_option("--images", options->images, "a folder (recursive), a .txt list of paths, or a .jsonl manifest")
      ->required();
  cmd->add_option("--out", options->out_dir, "output folder: <id>/ per item + summary.jsonl")->required();
  cmd->add_option("--prompt", options->prompt, "prompt for items without their own");
  cmd->add_flag("--resume", options->resume, "skip items whose outputs are complete");
  cmd->add_option("--shard", *shard, "process shard K of N (K/N, 0-based), e.g. $SLURM_ARRAY_TASK_ID/8")
      ->capture_default_str();
  cmd->add_option("--workers", options->cpu_workers, "threads per CPU stage (0 = half the cores)")
      ->capture_default_str();
  cmd->add_option("--queue-depth", options->queue_depth, "items buffered between stages")->capture_default_str();
  cmd->add_flag("--no-progress", *no_progress, "no progress bar or periodic progress lines");
  add_shared_run_flags(*cmd, *flags);
  cmd->callback([&exit_code, flags, options, shard, no_progress] {
    exit_code = guarded([&] {
      options->shard = parse_shard(*shard);
      options->progress = !*no_progress;
      const RunSpec spec = run_spec_from(*flags);  // every option string parsed before any work
      BatchPlan plan = plan_batch(*options);  // before the model: its load can take minutes
      auto model = load_model_from(*flags);
      Runner runner(model, spec);
      const BatchSummary summary = run_batch(runner, *options, std::move(plan));
      const double rate = summary.seconds > 0 ? summary.ok / summary.seconds : 0.0;
      log::info(std::to_string(summary.ok) + " ok, " + std::to_string(summary.failed) + " failed, " +
                std::to_string(summary.skipped) + " skipped in " + log::fixed(summary.seconds) + " s (" +
                log::fixed(rate, 2) + " items/s); summary: " + summary.summary_file.string());
      for (const BatchItemResult& r : summary.items) {
        if (r.status == "error") log::warn(r.item.id + ": " + r.error);
      }
      return summary.failed > 0 ? 1 : 0;
    });
  });
}

}  // namespace attnmap::cli
