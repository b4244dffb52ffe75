// The repetition penalty of greedy generation, against values worked out by hand from the rule of
// transformers' RepetitionPenaltyLogitsProcessor (s < 0 ? s * p : s / p, each seen id once).
#include <gtest/gtest.h>

#include <vector>

#include "attnmap/answer.hpp"

namespace {

std::vector<float> values(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

TEST(RepetitionPenalty, DividesPositiveAndMultipliesNegativeLogitsOfSeenIdsOnce) {
  const torch::Tensor logits = torch::tensor({2.0f, -1.0f, 0.5f, 3.0f});
  // Id 0 seen twice is penalised once; id 9 is past the logits and ignored; id 3 is unseen.
  const torch::Tensor out = attnmap::apply_repetition_penalty(logits, {0, 1, 0, 2, 9}, 2.0);
  EXPECT_EQ(values(out), (std::vector<float>{1.0f, -2.0f, 0.25f, 3.0f}));
  EXPECT_EQ(values(logits), (std::vector<float>{2.0f, -1.0f, 0.5f, 3.0f}));  // a copy: the input is kept
}

TEST(RepetitionPenalty, CanChangeTheArgmax) {
  const torch::Tensor logits = torch::tensor({2.0f, 1.95f});
  EXPECT_EQ(logits.argmax().item<int64_t>(), 0);
  EXPECT_EQ(attnmap::apply_repetition_penalty(logits, {0}, 1.05).argmax().item<int64_t>(), 1);
  EXPECT_EQ(attnmap::apply_repetition_penalty(logits, {0}, 1.0).argmax().item<int64_t>(), 0);
}

}  // namespace
