// compare's reader of a run folder's attention.json (maps.npy is the npy harness's job).
#include <cstdint>
#include <string_view>

#include "compare/internal.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& dir = attnmap::fuzz::scratch_dir();
  attnmap::fuzz::write_file(dir / "attention.json", std::string_view(reinterpret_cast<const char*>(data), size));
  attnmap::fuzz::expect_clean_failure([&] { (void)attnmap::compare_detail::load_run_folder(dir, false); });
  return 0;
}
