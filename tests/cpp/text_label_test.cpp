// Token labels in any script (src/render/text_label, display_text, caption) and the answer strip
// (attnmap::render_answer_strip). Needs the fonts scripts/bootstrap.sh installs: DejaVu Sans and
// Unifont (fonts-dejavu-core, fonts-unifont).
#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "attnmap/error.hpp"
#include "attnmap/render.hpp"
#include "render/display_text.hpp"
#include "render/text_label.hpp"
#include "test_files.hpp"

using attnmap::RenderOptions;
using attnmap::detail::display_code_points;
using attnmap::detail::draw_text;
using attnmap::detail::ellipsise_to_width;
using attnmap::detail::measure_text;
using attnmap::detail::visible_token_text;

namespace {

const cv::Scalar kWhite(255, 255, 255);
constexpr int kSize = 32;  // large enough that glyph shapes differ by many pixels
// U+10FFFD (plane 16 private use): no general-purpose font has it, so it draws as .notdef ("tofu").
const std::string kNoFont = "\xF4\x8F\xBF\xBD";

// `text` drawn white on black at kSize, pen starting at (8, 44).
cv::Mat drawn(const std::string& text) {
  cv::Mat m(64, 320, CV_8UC3, cv::Scalar(0, 0, 0));
  draw_text(m, text, cv::Point(8, 44), kSize, kWhite);
  return m;
}

// Where the ink is (anti-aliased pixels more than half covered).
cv::Mat ink_mask(const cv::Mat& bgr) {
  cv::Mat grey;
  cv::cvtColor(bgr, grey, cv::COLOR_BGR2GRAY);
  return grey > 127;
}

int ink(const cv::Mat& bgr) { return cv::countNonZero(ink_mask(bgr)); }

int ink_differences(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat diff;
  cv::bitwise_xor(ink_mask(a), ink_mask(b), diff);
  return cv::countNonZero(diff);
}

cv::Mat grey_rgb(int width, int height) { return cv::Mat(height, width, CV_8UC3, cv::Scalar(128, 128, 128)); }

// A [4, 4] map that is 0 except `value` at (row, col).
torch::Tensor peaked_map(int row, int col, float value = 1.0f) {
  torch::Tensor m = torch::zeros({4, 4}, torch::kFloat32);
  m[row][col] = value;
  return m;
}

// The layout render.hpp documents, for a 200x100 image: 176x88 tiles, 6-px gaps, 24-px captions,
// 8 tiles a row, a 56-px colour bar.
constexpr int kTileW = 176, kTileH = 88, kGap = 6, kCaption = 24, kBar = 56;
cv::Point tile_origin(int k) {
  return {kGap + (k % 8) * (kTileW + kGap), kGap + (k / 8) * (kCaption + kTileH + kGap) + kCaption};
}

}  // namespace

TEST(TextLabel, EveryScriptHasGlyphsAndInk) {
  // 🐶 comes from Unifont Upper, 🐱 and Arabic from DejaVu Sans, 猫 from Unifont.
  for (const std::string text : {"cat", "猫", "🐱", "🐶", "مرحبا"}) {
    const auto extent = measure_text(text, kSize);
    EXPECT_TRUE(extent.all_glyphs_found) << text;
    EXPECT_GT(extent.width, kSize / 3) << text;
    const cv::Mat m = drawn(text);
    EXPECT_GT(ink(m), 40) << text;
    // Ink stays inside the advance the measure reported (plus a little for side bearings).
    cv::Mat cols;
    cv::reduce(ink_mask(m), cols, 0, cv::REDUCE_MAX);
    cv::Mat mask_cols = cols.colRange(8 + extent.width + kSize / 4, cols.cols);
    EXPECT_EQ(cv::countNonZero(mask_cols), 0) << text;
  }
}

