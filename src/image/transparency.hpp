// The one "transparent colour" a PNG's tRNS chunk declares, as it reaches the HF processor.
#pragma once

#include <array>
#include <optional>
#include <string_view>

namespace attnmap::detail {

// transformers' load_image() keeps Pillow's info["transparency"] through convert("RGB"), and the
// processor's convert_to_rgb then composites every pixel of that colour onto white. Returns the RGB
// colour Pillow ends up with (palette entry, grey level, RGB triple, or its (t, 0, 0) reading of a
// bare integer), or nothing when the file is not a PNG with a single-colour tRNS.
std::optional<std::array<int, 3>> png_transparent_colour(std::string_view file_bytes);

}  // namespace attnmap::detail
