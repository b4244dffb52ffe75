// Token labels for the viewer and the answer strips, with the real Qwen tokenizer: a character that
// byte-level BPE cuts across tokens is shown whole on each of its tokens with the token's part. The
// token splits are HF tokenizers' (see query_rows_test.cpp for the same strings).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "attnmap/tokenizer.hpp"
#include "qwen_tokenizer_fixture.hpp"
#include "tokenizer/display_labels.hpp"

namespace {

using attnmap_test::qwen_tokenizer;
using Labels = std::vector<std::string>;

Labels labels_of(const std::string& text) {
  return attnmap::token_display_labels(qwen_tokenizer().encode(text), qwen_tokenizer());
}

TEST(DisplayLabels, CutCharactersAreShownWholeWithTheirPart) {
  // HF: ['the', 'Ġstar', 'Ġâ', 'ŃĲ', 'Ġhere']
  EXPECT_EQ(labels_of("the star ⭐ here"), (Labels{"the", " star", " ⭐ (1/2)", " ⭐ (2/2)", " here"}));
  // HF: ['coffee', 'Ġâĺ', 'ķ', 'Ġcup']
  EXPECT_EQ(labels_of("coffee ☕ cup"), (Labels{"coffee", " ☕ (1/2)", " ☕ (2/2)", " cup"}));
}

TEST(DisplayLabels, WholeTokensAndSpecialTokensAreTheirText) {
  EXPECT_EQ(labels_of("What color?"), (Labels{"What", " color", "?"}));
  const std::vector<int64_t> ids = qwen_tokenizer().encode("<|im_start|>user");
  EXPECT_EQ(attnmap::token_display_labels(ids, qwen_tokenizer()), (Labels{"<|im_start|>", "user"}));
}

TEST(DisplayLabels, BytesThatNeverCompleteStayReplacementCharacters) {
  // The first token of "⭐" alone, at the end of the sequence: no later token completes it.
  std::vector<int64_t> ids = qwen_tokenizer().encode("the star ⭐");
  ids.pop_back();
  const Labels labels = attnmap::token_display_labels(ids, qwen_tokenizer());
  EXPECT_EQ(labels.back(), qwen_tokenizer().decode({ids.back()}));
  EXPECT_NE(labels.back().find("\xef\xbf\xbd"), std::string::npos);
}

}  // namespace
