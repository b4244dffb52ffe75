// Turning libtorch's exception texts into attnmap's one-line errors.
#pragma once

#include <exception>
#include <string>
#include <string_view>

#include "attnmap/error.hpp"

namespace attnmap {

// True for the out-of-memory messages of CUDA ("CUDA out of memory"), of libtorch's CPU allocator
// ("DefaultCPUAllocator: can't allocate memory", also inside a TorchScript traceback), of OpenCV
// ("Insufficient memory") and of operator new ("std::bad_alloc").
bool is_out_of_memory(std::string_view what);

// The line that says what went wrong: a TorchScript failure starts with "The following operation
// failed in the TorchScript interpreter." and a traceback, and ends with the exception's own line.
std::string torch_failure_line(std::string_view what);

// What did not fit: the weights of a model being loaded, or one forward (image, layers).
enum class MemoryNeed { Weights, Forward };

// The one wording of every out-of-memory error: "out of memory <where>; <the way out for `need`>".
// `where` names the device and the stage ("on cuda:0 for this image") or carries libtorch's own line.
std::string out_of_memory_message(const std::string& where, MemoryNeed need);

// Any exception from libtorch, OpenCV or the standard library as attnmap's one-line error:
// Resource with the way out for an out-of-memory, Internal (a bug to report) for anything else.
Error error_from_exception(const std::exception& e);

}  // namespace attnmap
