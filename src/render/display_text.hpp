// From UTF-8 text to the code points a label draws, left to right (internal to src/render). No
// shaping library: Arabic letters keep their isolated forms, but right-to-left runs are put in
// visual order so that a word reads in the right direction.
#pragma once

#include <string>
#include <string_view>

namespace attnmap::detail {

// `utf8` decoded (invalid sequences become U+FFFD, as the tokenizer's decoder does), without
// default-ignorable code points (ZWJ, variation selectors, soft hyphen: they have no glyph of their
// own), with each run of right-to-left letters reversed cluster by cluster (a letter keeps its
// combining marks after it).
std::u32string display_code_points(std::string_view utf8);

// A token's text made visible, as UTF-8: spaces become "␣" (U+2423), newlines "↵", tabs "⇥", other
// control characters their Control Pictures symbol (e.g. U+0001 -> "␁"). A token " the" must show
// that it starts with a space, and "\n" must not be an empty caption.
std::string visible_token_text(std::string_view utf8);

}  // namespace attnmap::detail
