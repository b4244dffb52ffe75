// Temporary files of atomic writes: the writer is readable from the name, and only the leftovers
// of writers that are gone are swept (src/io/temporary_name.hpp, remove_stale_temporary_files).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "io/atomic_file.hpp"
#include "io/temporary_name.hpp"

namespace fs = std::filesystem;

namespace {
pid_t dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  return child;
}
void touch(const fs::path& p) { std::ofstream(p) << "half"; }
// What a writer killed a while ago leaves: its last write is minutes old.
void age(const fs::path& p) { fs::last_write_time(p, fs::file_time_type::clock::now() - std::chrono::minutes(5)); }
}  // namespace

TEST(TemporaryName, NamesTheWriter) {
  const fs::path tmp = attnmap::temporary_sibling("/out/a/maps.npy");
  const auto writer = attnmap::temporary_writer(tmp.filename().string());
  ASSERT_TRUE(writer);
  EXPECT_EQ(writer->host, attnmap::this_host());
  EXPECT_EQ(writer->pid, ::getpid());
  EXPECT_EQ(attnmap::temporary_writer(".maps.npy.tmp.node1.cluster.42.7")->host, "node1.cluster");
  EXPECT_EQ(attnmap::temporary_writer(".maps.npy.tmp.42.7")->host, "");  // the older names
  EXPECT_FALSE(attnmap::temporary_writer("maps.npy"));
  EXPECT_FALSE(attnmap::temporary_writer(".maps.npy"));
  EXPECT_FALSE(attnmap::temporary_writer(".notes.tmp.txt"));
}

TEST(StaleTemporaries, SweepsDeadWritersOnlyAndOneLevelDeep) {
  const fs::path dir = fs::path(ATTNMAP_TEST_WORK_DIR) / "stale_temporaries";
  fs::remove_all(dir);
  fs::create_directories(dir / "item" / "deeper");
  const std::string host = attnmap::this_host();
  const std::string dead = std::to_string(dead_pid()), live = std::to_string(::getpid());
  const fs::path stale_top = dir / (".summary.jsonl.tmp." + host + "." + dead + ".0");
  const fs::path stale_item = dir / "item" / (".grid.jpg.tmp." + host + "." + dead + ".3");
  const fs::path stale_old = dir / "item" / (".maps.npy.tmp." + dead + ".1");
  const fs::path live_item = dir / "item" / (".maps.npy.tmp." + host + "." + live + ".2");
  const fs::path other_host = dir / "item" / (".maps.npy.tmp.another-node." + dead + ".2");
  const fs::path deeper = dir / "item" / "deeper" / (".x.tmp." + host + "." + dead + ".0");
  const fs::path not_ours = dir / "item" / "keep.tmp.1.2";
  // A dead PID written just now may be a live writer in another PID namespace: kept.
  const fs::path just_written = dir / "item" / (".layer_00.jpg.tmp." + host + "." + dead + ".4");
  for (const fs::path& p : {stale_top, stale_item, stale_old, live_item, other_host, deeper, not_ours}) {
    touch(p);
    age(p);
  }
  touch(just_written);
  EXPECT_EQ(attnmap::remove_stale_temporary_files(dir), 3u);
  EXPECT_TRUE(fs::exists(just_written));
  EXPECT_FALSE(fs::exists(stale_top));
  EXPECT_FALSE(fs::exists(stale_item));
  EXPECT_FALSE(fs::exists(stale_old));
  EXPECT_TRUE(fs::exists(live_item));
  EXPECT_TRUE(fs::exists(other_host));
  EXPECT_TRUE(fs::exists(deeper));
  EXPECT_TRUE(fs::exists(not_ours));
}

TEST(StaleTemporaries, InOneFolderLeavesItsSubFoldersAlone) {
  const fs::path dir = fs::path(ATTNMAP_TEST_WORK_DIR) / "stale_temporaries_in";
  fs::remove_all(dir);
  fs::create_directories(dir / "other_shards_item");
  const std::string host = attnmap::this_host(), dead = std::to_string(dead_pid());
  const fs::path here = dir / (".summary.jsonl.tmp." + host + "." + dead + ".0");
  const fs::path below = dir / "other_shards_item" / (".maps.npy.tmp." + host + "." + dead + ".1");
  for (const fs::path& p : {here, below}) {
    touch(p);
    age(p);
  }
  EXPECT_EQ(attnmap::remove_stale_temporary_files_in(dir), 1u);
  EXPECT_FALSE(fs::exists(here));
  EXPECT_TRUE(fs::exists(below));
}
