#include "tokenizer/byte_level.hpp"

#include <array>

#include "tokenizer/utf8.hpp"

namespace attnmap::tokenizer {
namespace {

struct ByteTables {
  std::array<std::string, 256> symbol;   // byte -> UTF-8 symbol
  std::array<int, 324> byte_of{};        // symbol code point -> byte, -1 if none (all symbols < 324)

  ByteTables() {
    byte_of.fill(-1);
    // Printable Latin-1 bytes stand for themselves; the rest are shifted to 256+ in byte order.
    int shifted = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const int cp = printable ? b : 256 + shifted++;
      byte_of[static_cast<size_t>(cp)] = b;
      std::string& s = symbol[static_cast<size_t>(b)];
      if (cp < 0x80) {
        s.push_back(static_cast<char>(cp));
      } else {
        s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
    }
  }
};

const ByteTables& tables() {
  static const ByteTables t;
  return t;
}

}  // namespace

const std::string& byte_symbol(unsigned char byte) { return tables().symbol[byte]; }

std::optional<std::string> symbols_to_bytes(std::string_view token) {
  if (find_invalid_utf8(token)) return std::nullopt;
  const auto& t = tables();
  std::string out;
  out.reserve(token.size());
  size_t pos = 0;
  while (pos < token.size()) {
    const char32_t cp = next_code_point(token, pos);
    if (cp >= t.byte_of.size() || t.byte_of[cp] < 0) return std::nullopt;
    out.push_back(static_cast<char>(t.byte_of[cp]));
  }
  return out;
}

std::string bytes_to_symbols(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char b : bytes) out += byte_symbol(static_cast<unsigned char>(b));
  return out;
}

}  // namespace attnmap::tokenizer
