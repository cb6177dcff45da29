// Small helpers shared by the integration tests.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"

#define IT_ASSERT_OK(expr)                                 \
  do {                                                     \
    const ::cairn::Status it_status_ = (expr);             \
    ASSERT_TRUE(it_status_.ok()) << it_status_.ToString(); \
  } while (0)

#define IT_EXPECT_OK(expr)                                 \
  do {                                                     \
    const ::cairn::Status it_status_ = (expr);             \
    EXPECT_TRUE(it_status_.ok()) << it_status_.ToString(); \
  } while (0)

namespace cairn::test {

inline uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Deterministic bytes (any value, NULs included) for (seed, index).
inline std::string MakeBody(uint64_t seed, uint64_t index, size_t size) {
  uint64_t state = seed * 1000003u + index;
  std::string out(size, '\0');
  size_t i = 0;
  while (i < size) {
    uint64_t v = SplitMix64(state);
    for (int b = 0; b < 8 && i < size; ++b, ++i) {
      out[i] = static_cast<char>(v & 0xFF);
      v >>= 8;
    }
  }
  return out;
}

// Runs fn(i) for i in [0, n) on `threads` threads (work stealing by index).
inline void ParallelFor(size_t n, int threads, const std::function<void(size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) fn(i);
    });
  }
  for (std::thread& th : pool) th.join();
}

}  // namespace cairn::test
