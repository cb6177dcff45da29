// WorkerPool: every run of fn happens, on n threads at once, the call
// returns only after all of them; threads are reused across calls and
// concurrent callers share the pool.
#include "common/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace cairn {
namespace {

TEST(WorkerPool, RunsOnNThreadsAndReusesThem) {
  WorkerPool pool;
  for (int call = 0; call < 50; ++call) {
    std::atomic<int> runs{0};
    std::mutex m;
    std::set<std::thread::id> ids;
    pool.RunOnThreads(8, [&] {
      {
        std::lock_guard<std::mutex> l(m);
        ids.insert(std::this_thread::get_id());
      }
      // All 8 at once: nobody returns before everyone started.
      runs.fetch_add(1);
      while (runs.load() < 8) std::this_thread::yield();
    });
    EXPECT_EQ(runs.load(), 8);
    EXPECT_EQ(ids.size(), 8u);
  }
  EXPECT_LE(pool.threads(), 7u + 2u);  // reused, not one set per call
  int once = 0;
  pool.RunOnThreads(1, [&] { ++once; });
  EXPECT_EQ(once, 1);
}

TEST(WorkerPool, ConcurrentCallersShareItems) {
  WorkerPool pool;
  std::vector<std::thread> callers;
  std::atomic<int> failures{0};
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&, c] {
      for (int call = 0; call < 100; ++call) {
        // A fan-out over 16 items from a shared counter, as Query does.
        std::atomic<int> next{0};
        std::vector<int> done(16, 0);
        pool.RunOnThreads(static_cast<size_t>(2 + (call + c) % 15), [&] {
          for (int k = next.fetch_add(1); k < 16; k = next.fetch_add(1))
            done[static_cast<size_t>(k)]++;
        });
        for (int d : done) failures += d == 1 ? 0 : 1;
      }
    });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_LE(pool.threads(), WorkerPool::kMaxThreads);
}

}  // namespace
}  // namespace cairn
