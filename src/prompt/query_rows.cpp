#include <algorithm>
#include <cctype>
#include <sstream>

#include "attnmap/error.hpp"
#include "attnmap/prompt.hpp"
#include "attnmap/tokenizer.hpp"

namespace attnmap {
namespace {

std::string lower_ascii(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

[[noreturn]] void bad_spec(const std::string& spec, const std::string& why) {
  throw Error(ErrorKind::Usage, "--query '" + spec + "': " + why +
                                    "; use prompt, last, all, comma-separated positions (e.g. 5,7,-1) or word:WORD");
}

// Rows of the tokens of the user's text that overlap the first case-insensitive occurrence of word.
std::vector<int64_t> word_rows(const std::string& spec, const std::string& word, const ChatPrompt& p,
                               const Tokenizer& tokenizer) {
  if (word.empty()) bad_spec(spec, "the word is empty");
  // Byte span of each prompt token in the decoded prompt, from decoding growing prefixes: a
  // token's own bytes may be part of a UTF-8 character, so decoding it alone can mislead.
  std::vector<size_t> ends;
  std::vector<int64_t> prefix;
  for (int64_t i = p.prompt_start; i < p.prompt_end; ++i) {
    prefix.push_back(p.ids[i]);
    ends.push_back(tokenizer.decode(prefix).size());
  }
  const std::string text = lower_ascii(tokenizer.decode(prefix));
  const size_t at = text.find(lower_ascii(word));
  if (at == std::string::npos) bad_spec(spec, "the prompt does not contain '" + word + "'");
  std::vector<int64_t> rows;
  size_t begin = 0;
  for (size_t k = 0; k < ends.size(); ++k) {
    if (begin < at + word.size() && ends[k] > at) rows.push_back(p.prompt_start + static_cast<int64_t>(k));
    begin = ends[k];
  }
  return rows;
}

std::vector<int64_t> explicit_rows(const std::string& spec, int64_t seq_len) {
  std::vector<int64_t> rows;
  std::stringstream items(spec);
  for (std::string item; std::getline(items, item, ',');) {
    int64_t row = 0;
    try {
      size_t used = 0;
      row = std::stoll(item, &used);
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      bad_spec(spec, "'" + item + "' is not a position");
    }
    if (row < -seq_len || row >= seq_len) {
      bad_spec(spec, "position " + item + " is outside the sequence of " + std::to_string(seq_len) +
                         " tokens (valid: 0.." + std::to_string(seq_len - 1) + " or negative from the end)");
    }
    rows.push_back(row < 0 ? row + seq_len : row);
  }
  if (rows.empty()) bad_spec(spec, "no position given");
  return rows;
}

}  // namespace

std::vector<int64_t> resolve_query_rows(const std::string& spec, const ChatPrompt& p, const Tokenizer& tokenizer) {
  const int64_t seq_len = static_cast<int64_t>(p.ids.size());
  std::vector<int64_t> rows;
  if (spec == "prompt") {
    for (int64_t i = p.prompt_start; i < p.prompt_end; ++i) rows.push_back(i);
  } else if (spec == "last") {
    rows.push_back(seq_len - 1);
  } else if (spec == "all") {
    // Every token that comes after the image: only those can attend to it (the decoder is causal).
    for (int64_t i = p.image_end; i < seq_len; ++i) rows.push_back(i);
  } else if (spec.rfind("word:", 0) == 0) {
    rows = word_rows(spec, spec.substr(5), p, tokenizer);
  } else if (!spec.empty() && (std::isdigit(static_cast<unsigned char>(spec[0])) || spec[0] == '-')) {
    rows = explicit_rows(spec, seq_len);
  } else {
    bad_spec(spec, "unknown query");
  }
  if (rows.empty()) bad_spec(spec, "it selects no token");
  return rows;
}

}  // namespace attnmap
