#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "attnmap/error.hpp"
#include "attnmap/npy.hpp"

namespace fs = std::filesystem;

TEST(Npy, RoundTripsFloatAndIntTensors) {
  const fs::path dir = fs::path(ATTNMAP_TEST_WORK_DIR) / "npy";
  fs::create_directories(dir);
  const torch::Tensor f = torch::arange(24, torch::kFloat32).reshape({2, 3, 4}) / 7.0;
  attnmap::save_npy(dir / "f.npy", f);
  EXPECT_TRUE(torch::equal(attnmap::load_npy(dir / "f.npy"), f));
  const torch::Tensor i = torch::tensor({5, -3, 1 << 30}, torch::kInt64);
  attnmap::save_npy(dir / "i.npy", i);
  EXPECT_TRUE(torch::equal(attnmap::load_npy(dir / "i.npy"), i));
}

TEST(Npy, RejectsNonNpyFiles) {
  const fs::path path = fs::path(ATTNMAP_TEST_WORK_DIR) / "not.npy";
  fs::create_directories(path.parent_path());
  std::FILE* f = std::fopen(path.c_str(), "wb");
  std::fputs("hello", f);
  std::fclose(f);
  EXPECT_THROW(attnmap::load_npy(path), attnmap::Error);
}
