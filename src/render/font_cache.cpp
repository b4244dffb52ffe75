#include "render/font_cache.hpp"

#include <fontconfig/fontconfig.h>

#include <string>
#include <unordered_map>
#include <vector>

namespace attnmap::detail {
namespace {

struct Font {
  std::string file;
  int index = 0;                // face index in the file (collections, variable-font instances)
  FcCharSet* charset = nullptr;  // what fontconfig says the font covers, checked before opening it
  FT_Face face = nullptr;       // opened on first use
  bool unusable = false;        // FreeType could not open it, or it has no scalable outlines
  int pixel_size = 0;           // the size `face` is set to now
};

struct Cache {
  FT_Library library = nullptr;
  FcConfig* config = nullptr;                // kept: the fonts' charsets may live in its caches
  std::vector<Font> fonts;                   // fontconfig's sans-serif order, outline fonts only
  std::unordered_map<char32_t, int> chosen;  // code point -> index in `fonts`, -1 = no font has it
};

std::mutex& cache_mutex() {
  static std::mutex m;
  return m;
}

// fontconfig's sort of every installed font by how well it matches "sans-serif" (the same fallback
// order a desktop would use), keeping what FreeType can draw at any size.
std::vector<Font> sorted_sans_serif_fonts(FcConfig* config) {
  std::vector<Font> fonts;
  if (config == nullptr) return fonts;
  FcPattern* pattern = FcNameParse(reinterpret_cast<const FcChar8*>("sans-serif"));
  if (pattern == nullptr) return fonts;
  FcConfigSubstitute(config, pattern, FcMatchPattern);
  FcDefaultSubstitute(pattern);
  FcResult result = FcResultNoMatch;
  FcFontSet* set = FcFontSort(config, pattern, FcFalse, nullptr, &result);
  FcPatternDestroy(pattern);
  if (set == nullptr) return fonts;
  for (int i = 0; i < set->nfont; ++i) {
    const FcPattern* p = set->fonts[i];
    FcBool outline = FcTrue, colour = FcFalse;
    FcPatternGetBool(p, FC_OUTLINE, 0, &outline);
#ifdef FC_COLOR
    FcPatternGetBool(p, FC_COLOR, 0, &colour);
#endif
    FcChar8* file = nullptr;
    FcCharSet* charset = nullptr;
    if (!outline || colour || FcPatternGetString(p, FC_FILE, 0, &file) != FcResultMatch ||
        FcPatternGetCharSet(p, FC_CHARSET, 0, &charset) != FcResultMatch) {
      continue;
    }
    Font font;
    font.file = reinterpret_cast<const char*>(file);
    FcPatternGetInteger(p, FC_INDEX, 0, &font.index);
    font.charset = FcCharSetCopy(charset);  // outlives the set
    fonts.push_back(std::move(font));
  }
  FcFontSetDestroy(set);
  return fonts;
}

// Built on first use and never destroyed: writer threads may still draw while static destructors
// run at exit, and the OS reclaims the memory anyway.
Cache& cache() {
  static Cache* c = [] {
    auto* made = new Cache;
    if (FT_Init_FreeType(&made->library) != 0) {
      made->library = nullptr;
      return made;
    }
    made->config = FcInitLoadConfigAndFonts();
    made->fonts = sorted_sans_serif_fonts(made->config);
    return made;
  }();
  return *c;
}

FT_Face open(Cache& c, Font& font) {
  if (font.face == nullptr && !font.unusable) {
    if (FT_New_Face(c.library, font.file.c_str(), font.index, &font.face) != 0) {
      font.face = nullptr;
      font.unusable = true;
    } else if (!FT_IS_SCALABLE(font.face)) {
      FT_Done_Face(font.face);
      font.face = nullptr;
      font.unusable = true;
    }
  }
  return font.face;
}

FT_Face sized(Font& font, int pixel_size) {
  if (font.pixel_size != pixel_size) {
    if (FT_Set_Pixel_Sizes(font.face, 0, static_cast<FT_UInt>(pixel_size)) != 0) return nullptr;
    font.pixel_size = pixel_size;
  }
  return font.face;
}

}  // namespace

FontLock::FontLock() : lock_(cache_mutex()) {}

FT_Face FontLock::face_for(char32_t cp, int pixel_size) {
  Cache& c = cache();
  if (c.library == nullptr || pixel_size < 1) return nullptr;
  auto it = c.chosen.find(cp);
  if (it == c.chosen.end()) {
    int found = -1;
    for (size_t i = 0; i < c.fonts.size() && found < 0; ++i) {
      Font& font = c.fonts[i];
      // fontconfig's charset first (no file opened), then the font's own character map decides.
      if (FcCharSetHasChar(font.charset, cp) && open(c, font) != nullptr &&
          FT_Get_Char_Index(font.face, cp) != 0) {
        found = static_cast<int>(i);
      }
    }
    it = c.chosen.emplace(cp, found).first;
  }
  return it->second < 0 ? nullptr : sized(c.fonts[static_cast<size_t>(it->second)], pixel_size);
}

FT_Face FontLock::primary_face(int pixel_size) {
  Cache& c = cache();
  if (c.library == nullptr || pixel_size < 1) return nullptr;
  for (Font& font : c.fonts) {
    if (open(c, font) != nullptr) return sized(font, pixel_size);
  }
  return nullptr;
}

}  // namespace attnmap::detail
