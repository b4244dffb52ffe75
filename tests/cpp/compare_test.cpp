// Metrics and the --layers parser against hand-computed values.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "attnmap/compare.hpp"
#include "attnmap/options.hpp"
#include "attnmap/error.hpp"
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

attnmap::ErrorKind kind_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const attnmap::Error& e) {
    return e.kind();
  }
  return attnmap::ErrorKind::Internal;  // "did not throw" shows up as a mismatch below
}
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
