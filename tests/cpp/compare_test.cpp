// Metrics and the --layers parser against hand-computed values; answers compared in memory.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "attnmap/compare.hpp"
#include "attnmap/options.hpp"
#include "attnmap/error.hpp"
#include "error_kind.hpp"
#include "compare/internal.hpp"
#include "options/layer_spec.hpp"

using attnmap::CompareMetric;
using attnmap::CompareOptions;

namespace {
torch::Tensor map2(std::initializer_list<std::initializer_list<float>> rows) {
  std::vector<float> flat;
  int64_t h = 0, w = 0;
  for (const auto& row : rows) {
    w = static_cast<int64_t>(row.size());
    flat.insert(flat.end(), row.begin(), row.end());
    ++h;
  }
  return torch::tensor(flat).reshape({h, w});
}

using attnmap_test::kind_of;
}  // namespace

TEST(CompareMetrics, CosineOfOrthogonalMapsIsZero) {
  EXPECT_DOUBLE_EQ(attnmap::cosine_similarity(map2({{1, 0}, {0, 0}}), map2({{0, 0}, {0, 3}})), 0.0);
}

TEST(CompareMetrics, CosineIgnoresScaleAndMatchesHandValue) {
  EXPECT_NEAR(attnmap::cosine_similarity(map2({{1, 2}, {3, 4}}), map2({{2, 4}, {6, 8}})), 1.0, 1e-12);
  // (1,0)·(1,1) / (1 * sqrt 2)
  EXPECT_NEAR(attnmap::cosine_similarity(map2({{1, 0}}), map2({{1, 1}})), 1.0 / std::sqrt(2.0), 1e-12);
  EXPECT_DOUBLE_EQ(attnmap::cosine_similarity(map2({{0, 0}}), map2({{0, 0}})), 1.0);
  EXPECT_DOUBLE_EQ(attnmap::cosine_similarity(map2({{0, 0}}), map2({{0, 1}})), 0.0);
}

TEST(CompareMetrics, MaxAbsDifference) {
  EXPECT_DOUBLE_EQ(attnmap::max_abs_difference(map2({{1, 2}, {3, 4}}), map2({{1, 2.5f}, {2, 4}})), 1.0);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(attnmap::max_abs_difference(map2({{1, 2}}), map2({{1, nan}}))));
}

TEST(CompareMetrics, IouOfIdenticalMapsIsOne) {
  const auto m = map2({{5, 1, 2}, {7, 3, 0}});
  for (double pct : {1.0, 10.0, 50.0, 100.0}) EXPECT_DOUBLE_EQ(attnmap::top_k_iou(m, m, pct), 1.0) << pct;
}

TEST(CompareMetrics, IouOfPartlyOverlappingTopSets) {
  // 10 cells, 40% -> 4 cells. Baseline top: {0,1,2,3}; candidate top: {2,3,4,5}; IoU = 2/6.
  const auto b = map2({{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}});
  const auto c = map2({{0, 0, 8, 7, 6, 5, 4, 3, 2, 1}});
  EXPECT_NEAR(attnmap::top_k_iou(b, c, 40.0), 2.0 / 6.0, 1e-12);
  // 10% of 10 cells is one cell: the peaks (cell 0 vs cell 2) differ.
  EXPECT_DOUBLE_EQ(attnmap::top_k_iou(b, c, 10.0), 0.0);
  // Any positive percentage keeps at least one cell.
  EXPECT_DOUBLE_EQ(attnmap::top_k_iou(b, b, 0.01), 1.0);
}

TEST(CompareMetrics, PeakShiftIsEuclideanCellDistance) {
  auto b = torch::zeros({6, 8});
  auto c = torch::zeros({6, 8});
  b[0][0] = 1;
  c[3][4] = 1;
  EXPECT_EQ(attnmap::peak_cell(c), (std::array<int64_t, 2>{3, 4}));
  EXPECT_DOUBLE_EQ(attnmap::peak_shift(b, c), 5.0);
  EXPECT_DOUBLE_EQ(attnmap::peak_shift(b, b), 0.0);
  // Ties go to the first cell in raster order.
  EXPECT_EQ(attnmap::peak_cell(map2({{0, 2}, {2, 1}})), (std::array<int64_t, 2>{0, 1}));
}

