// A full libpng decode of a PNG with attnmap's own error handlers, so that a corrupt file becomes
// one attnmap error naming it instead of libpng's bare "libpng error: ..." line on stderr.
#pragma once

#include <string>

namespace attnmap::detail {

// libpng's message for the first error decoding `bytes` (a PNG file held in memory), or empty
// when every row decodes. Warnings are ignored. Thread-safe: all state is per call.
std::string png_decode_error(const std::string& bytes);

}  // namespace attnmap::detail
