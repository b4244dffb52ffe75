#pragma once

#include <nlohmann/json.hpp>

#include "attnmap/run.hpp"

namespace attnmap {

// The attention.json of one item (schema in docs/design.md).
nlohmann::ordered_json attention_document(const Runner& runner, const InferredItem& inferred, const StageTimings& timings);

inline constexpr int kAttentionSchemaVersion = 1;

}  // namespace attnmap
