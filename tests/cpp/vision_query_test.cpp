// The query patches of --vision-query: a pixel box over the original image and the peak of a decoder
// map, as raster indexes (t, row, col) of the unmerged patch grid.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "attnmap/error.hpp"
#include "run/vision_query_patches.hpp"

using attnmap::PatchGrid;

namespace {

attnmap::VisionQuery box(double x0, double y0, double x1, double y1) {
  attnmap::VisionQuery q;
  q.kind = attnmap::VisionQuery::Kind::Box;
  q.box = {x0, y0, x1, y1};
  return q;
}

}  // namespace

TEST(VisionBoxQuery, PicksEveryPatchTheBoxOverlaps) {
  // 280x140 pixels over a 10x20 patch grid: 14 px per patch both ways.
  const PatchGrid grid{1, 10, 20, 2};
  // Inside one patch.
  EXPECT_EQ(attnmap::box_query_patches(box(15, 15, 20, 20), 280, 140, grid, "image 'a.png'"), (std::vector<int64_t>{21}));
  // Edges on patch borders do not pull in the neighbours; a partial patch counts.
  EXPECT_EQ(attnmap::box_query_patches(box(14, 0, 28, 14), 280, 140, grid, "x"), (std::vector<int64_t>{1}));
  EXPECT_EQ(attnmap::box_query_patches(box(14, 0, 28.5, 14), 280, 140, grid, "x"), (std::vector<int64_t>{1, 2}));
  // Clipped to the image.
  EXPECT_EQ(attnmap::box_query_patches(box(270, 130, 5000, 5000), 280, 140, grid, "x"), (std::vector<int64_t>{199}));
  // Every temporal patch of a video.
  const PatchGrid video{3, 10, 20, 2};
  EXPECT_EQ(attnmap::box_query_patches(box(0, 0, 1, 1), 280, 140, video, "x"), (std::vector<int64_t>{0, 200, 400}));
  // Scaled: a 560x280 original over the same grid (28 px of the original per patch).
  EXPECT_EQ(attnmap::box_query_patches(box(30, 30, 50, 50), 560, 280, grid, "x"), (std::vector<int64_t>{21}));
}

TEST(VisionBoxQuery, ABoxOffTheImageNamesTheImageAndItsSize) {
  const PatchGrid grid{1, 10, 20, 2};
  try {
    attnmap::box_query_patches(box(300, 0, 400, 10), 280, 140, grid, "image 'cat.png'");
    FAIL() << "no error";
  } catch (const attnmap::Error& e) {
    EXPECT_EQ(e.kind(), attnmap::ErrorKind::Input);
    const std::string m = e.what();
    EXPECT_NE(m.find("image 'cat.png'"), std::string::npos) << m;
    EXPECT_NE(m.find("280x140"), std::string::npos) << m;
    EXPECT_NE(m.find("box:300,0,400,10"), std::string::npos) << m;
  }
}

TEST(VisionPeakQuery, TheMergedCellOfThePeakGivesItsFourPatches) {
  const PatchGrid grid{1, 6, 8, 2};  // merged 3x4
  torch::Tensor map = torch::zeros({3, 4});
  map[1][2] = 0.5;
  map[2][3] = 0.5;  // a tie: the first in raster order wins
  const attnmap::PeakQuery q = attnmap::peak_query_patches(map, grid);
  EXPECT_EQ(q.peak.row, 1);
  EXPECT_EQ(q.peak.col, 2);
  EXPECT_EQ(q.peak.t, 0);
  EXPECT_DOUBLE_EQ(q.peak.value, 0.5);
  EXPECT_EQ(q.patches, (std::vector<int64_t>{2 * 8 + 4, 2 * 8 + 5, 3 * 8 + 4, 3 * 8 + 5}));
}

TEST(VisionPeakQuery, AVideoPeakStaysInItsTemporalPatchAndNaNNeverWins) {
  const PatchGrid grid{2, 4, 4, 2};  // merged 2x2 per temporal patch
  torch::Tensor map = torch::zeros({2, 2, 2});
  map[0][0][0] = std::numeric_limits<float>::quiet_NaN();
  map[1][0][1] = 0.25;
  const attnmap::PeakQuery q = attnmap::peak_query_patches(map, grid);
  EXPECT_EQ(q.peak.t, 1);
  EXPECT_EQ(q.peak.col, 1);
  EXPECT_EQ(q.patches, (std::vector<int64_t>{16 + 2, 16 + 3, 16 + 4 + 2, 16 + 4 + 3}));
}
