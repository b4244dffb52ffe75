#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>

namespace attnmap {

// A one-line progress bar with items/s and ETA on a terminal; a log line every 10 s otherwise
// (so CI and cluster logs stay readable).
class Progress {
 public:
  Progress(size_t total, bool enabled);
  void advance(bool failed);
  void finish();

 private:
  void print_locked(bool final_line);
  size_t total_, done_ = 0, failed_ = 0;
  bool enabled_, tty_;
  std::chrono::steady_clock::time_point start_, last_print_;
  std::mutex mutex_;
};

}  // namespace attnmap
