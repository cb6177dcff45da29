#include "common/worker_pool.h"

#include <memory>

namespace cairn {

WorkerPool::~WorkerPool() {
  std::vector<std::thread> threads;
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    threads.swap(threads_);
  }
  work_cv_.NotifyAll();
  for (std::thread& t : threads) t.join();
}

size_t WorkerPool::threads() const {
  MutexLock lock(&mu_);
  return threads_.size();
}

void WorkerPool::Loop() {
  MutexLock lock(&mu_);
  for (;;) {
    work_cv_.Wait(&mu_, [&]() REQUIRES(mu_) { return stopping_ || !tasks_.empty(); });
    if (tasks_.empty()) return;  // stopping, nothing left
    Task task = std::move(tasks_.front());
    tasks_.pop_front();
    --free_;
    mu_.Unlock();
    (*task.fn)();
    mu_.Lock();
    // Free again before the caller hears of it, so that its next call
    // counts this thread instead of starting another.
    ++free_;
    mu_.Unlock();
    task.latch->Done();
    task.latch.reset();
    mu_.Lock();
  }
}

void WorkerPool::Latch::Done() {
  MutexLock l(&mu);
  if (--left == 0) cv.NotifyAll();
}

void WorkerPool::RunOnThreads(size_t n, const std::function<void()>& fn) {
  if (n <= 1) {
    fn();
    return;
  }
  auto latch = std::make_shared<Latch>();
  {
    MutexLock l(&latch->mu);
    latch->left = n - 1;
  }
  {
    MutexLock lock(&mu_);
    for (size_t i = 0; i + 1 < n; ++i) tasks_.push_back(Task{&fn, latch});
    // Enough threads for what is queued, within the cap.
    while (tasks_.size() > free_ && threads_.size() < kMaxThreads) {
      threads_.emplace_back([this] { Loop(); });
      ++free_;
    }
  }
  work_cv_.NotifyAll();
  fn();
  MutexLock l(&latch->mu);
  latch->cv.Wait(&latch->mu, [&]() REQUIRES(latch->mu) { return latch->left == 0; });
}

}  // namespace cairn
