// The chat prompt and M-RoPE positions of one item, against the Qwen2.5-VL chat template and
// transformers' get_rope_index as written down in the model's recipe (hand-computed cases; the
// pytest parity suites compare the same code with the live HF processor and transformers).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <array>
#include <string>
#include <vector>

#include "attnmap/error.hpp"
#include "attnmap/metadata.hpp"
#include "attnmap/prompt.hpp"
#include "attnmap/tokenizer.hpp"
#include "qwen_tokenizer_fixture.hpp"

namespace {

constexpr int64_t kImagePad = 151655, kVisionStart = 151652, kVisionEnd = 151653, kImStart = 151644,
                  kImEnd = 151645;

using attnmap_test::qwen_tokenizer;

attnmap::ModelMetadata qwen_metadata() {
  attnmap::ModelMetadata m;
  m.tokens.image_token_id = kImagePad;
  m.tokens.vision_start_token_id = kVisionStart;
  m.tokens.vision_end_token_id = kVisionEnd;
  m.tokens.im_start_token_id = kImStart;
  m.tokens.im_end_token_id = kImEnd;
  m.default_system_prompt = "You are a helpful assistant.";
  return m;
}

std::string pads(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += "<|image_pad|>";
  return s;
}

}  // namespace

TEST(ChatPrompt, HasNoSystemTurnWhenTheModelWritesNoneByDefault) {
  // Qwen3-VL's template (metadata chat.default_system_turn false): a system turn only when one is given.
  const auto& tok = qwen_tokenizer();
  attnmap::ModelMetadata m = qwen_metadata();
  m.default_system_prompt = "";
  m.default_system_turn = false;
  const auto p = attnmap::build_chat_prompt(tok, m, "What color is the circle?", 4);
  const std::string text = "<|im_start|>user\n<|vision_start|>" + pads(4) +
                           "<|vision_end|>What color is the circle?<|im_end|>\n<|im_start|>assistant\n";
  EXPECT_EQ(p.ids, tok.encode(text));
  EXPECT_EQ(p.ids[static_cast<size_t>(p.image_start - 1)], kVisionStart);
  EXPECT_EQ(p.image_end - p.image_start, 4);
  const auto q = attnmap::build_chat_prompt(tok, m, "Hi", 1, "Be brief.");
  EXPECT_EQ(q.ids, tok.encode("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n<|vision_start|>" + pads(1) +
                              "<|vision_end|>Hi<|im_end|>\n<|im_start|>assistant\n"));
}

TEST(ChatPrompt, IsTheQwenTemplateWithTheImageExpanded) {
  const auto& tok = qwen_tokenizer();
  const auto p = attnmap::build_chat_prompt(tok, qwen_metadata(), "What color is the circle?", 6);
  // The template for one user turn "image, then text" with the generation prompt.
  const std::string text = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                           "<|vision_start|>" + pads(6) + "<|vision_end|>What color is the circle?<|im_end|>\n"
                           "<|im_start|>assistant\n";
  EXPECT_EQ(p.ids, tok.encode(text));
  ASSERT_EQ(p.image_end - p.image_start, 6);
  EXPECT_EQ(p.ids[static_cast<size_t>(p.image_start - 1)], kVisionStart);
  for (int64_t i = p.image_start; i < p.image_end; ++i) EXPECT_EQ(p.ids[static_cast<size_t>(i)], kImagePad);
  EXPECT_EQ(p.ids[static_cast<size_t>(p.image_end)], kVisionEnd);
  EXPECT_EQ(p.prompt_start, p.image_end + 1);
  const std::vector<int64_t> prompt(p.ids.begin() + p.prompt_start, p.ids.begin() + p.prompt_end);
  EXPECT_EQ(prompt, tok.encode("What color is the circle?"));
  EXPECT_EQ(p.ids[static_cast<size_t>(p.prompt_end)], kImEnd);
}

TEST(ChatPrompt, UsesTheGivenSystemPromptAndRefusesAnEmptyPrompt) {
  const auto& tok = qwen_tokenizer();
  const auto p = attnmap::build_chat_prompt(tok, qwen_metadata(), "Hi", 1, "Be brief.");
  EXPECT_EQ(p.ids, tok.encode("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n<|vision_start|>" +
                              pads(1) + "<|vision_end|>Hi<|im_end|>\n<|im_start|>assistant\n"));
  try {
    (void)attnmap::build_chat_prompt(tok, qwen_metadata(), "", 1);
    ADD_FAILURE() << "an empty prompt was accepted";
  } catch (const attnmap::Error& e) {
    EXPECT_EQ(e.kind(), attnmap::ErrorKind::Input) << e.what();
  }
}

