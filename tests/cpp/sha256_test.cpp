#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "io/sha256.hpp"

// Digests from FIPS 180-2 appendix B, each checked with Python's hashlib.sha256.
TEST(Sha256, MatchesPublishedDigests) {
  EXPECT_EQ(attnmap::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(attnmap::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(attnmap::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(attnmap::sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_EQ(attnmap::sha256_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopq"
                                "rlmnopqrsmnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

// A file of 1,000,003 varied bytes: read in 1 MiB chunks, so blocks straddle chunk ends and the
// tail is partial. Expected digest from Python's hashlib.sha256(bytes((i * 7) % 251 for i in ...)).
TEST(Sha256, FileOfVariedBytesMatchesHashlib) {
  std::string bytes(1000003, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 7) % 251);
  const auto path = std::filesystem::temp_directory_path() / ("attnmap_sha_varied_" + std::to_string(::getpid()));
  std::ofstream(path, std::ios::binary) << bytes;
  EXPECT_EQ(attnmap::sha256_file_hex(path), "6e0aa3a3e4afdd717e6af8d151be7c532fce9607f2086e89d0136acffec3f3ae");
  EXPECT_EQ(attnmap::sha256_hex(bytes), "6e0aa3a3e4afdd717e6af8d151be7c532fce9607f2086e89d0136acffec3f3ae");
  std::filesystem::remove(path);
}

namespace {

namespace fs = std::filesystem;

void write(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// Points the cache at a fresh folder for one test and restores the environment after it.
class CachedSha256 : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("attnmap_sha_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "cache");
    const char* old = std::getenv("ATTNMAP_CACHE_DIR");
    if (old) saved_ = old;
    ::setenv("ATTNMAP_CACHE_DIR", (root_ / "cache").c_str(), 1);
  }
  void TearDown() override {
    if (saved_) ::setenv("ATTNMAP_CACHE_DIR", saved_->c_str(), 1); else ::unsetenv("ATTNMAP_CACHE_DIR");
    fs::remove_all(root_);
  }
  size_t entries() const {
    size_t n = 0;
    if (fs::exists(root_ / "cache" / "sha256")) {
      for ([[maybe_unused]] const auto& e : fs::directory_iterator(root_ / "cache" / "sha256")) ++n;
    }
    return n;
  }
  fs::path root_;
  std::optional<std::string> saved_;
};

TEST_F(CachedSha256, RemembersAndNoticesAChangedFile) {
  const fs::path file = root_ / "model.pt";
  write(file, "abc");
  EXPECT_EQ(attnmap::sha256_file_hex_cached(file), attnmap::sha256_hex("abc"));
  EXPECT_EQ(entries(), 1u);
  EXPECT_EQ(attnmap::sha256_file_hex_cached(file), attnmap::sha256_hex("abc"));
  EXPECT_EQ(entries(), 1u);  // a hit writes nothing new
  write(file, "abcd");       // other size and mtime: a new identity, hashed afresh
  EXPECT_EQ(attnmap::sha256_file_hex_cached(file), attnmap::sha256_hex("abcd"));
  EXPECT_EQ(entries(), 2u);
}

TEST_F(CachedSha256, IgnoresAGarbledEntryAndAnUnwritableCache) {
  const fs::path file = root_ / "model.pt";
  write(file, "abc");
  attnmap::sha256_file_hex_cached(file);
  for (const auto& e : fs::directory_iterator(root_ / "cache" / "sha256")) write(e.path(), "not a digest\n");
  EXPECT_EQ(attnmap::sha256_file_hex_cached(file), attnmap::sha256_hex("abc"));
  ::setenv("ATTNMAP_CACHE_DIR", (root_ / "model.pt" / "cannot-be-a-folder").c_str(), 1);
  EXPECT_EQ(attnmap::sha256_file_hex_cached(file), attnmap::sha256_hex("abc"));
}

}  // namespace
