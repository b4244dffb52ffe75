// Shared by the libFuzzer harnesses: what counts as a finding, and a scratch folder for the
// readers that only take paths.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "attnmap/error.hpp"

namespace attnmap::fuzz {

// A reader given bad bytes may only throw attnmap::Error of the kinds the CLI documents for bad
// input (Input, and Usage where an option value comes from a file). Anything else is a defect the
// user would see as exit 70 ("a bug, please report"), so the harness aborts and libFuzzer keeps the
// input as a crash reproducer.
template <class Fn>
void expect_clean_failure(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::Input || e.kind() == ErrorKind::Usage) return;
    std::fprintf(stderr, "attnmap fuzz: unexpected attnmap::Error kind %d: %s\n", e.exit_code(), e.what());
    std::abort();
  } catch (const std::exception& e) {
    // ATTNMAP_FUZZ_LENIENT=1 lets a run go past a known exception defect to look for memory errors.
    static const bool lenient = std::getenv("ATTNMAP_FUZZ_LENIENT") != nullptr;
    if (lenient) return;
    std::fprintf(stderr, "attnmap fuzz: non-attnmap exception escaped (CLI exit 70): %s\n", e.what());
    std::abort();
  }
}

// One folder per fuzzing process (libFuzzer's -jobs/-fork run several), removed at exit.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::string tmpl = (std::filesystem::temp_directory_path() / "attnmap-fuzz-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) std::abort();
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch_dir(), ec);
    });
    return std::filesystem::path(tmpl);
  }();
  return dir;
}

inline void write_file(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) std::abort();
}

}  // namespace attnmap::fuzz
