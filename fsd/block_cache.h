// Read cache of document blocks keyed by (collection, id, version, block):
// a block of a version never changes, so entries need no invalidation; a
// new version simply misses. LRU, bounded in bytes.
//
// Thread-safety: every method may be called concurrently (common/lru_cache.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "common/lru_cache.h"

namespace cairn::fsd {

struct BlockKey {
  std::string collection;
  std::string id;
  int64_t version = 0;
  uint64_t block = 0;
  auto operator<=>(const BlockKey&) const = default;
};

struct BlockKeyHash {
  size_t operator()(const BlockKey& k) const {
    size_t h = std::hash<std::string>()(k.collection);
    h = HashCombine(h, std::hash<std::string>()(k.id));
    h = HashCombine(h, std::hash<int64_t>()(k.version));
    return HashCombine(h, std::hash<uint64_t>()(k.block));
  }
};

using BlockCache = LruCache<BlockKey, std::string, BlockKeyHash>;

}  // namespace cairn::fsd
