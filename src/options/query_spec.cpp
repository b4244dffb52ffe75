// --query: prompt | last | all | I,J,K | word:WORD | answer | answer:WORD | answer:I. The syntax is checked here; whether a position
// or word exists in the item's sequence is checked by resolve_query_rows (src/prompt/).
#include <cctype>
#include <sstream>

#include "attnmap/error.hpp"
#include "attnmap/options.hpp"
#include "tokenizer/utf8.hpp"

namespace attnmap {

namespace {

[[noreturn]] void bad_spec(const std::string& spec, const std::string& why) {
  throw Error(ErrorKind::Usage, "--query '" + spec + "': " + why +
                                    "; use prompt, last, all, comma-separated positions (e.g. 5,7,-1), word:WORD, answer, "
                                    "answer:WORD or answer:I");
}

std::vector<int64_t> positions(const std::string& spec) {
  std::vector<int64_t> rows;
  std::stringstream items(spec);
  for (std::string item; std::getline(items, item, ',');) {
    try {
      size_t used = 0;
      const int64_t row = std::stoll(item, &used);
      if (used != item.size()) throw std::invalid_argument(item);
      rows.push_back(row);
    } catch (const std::exception&) {
      bad_spec(spec, "'" + item + "' is not a position");
    }
  }
  if (rows.empty()) bad_spec(spec, "no position given");
  return rows;
}

}  // namespace

QuerySpec parse_query_spec(const std::string& spec) {
  QuerySpec query;
  if (spec == "prompt") return query;
  if (spec == "last") {
    query.kind = QuerySpec::Kind::Last;
  } else if (spec == "all") {
    query.kind = QuerySpec::Kind::All;
  } else if (spec.rfind("word:", 0) == 0) {
    query.kind = QuerySpec::Kind::Word;
    query.word = spec.substr(5);
    if (query.word.empty()) bad_spec(spec, "the word is empty");
    if (attnmap::tokenizer::find_invalid_utf8(query.word)) bad_spec(spec, "the word is not valid UTF-8");
  } else if (spec == "answer") {
    query.kind = QuerySpec::Kind::Answer;
  } else if (spec.rfind("answer:", 0) == 0) {
    const std::string rest = spec.substr(7);
    if (rest.empty()) bad_spec(spec, "nothing after 'answer:'");
    if (attnmap::tokenizer::find_invalid_utf8(rest)) bad_spec(spec, "the word is not valid UTF-8");
    // An integer names the I-th answer token (negative from the end); anything else is a word.
    size_t used = 0;
    int64_t index = 0;
    bool is_index = false;
    try {
      index = std::stoll(rest, &used);
      is_index = used == rest.size() && !std::isspace(static_cast<unsigned char>(rest[0]));
    } catch (const std::exception&) {
    }
    if (is_index) {
      query.kind = QuerySpec::Kind::AnswerIndex;
      query.rows = {index};
    } else {
      query.kind = QuerySpec::Kind::AnswerWord;
      query.word = rest;
    }
  } else if (!spec.empty() && (std::isdigit(static_cast<unsigned char>(spec[0])) || spec[0] == '-')) {
    query.kind = QuerySpec::Kind::Rows;
    query.rows = positions(spec);
  } else {
    bad_spec(spec, "unknown query");
  }
  return query;
}

std::string QuerySpec::text() const {
  switch (kind) {
    case Kind::Prompt: return "prompt";
    case Kind::Last: return "last";
    case Kind::All: return "all";
    case Kind::Word: return "word:" + word;
    case Kind::Answer: return "answer";
    case Kind::AnswerWord: return "answer:" + word;
    case Kind::AnswerIndex: return "answer:" + std::to_string(rows.empty() ? 0 : rows.front());
    case Kind::Rows: {
      std::string out;
      for (const int64_t row : rows) out += (out.empty() ? "" : ",") + std::to_string(row);
      return out;
    }
  }
  return "?";
}

}  // namespace attnmap
