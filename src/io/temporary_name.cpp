#include "io/temporary_name.hpp"

#include <unistd.h>

#include <atomic>
#include <cctype>

namespace attnmap {
namespace fs = std::filesystem;

namespace {

bool all_digits(const std::string& s) {
  if (s.empty() || s.size() > 18) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

const std::string& this_host() {
  // The host is in the name because --out may be on a shared file system, written by shards on
  // several machines: a PID says whether its writer is alive only on the machine that wrote it.
  static const std::string host = [] {
    char name[256] = {0};
    if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return std::string("localhost");
    std::string h(name);
    for (char& c : h) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') c = '_';
    }
    return h;
  }();
  return host;
}

fs::path temporary_sibling(const fs::path& path) {
  static std::atomic<unsigned long> counter{0};
  return path.parent_path() / ("." + path.filename().string() + ".tmp." + this_host() + "." +
                               std::to_string(::getpid()) + "." + std::to_string(counter++));
}

std::optional<TemporaryWriter> temporary_writer(const std::string& name) {
  if (name.size() < 2 || name[0] != '.') return std::nullopt;
  // From the right: ".N", then ".PID", then ".tmp.HOST" (or ".tmp" alone in the older names).
  const size_t n_dot = name.rfind('.');
  if (n_dot == std::string::npos || n_dot == 0 || !all_digits(name.substr(n_dot + 1))) return std::nullopt;
  const size_t pid_dot = name.rfind('.', n_dot - 1);
  if (pid_dot == std::string::npos || !all_digits(name.substr(pid_dot + 1, n_dot - pid_dot - 1))) return std::nullopt;
  const std::string rest = name.substr(0, pid_dot);
  TemporaryWriter writer;
  writer.pid = std::stol(name.substr(pid_dot + 1, n_dot - pid_dot - 1));
  if (rest.size() > 4 && rest.compare(rest.size() - 4, 4, ".tmp") == 0) return writer;
  const size_t tmp = rest.rfind(".tmp.");
  if (tmp == std::string::npos || tmp == 0 || tmp + 5 >= rest.size()) return std::nullopt;
  writer.host = rest.substr(tmp + 5);
  return writer;
}

}  // namespace attnmap
