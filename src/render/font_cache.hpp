// Fonts for text in any script (internal to src/render): fontconfig's ordered list of sans-serif
// fonts, and for each code point the first of them that has a glyph for it, opened once with FreeType.
#pragma once

#include <ft2build.h>
#include FT_FREETYPE_H

#include <mutex>

namespace attnmap::detail {

// A lock on the one process-wide font cache. FreeType faces are not thread-safe and the batch runner
// renders on several writer threads, so each measure or draw holds one of these from start to end,
// and uses the faces it hands out only while it lives.
class FontLock {
 public:
  FontLock();
  FontLock(const FontLock&) = delete;
  FontLock& operator=(const FontLock&) = delete;

  // The face of the first font in fontconfig's sans-serif order whose character map has `cp`, sized
  // to `pixel_size` (em height in pixels); nullptr when no usable font has it or there is no font.
  // Bitmap-only fonts (e.g. Noto Color Emoji's fixed CBDT strikes) are skipped: FreeType cannot
  // scale them to an arbitrary pixel size.
  FT_Face face_for(char32_t cp, int pixel_size);

  // The first usable font, sized: its glyph 0 (.notdef, the "tofu" box) stands in for a code point
  // no font has. nullptr when there is no usable font at all.
  FT_Face primary_face(int pixel_size);

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace attnmap::detail