TEST(TextLabel, GlyphsAreNotTofu) {
  ASSERT_FALSE(measure_text(kNoFont, kSize).all_glyphs_found);
  const cv::Mat tofu = drawn(kNoFont);
  ASSERT_GT(ink(tofu), 40) << "the primary font's .notdef should be a visible box";
  for (const std::string text : {"猫", "🐱", "🐶", "ب"}) {
    const cv::Mat glyph = drawn(text);
    // A box drawn in its place would match the .notdef's ink almost pixel for pixel.
    EXPECT_GT(ink_differences(glyph, tofu), ink(tofu) / 2) << text;
  }
  // And a code point with no font is reported even among found ones.
  EXPECT_FALSE(measure_text("cat" + kNoFont, kSize).all_glyphs_found);
}

TEST(TextLabel, DifferentCharactersDrawDifferently) {
  EXPECT_GT(ink_differences(drawn("猫"), drawn("狗")), 20);
  EXPECT_GT(ink_differences(drawn("🐱"), drawn("🐶")), 20);
}

TEST(TextLabel, VisibleTokenTextShowsSpacesAndControls) {
  EXPECT_EQ(visible_token_text(" the"), "␣the");
  EXPECT_EQ(visible_token_text("a\r\n"), "a␍↵");
  EXPECT_EQ(visible_token_text("\t\x01"), "⇥␁");
  EXPECT_EQ(visible_token_text("\xC2\xA0\xE3\x80\x80"), "␣␣");  // NBSP, ideographic space
  EXPECT_EQ(visible_token_text("猫🐱"), "猫🐱");
  EXPECT_EQ(visible_token_text("\xE7\x8C"), "\xEF\xBF\xBD");  // 猫 cut by byte-level BPE -> U+FFFD
  EXPECT_EQ(visible_token_text(""), "");
}

TEST(TextLabel, LeadingSpaceMarkerHasInk) {
  const std::string marked = visible_token_text(" the");
  ASSERT_TRUE(measure_text(marked, kSize).all_glyphs_found);
  // Where a plain space would be: the marker is at least that wide, and "t" starts after it.
  const int space_width = measure_text(" ", kSize).width;
  ASSERT_GT(space_width, 4);
  const cv::Rect marker_area(8, 0, space_width - 1, 64);
  EXPECT_GT(cv::countNonZero(ink_mask(drawn(marked))(marker_area)), 5);
  // A plain space there would leave that area blank: the marker is what makes it visible.
  EXPECT_EQ(cv::countNonZero(ink_mask(drawn(" the"))(marker_area)), 0);
  EXPECT_GT(measure_text(marked, kSize).width, measure_text("the", kSize).width + 4);
}

TEST(TextLabel, DisplayOrderReversesRightToLeftRunsAndDropsIgnorables) {
  EXPECT_EQ(display_code_points("مرحبا"), std::u32string(U"ابحرم"));
  EXPECT_EQ(display_code_points("x مر y"), std::u32string(U"x رم y"));
  EXPECT_EQ(display_code_points("cat"), std::u32string(U"cat"));
  // ZWJ and variation selector 16 have no glyph of their own.
  EXPECT_EQ(display_code_points("❤\xEF\xB8\x8F"), std::u32string(U"❤"));
  // A mark stays after its letter when the run is reversed: [ب + fatha][م] -> [م][ب + fatha].
  EXPECT_EQ(display_code_points("بَم"), std::u32string(U"مبَ"));
}

TEST(TextLabel, EllipsisFitsAndNeverSplitsACodePoint) {
  EXPECT_EQ(ellipsise_to_width("cat", 16, 200), "cat");
  const std::string latin = ellipsise_to_width("abcdefghijklmnopqrstuvwxyz", 16, 60);
  EXPECT_LE(measure_text(latin, 16).width, 60);
  EXPECT_EQ(latin.substr(latin.size() - 3), "…");
  EXPECT_EQ(latin.rfind("abc", 0), 0u);
  const std::string cjk = ellipsise_to_width("猫猫猫猫猫猫猫猫猫猫", 16, 50);
  EXPECT_LE(measure_text(cjk, 16).width, 50);
  EXPECT_EQ(cjk.size() % 3, 0u);  // whole 3-byte code points plus the 3-byte "…"
  EXPECT_EQ(cjk.substr(cjk.size() - 3), "…");
}

