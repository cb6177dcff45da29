#include "common/logging.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "common/assert.h"

namespace cairn {
namespace {

LogLevel InitialLevel() {
  const char* env = std::getenv("CAIRN_LOG_LEVEL");  // NOLINT(concurrency-mt-unsafe): read once
  LogLevel level = LogLevel::kInfo;
  if (env != nullptr) ParseLogLevel(env, &level);
  return level;
}

std::atomic<int>& LevelStorage() {
  static std::atomic<int> level{static_cast<int>(InitialLevel())};
  return level;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kWarn: return "WARN";
    case LogLevel::kError: return "ERROR";
  }
  return "?";
}

void WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return;  // Logging must never fail the caller.
    off += static_cast<size_t>(n);
  }
}

}  // namespace

void SetLogLevel(LogLevel level) { LevelStorage().store(static_cast<int>(level)); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(LevelStorage().load()); }

bool ParseLogLevel(std::string_view text, LogLevel* out) {
  if (text == "debug") *out = LogLevel::kDebug;
  else if (text == "info") *out = LogLevel::kInfo;
  else if (text == "warn") *out = LogLevel::kWarn;
  else if (text == "error") *out = LogLevel::kError;
  else return false;
  return true;
}

Logger Logger::With(std::string_view more) const {
  std::string ctx = context_;
  if (!ctx.empty()) ctx += ' ';
  ctx += more;
  return Logger(component_, std::move(ctx));
}

void Logger::Write(LogLevel level, std::string_view message) const {
  auto now = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
            1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[64];
  std::snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  std::string line = stamp;
  line += ' ';
  line += LevelName(level);
  line += ' ';
  line += component_;
  if (!context_.empty()) {
    line += " [";
    line += context_;
    line += ']';
  }
  line += ' ';
  line += message;
  line += '\n';
  WriteAll(STDERR_FILENO, line);
}

namespace internal {

bool RateLimitPass(std::atomic<int64_t>* last_ns, int64_t seconds) {
  int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count();
  int64_t last = last_ns->load(std::memory_order_relaxed);
  if (last != 0 && now - last < seconds * 1'000'000'000) return false;
  return last_ns->compare_exchange_strong(last, now, std::memory_order_relaxed);
}

CheckFailure::CheckFailure(const char* file, int line, const char* condition) {
  stream_ << "CHECK failed at " << file << ":" << line << ": " << condition << " ";
}

CheckFailure::~CheckFailure() {
  stream_ << "\n";
  WriteAll(STDERR_FILENO, stream_.str());
  std::abort();
}

}  // namespace internal
}  // namespace cairn
