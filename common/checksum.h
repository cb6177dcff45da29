// XXH3-64 checksums for everything stored (DESIGN.md "Storage").
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace cairn {

uint64_t Checksum64(std::span<const std::byte> data, uint64_t seed = 0);
uint64_t Checksum64(const void* data, size_t len, uint64_t seed = 0);

}  // namespace cairn
