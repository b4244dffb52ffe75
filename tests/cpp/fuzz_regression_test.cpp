// Inputs the fuzz harnesses (fuzz/) found: each must fail with attnmap's one-line Error(Input),
// never with a library exception (which the CLI reports as exit 70, an internal error).
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <string>
#include <vector>

#include "test_files.hpp"
#include "attnmap/batch.hpp"
#include "attnmap/error.hpp"
#include "io/npy.hpp"
#include "compare/internal.hpp"

namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) { return attnmap_test::fresh_dir("fuzz_regression", name); }

void write(const fs::path& path, const std::string& text) { attnmap_test::write_bytes(path, text); }

// The kind of the attnmap::Error thrown; anything else thrown escapes and fails the test.
attnmap::ErrorKind error_kind(const std::function<void()>& f) {
  try {
    f();
  } catch (const attnmap::Error& e) {
    return e.kind();
  }
  ADD_FAILURE() << "no error thrown";
  return attnmap::ErrorKind::Internal;
}

}  // namespace

// fuzz_manifest: {"image": ..., "prompt": 5} threw nlohmann's type_error out of list_batch_items.
TEST(FuzzRegression, ManifestWithNonStringPromptIsAnInputError) {
  const fs::path dir = fresh_dir("manifest_prompt");
  attnmap::BatchOptions options;
  options.images = dir / "manifest.jsonl";
  options.out_dir = dir / "out";
  for (const char* prompt : {"5", "null", "[\"a\"]", "{}"}) {
    write(options.images, std::string("{\"image\": \"a.png\"}\n{\"image\": \"b.png\", \"prompt\": ") + prompt + "}\n");
    EXPECT_EQ(error_kind([&] { attnmap::list_batch_items(options); }), attnmap::ErrorKind::Input) << prompt;
  }
  write(options.images, "{\"image\": \"b.png\", \"prompt\": \"Which shape?\"}\n");
  const auto items = attnmap::list_batch_items(options);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].prompt, "Which shape?");
}

// fuzz_summary_jsonl: a summary.jsonl line {"id": "x", "status": 5} threw nlohmann's type_error out
// of compare's folder matching, where a damaged summary must only lose its explanation.
TEST(FuzzRegression, SummaryLineWithNonStringStatusIsIgnored) {
  const fs::path dir = fresh_dir("summary_status");
  fs::create_directories(dir / "baseline" / "item");
  write(dir / "baseline" / "item" / "attention.json", "{}");
  write(dir / "baseline" / "item" / "maps.npy", "");  // complete by output::is_complete; contents are not read
  fs::create_directories(dir / "candidate");
  write(dir / "candidate" / "summary.jsonl",
        "{\"id\": \"item\", \"status\": 5}\n{\"id\": \"item\", \"status\": null}\n{\"id\": \"item\", \"status\": [\"error\"]}\n");
  std::string kind;
  try {
    attnmap::compare_detail::match_items(dir / "baseline", dir / "candidate", kind);
    ADD_FAILURE() << "items differ, yet no error";
  } catch (const attnmap::Error& e) {
    EXPECT_EQ(e.kind(), attnmap::ErrorKind::Input);
    EXPECT_NE(std::string(e.what()).find("lacks 'item'"), std::string::npos) << e.what();
  }
  // A real error line still explains the missing item.
  write(dir / "candidate" / "summary.jsonl", "{\"id\": \"item\", \"status\": \"error\", \"error\": \"bad image\"}\n");
  try {
    attnmap::compare_detail::match_items(dir / "baseline", dir / "candidate", kind);
    ADD_FAILURE() << "items differ, yet no error";
  } catch (const attnmap::Error& e) {
    EXPECT_NE(std::string(e.what()).find("failed in the batch: bad image"), std::string::npos) << e.what();
  }
}

// Every fuzz finding kept as a seed named regression-* (fuzz/corpus/<harness>/) is a bad file: it
// goes through the reader it crashed and must now be refused with attnmap's own input error.
namespace {
std::vector<fs::path> regression_seeds(const std::string& harness) {
  std::vector<fs::path> seeds;
  for (const auto& entry : fs::directory_iterator(fs::path(ATTNMAP_FUZZ_CORPUS_DIR) / harness)) {
    if (entry.path().filename().string().rfind("regression-", 0) == 0) seeds.push_back(entry.path());
  }
  return seeds;
}

void expect_clean(const fs::path& seed, const std::function<void()>& read) {
  try {
    read();
    ADD_FAILURE() << seed << ": accepted, but it is a known-bad file";
  } catch (const attnmap::Error& e) {
    EXPECT_EQ(e.kind(), attnmap::ErrorKind::Input) << seed << ": " << e.what();
  }
}
}  // namespace

TEST(FuzzRegression, NpySeedsFailCleanly) {
  const auto seeds = regression_seeds("npy");
  ASSERT_FALSE(seeds.empty());
  for (const auto& seed : seeds) expect_clean(seed, [&] { (void)attnmap::load_npy(seed); });
}

TEST(FuzzRegression, AttentionJsonSeedsFailCleanly) {
  const auto seeds = regression_seeds("attention_json");
  ASSERT_FALSE(seeds.empty());
  for (const auto& seed : seeds) {
    const fs::path dir = fresh_dir("attention_json_" + seed.stem().string());
    fs::copy_file(seed, dir / "attention.json");
    expect_clean(seed, [&] { (void)attnmap::compare_detail::load_run_folder(dir, false); });
  }
}
