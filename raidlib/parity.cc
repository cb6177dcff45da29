#include "raidlib/parity.h"

#include <cstdint>
#include <cstring>

#include "common/assert.h"

namespace cairn::raidlib {

void XorInto(std::span<std::byte> dst, std::span<const std::byte> src) {
  CAIRN_CHECK(dst.size() == src.size()) << dst.size() << " != " << src.size();
  std::byte* __restrict d = dst.data();
  const std::byte* __restrict s = src.data();
  size_t n = dst.size();
  size_t i = 0;
  // Word-at-a-time loop; GCC vectorizes it at -O2 (memcpy keeps it free of
  // aliasing and alignment assumptions).
  for (; i + 32 <= n; i += 32) {
    uint64_t a[4], b[4];
    std::memcpy(a, d + i, 32);
    std::memcpy(b, s + i, 32);
    for (int k = 0; k < 4; ++k) a[k] ^= b[k];
    std::memcpy(d + i, a, 32);
  }
  for (; i < n; ++i) d[i] ^= s[i];
}

}  // namespace cairn::raidlib
