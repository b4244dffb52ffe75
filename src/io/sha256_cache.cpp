#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>

#include "io/atomic_file.hpp"
#include "io/sha256.hpp"

namespace attnmap {
namespace fs = std::filesystem;
namespace {

std::optional<fs::path> cache_dir() {
  if (const char* dir = std::getenv("ATTNMAP_CACHE_DIR"); dir && *dir) return fs::path(dir);
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return fs::path(xdg) / "attnmap";
  if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".cache" / "attnmap";
  return std::nullopt;
}

// Everything that changes when the file is replaced or rewritten in place.
std::optional<std::string> identity_of(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  std::error_code ec;
  const fs::path absolute = fs::absolute(path, ec);
  std::ostringstream key;
  key << (ec ? path : absolute).string() << '\n'
      << st.st_dev << ':' << st.st_ino << '\n'
      << st.st_size << '\n'
      << st.st_mtim.tv_sec << '.' << st.st_mtim.tv_nsec << '\n'
      << st.st_ctim.tv_sec << '.' << st.st_ctim.tv_nsec;
  return key.str();
}

bool is_hex_digest(const std::string& s) {
  if (s.size() != 64) return false;
  for (const char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::optional<std::string> read_cached_digest(const fs::path& entry) {
  std::ifstream in(entry);
  std::string digest;
  if (in >> digest && is_hex_digest(digest)) return digest;
  return std::nullopt;
}

}  // namespace

std::string sha256_file_hex_cached(const fs::path& path) {
  const std::optional<fs::path> dir = cache_dir();
  const std::optional<std::string> identity = identity_of(path);
  if (!dir || !identity) return sha256_file_hex(path);
  const fs::path entry = *dir / "sha256" / sha256_hex(*identity);
  if (std::optional<std::string> cached = read_cached_digest(entry)) return *std::move(cached);
  std::string digest = sha256_file_hex(path);
  try {
    std::error_code ec;
    fs::create_directories(entry.parent_path(), ec);
    write_file_atomically(entry, digest + "\n");
  } catch (...) {
    // A read-only home or a full disk costs a re-hash next time, nothing more.
  }
  return digest;
}

}  // namespace attnmap