TEST(CompareMetrics, MaxAbsToleranceUsesBaselineMagnitude) {
  CompareOptions o;
  o.atol = 0.1;
  o.rtol = 0.5;
  // Bounds: cell 0 -> 0.1 + 0.5*1 = 0.6, cell 1 -> 0.1 + 0.5*0 = 0.1.
  const auto f_in = attnmap::measure_layer(map2({{1, 0}}), map2({{1.5f, 0.05f}}), o);
  EXPECT_EQ(f_in.cells_outside, 0);
  EXPECT_TRUE(attnmap::layer_passes(f_in, o));
  const auto f_out = attnmap::measure_layer(map2({{1, 0}}), map2({{1.5f, 0.2f}}), o);
  EXPECT_EQ(f_out.cells_outside, 1);
  EXPECT_NEAR(f_out.tolerance_ratio, 2.0, 1e-6);  // 0.2 / 0.1
  EXPECT_FALSE(attnmap::layer_passes(f_out, o));
}

TEST(CompareMetrics, EachMetricDecidesWithItsOwnThreshold) {
  CompareOptions o;
  const auto b = map2({{1, 2}, {3, 4}});
  const auto scaled = map2({{2, 4}, {6, 8}});
  const auto f = attnmap::measure_layer(b, scaled, o);
  o.metric = CompareMetric::MaxAbs;
  EXPECT_FALSE(attnmap::layer_passes(f, o));
  o.metric = CompareMetric::Cosine;
  EXPECT_TRUE(attnmap::layer_passes(f, o));
  o.metric = CompareMetric::PeakShift;
  EXPECT_TRUE(attnmap::layer_passes(f, o));
  o.metric = CompareMetric::IouTopK;
  EXPECT_TRUE(attnmap::layer_passes(f, o));
}

TEST(CompareOptionsTest, RejectsOutOfDomainThresholdsAndReportNames) {
  CompareOptions o;
  EXPECT_NO_THROW(attnmap::validate(o));
  o.min_cosine = 1.5;
  EXPECT_EQ(kind_of([&] { attnmap::validate(o); }), attnmap::ErrorKind::Usage);
  o = {};
  o.top_k_percent = 0;
  EXPECT_EQ(kind_of([&] { attnmap::validate(o); }), attnmap::ErrorKind::Usage);
  o = {};
  o.report_path = "report.txt";
  EXPECT_EQ(kind_of([&] { attnmap::validate(o); }), attnmap::ErrorKind::Usage);
  EXPECT_EQ(attnmap::parse_metric("peak-shift"), CompareMetric::PeakShift);
  EXPECT_EQ(kind_of([&] { attnmap::parse_metric("l2"); }), attnmap::ErrorKind::Usage);
}

