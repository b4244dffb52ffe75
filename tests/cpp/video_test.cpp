// Frame sampling (transformers' Qwen2VLVideoProcessor.sample_frames) on cases small enough to work out
// by hand, and the name order of a frames folder. The full grid against transformers itself, and the
// decoding against PyAV, are in tests/python/test_video_decode.py.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "attnmap/error.hpp"
#include "attnmap/video.hpp"
#include "test_files.hpp"

namespace fs = std::filesystem;
using attnmap::ErrorKind;
using attnmap::VideoInfo;
using attnmap::VideoSampling;
using Indices = std::vector<int64_t>;

namespace {

VideoInfo video(int64_t total, std::optional<double> fps) {
  VideoInfo info;
  info.total_frames = total;
  info.fps = fps;
  return info;
}

VideoSampling by_num(int64_t n) {
  VideoSampling s;
  s.num_frames = n;
  return s;
}

VideoSampling by_fps(double fps, int64_t min_frames = 4, int64_t max_frames = 768) {
  VideoSampling s;
  s.fps = fps;
  s.min_frames = min_frames;
  s.max_frames = max_frames;
  return s;
}

// The error's kind, and whether its message holds `needle`.
void expect_error(const VideoInfo& info, const VideoSampling& s, ErrorKind kind, const std::string& needle) {
  try {
    attnmap::sample_frame_indices(info, s);
    FAIL() << "no error thrown";
  } catch (const attnmap::Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(VideoSampling, NeitherFpsNorNumFramesTakesEveryFrame) {
  EXPECT_EQ(attnmap::sample_frame_indices(video(5, 24.0), {}), (Indices{0, 1, 2, 3, 4}));
  EXPECT_EQ(attnmap::sample_frame_indices(video(3, std::nullopt), {}), (Indices{0, 1, 2}));
}

TEST(VideoSampling, NumFramesSpreadsOverTheVideo) {
  // arange(0, 8, 2.0) and arange(0, 7, 1.75) = 0, 1.75, 3.5, 5.25 truncated.
  EXPECT_EQ(attnmap::sample_frame_indices(video(8, 24.0), by_num(4)), (Indices{0, 2, 4, 6}));
  EXPECT_EQ(attnmap::sample_frame_indices(video(7, 24.0), by_num(4)), (Indices{0, 1, 3, 5}));
  EXPECT_EQ(attnmap::sample_frame_indices(video(7, std::nullopt), by_num(6)).size(), 6u);
}

TEST(VideoSampling, NumFramesRoundsHalfToEvenMultipleOfTemporalPatch) {
  // 5/2 = 2.5 -> 2 (Python's round), 3/2 = 1.5 -> 2, 7/2 = 3.5 -> 4.
  EXPECT_EQ(attnmap::sample_frame_indices(video(8, 24.0), by_num(5)), (Indices{0, 2, 4, 6}));
  EXPECT_EQ(attnmap::sample_frame_indices(video(8, 24.0), by_num(3)), (Indices{0, 2, 4, 6}));
  EXPECT_EQ(attnmap::sample_frame_indices(video(8, 24.0), by_num(7)), (Indices{0, 1, 2, 3, 4, 5, 6, 7}));
}

TEST(VideoSampling, NumFramesErrors) {
  expect_error(video(8, 24.0), by_num(1), ErrorKind::Input, "rounds to 0");  // 0.5 -> 0
  expect_error(video(8, 24.0), by_num(0), ErrorKind::Input, "rounds to 0");
  expect_error(video(8, 24.0), by_num(10), ErrorKind::Input, "lower --num-frames");
  VideoSampling both = by_num(4);
  both.fps = 2;
  expect_error(video(8, 24.0), both, ErrorKind::Usage, "mutually exclusive");
}

TEST(VideoSampling, FpsClampsToMinMaxAndTemporalPatch) {
  // 61 / (30000/1001) * 2 = 4.07 -> floor(4.07 / 2) * 2 = 4; step 61/4 = 15.25.
  EXPECT_EQ(attnmap::sample_frame_indices(video(61, 30000.0 / 1001), by_fps(2)), (Indices{0, 15, 30, 45}));
  // 30 / 24 * 2 = 2.5, raised to min_frames 4; step 7.5.
  EXPECT_EQ(attnmap::sample_frame_indices(video(30, 24.0), by_fps(2)), (Indices{0, 7, 15, 22}));
  // 3 frames: max_frames = floor(3 / 2) * 2 = 2 caps min_frames 4; step 1.5.
  EXPECT_EQ(attnmap::sample_frame_indices(video(3, 24.0), by_fps(2)), (Indices{0, 1}));
  // 100 / 10 * 100 = 1000, capped at the 100 frames there are.
  EXPECT_EQ(attnmap::sample_frame_indices(video(100, 10.0), by_fps(100)).size(), 100u);
  // 100 / 10 * 5 = 50, capped at max_frames 16; step 6.25.
  const Indices capped = attnmap::sample_frame_indices(video(100, 10.0), by_fps(5, 4, 16));
  ASSERT_EQ(capped.size(), 16u);
  EXPECT_EQ((Indices(capped.begin(), capped.begin() + 5)), (Indices{0, 6, 12, 18, 25}));
}

TEST(VideoSampling, FpsErrors) {
  // One frame: max_frames = floor(1 / 2) * 2 = 0 frames (Python divides by zero).
  expect_error(video(1, 24.0), by_fps(2), ErrorKind::Input, "samples no frames");
  expect_error(video(8, std::nullopt), by_fps(2), ErrorKind::Input, "use --num-frames");
  expect_error(video(0, 24.0), {}, ErrorKind::Input, "no frames");
}

TEST(VideoFrameFiles, ImagesInByteOrderOthersSkipped) {
  const fs::path dir = attnmap_test::fresh_dir("video", "frame_files");
  for (const char* name : {"frame_10.png", "frame_02.png", "frame_1.png", "B.png", "a.PNG", "c.JpEg", "d.tif",
                           "e.webp", "f.bmp", ".hidden.png", "notes.txt", "noext"}) {
    attnmap_test::write_bytes(dir / name, "x");  // listing does not decode
  }
  fs::create_directories(dir / "g.png");
  std::vector<std::string> names;
  for (const fs::path& p : attnmap::list_frame_files(dir)) names.push_back(p.filename().string());
  EXPECT_EQ(names, (std::vector<std::string>{"B.png", "a.PNG", "c.JpEg", "d.tif", "e.webp", "f.bmp", "frame_02.png",
                                             "frame_1.png", "frame_10.png"}));
}

TEST(VideoFrameFiles, EmptyOrMissingFolderIsAnInputError) {
  const fs::path dir = attnmap_test::fresh_dir("video", "frame_files_empty");
  attnmap_test::write_bytes(dir / "notes.txt", "x");
  EXPECT_THROW(attnmap::list_frame_files(dir), attnmap::Error);
  EXPECT_THROW(attnmap::list_frame_files(dir / "missing"), attnmap::Error);
  try {
    attnmap::list_frame_files(dir);
  } catch (const attnmap::Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Input);
    EXPECT_NE(std::string(e.what()).find(dir.string()), std::string::npos);
  }
  EXPECT_THROW(attnmap::load_frames({}), attnmap::Error);
}

// Qwen3VLVideoProcessor.sample_frames (FrameSampling::Linspace). The expected indices are what
// transformers 5.23 returned for the same metadata (numpy's linspace and round).
namespace {
VideoSampling linspace(VideoSampling s) {
  s.method = attnmap::FrameSampling::Linspace;
  return s;
}
}  // namespace

TEST(VideoSamplingLinspace, FpsSpreadsOverTheWholeVideoAndClampsToMinFrames) {
  EXPECT_EQ(attnmap::sample_frame_indices(video(30, 29.97), linspace(by_fps(2))), (Indices{0, 10, 19, 29}));
  EXPECT_EQ(attnmap::sample_frame_indices(video(300, 30.0), linspace(by_fps(2))),
            (Indices{0, 16, 31, 47, 63, 79, 94, 110, 126, 142, 157, 173, 189, 205, 220, 236, 252, 268, 283, 299}));
  EXPECT_EQ(attnmap::sample_frame_indices(video(1000, 25.0), linspace(by_fps(0.5))),
            (Indices{0, 53, 105, 158, 210, 263, 315, 368, 421, 473, 526, 578, 631, 684, 736, 789, 841, 894, 946, 999}));
  // A video without a rate counts as 24 fps; a short one keeps all its frames (the clamp to its length).
  EXPECT_EQ(attnmap::sample_frame_indices(video(7, std::nullopt), linspace(by_fps(2))), (Indices{0, 2, 4, 6}));
  EXPECT_EQ(attnmap::sample_frame_indices(video(3, 24.0), linspace(by_fps(2))), (Indices{0, 1, 2}));
}

TEST(VideoSamplingLinspace, NumFramesIsExactAndMayRepeatFrames) {
  EXPECT_EQ(attnmap::sample_frame_indices(video(10, 24.0), linspace(by_num(7))), (Indices{0, 2, 3, 4, 6, 8, 9}));
  EXPECT_EQ(attnmap::sample_frame_indices(video(5, 24.0), linspace(by_num(9))), (Indices{0, 0, 1, 2, 2, 2, 3, 4, 4}));
  EXPECT_EQ(attnmap::sample_frame_indices(video(5, 24.0), linspace(by_num(1))), (Indices{0}));
}

// transformers' Qwen3-VL smart_resize (video_processing_qwen3_vl.py) returned these sizes.
TEST(VideoResizeClip, BoundsWeighTheWholeClip) {
  EXPECT_EQ(attnmap::smart_resize_clip(5, 98, 150, 2, 32, 4096, 25165824), (std::pair<int, int>{96, 160}));
  EXPECT_EQ(attnmap::smart_resize_clip(8, 1080, 1920, 2, 32, 131072, 786432), (std::pair<int, int>{224, 416}));
  EXPECT_EQ(attnmap::smart_resize_clip(30, 720, 1280, 2, 32, 4096, 25165824), (std::pair<int, int>{672, 1216}));
  EXPECT_EQ(attnmap::smart_resize_clip(3, 40, 50, 2, 32, 131072, 786432), (std::pair<int, int>{192, 256}));
  // A side under one merged patch is scaled up, not refused.
  EXPECT_EQ(attnmap::smart_resize_clip(4, 20, 300, 2, 32, 4096, 786432), (std::pair<int, int>{32, 480}));
  try {
    (void)attnmap::smart_resize_clip(1, 100, 100, 2, 32, 4096, 786432);
    FAIL() << "one frame accepted";
  } catch (const attnmap::Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Input);
    EXPECT_NE(std::string(e.what()).find("at least 2 frames"), std::string::npos) << e.what();
  }
}

// Qwen3VLProcessor._calculate_timestamps and its f"<{t:.1f} seconds>" for the same indices.
TEST(VideoTimestamps, MeanOfEachTemporalPatchFormattedAsPython) {
  const attnmap::TimestampText text{"<", " seconds>", 1};
  const std::vector<double> odd = attnmap::temporal_patch_seconds({0, 1, 2, 3, 4}, 24.0, 2);
  ASSERT_EQ(odd.size(), 3u);
  EXPECT_DOUBLE_EQ(odd[2], 4.0 / 24.0);  // the last frame repeated fills the last patch
  EXPECT_EQ(text.format(odd[0]), "<0.0 seconds>");
  EXPECT_EQ(text.format(odd[1]), "<0.1 seconds>");
  EXPECT_EQ(text.format(odd[2]), "<0.2 seconds>");
  const std::vector<double> ntsc = attnmap::temporal_patch_seconds({0, 15, 29}, 29.97, 2);
  EXPECT_EQ(text.format(ntsc[0]), "<0.3 seconds>");
  EXPECT_EQ(text.format(ntsc[1]), "<1.0 seconds>");
  const std::vector<double> quarter = attnmap::temporal_patch_seconds({0, 3, 6, 9, 12, 15, 18, 21}, 24.0, 2);
  EXPECT_EQ(text.format(quarter[0]), "<0.1 seconds>");  // 0.0625
  EXPECT_EQ(text.format(quarter[2]), "<0.6 seconds>");  // 0.5625
  // Ties go to the even digit on the binary value, as Python: 0.25 -> 0.2, 2.65 -> 2.6.
  EXPECT_EQ(text.format(0.25), "<0.2 seconds>");
  EXPECT_EQ(text.format(2.65), "<2.6 seconds>");
}

// Each processor's cap_pixels_per_frame, through preprocess_video: the grids transformers 5.23's
// Qwen2VLVideoProcessor and Qwen3VLVideoProcessor made of four 300x200 frames with the same settings.
TEST(VideoPreprocess, PerFrameCapsShrinkTheGridAsEachProcessorDoes) {
  std::vector<cv::Mat> frames(4, cv::Mat(200, 300, CV_8UC3, cv::Scalar(10, 120, 230)));
  attnmap::VideoParams qwen2;
  qwen2.pixels.patch_size = 14;
  qwen2.pixels.min_pixels = 3136;
  qwen2.pixels.max_pixels = 200000;
  qwen2.max_video_tokens = 100;
  auto grid = [&](const attnmap::VideoParams& p) {
    const attnmap::PreprocessedVideo v = attnmap::preprocess_video(frames, p, 24.0);
    return std::vector<int64_t>{v.grid_t, v.grid_h, v.grid_w};
  };
  EXPECT_EQ(grid(qwen2), (std::vector<int64_t>{2, 14, 22}));
  qwen2.cap_pixels_per_frame = true;
  EXPECT_EQ(grid(qwen2), (std::vector<int64_t>{2, 10, 16}));

  attnmap::VideoParams qwen3;
  qwen3.pixels.patch_size = 16;
  qwen3.pixels.min_pixels = 4096;
  qwen3.pixels.max_pixels = 1000000;
  qwen3.clip_budget = true;
  qwen3.max_video_tokens = 10;
  EXPECT_EQ(grid(qwen3), (std::vector<int64_t>{2, 12, 18}));
  qwen3.cap_pixels_per_frame = true;
  EXPECT_EQ(grid(qwen3), (std::vector<int64_t>{2, 4, 6}));
}
