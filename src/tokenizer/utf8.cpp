#include "tokenizer/utf8.hpp"

#include <utf8proc.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace attnmap::tokenizer {
namespace {

// Length of the valid prefix of the sequence starting at `i` (the whole sequence when valid), and
// whether it is complete. Ranges follow the Unicode "well-formed UTF-8" table (Table 3-7).
struct SeqCheck {
  size_t len;
  bool valid;
};

SeqCheck check_sequence(std::string_view s, size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) return {1, true};
  size_t width = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) {
    width = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    width = 3;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    width = 4;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    return {1, false};
  }
  size_t k = 1;
  for (; k < width; ++k) {
    if (i + k >= s.size()) return {k, false};
    const auto c = static_cast<unsigned char>(s[i + k]);
    const unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (c < l || c > h) return {k, false};
  }
  return {width, true};
}

}  // namespace

std::optional<size_t> find_invalid_utf8(std::string_view text) {
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    // Skip ASCII eight bytes at a time: most prompts are mostly ASCII.
    while (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, text.data() + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    const SeqCheck c = check_sequence(text, i);
    if (!c.valid) return i;
    i += c.len;
  }
  return std::nullopt;
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    const SeqCheck c = check_sequence(bytes, i);
    if (c.valid) {
      out.append(bytes.data() + i, c.len);
    } else {
      out += "\xEF\xBF\xBD";
    }
    i += c.len;
  }
  return out;
}

char32_t next_code_point(std::string_view text, size_t& pos) {
  utf8proc_int32_t cp = 0;
  const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + pos),
                                  static_cast<utf8proc_ssize_t>(text.size() - pos), &cp);
  pos += n > 0 ? static_cast<size_t>(n) : 1;
  return n > 0 ? static_cast<char32_t>(cp) : 0xFFFD;
}

char32_t prev_code_point(std::string_view text, size_t& end) {
  size_t start = end - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  size_t pos = start;
  const char32_t cp = next_code_point(text, pos);
  end = start;
  return cp;
}

bool is_white_space(char32_t c) {
  if ((c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85) return true;
  if (c < 0x80) return false;
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

bool is_word_char(char32_t c) {
  if (c == 0x200C || c == 0x200D) return true;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return false;
  }
}

namespace {

void append_nfc(std::string_view chunk, std::string& out) {
  utf8proc_uint8_t* buf = nullptr;
  const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(chunk.data()),
                              static_cast<utf8proc_ssize_t>(chunk.size()), &buf,
                              static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) throw std::runtime_error(std::string("NFC normalization failed: ") + utf8proc_errmsg(n));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> guard(buf, &std::free);
  out.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

bool is_ascii(char c) { return static_cast<unsigned char>(c) < 0x80; }

}  // namespace

std::string_view nfc(std::string_view text, std::string& storage) {
  size_t i = 0;
  const size_t n = text.size();
  while (i < n && is_ascii(text[i])) ++i;
  if (i == n) return text;
  // Every ASCII character is a normalization boundary (a starter that never composes with what
  // precedes it; UAX #15), so only the non-ASCII runs, each with the ASCII character before it
  // (which may compose with a following mark: e + U+0301), go through utf8proc.
  storage.clear();
  storage.reserve(n + 16);
  size_t copied = 0;
  while (i < n) {
    const size_t start = i > copied ? i - 1 : i;
    storage.append(text.data() + copied, start - copied);
    size_t end = i;
    while (end < n && !is_ascii(text[end])) ++end;
    append_nfc(text.substr(start, end - start), storage);
    copied = end;
    i = end;
    while (i < n && is_ascii(text[i])) ++i;
  }
  storage.append(text.data() + copied, n - copied);
  return storage;
}

}  // namespace attnmap::tokenizer