// get_rope_index for images: text advances by one on every axis; an image of merged grid (t, h, w)
// starting at L takes (L, L + row, L + col); the text after it restarts at L + max(h, w).
TEST(MropePositions, FollowGetRopeIndexForOneImage) {
  constexpr int64_t T = 7;  // any text token
  const std::vector<int64_t> ids = {T, kVisionStart, kImagePad, kImagePad, kImagePad, kImagePad, kImagePad,
                                    kImagePad, kVisionEnd, T};
  const torch::Tensor pos = attnmap::mrope_position_ids(ids, kImagePad, {std::array<int64_t, 3>{1, 2, 3}});
  ASSERT_EQ(pos.sizes(), (std::vector<int64_t>{3, 10}));
  // L = 2 (two text tokens before the image); grid 2 rows x 3 columns; the text after: 2 + 3 = 5.
  const std::vector<std::vector<int64_t>> expected = {
      {0, 1, 2, 2, 2, 2, 2, 2, 5, 6},   // temporal
      {0, 1, 2, 2, 2, 3, 3, 3, 5, 6},   // rows
      {0, 1, 2, 3, 4, 2, 3, 4, 5, 6}};  // columns
  for (int axis = 0; axis < 3; ++axis) {
    const auto row = pos[axis].contiguous();
    EXPECT_EQ(std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + 10), expected[static_cast<size_t>(axis)])
        << "axis " << axis;
  }
}

TEST(MropePositions, TallImagesAndTwoImagesContinueFromTheMaximum) {
  constexpr int64_t T = 7;
  // Image A: grid (1, 3, 1), a column of three; image B: grid (1, 1, 2), a row of two.
  const std::vector<int64_t> ids = {kVisionStart, kImagePad, kImagePad, kImagePad, kVisionEnd, T,
                                    kVisionStart, kImagePad, kImagePad, kVisionEnd};
  const torch::Tensor pos = attnmap::mrope_position_ids(
      ids, kImagePad, {std::array<int64_t, 3>{1, 3, 1}, std::array<int64_t, 3>{1, 1, 2}});
  // A starts at L = 1: rows 1..3, columns 1; text resumes at 1 + 3 = 4 (vision_end 4, T 5, vision_start 6).
  // B starts at L = 7: rows 7, columns 7..8; vision_end at 7 + 2 = 9.
  const std::vector<std::vector<int64_t>> expected = {
      {0, 1, 1, 1, 4, 5, 6, 7, 7, 9},
      {0, 1, 2, 3, 4, 5, 6, 7, 7, 9},
      {0, 1, 1, 1, 4, 5, 6, 7, 8, 9}};
  for (int axis = 0; axis < 3; ++axis) {
    const auto row = pos[axis].contiguous();
    EXPECT_EQ(std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + 10), expected[static_cast<size_t>(axis)])
        << "axis " << axis;
  }
}

TEST(MropePositions, GenerationContinuesAfterThePromptsLargestPosition) {
  constexpr int64_t T = 7;
  // A 2x2 image advances the positions by 2 for its 4 tokens, so they run behind the token count.
  const std::vector<int64_t> ids = {kVisionStart, kImagePad, kImagePad, kImagePad, kImagePad, kVisionEnd, T};
  const torch::Tensor pos = attnmap::mrope_position_ids(ids, kImagePad, {std::array<int64_t, 3>{1, 2, 2}});
  // Text resumes at 1 + 2 = 3: vision_end 3, T 4; S = 7, so rope_delta = 4 + 1 - 7 = -2.
  EXPECT_EQ(pos.max().item<int64_t>(), 4);
  for (const int64_t index : {7, 8, 20}) {
    const torch::Tensor step = attnmap::mrope_decode_position_ids(pos, index);
    ASSERT_EQ(step.sizes().vec(), (std::vector<int64_t>{3, 1}));
    for (int axis = 0; axis < 3; ++axis) EXPECT_EQ(step[axis][0].item<int64_t>(), index - 2) << index;
  }
  EXPECT_THROW((void)attnmap::mrope_decode_position_ids(pos, 6), attnmap::Error);
}

