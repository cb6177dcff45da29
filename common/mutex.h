// Annotated locking (STYLE.md rule 9): Mutex, MutexLock and CondVar carry
// Clang thread-safety attributes, so a Clang build (-Wthread-safety) checks
// that every GUARDED_BY member is touched only with its mutex held.
// libstdc++'s std::mutex has no annotations, hence these thin wrappers.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define CAIRN_TSA(x) __attribute__((x))
#else
#define CAIRN_TSA(x)
#endif

#define CAPABILITY(x) CAIRN_TSA(capability(x))
#define SCOPED_CAPABILITY CAIRN_TSA(scoped_lockable)
#define GUARDED_BY(x) CAIRN_TSA(guarded_by(x))
#define PT_GUARDED_BY(x) CAIRN_TSA(pt_guarded_by(x))
#define ACQUIRED_BEFORE(...) CAIRN_TSA(acquired_before(__VA_ARGS__))
#define REQUIRES(...) CAIRN_TSA(requires_capability(__VA_ARGS__))
#define ACQUIRE(...) CAIRN_TSA(acquire_capability(__VA_ARGS__))
#define RELEASE(...) CAIRN_TSA(release_capability(__VA_ARGS__))
#define EXCLUDES(...) CAIRN_TSA(locks_excluded(__VA_ARGS__))
#define NO_THREAD_SAFETY_ANALYSIS CAIRN_TSA(no_thread_safety_analysis)

namespace cairn {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;
  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

class CondVar {
 public:
  // Waits until pred() holds; `mu` must be held, and is held again on return.
  template <typename Pred>
  void Wait(Mutex* mu, Pred pred) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait(lock, pred);
    lock.release();
  }
  // The same with a time limit: whether pred() holds on return.
  template <typename Rep, typename Period, typename Pred>
  bool WaitFor(Mutex* mu, std::chrono::duration<Rep, Period> limit, Pred pred) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool ok = cv_.wait_for(lock, limit, pred);
    lock.release();
    return ok;
  }
  void NotifyAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace cairn
