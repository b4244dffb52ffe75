// Scratch files for the C++ tests: an empty folder per test under the build's work directory, and
// a file with exact bytes. Shared so that every test file makes them the same way.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

namespace attnmap_test {

// <build>/tests/work/<group>/<name>, emptied.
inline std::filesystem::path fresh_dir(const std::string& group, const std::string& name) {
  const std::filesystem::path dir = std::filesystem::path(ATTNMAP_TEST_WORK_DIR) / group / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

}  // namespace attnmap_test
