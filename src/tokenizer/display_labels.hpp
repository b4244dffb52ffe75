// Labels for showing tokens one by one (viewer, answer strips). Byte-level BPE cuts some characters
// across tokens (the Qwen tokenizer splits "猫" and most emoji in two or three), so decoding a token
// alone gives U+FFFD. Such a run of tokens is labelled with the characters it spells together and
// each token's part: "猫 (1/2)", "猫 (2/2)".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace attnmap {

class Tokenizer;

// One label per id, in order. A token whose bytes are whole UTF-8 characters is its decoded text; a run
// of at most 4 tokens whose bytes only together are whole characters shares their text with a
// "(k/n)" suffix; bytes that never complete stay U+FFFD (as decode() gives).
std::vector<std::string> token_display_labels(const std::vector<int64_t>& ids, const Tokenizer& tokenizer);

}  // namespace attnmap
