#include "tokenizer/added_tokens.hpp"

#include "tokenizer/utf8.hpp"

namespace attnmap::tokenizer {

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens) : tokens_(std::move(tokens)) {
  nodes_.emplace_back();
  for (size_t t = 0; t < tokens_.size(); ++t) {
    const std::string& s = tokens_[t].content;
    if (s.empty()) continue;  // HF ignores empty added tokens
    first_byte_[static_cast<unsigned char>(s[0])] = true;
    int32_t node = 0;
    for (char ch : s) {
      const auto c = static_cast<unsigned char>(ch);
      int32_t child = -1;
      for (const auto& [byte, idx] : nodes_[static_cast<size_t>(node)].next) {
        if (byte == c) child = idx;
      }
      if (child < 0) {
        child = static_cast<int32_t>(nodes_.size());
        nodes_[static_cast<size_t>(node)].next.emplace_back(c, child);
        nodes_.emplace_back();
      }
      node = child;
    }
    // A repeated content keeps its first entry, like HF's map of contents.
    if (nodes_[static_cast<size_t>(node)].token < 0) nodes_[static_cast<size_t>(node)].token = static_cast<int32_t>(t);
  }
}

int32_t AddedTokenMatcher::longest_at(std::string_view text, size_t pos, size_t& end) const {
  int32_t node = 0, found = -1;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    int32_t child = -1;
    for (const auto& [byte, idx] : nodes_[static_cast<size_t>(node)].next) {
      if (byte == c) child = idx;
    }
    if (child < 0) break;
    node = child;
    if (nodes_[static_cast<size_t>(node)].token >= 0) {
      found = nodes_[static_cast<size_t>(node)].token;
      end = i + 1;
    }
  }
  return found;
}

void AddedTokenMatcher::split(std::string_view text, std::vector<Segment>& out) const {
  size_t emitted = 0;  // HF's start_offset: end of the last piece handed out
  size_t pos = 0;
  while (pos < text.size()) {
    if (!first_byte_[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    size_t stop = 0;
    const int32_t t = longest_at(text, pos, stop);
    if (t < 0) {
      ++pos;
      continue;
    }
    const AddedToken& tok = tokens_[static_cast<size_t>(t)];
    size_t start = pos;
    // Leftmost-longest matching resumes after the match even when single_word rejects it.
    pos = stop;
    if (tok.single_word) {
      size_t before = start, after = stop;
      const bool word_before = start > 0 && is_word_char(prev_code_point(text, before));
      const bool word_after = stop < text.size() && is_word_char(next_code_point(text, after));
      if (word_before || word_after) continue;
    }
    if (tok.lstrip) {
      size_t s = start;
      while (s > emitted) {
        size_t p = s;
        if (!is_white_space(prev_code_point(text, p))) break;
        s = p;
      }
      start = s;
    }
    if (tok.rstrip) {
      while (stop < text.size()) {
        size_t p = stop;
        if (!is_white_space(next_code_point(text, p))) break;
        stop = p;
      }
    }
    if (start > emitted) out.push_back({text.substr(emitted, start - emitted), -1});
    out.push_back({text.substr(start, stop - start), tok.id});
    emitted = stop;
    pos = stop;
  }
  if (emitted < text.size()) out.push_back({text.substr(emitted), -1});
}

}  // namespace attnmap::tokenizer
