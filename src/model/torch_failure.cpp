#include "model/torch_failure.hpp"

#include <c10/util/Exception.h>

#include <array>
#include <vector>

namespace attnmap {

bool is_out_of_memory(std::string_view what) {
  // CUDA, libtorch's CPU allocator, OpenCV's allocator, operator new.
  constexpr std::array<std::string_view, 5> kMarkers = {"out of memory", "can't allocate memory",
                                                        "Cannot allocate memory", "Insufficient memory",
                                                        "bad_alloc"};
  for (const std::string_view marker : kMarkers) {
    if (what.find(marker) != std::string_view::npos) return true;
  }
  return false;
}

std::string torch_failure_line(std::string_view what) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start <= what.size()) {
    size_t end = what.find('\n', start);
    if (end == std::string_view::npos) end = what.size();
    std::string_view line = what.substr(start, end - start);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.remove_suffix(1);
    if (!line.empty()) lines.push_back(line);
    start = end + 1;
  }
  if (lines.empty()) return "unknown libtorch error";
  const bool traceback = lines.front().find("TorchScript interpreter") != std::string_view::npos ||
                         lines.front().find("Traceback") != std::string_view::npos;
  return std::string(traceback ? lines.back() : lines.front());
}

std::string out_of_memory_message(const std::string& where, MemoryNeed need) {
  const char* way_out = need == MemoryNeed::Weights ? "use a smaller dtype export or another device"
                                                    : "lower --max-pixels or ask for fewer --layers";
  return "out of memory " + where + "; " + way_out;
}

Error error_from_exception(const std::exception& e) {
  const auto* torch_error = dynamic_cast<const c10::Error*>(&e);
  // c10::Error::what() appends a C++ backtrace; the message alone is what a user can read.
  const std::string what = torch_error ? torch_error->what_without_backtrace() : e.what();
  const std::string line = torch_failure_line(what);
  if (is_out_of_memory(what)) {
    return Error(ErrorKind::Resource, out_of_memory_message("(" + line + ")", MemoryNeed::Forward));
  }
  return Error(ErrorKind::Internal, torch_error ? "libtorch: " + line : line);
}

}  // namespace attnmap
