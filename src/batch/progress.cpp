#include "batch/progress.hpp"

#include "log/log.hpp"
#include <unistd.h>

#include <cstdio>
#include <string>

namespace attnmap {

Progress::Progress(size_t total, bool enabled)
    : total_(total), enabled_(enabled), tty_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()), last_print_(start_) {}

void Progress::advance(bool failed) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++done_;
  if (failed) ++failed_;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const auto since = std::chrono::duration<double>(now - last_print_).count();
  if ((tty_ && since >= 0.2) || since >= 10.0) print_locked(false);
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (enabled_ && tty_) print_locked(true);
}

void Progress::print_locked(bool final_line) {
  last_print_ = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(last_print_ - start_).count();
  const double rate = elapsed > 0 ? done_ / elapsed : 0;
  const double eta = rate > 0 ? (total_ - done_) / rate : 0;
  if (tty_) {
    const int width = 30;
    const int filled = total_ ? static_cast<int>(width * done_ / total_) : width;
    std::fprintf(stderr, "\r[%s%s] %zu/%zu  %zu failed  %.2f items/s  ETA %.0fs%s",
                 std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(), done_, total_, failed_,
                 rate, eta, final_line ? "\n" : "   ");
    std::fflush(stderr);
  } else {
    log::info(std::to_string(done_) + "/" + std::to_string(total_) + " items, " + std::to_string(failed_) +
              " failed, " + log::fixed(rate, 2) + " items/s, ETA " + log::fixed(eta, 0) + " s");
  }
}

}  // namespace attnmap
