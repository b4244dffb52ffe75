// The queues that join batch's decode, device and write stages (src/batch/bounded_queue.hpp) and
// the --shard partition (shard_items).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "attnmap/batch.hpp"
#include "attnmap/error.hpp"
#include "batch/bounded_queue.hpp"

using attnmap::BoundedQueue;

TEST(BoundedQueue, KeepsOrderAndDrainsAfterClose) {
  BoundedQueue<int> q(4);
  for (int i = 0; i < 3; ++i) q.push(i);
  q.close();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(q.pop(), i);
  EXPECT_EQ(q.pop(), std::nullopt);  // closed and drained
  EXPECT_EQ(q.pop(), std::nullopt);
}

TEST(BoundedQueue, AProducerWaitsWhileItIsFull) {
  BoundedQueue<int> q(2);
  q.push(1);
  q.push(2);
  std::atomic<bool> pushed{false};
  std::thread producer([&] {
    q.push(3);
    pushed = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(pushed) << "a full queue took a third item";
  EXPECT_EQ(q.pop(), 1);
  producer.join();
  EXPECT_TRUE(pushed);
  EXPECT_EQ(q.pop(), 2);
  EXPECT_EQ(q.pop(), 3);
}

TEST(BoundedQueue, ZeroCapacityStillPassesItems) {
  BoundedQueue<int> q(0);  // taken as 1: a queue that holds nothing would deadlock the pipeline
  std::thread producer([&] {
    for (int i = 0; i < 5; ++i) q.push(i);
    q.close();
  });
  std::vector<int> got;
  while (auto v = q.pop()) got.push_back(*v);
  producer.join();
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(BoundedQueue, ManyProducersAndConsumersLoseNothing) {
  BoundedQueue<int> q(3);
  constexpr int kProducers = 4, kPerProducer = 500, kConsumers = 3;
  std::vector<std::thread> producers, consumers;
  std::mutex seen_mutex;
  std::multiset<int> seen;
  for (int c = 0; c < kConsumers; ++c) {
    consumers.emplace_back([&] {
      while (auto v = q.pop()) {
        std::lock_guard<std::mutex> lock(seen_mutex);
        seen.insert(*v);
      }
    });
  }
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kPerProducer; ++i) q.push(p * kPerProducer + i);
    });
  }
  for (auto& t : producers) t.join();
  q.close();
  for (auto& t : consumers) t.join();
  ASSERT_EQ(seen.size(), static_cast<size_t>(kProducers * kPerProducer));
  for (int v = 0; v < kProducers * kPerProducer; ++v) EXPECT_EQ(seen.count(v), 1u) << v;
}

TEST(ShardItems, NShardsPartitionTheListingExactly) {
  std::vector<attnmap::RunItem> items(10);
  for (size_t i = 0; i < items.size(); ++i) items[i].id = "item" + std::to_string(i);
  for (int n : {1, 2, 3, 4, 10, 11}) {
    std::multiset<std::string> all;
    for (int k = 0; k < n; ++k) {
      const auto mine = attnmap::shard_items(items, attnmap::Shard{k, n});
      // Every n-th item from k, in listing order.
      std::vector<std::string> expected;
      for (size_t i = static_cast<size_t>(k); i < items.size(); i += static_cast<size_t>(n)) {
        expected.push_back(items[i].id);
      }
      std::vector<std::string> got;
      for (const auto& item : mine) got.push_back(item.id);
      EXPECT_EQ(got, expected) << k << "/" << n;
      all.insert(got.begin(), got.end());
    }
    EXPECT_EQ(all.size(), items.size()) << n;
    for (const auto& item : items) EXPECT_EQ(all.count(item.id), 1u) << n;
  }
}

TEST(ShardItems, RefusesShardsOutsideZeroToN) {
  const std::vector<attnmap::RunItem> items(3);
  for (auto [k, n] : {std::pair{3, 3}, std::pair{-1, 3}, std::pair{0, 0}, std::pair{2, 1}}) {
    try {
      (void)attnmap::shard_items(items, attnmap::Shard{k, n});
      ADD_FAILURE() << k << "/" << n << " accepted";
    } catch (const attnmap::Error& e) {
      EXPECT_EQ(e.kind(), attnmap::ErrorKind::Usage) << e.what();
      EXPECT_NE(std::string(e.what()).find("--shard"), std::string::npos) << e.what();
    }
  }
}
