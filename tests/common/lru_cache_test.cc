// LruCache: eviction by charge in LRU order, Peek versus Get, replacement,
// and concurrent use (run under TSan in the sanitizer build).
#include "common/lru_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace cairn {
namespace {

using Cache = LruCache<int, std::string>;

std::shared_ptr<const std::string> Value(size_t n, char c = 'x') {
  return std::make_shared<const std::string>(n, c);
}

TEST(LruCacheTest, EvictsByChargeLeastRecentlyUsedFirstAndPeekDoesNotRefresh) {
  Cache cache(300);
  cache.Put(1, Value(100));
  cache.Put(2, Value(100));
  cache.Put(3, Value(100));
  EXPECT_NE(cache.Peek(1), nullptr);  // not refreshed: 1 stays the oldest
  EXPECT_NE(cache.Get(2), nullptr);   // 2 becomes the most recent
  cache.Put(4, Value(100));           // evicts 1
  EXPECT_FALSE(cache.Contains(1));
  EXPECT_TRUE(cache.Contains(2));
  EXPECT_TRUE(cache.Contains(3));
  cache.Put(5, Value(150));  // evicts 3 and 2 (then 4, 5 hold 250)
  EXPECT_FALSE(cache.Contains(3));
  EXPECT_FALSE(cache.Contains(2));
  EXPECT_TRUE(cache.Contains(4));
  EXPECT_EQ(cache.bytes(), 250u);
  EXPECT_EQ(cache.hits(), 2u);
  EXPECT_EQ(cache.misses(), 0u);
  EXPECT_EQ(cache.Get(1), nullptr);
  EXPECT_EQ(cache.misses(), 1u);
}

TEST(LruCacheTest, ReplacingAKeyRechargesItAndOversizedValuesAreNotKept) {
  Cache cache(300);
  cache.Put(1, Value(100, 'a'));
  cache.Put(1, Value(200, 'b'));
  EXPECT_EQ(cache.bytes(), 200u);
  EXPECT_EQ(*cache.Get(1), std::string(200, 'b'));
  cache.Put(2, Value(301));
  EXPECT_FALSE(cache.Contains(2));
  EXPECT_EQ(cache.bytes(), 200u);
  cache.Put(3, nullptr);
  EXPECT_FALSE(cache.Contains(3));
  Cache off(0);
  off.Put(1, Value(1));
  EXPECT_EQ(off.Get(1), nullptr);
  EXPECT_EQ(off.bytes(), 0u);
}

TEST(LruCacheTest, ConcurrentGetsAndPutsStayWithinCapacityAndReturnWhatWasPut) {
  Cache cache(64 * 20);  // half of the keys
  std::atomic<bool> wrong{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5000; ++i) {
        const int key = (i * 7 + t) % 40;
        if (i % 3 == 0) {
          cache.Put(key, Value(64, static_cast<char>('a' + key % 26)));
        }
        if (auto v = (i % 2 == 0 ? cache.Get(key) : cache.Peek(key))) {
          if (*v != std::string(64, static_cast<char>('a' + key % 26))) wrong = true;
        }
        if (cache.bytes() > cache.capacity()) wrong = true;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_FALSE(wrong.load());
  EXPECT_LE(cache.bytes(), 1280u);
  EXPECT_GT(cache.hits(), 0u);
}

}  // namespace
}  // namespace cairn
