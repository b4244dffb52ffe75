#include <algorithm>
#include <cctype>
#include <sstream>

#include "attnmap/error.hpp"
#include "attnmap/prompt.hpp"
#include "attnmap/tokenizer.hpp"
#include "tokenizer/byte_level.hpp"
#include "tokenizer/utf8.hpp"

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

// The exact bytes a token stands for. Byte-level BPE maps every token to whole bytes, which need
// not be whole UTF-8 characters (the Qwen tokenizer splits "⭐" across two tokens), so offsets come
// from these bytes; decoding a prefix would turn a cut character into U+FFFD and shift every end.
std::string token_bytes(const Tokenizer& tokenizer, int64_t id) {
  const std::string token = tokenizer.id_to_token(id);
  auto bytes = attnmap::tokenizer::symbols_to_bytes(token);
  return bytes ? std::move(*bytes) : token;  // an added token stands for its own text, as in decode()
}

// Rows of the tokens of the user's text that overlap the first case-insensitive (ASCII) occurrence
// of word. The tokens spell the prompt after the tokenizer's NFC, so the word is normalised too.
std::vector<int64_t> word_rows(const std::string& spec, const std::string& word, const ChatPrompt& p,
                               const Tokenizer& tokenizer) {
  if (word.empty()) bad_spec(spec, "the word is empty");
  if (attnmap::tokenizer::find_invalid_utf8(word)) bad_spec(spec, "the word is not valid UTF-8");
  std::string text;
  std::vector<size_t> ends;  // byte end of each prompt token in `text`
  for (int64_t i = p.prompt_start; i < p.prompt_end; ++i) {
    text += token_bytes(tokenizer, p.ids[static_cast<size_t>(i)]);
    ends.push_back(text.size());
  }
  std::string storage;
  const std::string wanted = lower_ascii(std::string(attnmap::tokenizer::nfc(word, storage)));
  const size_t at = lower_ascii(text).find(wanted);
  if (at == std::string::npos) bad_spec(spec, "the prompt does not contain '" + word + "'");
  std::vector<int64_t> rows;
  size_t begin = 0;
  for (size_t k = 0; k < ends.size(); ++k) {
    if (begin < at + wanted.size() && ends[k] > at) rows.push_back(p.prompt_start + static_cast<int64_t>(k));
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