TEST(LayerSpec, AllListRangeAndMix) {
  EXPECT_EQ(attnmap::parse_layer_spec("all", 4), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(attnmap::parse_layer_spec("4,8,12", 36), (std::vector<int>{4, 8, 12}));
  EXPECT_EQ(attnmap::parse_layer_spec("0-5", 36), (std::vector<int>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(attnmap::parse_layer_spec("30-32, 2,7", 36), (std::vector<int>{30, 31, 32, 2, 7}));
  EXPECT_EQ(attnmap::parse_layer_spec("35", 36), (std::vector<int>{35}));
  EXPECT_EQ(attnmap::parse_layer_spec("3-3", 4), (std::vector<int>{3}));
}

TEST(LayerSpec, OutOfRangeNamesValueAndValidRange) {
  try {
    attnmap::parse_layer_spec("4,36", 36);
    FAIL() << "expected an error";
  } catch (const attnmap::Error& e) {
    EXPECT_EQ(e.kind(), attnmap::ErrorKind::Usage);
    const std::string msg = e.what();
    EXPECT_NE(msg.find("36"), std::string::npos) << msg;
    EXPECT_NE(msg.find("0-35"), std::string::npos) << msg;
  }
}

TEST(LayerSpec, RejectsMalformedSpecs) {
  for (const char* bad : {"", "x", "1,,2", "5-2", "-1", "1-", "2,2", "0-3,3", "1.5", "all,1"}) {
    EXPECT_EQ(kind_of([&] { attnmap::parse_layer_spec(bad, 36); }), attnmap::ErrorKind::Usage) << bad;
  }
}

// --- answers ------------------------------------------------------------------------------------

namespace {

using attnmap::AnswerStatus;
using attnmap::compare_detail::RunFolder;

// A run with `ids` as its answer, two recorded layers (7 and 3, in that row order) of 2x2 maps, and
// answer_maps where token k, layer row r is filled with k + r / 10.
RunFolder answered(const std::vector<int64_t>& ids, const std::string& text) {
  RunFolder run;
  run.layers = {7, 3};
  run.merged_h = run.merged_w = 2;
  attnmap::AnswerRecord answer;
  answer.text = text;
  for (size_t k = 0; k < ids.size(); ++k) {
    answer.tokens.push_back({ids[k], "t" + std::to_string(k), "w" + std::to_string(k), 0.5, 0});
  }
  run.answer = answer;
  run.answer_maps = torch::empty({static_cast<int64_t>(ids.size()), 2, 2, 2});
  for (int64_t k = 0; k < run.answer_maps.size(0); ++k) {
    for (int64_t r = 0; r < 2; ++r) run.answer_maps[k][r].fill_(static_cast<double>(k) + static_cast<double>(r) / 10);
  }
  return run;
}

std::vector<attnmap::LayerResult> both_layers() {
  attnmap::LayerResult seven, three;
  seven.layer = 7;
  three.layer = 3;
  three.baseline_row = three.candidate_row = 1;
  return {seven, three};
}

}  // namespace

TEST(CompareAnswers, FirstDifference) {
  using attnmap::first_answer_difference;
  EXPECT_EQ(first_answer_difference({1, 2, 3}, {1, 2, 3}), std::nullopt);
  EXPECT_EQ(first_answer_difference({}, {}), std::nullopt);
  EXPECT_EQ(first_answer_difference({1, 2, 3}, {1, 5, 3}), 1);
  EXPECT_EQ(first_answer_difference({9}, {1}), 0);
  EXPECT_EQ(first_answer_difference({1, 2}, {1, 2, 3}), 2) << "a longer answer differs where the shorter one ends";
  EXPECT_EQ(first_answer_difference({1, 2, 3}, {1}), 1);
  EXPECT_EQ(first_answer_difference({}, {4}), 0);
}

TEST(CompareAnswers, NeitherSideAnsweredMeansNoAnswerResult) {
  EXPECT_FALSE(attnmap::compare_detail::compare_answers(RunFolder{}, RunFolder{}, both_layers(), {}).has_value());
}

TEST(CompareAnswers, SameAnswerComparesEveryTokenAndLayerAndNamesTheWorst) {
  const RunFolder b = answered({5, 6, 7}, "abc");
  RunFolder c = answered({5, 6, 7}, "abc");
  const auto same = attnmap::compare_detail::compare_answers(b, c, both_layers(), {});
  ASSERT_TRUE(same.has_value());
  EXPECT_EQ(same->status, AnswerStatus::Same);
  EXPECT_TRUE(same->pass);
  ASSERT_EQ(same->tokens.size(), 3u);
  for (const auto& t : same->tokens) EXPECT_EQ(t.layers.size(), 2u);

  // Token 1, layer 3 (row 1): one cell off by 0.01; token 2, layer 7 (row 0): off by 0.001.
  c.answer_maps[1][1][0][1] += 0.01;
  c.answer_maps[2][0][1][1] += 0.001;
  const auto moved = attnmap::compare_detail::compare_answers(b, c, both_layers(), {});
  ASSERT_TRUE(moved.has_value());
  EXPECT_FALSE(moved->pass);
  EXPECT_FALSE(moved->tokens[1].pass);
  EXPECT_FALSE(moved->tokens[2].pass);
  EXPECT_TRUE(moved->tokens[0].pass);
  EXPECT_TRUE(moved->tokens[1].layers[0].pass) << "layer 7 of token 1 is unchanged";
  EXPECT_FALSE(moved->tokens[1].layers[1].pass);
  ASSERT_TRUE(moved->worst.has_value());
  EXPECT_EQ(moved->worst->token, 1);
  EXPECT_EQ(moved->worst->layer, 3);
  EXPECT_EQ(moved->worst->text, "w1");
  EXPECT_NEAR(moved->worst->value, 0.01, 1e-6);

  CompareOptions loose;
  loose.atol = 0.1;
  EXPECT_TRUE(attnmap::compare_detail::compare_answers(b, c, both_layers(), loose)->pass) << "the maps' own thresholds";
}

TEST(CompareAnswers, ChangedAnswerFailsUnlessAllowedAndComparesNoMaps) {
  const RunFolder b = answered({5, 6, 7}, "abc");
  const RunFolder c = answered({5, 8, 7, 9}, "axcd");
  const auto changed = attnmap::compare_detail::compare_answers(b, c, both_layers(), {});
  ASSERT_TRUE(changed.has_value());
  EXPECT_EQ(changed->status, AnswerStatus::Changed);
  EXPECT_FALSE(changed->pass);
  EXPECT_EQ(changed->first_difference, 1);
  EXPECT_EQ(changed->baseline_text, "abc");
  EXPECT_EQ(changed->candidate_text, "axcd");
  EXPECT_EQ(changed->baseline_tokens, 3u);
  EXPECT_EQ(changed->candidate_tokens, 4u);
  EXPECT_TRUE(changed->tokens.empty());
  EXPECT_FALSE(changed->worst.has_value());
  CompareOptions allow;
  allow.allow_answer_change = true;
  const auto allowed = attnmap::compare_detail::compare_answers(b, c, both_layers(), allow);
  EXPECT_EQ(allowed->status, AnswerStatus::Changed);
  EXPECT_TRUE(allowed->pass);
  EXPECT_EQ(attnmap::compare_detail::answer_summary(*changed), "answer changed at token 1 (baseline 3 tokens, candidate 4)");
}

TEST(CompareAnswers, OneSidedAnswerFailsEvenWhenChangesAreAllowed) {
  CompareOptions allow;
  allow.allow_answer_change = true;
  const auto baseline_only = attnmap::compare_detail::compare_answers(answered({5}, "a"), RunFolder{}, both_layers(), allow);
  ASSERT_TRUE(baseline_only.has_value());
  EXPECT_EQ(baseline_only->status, AnswerStatus::BaselineOnly);
  EXPECT_FALSE(baseline_only->pass);
  EXPECT_EQ(baseline_only->candidate_text, std::nullopt);
  EXPECT_EQ(attnmap::compare_detail::answer_summary(*baseline_only),
            "baseline has an answer, candidate has none; compare runs made with the same --answer");
  const auto candidate_only = attnmap::compare_detail::compare_answers(RunFolder{}, answered({5}, "a"), both_layers(), {});
  EXPECT_EQ(candidate_only->status, AnswerStatus::CandidateOnly);
  EXPECT_FALSE(candidate_only->pass);
}

TEST(CompareAnswers, OneLineKeepsWholeCharacters) {
  using attnmap::compare_detail::one_line;
  EXPECT_EQ(one_line("a\nb\tc"), "a b c");
  EXPECT_EQ(one_line("abcdefgh", 8), "abcdefgh");
  EXPECT_EQ(one_line("abcdefghi", 8), "abcde...");
  // "\xe7\x8c\xab" is one character of 3 bytes: a cut inside it drops it whole.
  const std::string cats = "ab\xe7\x8c\xab\xe7\x8c\xab\xe7\x8c\xab";
  EXPECT_EQ(one_line(cats, 7), "ab...");
  EXPECT_EQ(one_line(cats, 8), "ab\xe7\x8c\xab...");
}