// A video's temporal patch k sits at time L + int(k * interval) in float32 (transformers'
// get_vision_position_ids); rows and columns as for an image; the text after it resumes at
// L + max(h, w), ignoring time.
TEST(MropePositions, VideoTimeAxisScalesTemporalPatchesAndTextIgnoresTime) {
  constexpr int64_t T = 7;
  constexpr int64_t kVideoPad = 151656;
  // Grid (3, 1, 2): three temporal patches of a row of two; interval 0.35 * 2 = 0.7 (7 frames at
  // 10 fps sampled at 4 fps, tokens_per_second 2): times int(0 * 0.7) = 0, int(0.7) = 0, int(1.4) = 1.
  const std::vector<int64_t> ids = {T, kVisionStart, kVideoPad, kVideoPad, kVideoPad, kVideoPad, kVideoPad, kVideoPad,
                                    kVisionEnd};
  const float interval = 2.0f * static_cast<float>(2.0 / (4.0 / 7.0 * 10.0));
  const torch::Tensor pos = attnmap::mrope_position_ids(ids, kImagePad, kVideoPad,
                                                        {attnmap::VisualGrid{attnmap::VisualKind::Video, 3, 1, 2, interval, {}}});
  // L = 2; text resumes at 2 + max(1, 2) = 4, though the last temporal patch sits at time 3.
  const std::vector<std::vector<int64_t>> expected = {
      {0, 1, 2, 2, 2, 2, 3, 3, 4},
      {0, 1, 2, 2, 2, 2, 2, 2, 4},
      {0, 1, 2, 3, 2, 3, 2, 3, 4}};
  for (int axis = 0; axis < 3; ++axis) {
    const auto row = pos[axis].contiguous();
    EXPECT_EQ(std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + 9), expected[static_cast<size_t>(axis)])
        << "axis " << axis;
  }
  // A video pad where an image grid is expected is a bug of the caller, not silently accepted.
  EXPECT_THROW((void)attnmap::mrope_position_ids(ids, kImagePad, kVideoPad,
                                                 {attnmap::VisualGrid{attnmap::VisualKind::Image, 3, 1, 2, 1.0f, {}}}),
               attnmap::Error);
}

// Qwen3VLProcessor's video text: per temporal patch "<t seconds>" and its own bracketed pads, inside
// the template's video item; the ids equal encoding that whole text at once.
TEST(ChatPrompt, LabelledVideoRunsAreBracketedAndTheUserTextFollowsBothClosings) {
  const auto& tok = qwen_tokenizer();
  attnmap::ModelMetadata m = qwen_metadata();
  m.tokens.video_token_id = 151656;
  m.default_system_turn = false;
  const auto p = attnmap::build_labelled_video_prompt(tok, m, "Where does it go?", 4, {"<0.1 seconds>", "<1.3 seconds>"});
  std::string video;
  for (const char* label : {"<0.1 seconds>", "<1.3 seconds>"}) {
    video += std::string(label) + "<|vision_start|><|video_pad|><|video_pad|><|video_pad|><|video_pad|><|vision_end|>";
  }
  const std::string text = "<|im_start|>user\n<|vision_start|>" + video +
                           "<|vision_end|>Where does it go?<|im_end|>\n<|im_start|>assistant\n";
  ASSERT_EQ(p.ids, tok.encode(text));
  ASSERT_EQ(p.visual_runs.size(), 2u);
  for (const attnmap::TokenRun& run : p.visual_runs) {
    EXPECT_EQ(run.size(), 4);
    EXPECT_EQ(p.ids[static_cast<size_t>(run.start - 1)], kVisionStart);
    EXPECT_EQ(p.ids[static_cast<size_t>(run.end)], kVisionEnd);
    for (int64_t i = run.start; i < run.end; ++i) EXPECT_EQ(p.ids[static_cast<size_t>(i)], 151656);
  }
  EXPECT_EQ(p.image_start, p.visual_runs.front().start);
  EXPECT_EQ(p.image_end, p.visual_runs.back().end);
  EXPECT_EQ(tok.decode(std::vector<int64_t>(p.ids.begin() + p.prompt_start, p.ids.begin() + p.prompt_end)),
            "Where does it go?");
  EXPECT_EQ(p.ids[static_cast<size_t>(p.prompt_start - 2)], kVisionEnd);  // the patch's, then the item's
  EXPECT_EQ(p.ids[static_cast<size_t>(p.prompt_start - 1)], kVisionEnd);

  // Every temporal patch its own 2x2 grid (Qwen3VLModel.get_rope_index): a run takes (L, L + row,
  // L + col) from the position L where it stands; the text after it resumes at L + 2, so the second
  // run stands 2 positions behind its token index.
  const attnmap::VisualGrid patch{attnmap::VisualKind::Video, 1, 2, 2, 1.0f, {}};
  const torch::Tensor pos = attnmap::mrope_position_ids(p.ids, kImagePad, 151656, {patch, patch});
  const int64_t behind[] = {0, 2};
  for (size_t r = 0; r < 2; ++r) {
    const int64_t base = p.visual_runs[r].start - behind[r];
    for (int64_t k = 0; k < 4; ++k) {
      const int64_t at = p.visual_runs[r].start + k;
      EXPECT_EQ(pos[0][at].item<int64_t>(), base);
      EXPECT_EQ(pos[1][at].item<int64_t>(), base + k / 2);
      EXPECT_EQ(pos[2][at].item<int64_t>(), base + k % 2);
    }
    EXPECT_EQ(pos[0][p.visual_runs[r].end].item<int64_t>(), base + 2);  // its <|vision_end|>
  }
}
