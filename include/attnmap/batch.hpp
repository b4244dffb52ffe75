// Many items through one loaded model: decode/preprocess on a CPU pool, the forward on the device,
// rendering/encoding on a CPU pool, joined by bounded queues so memory stays flat however long the list.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "attnmap/options.hpp"
#include "attnmap/run.hpp"

namespace attnmap {

struct BatchOptions {
  std::filesystem::path images;        // a folder (recursive), a .txt list of paths, or a .jsonl manifest
  std::filesystem::path out_dir;       // one sub-folder per item + summary.jsonl
  std::string prompt;                  // for items without their own prompt
  bool resume = false;                 // skip items whose folder is complete (output::is_complete)
  Shard shard;                         // this job's shard of the listing (0/1 = everything)
  int cpu_workers = 0;                 // threads per CPU stage; 0 = half the cores, at least 1
  int queue_depth = 4;                 // items waiting between stages (bounds memory)
  bool progress = true;                // progress bar on a terminal, periodic lines otherwise
};

struct BatchItemResult {
  RunItem item;
  std::string status;  // ok | error | skipped
  std::string error;
  StageTimings timings;                 // as in the item's attention.json (partial for a failed item)
  std::optional<double> peak_device_memory_mib;  // CUDA only
  std::optional<std::string> answer;             // --answer: the generated text
};

struct BatchSummary {
  std::vector<BatchItemResult> items;  // in listing order
  int ok = 0, failed = 0, skipped = 0;
  double seconds = 0;
  std::filesystem::path summary_file;
};

// Lists the items of `images` (sorted, ids unique), with the prompt of each. Throws Error(Input)
// when the folder/list/manifest is unusable; per-item problems are left for the run to report.
std::vector<RunItem> list_batch_items(const BatchOptions& options);

// The items of shard K of N: every N-th item of the sorted listing starting at K, so N jobs split a
// dataset exactly with no coordination.
// Throws Error(Usage) naming --shard unless 0 <= index < count.
std::vector<RunItem> shard_items(const std::vector<RunItem>& items, const Shard& shard);

// What a batch checks and sets up before the model loads (minutes for a large export), so that a
// bad manifest or --out fails at once: the items of this shard with their output folders, --out
// created, and the temporaries that killed writers left in --out removed (not those of live
// concurrent shards). Throws Error (Usage, Input, Output) naming the problem.
struct BatchPlan {
  std::vector<RunItem> items;          // this shard's items, in listing order
  std::filesystem::path summary_file;  // DIR/summary.jsonl, or DIR/summary.shard-K-of-N.jsonl
};
BatchPlan plan_batch(const BatchOptions& options);

// Runs a plan: every item gets a summary line; items that fail do not stop the others.
BatchSummary run_batch(Runner& runner, const BatchOptions& options, BatchPlan plan);

// plan_batch then run_batch.
BatchSummary run_batch(Runner& runner, const BatchOptions& options);

}  // namespace attnmap
