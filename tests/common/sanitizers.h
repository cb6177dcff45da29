// Which sanitizer a test binary is built with, for the few checks that a
// sanitizer's own bookkeeping invalidates (ASan keeps freed memory in a
// 256 MiB quarantine, so peak-RSS bounds do not hold under it).
#pragma once

namespace cairn::test {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#else
inline constexpr bool kAddressSanitizer = false;
#endif

}  // namespace cairn::test
