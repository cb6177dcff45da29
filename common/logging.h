// Logging with levels and a context prefix (STYLE.md rule 12).
//
//   Logger log("raidlib", "vol=/data disk=2");
//   LOG_WARN(log) << "checksum mismatch at stripe " << seq;
//   LOG_EVERY_N_SEC(log, kWarn, 5) << "disk is slow";   // rate-limited hot path
//
// Lines go to stderr as "<time> <LEVEL> <component> [<context>] <message>".
// The global threshold comes from CAIRN_LOG_LEVEL (debug|info|warn|error),
// default info. Thread-safe: each line is written with one write(2).
#pragma once

#include <atomic>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

#include "common/macros.h"

namespace cairn {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
bool ParseLogLevel(std::string_view text, LogLevel* out);

class Logger {
 public:
  Logger(std::string component, std::string context = "")
      : component_(std::move(component)), context_(std::move(context)) {}

  // A copy with more context appended ("disk=2").
  Logger With(std::string_view more) const;

  bool Enabled(LogLevel level) const { return level >= GetLogLevel(); }
  void Write(LogLevel level, std::string_view message) const;

  const std::string& component() const { return component_; }
  const std::string& context() const { return context_; }

 private:
  std::string component_;
  std::string context_;
};

namespace internal {

class LogLine {
 public:
  LogLine(const Logger& logger, LogLevel level) : logger_(logger), level_(level) {}
  ~LogLine() { logger_.Write(level_, stream_.str()); }
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;
  template <typename T>
  LogLine& operator<<(const T& v) {
    stream_ << v;
    return *this;
  }

 private:
  const Logger& logger_;
  LogLevel level_;
  std::ostringstream stream_;
};

// True at most once per `seconds` for one call site.
bool RateLimitPass(std::atomic<int64_t>* last_ns, int64_t seconds);

}  // namespace internal
}  // namespace cairn

// A for loop rather than if/else: safe inside an unbraced if.
#define CAIRN_LOG(logger, level)                                                       \
  for (bool cairn_log_on_ = (logger).Enabled(::cairn::LogLevel::level); cairn_log_on_; \
       cairn_log_on_ = false)                                                          \
  ::cairn::internal::LogLine((logger), ::cairn::LogLevel::level)

#define LOG_DEBUG(logger) CAIRN_LOG(logger, kDebug)
#define LOG_INFO(logger) CAIRN_LOG(logger, kInfo)
#define LOG_WARN(logger) CAIRN_LOG(logger, kWarn)
#define LOG_ERROR(logger) CAIRN_LOG(logger, kError)

#define LOG_EVERY_N_SEC(logger, level, seconds)                                                \
  static std::atomic<int64_t> CAIRN_CONCAT_(cairn_log_last_, __LINE__){0};                     \
  if (!(logger).Enabled(::cairn::LogLevel::level) ||                                           \
      !::cairn::internal::RateLimitPass(&CAIRN_CONCAT_(cairn_log_last_, __LINE__), seconds)) { \
  } else                                                                                       \
    ::cairn::internal::LogLine((logger), ::cairn::LogLevel::level)
