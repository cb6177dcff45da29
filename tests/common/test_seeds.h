// Seeds and quiet logs for randomized tests, shared by every suite.
// CAIRN_SEED=<n> replays exactly one seed; CAIRN_LONG=1 runs 20x as many.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/logging.h"

namespace cairn::test {

inline bool LongRun() {
  const char* v = std::getenv("CAIRN_LONG");  // NOLINT(concurrency-mt-unsafe)
  return v != nullptr && std::string(v) != "" && std::string(v) != "0";
}

// `count` seeds (x20 under CAIRN_LONG) derived from `salt`, so that different
// tests do not all run the same seeds.
inline std::vector<uint64_t> Seeds(uint64_t count, uint64_t salt) {
  const char* env = std::getenv("CAIRN_SEED");  // NOLINT(concurrency-mt-unsafe)
  if (env != nullptr && *env != '\0') return {std::strtoull(env, nullptr, 0)};
  if (LongRun()) count *= 20;
  std::vector<uint64_t> out;
  for (uint64_t i = 0; i < count; ++i) out.push_back(salt * 1000 + i + 1);
  return out;
}

inline std::string SeedTrace(uint64_t seed) {
  return "seed " + std::to_string(seed) + " (replay with CAIRN_SEED=" + std::to_string(seed) + ")";
}

// Silences info/warn logs for the life of the object unless CAIRN_LOG_LEVEL
// asks for them: crash and fault tests make the storage layers complain a lot.
class QuietLogs {
 public:
  QuietLogs() : saved_(GetLogLevel()) {
    if (std::getenv("CAIRN_LOG_LEVEL") == nullptr) SetLogLevel(LogLevel::kError);  // NOLINT
  }
  ~QuietLogs() { SetLogLevel(saved_); }
  QuietLogs(const QuietLogs&) = delete;
  QuietLogs& operator=(const QuietLogs&) = delete;

 private:
  LogLevel saved_;
};

}  // namespace cairn::test
