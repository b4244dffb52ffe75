#include "render/text_label.hpp"

#include <algorithm>
#include <vector>

#include "attnmap/error.hpp"
#include "render/display_text.hpp"
#include "render/font_cache.hpp"

namespace attnmap::detail {
namespace {

// Alpha-blends an anti-aliased (or monochrome) glyph bitmap into `bgr` with its top-left at (x, y).
void blend_glyph(cv::Mat& bgr, const FT_Bitmap& bitmap, int x, int y, const cv::Scalar& colour) {
  const int rows = static_cast<int>(bitmap.rows), cols = static_cast<int>(bitmap.width);
  const int pitch = bitmap.pitch < 0 ? -bitmap.pitch : bitmap.pitch;
  for (int r = 0; r < rows; ++r) {
    const int py = y + r;
    if (py < 0 || py >= bgr.rows) continue;
    // A negative pitch means the buffer starts with the bottom row.
    const unsigned char* src = bitmap.buffer + static_cast<ptrdiff_t>(bitmap.pitch < 0 ? rows - 1 - r : r) * pitch;
    auto* dst = bgr.ptr<cv::Vec3b>(py);
    for (int c = 0; c < cols; ++c) {
      const int px = x + c;
      if (px < 0 || px >= bgr.cols) continue;
      int coverage = 0;
      if (bitmap.pixel_mode == FT_PIXEL_MODE_MONO) {
        coverage = (src[c >> 3] & (0x80 >> (c & 7))) ? 255 : 0;
      } else if (bitmap.pixel_mode == FT_PIXEL_MODE_GRAY) {
        coverage = src[c] * 255 / std::max(1, bitmap.num_grays - 1);
      }
      if (coverage == 0) continue;
      for (int ch = 0; ch < 3; ++ch) {
        const int d = dst[px][ch];
        dst[px][ch] = static_cast<uchar>(d + ((static_cast<int>(colour[ch]) - d) * coverage + 127) / 255);
      }
    }
  }
}

// Lays out `utf8` on one line; draws it when `bgr` is given. Measuring and drawing share this so the
// width a caller fits to is the width that gets drawn.
TextExtent lay_out(std::string_view utf8, int pixel_size, cv::Mat* bgr, cv::Point origin, const cv::Scalar& colour) {
  TextExtent extent;
  FontLock fonts;
  FT_Pos pen = 0;  // 26.6 fixed point
  for (const char32_t cp : display_code_points(utf8)) {
    FT_Face face = fonts.face_for(cp, pixel_size);
    FT_UInt glyph = 0;
    if (face != nullptr) {
      glyph = FT_Get_Char_Index(face, cp);
    } else {
      extent.all_glyphs_found = false;
      face = fonts.primary_face(pixel_size);  // glyph 0: its .notdef box holds the place
      if (face == nullptr) continue;
    }
    const FT_Int32 flags = FT_LOAD_TARGET_NORMAL | (bgr != nullptr ? FT_LOAD_RENDER : FT_LOAD_DEFAULT);
    if (FT_Load_Glyph(face, glyph, flags) != 0) {
      extent.all_glyphs_found = false;
      continue;
    }
    const FT_GlyphSlot slot = face->glyph;
    if (bgr != nullptr) {
      blend_glyph(*bgr, slot->bitmap, origin.x + static_cast<int>((pen + 32) >> 6) + slot->bitmap_left,
                  origin.y - slot->bitmap_top, colour);
    }
    pen += slot->advance.x;
  }
  extent.width = static_cast<int>((pen + 32) >> 6);
  return extent;
}

}  // namespace

TextExtent measure_text(std::string_view utf8, int pixel_size) {
  return lay_out(utf8, pixel_size, nullptr, {}, {});
}

TextExtent draw_text(cv::Mat& bgr, std::string_view utf8, cv::Point baseline_left, int pixel_size,
                     const cv::Scalar& bgr_colour) {
  if (bgr.type() != CV_8UC3) throw Error(ErrorKind::Internal, "draw_text needs a CV_8UC3 image");
  return lay_out(utf8, pixel_size, &bgr, baseline_left, bgr_colour);
}

std::string ellipsise_to_width(std::string_view utf8, int pixel_size, int max_width) {
  if (measure_text(utf8, pixel_size).width <= max_width) return std::string(utf8);
  static constexpr std::string_view kEllipsis = "\xE2\x80\xA6";  // …
  // Cut only before a UTF-8 lead byte, so no code point is split.
  std::vector<size_t> cuts;
  for (size_t i = 1; i < utf8.size(); ++i) {
    if ((static_cast<unsigned char>(utf8[i]) & 0xC0) != 0x80) cuts.push_back(i);
  }
  const auto with_ellipsis = [&](size_t end) { return std::string(utf8.substr(0, end)) + std::string(kEllipsis); };
  // A longer prefix is never narrower, so binary search for the longest that fits.
  std::string best(kEllipsis);
  size_t lo = 0, hi = cuts.size();
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    std::string candidate = with_ellipsis(cuts[mid]);
    if (measure_text(candidate, pixel_size).width <= max_width) {
      best = std::move(candidate);
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return best;
}

}  // namespace attnmap::detail
