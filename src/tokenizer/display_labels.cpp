#include "tokenizer/display_labels.hpp"

#include <optional>

#include "attnmap/tokenizer.hpp"
#include "tokenizer/byte_level.hpp"
#include "tokenizer/utf8.hpp"

namespace attnmap {
namespace {

// A character is at most 4 bytes, so a cut one spans at most 4 byte-level tokens.
constexpr size_t kMaxRun = 4;

std::string token_bytes(const Tokenizer& tokenizer, int64_t id) {
  const std::string token = tokenizer.id_to_token(id);
  std::optional<std::string> bytes = tokenizer::symbols_to_bytes(token);
  return bytes ? *bytes : token;  // an added token stands for its own text
}

bool whole_characters(const std::string& bytes) { return !tokenizer::find_invalid_utf8(bytes).has_value(); }

}  // namespace

std::vector<std::string> token_display_labels(const std::vector<int64_t>& ids, const Tokenizer& tokenizer) {
  std::vector<std::string> labels(ids.size());
  size_t i = 0;
  while (i < ids.size()) {
    std::string bytes = token_bytes(tokenizer, ids[i]);
    if (whole_characters(bytes)) {
      labels[i] = tokenizer.decode({ids[i]});
      ++i;
      continue;
    }
    // The shortest run from i whose bytes together are whole characters.
    size_t end = 0;
    for (size_t j = i + 1; j < ids.size() && j < i + kMaxRun; ++j) {
      bytes += token_bytes(tokenizer, ids[j]);
      if (whole_characters(bytes)) {
        end = j + 1;
        break;
      }
    }
    if (end == 0) {
      labels[i] = tokenizer.decode({ids[i]});
      ++i;
      continue;
    }
    const size_t n = end - i;
    for (size_t k = 0; k < n; ++k) {
      labels[i + k] = bytes + " (" + std::to_string(k + 1) + "/" + std::to_string(n) + ")";
    }
    i = end;
  }
  return labels;
}

}  // namespace attnmap
