// DIR/index.html of a batch (docs/viewer.md): one row per item of this shard, linking its viewer.
#pragma once

#include <filesystem>

#include "attnmap/batch.hpp"

namespace attnmap {

// Writes the index page of `summary` into `out_dir` (index.html, or index.shard-K-of-N.html), atomically.
// Items that finished (now or in an earlier run, for --resume) are read back from their attention.json
// for the answer; an item whose folder cannot be read is listed with its error.
void write_batch_index(const BatchSummary& summary, const std::filesystem::path& out_dir, const Shard& shard);

}  // namespace attnmap