TEST(TextLabel, ConcurrentDrawingMatchesSerialDrawing) {
  const std::string text = "猫🐱 cat مرحبا";
  const cv::Mat reference = drawn(text);
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < mismatches.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) mismatches[t] += cv::norm(drawn(text), reference, cv::NORM_INF) != 0;
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

TEST(AnswerStrip, LayoutSizeForOneEightAndNineTokens) {
  for (const int n : {1, 8, 9}) {
    std::vector<torch::Tensor> maps;
    std::vector<std::string> labels;
    for (int k = 0; k < n; ++k) {
      maps.push_back(peaked_map(k % 4, k / 4 % 4));
      labels.push_back(k % 2 ? "猫" : " the");
    }
    bool as_text = false;
    const cv::Mat strip = attnmap::render_answer_strip(grey_rgb(200, 100), maps, labels, RenderOptions{}, &as_text);
    ASSERT_EQ(strip.type(), CV_8UC3);
    EXPECT_TRUE(as_text) << n;
    const int cols = std::min(n, 8), rows = (n + 7) / 8;
    EXPECT_EQ(strip.cols, std::max(320, kGap + cols * (kTileW + kGap))) << n;
    EXPECT_EQ(strip.rows, kGap + rows * (kCaption + kTileH + kGap) + kBar) << n;
  }
  // A tall, thin image: the cells are still wide enough for a caption.
  const cv::Mat thin = attnmap::render_answer_strip(grey_rgb(20, 400), {peaked_map(0, 0)}, {"x"}, RenderOptions{});
  EXPECT_EQ(thin.rows, kGap + kCaption + 176 + kGap + kBar);
  EXPECT_EQ(thin.cols, 320);
}

TEST(AnswerStrip, TilesAreHotWhereTheirMapPeaksOnOneSharedScale) {
  RenderOptions opts;
  opts.alpha = 1.0;  // heatmap only: jet's red is high, blue is low
  // Token k peaks at cell (k, 3 - k); token 4 peaks at a tenth of the others' height.
  std::vector<torch::Tensor> maps;
  for (int k = 0; k < 4; ++k) maps.push_back(peaked_map(k, 3 - k));
  maps.push_back(peaked_map(1, 1, 0.1f));
  const cv::Mat strip =
      attnmap::render_answer_strip(grey_rgb(200, 100), maps, {"a", "b", "c", "d", "e"}, opts);
  const auto at_cell = [&](int k, int row, int col) {
    const cv::Point o = tile_origin(k);
    return strip.at<cv::Vec3b>(o.y + row * kTileH / 4 + kTileH / 8, o.x + col * kTileW / 4 + kTileW / 8);
  };
  for (int k = 0; k < 4; ++k) {
    const cv::Vec3b hot = at_cell(k, k, 3 - k), cold = at_cell(k, 3 - k, k);
    EXPECT_GT(hot[2], 100) << k;  // jet's top is dark red (0, 0, 128)
    EXPECT_LT(hot[0], 40) << k;
    EXPECT_GT(cold[0], 100) << k;  // and its bottom dark blue (128, 0, 0)
    EXPECT_LT(cold[2], 40) << k;
  }
  // Its own min/max would make token 4's peak red too; on the shared scale it stays blue.
  const cv::Vec3b weak = at_cell(4, 1, 1);
  EXPECT_GT(weak[0], weak[2]);
}

