#include "render/display_text.hpp"

#include <utf8proc.h>

#include <algorithm>
#include <vector>

#include "tokenizer/utf8.hpp"

namespace attnmap::detail {
namespace {

std::u32string decode_lossy(std::string_view utf8) {
  const std::string valid = tokenizer::utf8_lossy(utf8);
  std::u32string out;
  for (size_t pos = 0; pos < valid.size();) out.push_back(tokenizer::next_code_point(valid, pos));
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  utf8proc_uint8_t buf[4];
  const auto n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(cp), buf);
  out.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

bool is_right_to_left(char32_t cp) {
  const auto bidi = utf8proc_get_property(static_cast<utf8proc_int32_t>(cp))->bidi_class;
  return bidi == UTF8PROC_BIDI_CLASS_R || bidi == UTF8PROC_BIDI_CLASS_AL;
}

bool is_combining_mark(char32_t cp) {
  return utf8proc_get_property(static_cast<utf8proc_int32_t>(cp))->bidi_class == UTF8PROC_BIDI_CLASS_NSM;
}

// The visible stand-in for a control or space character, or 0 when `cp` draws as itself.
char32_t visible_stand_in(char32_t cp) {
  switch (cp) {
    case U'\n': case 0x2028: case 0x2029: return 0x21B5;  // ↵
    case U'\t': return 0x21E5;                            // ⇥
    case 0x7F: return 0x2421;                             // ␡
    default: break;
  }
  if (cp < 0x20) return 0x2400 + cp;  // Control Pictures: ␀ .. ␟ (␍ for CR)
  const auto category = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  if (category == UTF8PROC_CATEGORY_ZS) return 0x2423;  // ␣ for every space separator (NBSP, U+3000, ...)
  if (category == UTF8PROC_CATEGORY_CC) return 0xFFFD;  // C1 controls have no picture
  return 0;
}

}  // namespace

std::u32string display_code_points(std::string_view utf8) {
  std::u32string logical;
  for (char32_t cp : decode_lossy(utf8)) {
    if (!utf8proc_get_property(static_cast<utf8proc_int32_t>(cp))->ignorable) logical.push_back(cp);
  }
  std::u32string out;
  for (size_t i = 0; i < logical.size();) {
    if (!is_right_to_left(logical[i])) {
      out.push_back(logical[i++]);
      continue;
    }
    // One right-to-left run, as clusters (a letter and the marks after it), drawn last to first.
    std::vector<std::u32string> clusters;
    while (i < logical.size() && (is_right_to_left(logical[i]) || is_combining_mark(logical[i]))) {
      if (clusters.empty() || !is_combining_mark(logical[i])) clusters.emplace_back();
      clusters.back().push_back(logical[i++]);
    }
    for (auto it = clusters.rbegin(); it != clusters.rend(); ++it) out += *it;
  }
  return out;
}

std::string visible_token_text(std::string_view utf8) {
  std::string out;
  for (char32_t cp : decode_lossy(utf8)) {
    const char32_t stand_in = visible_stand_in(cp);
    append_utf8(out, stand_in != 0 ? stand_in : cp);
  }
  return out;
}

}  // namespace attnmap::detail
