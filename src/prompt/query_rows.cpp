#include <algorithm>
#include <cctype>

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

// Indices (into `ids`) of the tokens that overlap the first case-insensitive (ASCII) occurrence of
// `word` in the bytes the tokens spell, or an empty list. The tokens spell their text after the
// tokenizer's NFC, so the word is normalised too.
std::vector<int64_t> tokens_spelling(const std::string& word, const std::vector<int64_t>& ids,
                                     const Tokenizer& tokenizer) {
  std::string text;
  std::vector<size_t> ends;  // byte end of each token in `text`
  for (const int64_t id : ids) {
    text += token_bytes(tokenizer, id);
    ends.push_back(text.size());
  }
  std::string storage;
  const std::string wanted = lower_ascii(std::string(attnmap::tokenizer::nfc(word, storage)));
  const size_t at = lower_ascii(text).find(wanted);
  std::vector<int64_t> found;
  if (at == std::string::npos) return found;
  size_t begin = 0;
  for (size_t k = 0; k < ends.size(); ++k) {
    if (begin < at + wanted.size() && ends[k] > at) found.push_back(static_cast<int64_t>(k));
    begin = ends[k];
  }
  return found;
}

// Rows of the tokens of the user's text that spell `word`.
std::vector<int64_t> word_rows(const std::string& spec, const std::string& word, const ChatPrompt& p,
                               const Tokenizer& tokenizer) {
  const std::vector<int64_t> prompt_ids(p.ids.begin() + p.prompt_start, p.ids.begin() + p.prompt_end);
  std::vector<int64_t> rows = tokens_spelling(word, prompt_ids, tokenizer);
  if (rows.empty()) bad_spec(spec, "the prompt does not contain '" + word + "'");
  for (int64_t& row : rows) row += p.prompt_start;
  return rows;
}

std::vector<int64_t> explicit_rows(const std::string& spec, const std::vector<int64_t>& positions, int64_t seq_len) {
  std::vector<int64_t> rows;
  for (const int64_t row : positions) {
    if (row < -seq_len || row >= seq_len) {
      bad_spec(spec, "position " + std::to_string(row) + " is outside the sequence of " + std::to_string(seq_len) +
                         " tokens (valid: 0.." + std::to_string(seq_len - 1) + " or negative from the end)");
    }
    rows.push_back(row < 0 ? row + seq_len : row);
  }
  return rows;
}

}  // namespace

std::vector<int64_t> resolve_query_rows(const QuerySpec& query, const ChatPrompt& p, const Tokenizer& tokenizer) {
  const int64_t seq_len = static_cast<int64_t>(p.ids.size());
  const std::string spec = query.text();
  std::vector<int64_t> rows;
  switch (query.kind) {
    case QuerySpec::Kind::Prompt:
      for (int64_t i = p.prompt_start; i < p.prompt_end; ++i) rows.push_back(i);
      break;
    case QuerySpec::Kind::Last:
      rows.push_back(seq_len - 1);
      break;
    case QuerySpec::Kind::All:
      // Every token that comes after the image: only those can attend to it (the decoder is causal).
      for (int64_t i = p.image_end; i < seq_len; ++i) rows.push_back(i);
      break;
    case QuerySpec::Kind::Word:
      rows = word_rows(spec, query.word, p, tokenizer);
      break;
    case QuerySpec::Kind::Rows:
      rows = explicit_rows(spec, query.rows, seq_len);
      break;
    case QuerySpec::Kind::Answer:
    case QuerySpec::Kind::AnswerWord:
    case QuerySpec::Kind::AnswerIndex:
      throw Error(ErrorKind::Internal, "--query '" + spec + "' names answer tokens, not prompt rows");
  }
  if (rows.empty()) bad_spec(spec, "it selects no token");
  return rows;
}

std::vector<int64_t> resolve_answer_tokens(const QuerySpec& query, const std::vector<int64_t>& answer_ids,
                                           const Tokenizer& tokenizer) {
  const std::string spec = query.text();
  const int64_t n = static_cast<int64_t>(answer_ids.size());
  const std::string answer = "the answer '" + tokenizer.decode(answer_ids) + "' (" + std::to_string(n) + " tokens)";
  std::vector<int64_t> tokens;
  switch (query.kind) {
    case QuerySpec::Kind::Answer:
      for (int64_t k = 0; k < n; ++k) tokens.push_back(k);
      break;
    case QuerySpec::Kind::AnswerWord:
      tokens = tokens_spelling(query.word, answer_ids, tokenizer);
      if (tokens.empty()) {
        throw Error(ErrorKind::Usage, "--query '" + spec + "': " + answer + " does not contain '" + query.word +
                                          "'; use --query answer, or a word of the answer");
      }
      break;
    case QuerySpec::Kind::AnswerIndex: {
      const int64_t k = query.rows.empty() ? 0 : query.rows.front();
      if (k < -n || k >= n) {
        throw Error(ErrorKind::Usage, "--query '" + spec + "': " + answer + " has no token " + std::to_string(k) +
                                          " (valid: 0.." + std::to_string(n - 1) + " or negative from the end)");
      }
      tokens.push_back(k < 0 ? k + n : k);
      break;
    }
    default:
      throw Error(ErrorKind::Internal, "--query '" + spec + "' names prompt rows, not answer tokens");
  }
  return tokens;
}

}  // namespace attnmap
