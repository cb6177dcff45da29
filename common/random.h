// Seeded randomness (STYLE.md rule 3): every random choice in tests and the
// simulation comes from a Random built from a printed, replayable seed.
// Not thread-safe: one Random per thread.
#pragma once

#include <cstdint>

namespace cairn {

class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  // splitmix64: small, fast, good enough for tests and jitter.
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n); n > 0.
  uint64_t Uniform(uint64_t n) { return Next() % n; }
  // True with probability num/den.
  bool OneIn(uint64_t n) { return Uniform(n) == 0; }
  uint64_t seed_state() const { return state_; }

 private:
  uint64_t state_;
};

}  // namespace cairn
