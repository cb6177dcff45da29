// Little-endian field access for on-disk formats.
#pragma once

#include <cstddef>
#include <cstdint>
#include <bit>
#include <cstring>

namespace cairn::raidlib {

template <typename T>
inline void PutLE(std::byte* p, T v) {
  static_assert(std::endian::native == std::endian::little, "big-endian hosts unsupported");
  std::memcpy(p, &v, sizeof(T));
}

template <typename T>
inline T GetLE(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace cairn::raidlib
