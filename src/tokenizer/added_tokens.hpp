// Added tokens (specials such as <|im_start|>) are cut out of the text before normalization and
// pre-tokenization, with HF's leftmost-longest matching and its lstrip/rstrip/single_word rules.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace attnmap::tokenizer {

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};

// A piece of text: either an added token (id >= 0) or plain text to tokenize (id < 0).
struct Segment {
  std::string_view text;
  int32_t id = -1;
};

// Matches one set of added tokens: the non-normalized ones against the raw text, the normalized
// ones (given here already NFC'd) against the normalized text.
class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  explicit AddedTokenMatcher(std::vector<AddedToken> tokens);
  bool empty() const { return tokens_.empty(); }
  // Appends the pieces of `text`, in order, covering it; empty pieces are not emitted.
  void split(std::string_view text, std::vector<Segment>& out) const;

 private:
  // Byte trie; node 0 is the root. Small: a few dozen tokens.
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> next;
    int32_t token = -1;  // index into tokens_ when a token ends here
  };
  int32_t longest_at(std::string_view text, size_t pos, size_t& end) const;
  std::vector<AddedToken> tokens_;
  std::vector<Node> nodes_;
  std::array<bool, 256> first_byte_{};
};

}  // namespace attnmap::tokenizer
