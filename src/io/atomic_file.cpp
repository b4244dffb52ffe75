#include "io/atomic_file.hpp"

#include <array>
#include <atomic>
#include <cstring>
#include <fstream>
#include <system_error>

#include "attnmap/error.hpp"
#include "io/temporary_name.hpp"

namespace attnmap {
namespace fs = std::filesystem;

namespace {
// Fixed slots, not a container: a signal handler may only read plain memory and call unlink().
constexpr size_t kSlots = 64;
constexpr size_t kPathMax = 4096;
struct PendingSlot {
  std::atomic<bool> busy{false};
  std::atomic<bool> ready{false};
  char path[kPathMax];
};
std::array<PendingSlot, kSlots> pending;

// Records tmp for remove_pending_temporary_files() while it exists; a full table or an overlong
// path only means that Ctrl-C could leave that one file behind.
class PendingTemporary {
 public:
  explicit PendingTemporary(const fs::path& tmp) {
    const std::string s = tmp.string();
    if (s.size() >= kPathMax) return;
    for (PendingSlot& slot : pending) {
      bool expected = false;
      if (slot.busy.compare_exchange_strong(expected, true)) {
        std::memcpy(slot.path, s.c_str(), s.size() + 1);
        slot.ready.store(true);
        slot_ = &slot;
        return;
      }
    }
  }
  ~PendingTemporary() {
    if (!slot_) return;
    slot_->ready.store(false);
    slot_->busy.store(false);
  }

 private:
  PendingSlot* slot_ = nullptr;
};

}  // namespace

void remove_pending_temporary_files() noexcept {
  for (PendingSlot& slot : pending) {
    if (slot.ready.load()) ::unlink(slot.path);
  }
}

void write_atomically(const fs::path& path, const std::function<void(const fs::path&)>& write) {
  const fs::path tmp = temporary_sibling(path);
  const PendingTemporary guard(tmp);
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
  if (ec == std::errc::filename_too_long) {
    throw Error(ErrorKind::Output, "cannot create output folder '" + dir.string() +
                                       "': a name in it is longer than the file system allows (255 bytes); "
                                       "use a shorter name");
  }
  if (ec || !fs::is_directory(dir)) {
    throw Error(ErrorKind::Output, "cannot create output folder '" + dir.string() + "': " +
                                       (ec ? ec.message() : std::string("a file of that name exists")) +
                                       "; check that its parent is a writable folder, or choose another");
  }
}

}  // namespace attnmap
