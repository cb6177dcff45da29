// XOR parity over equal-length buffers. Pure functions, thread-safe.
#pragma once

#include <cstddef>
#include <span>

namespace cairn::raidlib {

// dst ^= src. Both must have the same size.
void XorInto(std::span<std::byte> dst, std::span<const std::byte> src);

}  // namespace cairn::raidlib
