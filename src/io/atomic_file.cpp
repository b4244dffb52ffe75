#include "attnmap/atomic_file.hpp"

#include <unistd.h>

#include <atomic>
#include <fstream>
#include <system_error>

#include "attnmap/error.hpp"

namespace attnmap {
namespace fs = std::filesystem;

namespace {
// Unique per process and call, so concurrent writers (batch threads, parallel jobs) never collide.
fs::path temporary_sibling(const fs::path& path) {
  static std::atomic<unsigned long> counter{0};
  return path.parent_path() / ("." + path.filename().string() + ".tmp." + std::to_string(::getpid()) +
                               "." + std::to_string(counter++));
}
}  // namespace

void write_atomically(const fs::path& path, const std::function<void(const fs::path&)>& write) {
  const fs::path tmp = temporary_sibling(path);
  try {
    write(tmp);
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) {
      throw Error(ErrorKind::Output, "cannot write '" + path.string() + "': " + ec.message() +
                                         "; check that the folder is writable and has free space");
    }
  } catch (...) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
}

void write_file_atomically(const fs::path& path, std::string_view bytes) {
  write_atomically(path, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      throw Error(ErrorKind::Output, "cannot write '" + path.string() +
                                         "': write failed; check that the folder is writable and has free space");
    }
  });
}

void ensure_directory(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    throw Error(ErrorKind::Output, "cannot create output folder '" + dir.string() + "': " +
                                       (ec ? ec.message() : std::string("a file of that name exists")) +
                                       "; choose another --out");
  }
}

}  // namespace attnmap
