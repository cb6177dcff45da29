#include "client/retry.h"

#include <algorithm>

namespace cairn::client {

RetryAction Classify(const Status& s) {
  switch (s.code()) {
    case StatusCode::kNotPrimary:
    case StatusCode::kStaleEpoch:
    case StatusCode::kUnavailable:
    // A node that does not answer may be paused or cut off, and its
    // partitions given to another (replication): look at the map again.
    case StatusCode::kTimeout:
      return RetryAction::kRefreshAndRetry;
    default:
      return RetryAction::kFail;
  }
}

Backoff::Backoff(const RetryOptions& options, Clock* clock, Nanos deadline_from_now, uint64_t seed)
    : options_(options), clock_(clock), deadline_(clock->Now() + deadline_from_now), rng_(seed) {}

bool Backoff::Expired() const { return clock_->Now() >= deadline_; }

Nanos Backoff::Remaining() const {
  const Nanos now = clock_->Now();
  return now >= deadline_ ? Nanos(0) : deadline_ - now;
}

bool Backoff::NextDelay(Nanos* delay) {
  if (attempts_ >= options_.max_attempts) return false;
  // initial * 2^(attempts-1), capped (the shift is bounded to avoid overflow).
  const int shift = std::min(attempts_ - 1, 30);
  Nanos cap = options_.initial_backoff * (int64_t{1} << shift);
  if (cap > options_.max_backoff || cap < Nanos(0)) cap = options_.max_backoff;
  const auto span = static_cast<uint64_t>(std::max<int64_t>(cap.count(), 0)) + 1;
  Nanos d(static_cast<int64_t>(rng_.Uniform(span)));
  d = std::max(d, options_.min_backoff);
  if (clock_->Now() + d >= deadline_) return false;
  ++attempts_;
  *delay = d;
  return true;
}

}  // namespace cairn::client
