#include "image/transparency.hpp"

#include <cstdint>

namespace attnmap::detail {

namespace {
uint32_t be16(std::string_view s, size_t at) { return (uint32_t(uint8_t(s[at])) << 8) | uint8_t(s[at + 1]); }
uint32_t be32(std::string_view s, size_t at) { return (be16(s, at) << 16) | be16(s, at + 2); }

// Pillow's _simple_palette: one fully transparent entry, every other listed entry opaque.
std::optional<size_t> single_transparent_index(std::string_view trns) {
  std::optional<size_t> index;
  for (size_t i = 0; i < trns.size(); ++i) {
    const uint8_t a = uint8_t(trns[i]);
    if (a == 0 && !index) {
      index = i;
    } else if (a != 0xFF) {
      return std::nullopt;  // per-entry alphas: Pillow drops the transparency on convert("RGB")
    }
  }
  return index;
}
}  // namespace

std::optional<std::array<int, 3>> png_transparent_colour(std::string_view b) {
  if (b.substr(0, 8) != std::string_view("\x89PNG\r\n\x1a\n", 8)) return std::nullopt;
  int bit_depth = 0, colour_type = -1;
  std::string_view palette, trns;
  for (size_t pos = 8; pos + 12 <= b.size();) {
    const size_t len = be32(b, pos);
    if (pos + 12 + len > b.size()) break;
    const std::string_view type = b.substr(pos + 4, 4), data = b.substr(pos + 8, len);
    if (type == "IHDR" && len >= 13) {
      bit_depth = uint8_t(data[8]);
      colour_type = uint8_t(data[9]);
    } else if (type == "PLTE") {
      palette = data;
    } else if (type == "tRNS") {
      trns = data;
    } else if (type == "IDAT" || type == "IEND") {
      break;  // Pillow reads the header chunks up to the image data
    }
    pos += 12 + len;
  }
  if (trns.empty()) return std::nullopt;
  switch (colour_type) {
    case 3: {  // palette: convert("RGB") maps the transparent index to its palette colour
      const auto index = single_transparent_index(trns);
      if (!index || 3 * *index + 3 > palette.size()) return std::nullopt;
      const size_t at = 3 * *index;
      return std::array<int, 3>{uint8_t(palette[at]), uint8_t(palette[at + 1]), uint8_t(palette[at + 2])};
    }
    case 0: {
      if (trns.size() < 2) return std::nullopt;
      const int t = static_cast<int>(be16(trns, 0));
      // Mode "1" and "I;16" keep a bare integer, which Pillow's convert_transparent reads as (t, 0, 0);
      // for "1" Pillow has already scaled it to 0/255. "L" converts it to a grey triple.
      if (bit_depth == 1) return std::array<int, 3>{t ? 255 : 0, 0, 0};
      if (bit_depth == 16) return std::array<int, 3>{t, 0, 0};
      return std::array<int, 3>{t, t, t};
    }
    case 2:
      if (trns.size() < 6) return std::nullopt;
      return std::array<int, 3>{int(be16(trns, 0)), int(be16(trns, 2)), int(be16(trns, 4))};
    default:
      return std::nullopt;
  }
}

}  // namespace attnmap::detail
