// GIF's variable-length LZW coding of 8-bit palette indices (GIF89a spec, appendix F), internal to
// src/render. Apart from the palette and the file layout because it is the one part that must match
// every decoder bit for bit; tests/cpp/gif_test.cpp checks it against a decoder written from the spec.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace attnmap::gif {

// The code stream of one image, with a minimum code size of 8: a clear code first, codes of 9 to 12
// bits packed least-significant bit first, a clear code whenever the code table is full, and the
// end-of-information code last. Returns the packed bytes, not yet split into sub-blocks.
std::string lzw_encode(std::span<const uint8_t> indices);

// Splits data into GIF data sub-blocks (a length byte, then at most 255 bytes) ended by an empty block.
void append_sub_blocks(std::string& out, const std::string& data);

}  // namespace attnmap::gif
