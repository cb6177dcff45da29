#include "common/clock.h"

#include <thread>

namespace cairn {
namespace {

class SystemClock : public Clock {
 public:
  Nanos Now() override {
    return std::chrono::duration_cast<Nanos>(
        std::chrono::steady_clock::now().time_since_epoch());
  }
  int64_t WallNanos() override {
    return std::chrono::duration_cast<Nanos>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  void SleepFor(Nanos d) override { std::this_thread::sleep_for(d); }
};

}  // namespace

Clock& RealClock() {
  static SystemClock clock;
  return clock;
}

Nanos ManualClock::Now() {
  std::lock_guard<std::mutex> lock(mu_);
  return now_;
}

int64_t ManualClock::WallNanos() {
  std::lock_guard<std::mutex> lock(mu_);
  return 1'700'000'000'000'000'000 + now_.count();
}

void ManualClock::SleepFor(Nanos d) { Advance(d); }

void ManualClock::Advance(Nanos d) {
  std::lock_guard<std::mutex> lock(mu_);
  now_ += d;
}

}  // namespace cairn
