// Output folder names of batch items (src/batch/item_ids.hpp): unique, never hidden, never a
// run-level file's name, explicit ids kept or refused, never silently shared.
#include <gtest/gtest.h>

#include <set>

#include "attnmap/error.hpp"
#include "batch/item_ids.hpp"

using attnmap::assign_unique_ids;
using attnmap::IdRequest;

namespace {
IdRequest stem(const std::string& id) { return {id, false, "image '" + id + "'"}; }
IdRequest given(const std::string& id, int line) { return {id, true, "line " + std::to_string(line)}; }
}  // namespace

TEST(BatchIds, SuffixesNeverTakeAnotherItemsName) {
  // cat.png, cat-2.png, more/cat.png: the suffix of the second "cat" must skip "cat-2".
  const auto ids = assign_unique_ids({stem("cat"), stem("cat-2"), stem("cat"), stem("cat"), stem("cat-3")});
  EXPECT_EQ(ids, (std::vector<std::string>{"cat", "cat-2", "cat-4", "cat-5", "cat-3"}));
}

TEST(BatchIds, ExplicitIdsWinAndTwoEqualOnesAreRefusedNamingBoth) {
  EXPECT_EQ(assign_unique_ids({stem("a"), given("a", 2), given("a-2", 3)}),
            (std::vector<std::string>{"a-3", "a", "a-2"}));
  try {
    assign_unique_ids({given("dup", 1), given("dup", 2), given("dup-2", 3)});
    FAIL() << "two equal explicit ids were accepted";
  } catch (const attnmap::Error& e) {
    EXPECT_EQ(e.kind(), attnmap::ErrorKind::Input);
    EXPECT_NE(std::string(e.what()).find("line 1 and line 2"), std::string::npos) << e.what();
  }
  // Different ids that become the same folder name are a collision too.
  EXPECT_THROW(assign_unique_ids({given("a/b", 1), given("a_b", 2)}), attnmap::Error);
}

TEST(BatchIds, NoHiddenOrEscapingOrReservedNames) {
  const auto ids = assign_unique_ids({given("../escape", 1), given(".hidden", 2), given("..", 3), given("", 4),
                                      stem("summary.jsonl"), stem("Summary.shard-0-of-2.jsonl"),
                                      stem("index.html"), stem("summary")});
  EXPECT_EQ(ids, (std::vector<std::string>{"___escape", "_hidden", "__", "_", "_summary.jsonl",
                                           "_Summary.shard-0-of-2.jsonl", "_index.html", "summary"}));
}

TEST(BatchIds, ReservedNamesAreSummaryAndIndexFiles) {
  EXPECT_TRUE(attnmap::is_reserved_id("summary.jsonl"));
  EXPECT_TRUE(attnmap::is_reserved_id("summary.jsonl.partial"));
  EXPECT_TRUE(attnmap::is_reserved_id("INDEX.HTML"));
  EXPECT_FALSE(attnmap::is_reserved_id("summary"));
  EXPECT_FALSE(attnmap::is_reserved_id("my_summary.jsonl"));
}
