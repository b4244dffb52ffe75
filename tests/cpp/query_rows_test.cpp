// --query word:WORD with the real Qwen tokenizer, whose byte-level BPE splits some characters across
// tokens. Expected token indices are HF tokenizers 0.23.3's: the tokens whose
// encode(text, add_special_tokens=False).offsets overlap the word (see tests/python/test_query_word_rows.py
// for the same oracle computed live).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "attnmap/error.hpp"
#include "attnmap/prompt.hpp"
#include "attnmap/tokenizer.hpp"
#include "qwen_tokenizer_fixture.hpp"

namespace {

using attnmap_test::qwen_tokenizer;

// Rows of `word` when the whole sequence is the user's text (prompt_start 0).
std::vector<int64_t> word_rows(const std::string& text, const std::string& word) {
  attnmap::ChatPrompt p;
  p.ids = qwen_tokenizer().encode(text);
  p.prompt_start = 0;
  p.prompt_end = static_cast<int64_t>(p.ids.size());
  return attnmap::resolve_query_rows(attnmap::parse_query_spec("word:" + word), p, qwen_tokenizer());
}

using Rows = std::vector<int64_t>;

TEST(QueryRows, WordSplitAcrossTokensSelectsEveryTokenOfIt) {
  // HF: ['the', 'Ġstar', 'Ġâ', 'ŃĲ', 'Ġhere'] offsets (0,3) (3,8) (8,10) (9,10) (10,15)
  EXPECT_EQ(word_rows("the star ⭐ here", "⭐"), (Rows{2, 3}));
  EXPECT_EQ(word_rows("the star ⭐ here", "star"), (Rows{1}));
  EXPECT_EQ(word_rows("the star ⭐ here", "here"), (Rows{4}));
  // HF: ['coffee', 'Ġâĺ', 'ķ', 'Ġcup'] offsets (0,6) (6,8) (7,8) (8,12)
  EXPECT_EQ(word_rows("coffee ☕ cup", "☕"), (Rows{1, 2}));
  EXPECT_EQ(word_rows("coffee ☕ cup", "cup"), (Rows{3}));
  // HF: ['Ç', 'ħ', 'Ġletter'] offsets (0,1) (0,1) (1,8)
  EXPECT_EQ(word_rows("ǅ letter", "ǅ"), (Rows{0, 1}));
  EXPECT_EQ(word_rows("ǅ letter", "letter"), (Rows{2}));
  // HF: 👨‍👩‍👧 family 🇯🇵 flag -> 13 tokens; the flag is (12,14) (13,14) (13,14) (14,15)
  EXPECT_EQ(word_rows("👨‍👩‍👧 family 🇯🇵 flag", "🇯🇵"), (Rows{8, 9, 10, 11}));
  EXPECT_EQ(word_rows("👨‍👩‍👧 family 🇯🇵 flag", "👩"), (Rows{3}));
  EXPECT_EQ(word_rows("👨‍👩‍👧 family 🇯🇵 flag", "flag"), (Rows{12}));
}

TEST(QueryRows, WordIsMatchedAfterTheTokenizersNfc) {
  // HF: 'e\u0301t\u00e9' is one token with offsets (0, 4) in the original string.
  EXPECT_EQ(word_rows("e\u0301t\u00e9", "e\u0301"), (Rows{0}));
  EXPECT_EQ(word_rows("e\u0301t\u00e9", "\u00e9"), (Rows{0}));
}

// answer:WORD uses the same byte rule over the answer's tokens (the HF offsets above).
std::vector<int64_t> answer_tokens(const std::string& answer, const std::string& query) {
  return attnmap::resolve_answer_tokens(attnmap::parse_query_spec(query), qwen_tokenizer().encode(answer),
                                        qwen_tokenizer());
}

std::string usage_error(const std::string& answer, const std::string& query) {
  try {
    (void)answer_tokens(answer, query);
  } catch (const attnmap::Error& e) {
    EXPECT_EQ(e.kind(), attnmap::ErrorKind::Usage);
    return e.what();
  }
  return "";
}

TEST(AnswerTokens, WordIndexAndAll) {
  EXPECT_EQ(answer_tokens("the star ⭐ here", "answer:⭐"), (Rows{2, 3}));
  EXPECT_EQ(answer_tokens("the star ⭐ here", "answer:STAR"), (Rows{1}));
  EXPECT_EQ(answer_tokens("coffee ☕ cup", "answer"), (Rows{0, 1, 2, 3}));
  EXPECT_EQ(answer_tokens("coffee ☕ cup", "answer:0"), (Rows{0}));
  EXPECT_EQ(answer_tokens("coffee ☕ cup", "answer:-1"), (Rows{3}));
}

TEST(AnswerTokens, MissingWordOrIndexIsOneLineNamingTheAnswer) {
  const std::string word = usage_error("coffee ☕ cup", "answer:tea");
  EXPECT_NE(word.find("--query 'answer:tea'"), std::string::npos) << word;
  EXPECT_NE(word.find("'coffee ☕ cup'"), std::string::npos) << word;
  EXPECT_NE(word.find("does not contain 'tea'"), std::string::npos) << word;
  const std::string index = usage_error("coffee ☕ cup", "answer:4");
  EXPECT_NE(index.find("has no token 4 (valid: 0..3"), std::string::npos) << index;
  EXPECT_NE(usage_error("coffee ☕ cup", "answer:-5").find("has no token -5"), std::string::npos);
}

}  // namespace
