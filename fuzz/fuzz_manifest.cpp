// batch's --images listing from a file: the first byte picks a .jsonl manifest or a .txt list, the
// rest is the file.
#include <cstdint>
#include <string>
#include <string_view>

#include "attnmap/batch.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  attnmap::BatchOptions options;
  options.images = attnmap::fuzz::scratch_dir() / ((data[0] & 1) ? "images.txt" : "manifest.jsonl");
  options.out_dir = attnmap::fuzz::scratch_dir() / "out";
  options.prompt = "Describe the image.";
  attnmap::fuzz::write_file(options.images, std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  attnmap::fuzz::expect_clean_failure([&] {
    for (const attnmap::RunItem& item : attnmap::list_batch_items(options)) {
      // Ids become folder names under --out: one non-empty path component, never . or ..
      const std::string& id = item.id;
      if (id.empty() || id == "." || id == ".." || id.find('/') != std::string::npos ||
          item.out_dir.parent_path() != options.out_dir) {
        std::abort();
      }
    }
  });
  return 0;
}