TEST(AnswerStrip, CaptionsShowTheTokenOrOnlyItsIndex) {
  const cv::Mat image = grey_rgb(200, 100);
  const auto caption_of = [&](const std::string& label, bool* as_text) {
    const cv::Mat strip = attnmap::render_answer_strip(image, {peaked_map(0, 0)}, {label}, RenderOptions{}, as_text);
    return strip(cv::Rect(0, 0, strip.cols, kGap + kCaption)).clone();
  };
  bool as_text = false;
  const cv::Mat cat = caption_of("猫", &as_text);
  EXPECT_TRUE(as_text);
  const cv::Mat dog = caption_of("狗", &as_text);
  EXPECT_GT(ink_differences(cat, dog), 10);
  const cv::Mat missing = caption_of("cat" + kNoFont, &as_text);
  EXPECT_FALSE(as_text);
  const cv::Mat empty = caption_of("", &as_text);
  EXPECT_TRUE(as_text);
  // A token with no font gets "#0" alone: exactly what an empty token gets, no boxes.
  EXPECT_EQ(cv::norm(missing, empty, cv::NORM_INF), 0);
  EXPECT_GT(ink(cat), ink(empty) + 10);
}

TEST(AnswerStrip, RejectsMismatchedInputs) {
  const auto kind_of = [](const auto& f) -> std::optional<attnmap::ErrorKind> {
    try {
      f();
    } catch (const attnmap::Error& e) {
      return e.kind();
    }
    return std::nullopt;
  };
  EXPECT_EQ(kind_of([] { attnmap::render_answer_strip(grey_rgb(8, 8), {}, {}, RenderOptions{}); }),
            attnmap::ErrorKind::Internal);
  EXPECT_EQ(kind_of([] {
              attnmap::render_answer_strip(grey_rgb(8, 8), {peaked_map(0, 0)}, {"a", "b"}, RenderOptions{});
            }),
            attnmap::ErrorKind::Internal);
  EXPECT_EQ(kind_of([] { attnmap::render_answer_strip(cv::Mat(), {peaked_map(0, 0)}, {"a"}, RenderOptions{}); }),
            attnmap::ErrorKind::Internal);
}

// Left in the build tree for a human look: the labels of the task's visual check over a scene.
TEST(AnswerStrip, WritesAnExampleStrip) {
  cv::Mat scene(300, 400, CV_8UC3, cv::Scalar(90, 140, 200));
  cv::circle(scene, cv::Point(260, 120), 70, cv::Scalar(240, 200, 40), cv::FILLED);
  cv::rectangle(scene, cv::Rect(40, 180, 120, 90), cv::Scalar(40, 160, 80), cv::FILLED);
  const std::vector<std::string> labels = {"The", " cat", "猫", "🐱", " is", "↵"};
  std::vector<torch::Tensor> maps;
  for (size_t k = 0; k < labels.size(); ++k) maps.push_back(peaked_map(int(k % 4), int((k + 1) % 4)));
  bool as_text = false;
  const cv::Mat strip = attnmap::render_answer_strip(scene, maps, labels, RenderOptions{}, &as_text);
  EXPECT_TRUE(as_text);
  const auto dir = attnmap_test::fresh_dir("render", "answer_strip");
  attnmap::write_jpeg_atomically(dir / "answer_strip_example.jpg", strip);
  // Wrapping to a second row, a label too long for its tile, right-to-left text, a cut character.
  const std::vector<std::string> more = {" Answer", ":", " antidisestablishmentarianism", " مرحبا", "\t",
                                         "\xE7\x8C", "🐶", " ok", "。", "\n"};
  std::vector<torch::Tensor> more_maps;
  for (size_t k = 0; k < more.size(); ++k) more_maps.push_back(peaked_map(int(k % 4), int(k / 4 % 4)));
  const cv::Mat wrapped = attnmap::render_answer_strip(scene, more_maps, more, RenderOptions{}, &as_text);
  EXPECT_TRUE(as_text);
  attnmap::write_jpeg_atomically(dir / "answer_strip_wrapped.jpg", wrapped);
}
