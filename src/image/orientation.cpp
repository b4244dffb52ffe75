#include "image/orientation.hpp"

#include <opencv2/core.hpp>

#include <cstdint>
#include <optional>
#include <regex>
#include <string>

namespace attnmap::detail {

namespace {

constexpr uint16_t kOrientationTag = 0x0112;

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

uint32_t be32(std::string_view s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) |
         (uint32_t(uint8_t(s[at + 2])) << 8) | uint32_t(uint8_t(s[at + 3]));
}
uint32_t le32(std::string_view s, size_t at) {
  return uint32_t(uint8_t(s[at])) | (uint32_t(uint8_t(s[at + 1])) << 8) | (uint32_t(uint8_t(s[at + 2])) << 16) |
         (uint32_t(uint8_t(s[at + 3])) << 24);
}

// Orientation from IFD0 of a TIFF structure ("II*\0" / "MM\0*"), as Pillow's Exif.load reads it.
std::optional<int> tiff_orientation(std::string_view tiff) {
  if (tiff.size() < 8) return std::nullopt;
  bool little;
  if (starts_with(tiff, std::string_view("II*\0", 4))) {
    little = true;
  } else if (starts_with(tiff, std::string_view("MM\0*", 4))) {
    little = false;
  } else {
    return std::nullopt;
  }
  auto u16 = [&](size_t at) -> uint32_t {
    return little ? uint32_t(uint8_t(tiff[at])) | (uint32_t(uint8_t(tiff[at + 1])) << 8)
                  : (uint32_t(uint8_t(tiff[at])) << 8) | uint32_t(uint8_t(tiff[at + 1]));
  };
  auto u32 = [&](size_t at) { return little ? le32(tiff, at) : be32(tiff, at); };
  const size_t ifd = u32(4);
  if (ifd + 2 > tiff.size()) return std::nullopt;
  const uint32_t entries = u16(ifd);
  for (uint32_t i = 0; i < entries; ++i) {
    const size_t e = ifd + 2 + size_t(i) * 12;
    if (e + 12 > tiff.size()) break;
    if (u16(e) != kOrientationTag) continue;
    const uint32_t type = u16(e + 2), count = u32(e + 4);
    if (count != 1) return std::nullopt;  // Pillow gets a tuple then, which maps to no transpose
    if (type == 3) return static_cast<int>(u16(e + 8));   // SHORT
    if (type == 4) return static_cast<int>(u32(e + 8));   // LONG
    return std::nullopt;
  }
  return std::nullopt;
}

std::optional<int> exif_block_orientation(std::string_view block) {
  if (starts_with(block, std::string_view("Exif\0\0", 6))) block.remove_prefix(6);
  return tiff_orientation(block);
}

// Pillow's XMP fallback: the first match of tiff:Orientation(="|>)([0-9]).
std::optional<int> xmp_orientation(std::string_view xmp) {
  static const std::regex pattern(R"(tiff:Orientation(="|>)([0-9]))");
  std::match_results<std::string_view::const_iterator> m;
  if (std::regex_search(xmp.begin(), xmp.end(), m, pattern)) return m[2].str()[0] - '0';
  return std::nullopt;
}

struct Found {
  std::optional<std::string_view> exif;
  std::optional<std::string_view> xmp;
};

Found scan_jpeg(std::string_view b) {
  Found f;
  size_t pos = 2;
  while (pos + 4 <= b.size()) {
    if (uint8_t(b[pos]) != 0xFF) break;
    const uint8_t marker = uint8_t(b[pos + 1]);
    if (marker == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    if (marker == 0xD9 || marker == 0xDA) break;  // EOI / start of scan: no more metadata
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
      pos += 2;
      continue;
    }
    const size_t len = (size_t(uint8_t(b[pos + 2])) << 8) | uint8_t(b[pos + 3]);
    if (len < 2 || pos + 2 + len > b.size()) break;
    const std::string_view payload = b.substr(pos + 4, len - 2);
    if (marker == 0xE1) {
      static constexpr std::string_view kXmp("http://ns.adobe.com/xap/1.0/\0", 29);
      if (starts_with(payload, std::string_view("Exif\0\0", 6))) {
        if (!f.exif) f.exif = payload;  // Pillow keeps the first
      } else if (starts_with(payload, kXmp)) {
        f.xmp = payload.substr(kXmp.size());  // and the last XMP
      }
    }
    pos += 2 + len;
  }
  return f;
}

