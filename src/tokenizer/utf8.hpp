// UTF-8 helpers shared by the tokenizer stages. Unicode data comes from utf8proc, never from tables here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace attnmap::tokenizer {

// Byte offset of the first byte that starts an invalid UTF-8 sequence (overlong forms, surrogates
// and code points above U+10FFFF count as invalid), or nullopt when `text` is valid.
std::optional<size_t> find_invalid_utf8(std::string_view text);

// Replaces each maximal invalid subsequence with U+FFFD, as Rust's String::from_utf8_lossy does
// (HF's ByteLevel decoder ends with it).
std::string utf8_lossy(std::string_view bytes);

// Decodes the code point at `pos` of valid UTF-8 and advances `pos` past it.
char32_t next_code_point(std::string_view text, size_t& pos);
// Decodes the code point that ends at `end` (exclusive) of valid UTF-8 and moves `end` to its start.
char32_t prev_code_point(std::string_view text, size_t& end);

// Unicode White_Space (what Rust's and Oniguruma's \s match): the separators Z* plus the controls
// TAB..CR and NEL.
bool is_white_space(char32_t c);
// Rust regex's \w: letters, marks, decimal digits, connector punctuation, ZWJ/ZWNJ.
bool is_word_char(char32_t c);

// Unicode NFC of valid UTF-8 input: `text` itself when it is ASCII, else a view of `storage`.
std::string_view nfc(std::string_view text, std::string& storage);

}  // namespace attnmap::tokenizer
