// Errors thrown by the library. Each kind maps to one documented exit code of the CLI
// (see docs/exit_codes.md); messages are one line: what was wrong, with which input, what to do.
#pragma once

#include <stdexcept>
#include <string>

namespace attnmap {

enum class ErrorKind {
  Usage = 2,      // an option or its value is invalid (out-of-range layer, unknown colormap, ...)
  Input = 3,      // an image or prompt cannot be used (missing, corrupt, too small, empty, bad UTF-8)
  Model = 4,      // the model file is missing, not an attnmap export, or of another format version
  Output = 5,     // an output file or folder cannot be written
  Resource = 6,   // out of memory on the device, or the device is unavailable
  Internal = 70,  // a bug: an invariant of attnmap itself was broken
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const noexcept { return kind_; }
  int exit_code() const noexcept { return static_cast<int>(kind_); }

 private:
  ErrorKind kind_;
};

}  // namespace attnmap