// "Raw profile type exif" text: a header of 3 lines, then hex digits split over lines.
std::optional<std::string> decode_raw_profile(std::string_view text) {
  size_t pos = 0;
  int newlines = 0;
  // Pillow: "".join(value.split("\n")[3:]) then bytes.fromhex (which skips whitespace).
  while (pos < text.size() && newlines < 3) {
    if (text[pos] == '\n') ++newlines;
    ++pos;
  }
  std::string out;
  int high = -1;
  for (; pos < text.size(); ++pos) {
    const char c = text[pos];
    if (c == '\n' || c == ' ' || c == '\t' || c == '\r') continue;
    int v;
    if (c >= '0' && c <= '9') v = c - '0';
    else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    else return std::nullopt;
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<char>(high * 16 + v));
      high = -1;
    }
  }
  return out;
}

std::optional<int> png_orientation(std::string_view b) {
  std::optional<int> exif, raw_profile, xmp;
  size_t pos = 8;
  while (pos + 12 <= b.size()) {
    const size_t len = be32(b, pos);
    const std::string_view type = b.substr(pos + 4, 4);
    if (pos + 12 + len > b.size()) break;
    const std::string_view data = b.substr(pos + 8, len);
    if (type == "eXIf") {
      if (!exif) exif = exif_block_orientation(data);
    } else if (type == "tEXt" && starts_with(data, std::string_view("Raw profile type exif\0", 22))) {
      if (auto raw = decode_raw_profile(data.substr(22))) raw_profile = exif_block_orientation(*raw);
    } else if (type == "iTXt" && starts_with(data, std::string_view("XML:com.adobe.xmp\0", 18))) {
      // keyword\0, compression flag, method, language\0, translated keyword\0, text
      const std::string_view rest = data.substr(18);
      if (rest.size() >= 2 && rest[0] == 0) {
        size_t p = 2;
        for (int zeros = 0; p < rest.size() && zeros < 2; ++p) {
          if (rest[p] == 0) ++zeros;
        }
        xmp = xmp_orientation(rest.substr(p));
      }
    } else if (type == "IEND") {
      break;
    }
    pos += 12 + len;
  }
  if (exif) return exif;
  if (raw_profile) return raw_profile;
  return xmp;
}

std::optional<int> webp_orientation(std::string_view b) {
  std::optional<int> exif, xmp;
  size_t pos = 12;
  while (pos + 8 <= b.size()) {
    const std::string_view type = b.substr(pos, 4);
    const size_t len = le32(b, pos + 4);
    if (pos + 8 + len > b.size()) break;
    const std::string_view data = b.substr(pos + 8, len);
    if (type == "EXIF") exif = exif_block_orientation(data);
    if (type == "XMP ") xmp = xmp_orientation(data);
    pos += 8 + len + (len & 1);
  }
  return exif ? exif : xmp;
}

}  // namespace

int read_orientation(std::string_view b) {
  std::optional<int> o;
  if (starts_with(b, "\xFF\xD8")) {
    const Found f = scan_jpeg(b);
    if (f.exif) o = exif_block_orientation(*f.exif);
    if (!o && f.xmp) o = xmp_orientation(*f.xmp);
  } else if (starts_with(b, "\x89PNG\r\n\x1a\n")) {
    o = png_orientation(b);
  } else if (starts_with(b, "RIFF") && b.substr(8, 4) == "WEBP") {
    o = webp_orientation(b);
  } else {
    o = tiff_orientation(b);
  }
  return o && *o >= 1 && *o <= 8 ? *o : 1;
}

cv::Mat apply_orientation(const cv::Mat& image, int orientation) {
  cv::Mat out;
  switch (orientation) {
    case 2: cv::flip(image, out, 1); break;                         // FLIP_LEFT_RIGHT
    case 3: cv::rotate(image, out, cv::ROTATE_180); break;          // ROTATE_180
    case 4: cv::flip(image, out, 0); break;                         // FLIP_TOP_BOTTOM
    case 5: cv::transpose(image, out); break;                       // TRANSPOSE
    case 6: cv::rotate(image, out, cv::ROTATE_90_CLOCKWISE); break; // ROTATE_270 (counter-clockwise)
    case 7: {                                                       // TRANSVERSE
      cv::Mat t;
      cv::transpose(image, t);
      cv::flip(t, out, -1);
      break;
    }
    case 8: cv::rotate(image, out, cv::ROTATE_90_COUNTERCLOCKWISE); break;  // ROTATE_90
    default: return image;
  }
  return out;
}

}  // namespace attnmap::detail
