// Two kinds of assertion (STYLE.md rule 6).
//
// CAIRN_CHECK(cond) << "context";   always on: guards invariants that protect
//                                  data. A failure logs and aborts the process.
// CAIRN_DCHECK(cond) << "context";  debug builds only: for expensive checks.
//
// Corruption found on disk is never an assertion: it is a Corruption status.
#pragma once

#include <sstream>

namespace cairn::internal {

// Collects the streamed message and aborts in its destructor.
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition);
  [[noreturn]] ~CheckFailure();
  CheckFailure(const CheckFailure&) = delete;
  CheckFailure& operator=(const CheckFailure&) = delete;

  template <typename T>
  CheckFailure& operator<<(const T& value) {
    stream_ << value;
    return *this;
  }

 private:
  std::ostringstream stream_;
};

// Swallows a stream expression for disabled checks.
struct NullStream {
  template <typename T>
  NullStream& operator<<(const T&) {
    return *this;
  }
};

}  // namespace cairn::internal

#define CAIRN_CHECK(cond) \
  if (__builtin_expect(!!(cond), 1)) {} else ::cairn::internal::CheckFailure(__FILE__, __LINE__, #cond)

#ifdef NDEBUG
#define CAIRN_DCHECK(cond) \
  if (true) {} else ::cairn::internal::NullStream()
#else
#define CAIRN_DCHECK(cond) CAIRN_CHECK(cond)
#endif
