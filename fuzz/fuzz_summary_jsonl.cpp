// compare's reading of a batch folder's summary.jsonl: the candidate batch folder holds only the
// fuzzed summary.jsonl, the baseline one complete item, so match_items reads every summary line to
// explain the missing item.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "compare/internal.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fs = std::filesystem;
  const fs::path baseline = attnmap::fuzz::scratch_dir() / "baseline", candidate = attnmap::fuzz::scratch_dir() / "candidate";
  static const bool ready = [&] {
    fs::create_directories(baseline / "item");
    fs::create_directories(candidate);
    attnmap::fuzz::write_file(baseline / "item" / "attention.json", "{}");
    attnmap::fuzz::write_file(baseline / "summary.jsonl", "{\"id\":\"item\",\"status\":\"ok\"}\n");
    return true;
  }();
  (void)ready;
  attnmap::fuzz::write_file(candidate / "summary.jsonl", std::string_view(reinterpret_cast<const char*>(data), size));
  std::string kind;
  attnmap::fuzz::expect_clean_failure([&] { (void)attnmap::compare_detail::match_items(baseline, candidate, kind); });
  return 0;
}
