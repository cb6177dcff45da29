// A bounded LRU cache of decompressed, verified blocks, keyed by the block
// record's volume offset. Offsets are never reused, so an entry can never go
// stale: the bytes at an offset never change (compaction copies a block to a
// new offset; the old entry simply ages out).
//
// Thread-safe (common/lru_cache.h).
#pragma once

#include <cstdint>
#include <vector>

#include "common/lru_cache.h"

namespace cairn::chunkserver {

// Get refreshes an entry's place in the LRU, Peek does not (one-shot reads);
// a block larger than the capacity is not kept; capacity 0 disables caching.
using BlockCache = LruCache<uint64_t, std::vector<std::byte>>;

}  // namespace cairn::chunkserver
