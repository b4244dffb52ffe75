// GPT-2's byte-to-symbol mapping: every byte gets a printable code point so that vocab entries are
// readable strings ("Ġ" is byte 0x20). Encoding works on raw bytes; this is only for the file format.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace attnmap::tokenizer {

// UTF-8 of the symbol that stands for `byte` in tokenizer.json.
const std::string& byte_symbol(unsigned char byte);

// The raw bytes a vocab entry stands for, or nullopt when a character of it is not a byte symbol.
std::optional<std::string> symbols_to_bytes(std::string_view token);

// The vocab spelling of raw bytes.
std::string bytes_to_symbols(std::string_view bytes);

}  // namespace attnmap::tokenizer
