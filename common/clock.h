// The clock seam (STYLE.md rule 3). Production code asks a Clock for the time
// and for sleeps; tests pass a ManualClock that moves only when told.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace cairn {

using Nanos = std::chrono::nanoseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time since an arbitrary origin.
  virtual Nanos Now() = 0;
  // Wall-clock time, nanoseconds since the Unix epoch (for stored times only).
  virtual int64_t WallNanos() = 0;
  virtual void SleepFor(Nanos d) = 0;
};

// The process's real clock. Thread-safe.
Clock& RealClock();

// A clock that advances only through Advance(). SleepFor() advances the clock
// by the requested time at once (so throttled code runs at full speed in
// tests, with its schedule still observable). Thread-safe.
class ManualClock : public Clock {
 public:
  explicit ManualClock(Nanos start = Nanos(1'000'000'000)) : now_(start) {}
  Nanos Now() override;
  int64_t WallNanos() override;
  void SleepFor(Nanos d) override;
  void Advance(Nanos d);

 private:
  std::mutex mu_;
  Nanos now_;  // guarded by mu_
};

}  // namespace cairn
