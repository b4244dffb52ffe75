#include <signal.h>

#include <cerrno>
#include <chrono>

#include "io/atomic_file.hpp"
#include "io/temporary_name.hpp"

namespace attnmap {
namespace fs = std::filesystem;

namespace {

// Whether the writer may still be writing. Only a PID of this host can be checked; a writer on
// another host (a shard on another node of a shared file system) is assumed alive.
bool writer_may_be_alive(const TemporaryWriter& writer) {
  if (!writer.host.empty() && writer.host != this_host()) return true;
  if (writer.pid <= 0 || writer.pid != static_cast<pid_t>(writer.pid)) return true;
  return ::kill(static_cast<pid_t>(writer.pid), 0) == 0 || errno == EPERM;
}

// A dead PID alone does not prove the writer is gone: a writer in another PID namespace (a
// container sharing this host name and the output folder) is invisible to kill(). A temporary lives
// for the seconds of one write, so one untouched for a minute is a leftover whoever wrote it.
constexpr auto kUntouchedFor = std::chrono::seconds(60);

bool untouched_long_enough(const fs::path& path) {
  std::error_code ec;
  const auto written = fs::last_write_time(path, ec);
  return !ec && fs::file_time_type::clock::now() - written >= kUntouchedFor;
}

size_t sweep(const fs::path& dir) {
  size_t removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec) || it->is_symlink(type_ec)) continue;
    const auto writer = temporary_writer(it->path().filename().string());
    if (!writer || writer_may_be_alive(*writer) || !untouched_long_enough(it->path())) continue;
    std::error_code rm_ec;
    if (fs::remove(it->path(), rm_ec)) ++removed;
  }
  return removed;
}

}  // namespace

size_t remove_stale_temporary_files_in(const fs::path& dir) { return sweep(dir); }

size_t remove_stale_temporary_files(const fs::path& dir) {
  size_t removed = sweep(dir);
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_directory(type_ec) && !it->is_symlink(type_ec)) removed += sweep(it->path());
  }
  return removed;
}

}  // namespace attnmap
