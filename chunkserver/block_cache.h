// A bounded LRU cache of decompressed, verified blocks, keyed by the block
// record's volume offset. Offsets are never reused, so an entry can never go
// stale: the bytes at an offset never change (compaction copies a block to a
// new offset; the old entry simply ages out).
//
// Thread-safe: one mutex (a leaf lock) guards all state. Values are shared
// immutable buffers, so a reader keeps using a block evicted meanwhile.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/mutex.h"

namespace cairn::chunkserver {

class BlockCache {
 public:
  using Block = std::shared_ptr<const std::vector<std::byte>>;

  // capacity_bytes 0 disables caching (every Get misses, Put keeps nothing).
  explicit BlockCache(uint64_t capacity_bytes) : capacity_(capacity_bytes) {}
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

  // The block at `offset`, or nullptr; counts a hit or a miss.
  Block Get(uint64_t offset);
  // The same without refreshing its place in the LRU (one-shot reads).
  Block Peek(uint64_t offset);
  // Inserts (or refreshes) a block; evicts the least recently used ones to
  // stay within capacity. A block larger than the capacity is not kept.
  void Put(uint64_t offset, Block block);

  uint64_t hits() const;
  uint64_t misses() const;
  uint64_t bytes() const;
  uint64_t capacity() const { return capacity_; }

 private:
  using Lru = std::list<std::pair<uint64_t, Block>>;  // most recent first
  void EvictLocked() REQUIRES(mu_);

  const uint64_t capacity_;
  mutable Mutex mu_;
  Lru lru_ GUARDED_BY(mu_);
  std::unordered_map<uint64_t, Lru::iterator> map_ GUARDED_BY(mu_);
  uint64_t bytes_ GUARDED_BY(mu_) = 0;
  uint64_t hits_ GUARDED_BY(mu_) = 0;
  uint64_t misses_ GUARDED_BY(mu_) = 0;
};

}  // namespace cairn::chunkserver
