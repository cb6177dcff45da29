// WorkerPool: threads kept for fan-out calls, so that a call that runs a
// function on N threads at once does not create and join N-1 threads each
// time (about 65 us per thread on the dev VM: a 16-partition query paid
// about 1 ms for its threads alone).
//
// RunOnThreads(n, fn) runs fn on n threads at once, the caller's included,
// and returns when all n have returned. Pool threads are created on demand
// (never more than kMaxThreads; beyond that, runs wait in a queue and the
// caller's own thread still makes progress) and live until the pool is
// destroyed. `fn` may therefore find its work already done by the others
// (fan-out loops take items from a shared counter), and must not call
// RunOnThreads of the same pool.
//
// Thread-safe: RunOnThreads may be called concurrently. The destructor
// joins the threads; no call may be running then.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "common/mutex.h"

namespace cairn {

class WorkerPool {
 public:
  static constexpr size_t kMaxThreads = 256;

  WorkerPool() = default;
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs fn on n (>= 1) threads at once: n-1 pool threads and the caller.
  void RunOnThreads(size_t n, const std::function<void()>& fn) EXCLUDES(mu_);

  size_t threads() const EXCLUDES(mu_);

 private:
  // What a caller waits for: its pool runs of fn to return.
  struct Latch {
    Mutex mu;
    CondVar cv;
    size_t left GUARDED_BY(mu) = 0;
    void Done() EXCLUDES(mu);
  };
  struct Task {
    const std::function<void()>* fn;  // the caller's; it waits for the latch
    std::shared_ptr<Latch> latch;
  };

  void Loop() EXCLUDES(mu_);

  mutable Mutex mu_;
  CondVar work_cv_;  // a task was queued, or stopping
  std::deque<Task> tasks_ GUARDED_BY(mu_);
  // Threads that will take a queued task without a new thread: created or
  // done with their last task, not yet running another.
  size_t free_ GUARDED_BY(mu_) = 0;
  bool stopping_ GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_ GUARDED_BY(mu_);
};

}  // namespace cairn
