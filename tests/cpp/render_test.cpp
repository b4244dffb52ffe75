#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <optional>

#include "attnmap/error.hpp"
#include "error_kind.hpp"
#include "attnmap/render.hpp"

namespace fs = std::filesystem;
using attnmap::RenderOptions;

namespace {
cv::Mat grey_rgb(int width, int height) { return cv::Mat(height, width, CV_8UC3, cv::Scalar(128, 128, 128)); }

torch::Tensor ramp_map(int h, int w) { return torch::arange(h * w, torch::kFloat32).reshape({h, w}); }

using attnmap_test::kind_of;
}  // namespace

TEST(Render, OverlayHasOriginalSizeAndFollowsTheMap) {
  RenderOptions opts;
  opts.alpha = 1.0;  // heatmap only, so pixels are colormap values
  const cv::Mat out = attnmap::render_overlay(grey_rgb(333, 211), ramp_map(4, 6), opts);
  ASSERT_EQ(out.type(), CV_8UC3);
  EXPECT_EQ(out.size(), cv::Size(333, 211));
  // jet: low is blue (B high, R low), high is red.
  const cv::Vec3b low = out.at<cv::Vec3b>(0, 0), high = out.at<cv::Vec3b>(210, 332);
  EXPECT_GT(low[0], low[2]);
  EXPECT_GT(high[2], high[0]);
}

TEST(Render, AlphaZeroIsTheOriginalInBgr) {
  RenderOptions opts;
  opts.alpha = 0.0;
  cv::Mat rgb(20, 30, CV_8UC3, cv::Scalar(200, 100, 50));
  const cv::Mat out = attnmap::render_overlay(rgb, ramp_map(2, 3), opts);
  EXPECT_EQ(out.at<cv::Vec3b>(5, 5), cv::Vec3b(50, 100, 200));
}

TEST(Render, ConstantMapAndBlurAndEveryColormapWork) {
  for (const auto& name : attnmap::colormap_names()) {
    RenderOptions opts;
    opts.colormap = name;
    opts.blur_sigma = 3.0;
    const cv::Mat out = attnmap::render_overlay(grey_rgb(64, 48), torch::full({3, 4}, 0.25f), opts);
    EXPECT_EQ(out.size(), cv::Size(64, 48)) << name;
  }
}

TEST(Render, RejectsBadOptionsAsUsageErrors) {
  RenderOptions bad_map;
  bad_map.colormap = "rainbow";
  try {
    bad_map.validate();
    FAIL();
  } catch (const attnmap::Error& e) {
    EXPECT_EQ(e.kind(), attnmap::ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find("jet, viridis, turbo, inferno"), std::string::npos) << e.what();
  }
  for (double alpha : {-0.1, 1.5, std::nan("")}) {
    RenderOptions o;
    o.alpha = alpha;
    EXPECT_EQ(kind_of([&] { o.validate(); }), attnmap::ErrorKind::Usage) << alpha;
  }
  RenderOptions neg_blur;
  neg_blur.blur_sigma = -1;
  EXPECT_EQ(kind_of([&] { attnmap::render_overlay(grey_rgb(8, 8), ramp_map(2, 2), neg_blur); }),
            attnmap::ErrorKind::Usage);
}

TEST(Render, GridHoldsEveryTileAndABar) {
  std::vector<torch::Tensor> maps;
  std::vector<std::string> labels;
  for (int i = 0; i < 5; ++i) {
    maps.push_back(ramp_map(6, 8) * (i + 1));
    labels.push_back("layer " + std::to_string(i * 3));
  }
  const cv::Mat grid = attnmap::render_grid(grey_rgb(1000, 500), maps, labels, RenderOptions{});
  ASSERT_EQ(grid.type(), CV_8UC3);
  // 5 tiles -> 3 columns x 2 rows of 256x128 tiles, plus captions and the colour bar.
  EXPECT_GE(grid.cols, 3 * 256);
  EXPECT_LT(grid.cols, 3 * 256 + 60);
  EXPECT_GE(grid.rows, 2 * 128 + 40);
  // Left in the build tree for a human look at the layout.
  const fs::path dir = fs::path(ATTNMAP_TEST_WORK_DIR) / "render";
  fs::create_directories(dir);
  attnmap::write_jpeg_atomically(dir / "grid_example.jpg", grid);
  EXPECT_EQ(kind_of([&] { attnmap::render_grid(grey_rgb(10, 10), maps, {"one"}, RenderOptions{}); }),
            attnmap::ErrorKind::Internal);
}

TEST(Render, WritesJpegAtomically) {
  const fs::path dir = fs::path(ATTNMAP_TEST_WORK_DIR) / "render";
  fs::create_directories(dir);
  const cv::Mat bgr = attnmap::render_overlay(grey_rgb(40, 30), ramp_map(2, 2), RenderOptions{});
  attnmap::write_jpeg_atomically(dir / "x.jpg", bgr, 90);
  const cv::Mat back = cv::imread((dir / "x.jpg").string());
  EXPECT_EQ(back.size(), cv::Size(40, 30));
  for (const auto& entry : fs::directory_iterator(dir)) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
  }
  EXPECT_EQ(kind_of([&] { attnmap::write_jpeg_atomically(dir / "q.jpg", bgr, 0); }), attnmap::ErrorKind::Usage);
  EXPECT_EQ(kind_of([&] { attnmap::write_jpeg_atomically(dir / "no" / "such" / "x.jpg", bgr); }),
            attnmap::ErrorKind::Output);
}
