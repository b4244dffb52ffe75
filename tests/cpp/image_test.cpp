#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "attnmap/error.hpp"
#include "attnmap/image.hpp"

namespace fs = std::filesystem;
using attnmap::Error;
using attnmap::ErrorKind;

namespace {

fs::path work_dir(const std::string& name) {
  const fs::path dir = fs::path(ATTNMAP_TEST_WORK_DIR) / "image" / name;
  fs::create_directories(dir);
  return dir;
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Runs `f`, expects an attnmap::Error of `kind` on one line whose message contains every needle.
template <typename F>
void expect_error(F&& f, ErrorKind kind, std::initializer_list<std::string> needles) {
  try {
    f();
    FAIL() << "no error thrown";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    for (const auto& needle : needles) EXPECT_NE(msg.find(needle), std::string::npos) << msg << " lacks " << needle;
  }
}

cv::Mat gradient_bgr(int width, int height) {
  cv::Mat m(height, width, CV_8UC3);
  m.forEach<cv::Vec3b>([](cv::Vec3b& px, const int* pos) {
    px = cv::Vec3b(uint8_t(pos[1] * 3), uint8_t(pos[0] * 5), uint8_t((pos[0] + pos[1]) & 255));
  });
  return m;
}

}  // namespace

// Expected values computed by hand from the smart_resize recipe (spec section 1).
TEST(SmartResize, SpecWorkedExample) {
  EXPECT_EQ(attnmap::smart_resize(768, 1024, 28, 3136, 12845056), std::make_pair(756, 1036));
}

TEST(SmartResize, RoundsHalfToEvenLikePython) {
  // 70 / 28 = 2.5 -> 2 (std::round would give 3); 98 / 28 = 3.5 -> 4.
  EXPECT_EQ(attnmap::smart_resize(70, 98, 28, 3136, 12845056), std::make_pair(56, 112));
  // 42 / 28 = 1.5 -> 2 (even), 126 / 28 = 4.5 -> 4.
  EXPECT_EQ(attnmap::smart_resize(42, 126, 28, 3136, 12845056), std::make_pair(56, 112));
}

TEST(SmartResize, MultiplesOf28AreKept) {
  EXPECT_EQ(attnmap::smart_resize(448, 224, 28, 3136, 12845056), std::make_pair(448, 224));
}

TEST(SmartResize, UpscalesToMinPixels) {
  // 50x30: round gives 56x28 = 1568 < 3136; beta = sqrt(3136/1500) = 1.4459;
  // ceil(50*1.4459/28) = ceil(2.58) = 3 -> 84, ceil(30*1.4459/28) = ceil(1.549) = 2 -> 56.
  EXPECT_EQ(attnmap::smart_resize(50, 30, 28, 3136, 12845056), std::make_pair(84, 56));
}

TEST(SmartResize, DownscalesToMaxPixels) {
  // 1200x1600 with max 200704: beta = sqrt(1920000/200704) = 3.0929;
  // floor(1200/3.0929/28) = floor(13.86) = 13 -> 364, floor(1600/3.0929/28) = floor(18.48) = 18 -> 504.
  EXPECT_EQ(attnmap::smart_resize(1200, 1600, 28, 3136, 200704), std::make_pair(364, 504));
}

TEST(SmartResize, RejectsExtremeAspectRatio) {
  expect_error([] { attnmap::smart_resize(28, 28 * 201, 28, 3136, 12845056); }, ErrorKind::Input,
               {"aspect ratio", "200"});
  EXPECT_NO_THROW(attnmap::smart_resize(28, 28 * 200, 28, 3136, 12845056 * 4));
}

TEST(SmartResize, RejectsSidesBelowFactor) {
  expect_error([] { attnmap::smart_resize(27, 500, 28, 3136, 12845056); }, ErrorKind::Input, {"27", "28"});
  expect_error([] { attnmap::smart_resize(500, 10, 28, 3136, 12845056); }, ErrorKind::Input, {"10x500", "28"});
  EXPECT_EQ(attnmap::smart_resize(40, 28, 28, 3136, 12845056), std::make_pair(84, 56));  // the tiny-but-valid case
}

TEST(PreprocessParams, ReadsMetadataObject) {
  const auto j = nlohmann::json::parse(R"({"patch_size": 16, "temporal_patch_size": 2, "merge_size": 2,
      "min_pixels": 100, "max_pixels": 1000000, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.5, 1],
      "rescale_factor": 0.00392156862745098, "resample": "bicubic", "do_convert_rgb": true})");
  const auto p = attnmap::PreprocessParams::from_json(j);
  EXPECT_EQ(p.patch_size, 16);
  EXPECT_EQ(p.min_pixels, 100);
  EXPECT_EQ(p.max_pixels, 1000000);
  EXPECT_FLOAT_EQ(p.image_std[0], 0.25f);
  EXPECT_DOUBLE_EQ(p.rescale_factor, 1.0 / 255);
}

TEST(PreprocessParams, RejectsMissingOrInvalidFields) {
  auto j = nlohmann::json::parse(R"({"patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
      "min_pixels": 3136, "max_pixels": 12845056, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
      "rescale_factor": 0.0039})");
  EXPECT_NO_THROW(attnmap::PreprocessParams::from_json(j));
  auto missing = j;
  missing.erase("merge_size");
  expect_error([&] { attnmap::PreprocessParams::from_json(missing); }, ErrorKind::Model, {"merge_size"});
  auto bad_std = j;
  bad_std["image_std"] = {0.5, 0.0, 0.5};
  expect_error([&] { attnmap::PreprocessParams::from_json(bad_std); }, ErrorKind::Model, {"image_std"});
}

