// Read cache of document blocks keyed by (collection, id, version, block):
// a block of a version never changes, so entries need no invalidation; a
// new version simply misses. LRU, bounded in bytes.
//
// Thread-safety: every method may be called concurrently (one mutex).
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "common/mutex.h"

namespace cairn::fsd {

struct BlockKey {
  std::string collection;
  std::string id;
  int64_t version = 0;
  uint64_t block = 0;
  auto operator<=>(const BlockKey&) const = default;
};

class BlockCache {
 public:
  explicit BlockCache(uint64_t capacity_bytes) : capacity_(capacity_bytes) {}
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

  std::shared_ptr<const std::string> Get(const BlockKey& key);
  void Put(const BlockKey& key, std::shared_ptr<const std::string> data);
  bool Contains(const BlockKey& key);
  uint64_t bytes();

 private:
  using Lru = std::list<BlockKey>;
  struct Slot {
    std::shared_ptr<const std::string> data;
    Lru::iterator lru;
  };
  const uint64_t capacity_;
  Mutex mu_;
  std::map<BlockKey, Slot> map_ GUARDED_BY(mu_);
  Lru lru_ GUARDED_BY(mu_);  // most recent first
  uint64_t bytes_ GUARDED_BY(mu_) = 0;
};

}  // namespace cairn::fsd
