// load_npy (maps.npy of compare, debug inputs): the bytes are the whole file.
#include <cstdint>
#include <string_view>

#include "io/npy.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = attnmap::fuzz::scratch_dir() / "maps.npy";
  attnmap::fuzz::write_file(file, std::string_view(reinterpret_cast<const char*>(data), size));
  attnmap::fuzz::expect_clean_failure([&] { (void)attnmap::load_npy(file); });
  return 0;
}
