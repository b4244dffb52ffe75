// Which kind of output folder each side is, and which items pair up. Items are matched by id
// (the item folder's name), so a batch re-run in another place still compares.
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <system_error>

#include "attnmap/error.hpp"
#include "attnmap/run_folder.hpp"
#include "internal.hpp"

namespace attnmap::compare_detail {

namespace fs = std::filesystem;

namespace {

enum class Kind { Run, Batch };

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

Kind detect(const fs::path& dir, const std::string& side) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw Error(ErrorKind::Input, side + " '" + dir.string() + "' is not a folder; pass an attnmap run or batch output folder");
  }
  // attention.json marks a run folder even when maps.npy is gone: loading it then says what is wrong.
  if (is_file(dir / output::kAttentionFile)) return Kind::Run;
  if (is_file(dir / output::kSummaryFile)) return Kind::Batch;
  // A batch interrupted before summary.jsonl was written still has complete item folders.
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_directory(ec) && output::is_complete(entry.path())) return Kind::Batch;
  }
  throw Error(ErrorKind::Input, side + " '" + dir.string() +
                                    "' is neither a run folder (no attention.json) nor a batch folder (no summary.jsonl); "
                                    "pass the folder given to attnmap run --out or attnmap batch --out");
}

// Complete items (output::is_complete) by id, plus a reason for each item that summary.jsonl or a
// folder mentions but that is not complete, so a missing-item message can say why.
struct Listing {
  std::map<std::string, fs::path> complete;
  std::map<std::string, std::string> why_not;
};

Listing list_batch(const fs::path& dir) {
  Listing listing;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_directory(ec)) continue;
    const std::string id = entry.path().filename().string();
    if (output::is_complete(entry.path())) {
      listing.complete[id] = entry.path();
    } else {
      listing.why_not[id] = std::string("incomplete: no ") +
                            (is_file(entry.path() / output::kAttentionFile) ? output::kMapsFile : output::kAttentionFile);
    }
  }
  std::ifstream summary(dir / output::kSummaryFile);
  for (std::string line; std::getline(summary, line);) {
    // summary.jsonl only enriches messages; a damaged line must not hide the real comparison.
    const auto record = nlohmann::json::parse(line, nullptr, false);
    if (!record.is_object() || !record.contains("id") || !record["id"].is_string()) continue;
    const std::string id = record["id"].get<std::string>();
    // Any field may be of any type in a damaged file: test types, never let nlohmann throw.
    const bool failed = record.contains("status") && record["status"].is_string() && record["status"] == "error";
    if (listing.complete.count(id) || !failed) continue;
    std::string error = record.contains("error") && record["error"].is_string() ? record["error"].get<std::string>() : "";
    // The text goes into a one-line message.
    for (char& ch : error) {
      if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = ' ';
    }
    if (error.size() > 80) error = error.substr(0, 77) + "...";
    listing.why_not[id] = "failed in the batch" + (error.empty() ? "" : ": " + error);
  }
  return listing;
}

std::string missing_list(const Listing& present, const Listing& other) {
  // The first few ids are enough to act on; a message must stay one readable line.
  constexpr int kShown = 10;
  std::string out;
  int count = 0;
  for (const auto& [id, path] : other.complete) {
    if (present.complete.count(id)) continue;
    if (++count > kShown) continue;
    if (!out.empty()) out += ", ";
    out += "'" + id + "'";
    if (auto why = present.why_not.find(id); why != present.why_not.end()) out += " (" + why->second + ")";
  }
  if (count > kShown) out += " and " + std::to_string(count - kShown) + " more";
  return out;
}

}  // namespace

std::vector<ItemPair> match_items(const fs::path& baseline, const fs::path& candidate, std::string& kind) {
  const Kind kb = detect(baseline, "baseline"), kc = detect(candidate, "candidate");
  const auto name = [](Kind k) { return k == Kind::Run ? std::string("single-run") : std::string("batch"); };
  if (kb != kc) {
    throw Error(ErrorKind::Input, "baseline '" + baseline.string() + "' is a " + name(kb) + " folder but candidate '" +
                                      candidate.string() + "' is a " + name(kc) +
                                      " folder; compare two run folders or two batch folders");
  }
  if (kb == Kind::Run) {
    kind = "run";
    return {{"run", baseline, candidate}};
  }

  kind = "batch";
  const Listing b = list_batch(baseline), c = list_batch(candidate);
  if (b.complete.empty()) {
    throw Error(ErrorKind::Input, "baseline '" + baseline.string() + "' holds no complete items (no <id>/ with attention.json and maps.npy); regenerate the baseline");
  }
  const std::string missing_in_c = missing_list(c, b), missing_in_b = missing_list(b, c);
  if (!missing_in_c.empty() || !missing_in_b.empty()) {
    std::string msg = "items differ:";
    if (!missing_in_c.empty()) msg += " candidate '" + candidate.string() + "' lacks " + missing_in_c + ";";
    if (!missing_in_b.empty()) msg += " baseline '" + baseline.string() + "' lacks " + missing_in_b + ";";
    msg += " both folders must hold the same complete items (re-run the batch or update the baseline)";
    throw Error(ErrorKind::Input, msg);
  }
  std::vector<ItemPair> pairs;
  for (const auto& [id, path] : b.complete) pairs.push_back({id, path, c.complete.at(id)});
  return pairs;
}

}  // namespace attnmap::compare_detail
