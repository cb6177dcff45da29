// Retry policy of libcairn (I/O-free, tested alone): which errors are worth
// another attempt, whether the cluster map must be fetched again first, and
// how long to wait (exponential backoff with full jitter, never past the
// operation's deadline).
#pragma once

#include <chrono>
#include <cstdint>

#include "common/clock.h"
#include "common/random.h"
#include "common/status.h"

namespace cairn::client {

struct RetryOptions {
  // Attempts per RPC, the first included (1 = no retry). Enough to ride out
  // a failover with its reconciliation (a few seconds: the backoff reaches
  // its 1 s cap after 6 attempts); the deadline bounds it too.
  int max_attempts = 30;
  // Backoff before attempt n+1 is uniform in [0, min(max, initial * 2^(n-1))]
  // ("full jitter"), at least min_backoff.
  Nanos initial_backoff = std::chrono::milliseconds(20);
  Nanos max_backoff = std::chrono::milliseconds(1000);
  Nanos min_backoff = std::chrono::milliseconds(1);
};

enum class RetryAction : uint8_t {
  kFail,            // give the error to the caller
  kRetry,           // try the same endpoint again after a backoff
  kRefreshAndRetry  // fetch the map again, then retry (after a backoff)
};

// NotPrimary / StaleEpoch: the map is stale -> refresh at once.
// Unavailable: the node may be down or the partition moving -> refresh and
// retry. Timeout: refresh and retry too (the node may be paused or cut off
// and its partitions failed over; a mutation keeps its request id, so a retry
// of an applied mutation is answered from the deduplication table).
// Everything else is the operation's answer.
RetryAction Classify(const Status& s);

// The schedule of one operation: a deadline and an attempt budget.
// Not thread-safe (one per operation).
class Backoff {
 public:
  Backoff(const RetryOptions& options, Clock* clock, Nanos deadline_from_now, uint64_t seed);

  // Called after a failed attempt whose action is not kFail. True with the
  // wait before the next attempt in *delay; false when the attempt budget is
  // spent or the wait would reach past the deadline (give up).
  bool NextDelay(Nanos* delay);
  int attempts() const { return attempts_; }
  bool Expired() const;
  // Time left before the deadline (zero when past it).
  Nanos Remaining() const;

 private:
  RetryOptions options_;
  Clock* clock_;
  Nanos deadline_;
  Random rng_;
  int attempts_ = 1;
};

}  // namespace cairn::client
