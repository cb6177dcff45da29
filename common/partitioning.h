// Which partition holds a document (DESIGN.md "Names"): the top log2(P) bits
// of XXH3-64 over `collection NUL id`. P is a power of two fixed when the
// cluster is created, so a later split halves a range.
#pragma once

#include <bit>
#include <cstdint>
#include <string_view>

#include "common/strong_id.h"

namespace cairn {

inline constexpr uint32_t kDefaultPartitionCount = 64;
inline constexpr uint32_t kMaxPartitionCount = 1u << 16;

// True for 1..kMaxPartitionCount powers of two.
inline bool ValidPartitionCount(uint64_t p) {
  return p >= 1 && p <= kMaxPartitionCount && std::has_single_bit(p);
}

// XXH3-64 of `collection` NUL `id`.
uint64_t DocumentHash(std::string_view collection, std::string_view id);

// The partition of a document; partition_count must be ValidPartitionCount.
PartitionId PartitionOf(std::string_view collection, std::string_view id, uint32_t partition_count);

}  // namespace cairn