TEST(PreprocessImage, ShapesAndLayout) {
  // A 56x84 (HxW) image: no resize, grid 4x6, merged 2x3; check one value's position by hand.
  cv::Mat rgb(56, 84, CV_8UC3, cv::Scalar(0, 0, 0));
  rgb.at<cv::Vec3b>(14 + 3, 28 + 5) = cv::Vec3b(255, 0, 0);  // patch (1, 2): block (0, 1), mh 1, mw 0
  const attnmap::PreprocessParams params;
  const auto out = attnmap::preprocess_image(rgb, params);
  EXPECT_EQ(out.resized_height, 56);
  EXPECT_EQ(out.resized_width, 84);
  EXPECT_EQ(out.grid_h, 4);
  EXPECT_EQ(out.grid_w, 6);
  EXPECT_TRUE(torch::equal(out.image_grid_thw, torch::tensor({{1, 4, 6}}, torch::kInt64)));
  ASSERT_EQ(out.pixel_values.sizes(), (std::vector<int64_t>{24, 1176}));
  const int64_t row = (0 * 3 + 1) * 4 + 1 * 2 + 0;
  const float red = (1.0f - params.image_mean[0]) / params.image_std[0];
  const float black = (0.0f - params.image_mean[0]) / params.image_std[0];
  const auto pv = out.pixel_values.accessor<float, 2>();
  EXPECT_FLOAT_EQ(pv[row][0 * 392 + 0 * 196 + 3 * 14 + 5], red);
  EXPECT_FLOAT_EQ(pv[row][0 * 392 + 1 * 196 + 3 * 14 + 5], red);  // frame repeated over t
  EXPECT_FLOAT_EQ(pv[row][1 * 392 + 0 * 196 + 3 * 14 + 5], (0.0f - params.image_mean[1]) / params.image_std[1]);
  EXPECT_FLOAT_EQ(pv[row][0 * 392 + 0 * 196 + 3 * 14 + 4], black);
  EXPECT_EQ((out.pixel_values == red).sum().item<int64_t>(), 2);
}

TEST(PreprocessImage, ThousandByEightHundredTakesMilliseconds) {
  const cv::Mat rgb = gradient_bgr(1000, 800);
  const auto start = std::chrono::steady_clock::now();
  const auto out = attnmap::preprocess_image(rgb, attnmap::PreprocessParams{});
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(out.image_grid_thw[0][1].item<int64_t>() * 14, out.resized_height);
  EXPECT_LT(ms, 1000.0);  // generous for a loaded CI machine; typically ~20 ms
}

TEST(ResizeBicubicPillow, SameSizeIsACopyAndConstantStaysConstant) {
  const cv::Mat img = gradient_bgr(31, 17);
  const cv::Mat same = attnmap::resize_bicubic_pillow(img, 31, 17);
  EXPECT_EQ(cv::norm(img, same, cv::NORM_INF), 0);
  EXPECT_NE(same.data, img.data);
  const cv::Mat flat(20, 30, CV_8UC3, cv::Scalar(7, 200, 255));
  const cv::Mat up = attnmap::resize_bicubic_pillow(flat, 77, 41);
  EXPECT_EQ(up.size(), cv::Size(77, 41));
  EXPECT_EQ(cv::norm(up, cv::Mat(41, 77, CV_8UC3, cv::Scalar(7, 200, 255)), cv::NORM_INF), 0);
}

TEST(LoadImage, DecodesRgbOrderAndDropsAlpha) {
  const fs::path dir = work_dir("decode");
  cv::Mat bgra(30, 40, CV_8UC4, cv::Scalar(10, 20, 30, 0));  // fully transparent: alpha must be ignored
  ASSERT_TRUE(cv::imwrite((dir / "a.png").string(), bgra));
  const cv::Mat rgb = attnmap::load_image_rgb(dir / "a.png");
  ASSERT_EQ(rgb.type(), CV_8UC3);
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 0), cv::Vec3b(30, 20, 10));
}

TEST(LoadImage, ErrorsNameTheFileAndTheFix) {
  const fs::path dir = work_dir("errors");
  expect_error([&] { attnmap::load_image_rgb(dir / "missing.jpg"); }, ErrorKind::Input,
               {"missing.jpg", "not found"});
  expect_error([&] { attnmap::load_image_rgb(dir); }, ErrorKind::Input, {"folder"});
  write_bytes(dir / "empty.jpg", "");
  expect_error([&] { attnmap::load_image_rgb(dir / "empty.jpg"); }, ErrorKind::Input, {"empty.jpg", "empty"});
  write_bytes(dir / "text.jpg", "hello, I am not a JPEG\n");
  expect_error([&] { attnmap::load_image_rgb(dir / "text.jpg"); }, ErrorKind::Input, {"text.jpg", "not a decodable image", "unknown or corrupt format"});

  ASSERT_TRUE(cv::imwrite((dir / "ok.jpg").string(), gradient_bgr(64, 48)));
  ASSERT_TRUE(cv::imwrite((dir / "ok.png").string(), gradient_bgr(64, 48)));
  const std::string jpeg = read_bytes(dir / "ok.jpg"), png = read_bytes(dir / "ok.png");
  write_bytes(dir / "cut.jpg", jpeg.substr(0, jpeg.size() / 2));
  expect_error([&] { attnmap::load_image_rgb(dir / "cut.jpg"); }, ErrorKind::Input, {"cut.jpg", "truncated"});
  write_bytes(dir / "cut.png", png.substr(0, png.size() / 2));
  expect_error([&] { attnmap::load_image_rgb(dir / "cut.png"); }, ErrorKind::Input, {"cut.png"});
  EXPECT_NO_THROW(attnmap::load_image_rgb(dir / "ok.jpg"));
}
