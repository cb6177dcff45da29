// RateLimiter: paces a stream of bytes (e.g. snapshots sent to peers) to a
// number of bytes per second. A caller reserves what it is about to send and
// waits the returned time first, so over any run of reservations the bytes
// sent by the end of the last wait are at most rate x elapsed. No burst
// credit builds up while idle.
//
// Thread-safe. The clock is borrowed and must outlive the limiter.
#pragma once

#include <cstdint>

#include "common/clock.h"
#include "common/mutex.h"

namespace cairn {

class RateLimiter {
 public:
  // `bytes_per_s` 0: unlimited (every reservation waits 0).
  RateLimiter(uint64_t bytes_per_s, Clock* clock) : rate_(bytes_per_s), clock_(clock) {}
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // Reserves `bytes`; returns how long the caller waits before sending them.
  Nanos Reserve(uint64_t bytes) {
    if (rate_ == 0) return Nanos(0);
    const Nanos now = clock_->Now();
    MutexLock l(&mu_);
    const Nanos start = next_ > now ? next_ : now;
    const auto cost =
        static_cast<int64_t>(static_cast<double>(bytes) * 1e9 / static_cast<double>(rate_));
    next_ = start + Nanos(cost);
    return next_ - now;
  }
  // Gives back a reservation of `bytes` that was not sent (a failed call),
  // so that an unreachable peer's retries do not slow the others.
  void Return(uint64_t bytes) {
    if (rate_ == 0) return;
    const Nanos now = clock_->Now();
    MutexLock l(&mu_);
    next_ -= Cost(bytes);
    if (next_ < now) next_ = now;
  }
  uint64_t bytes_per_s() const { return rate_; }

 private:
  Nanos Cost(uint64_t bytes) const {
    return Nanos(
        static_cast<int64_t>(static_cast<double>(bytes) * 1e9 / static_cast<double>(rate_)));
  }

  const uint64_t rate_;
  Clock* const clock_;
  Mutex mu_;
  Nanos next_ GUARDED_BY(mu_){0};  // when everything reserved so far may have been sent
};

}  // namespace cairn
