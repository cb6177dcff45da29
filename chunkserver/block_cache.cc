#include "chunkserver/block_cache.h"

namespace cairn::chunkserver {

BlockCache::Block BlockCache::Get(uint64_t offset) {
  MutexLock lock(&mu_);
  auto it = map_.find(offset);
  if (it == map_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

BlockCache::Block BlockCache::Peek(uint64_t offset) {
  MutexLock lock(&mu_);
  auto it = map_.find(offset);
  if (it == map_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  return it->second->second;
}

void BlockCache::Put(uint64_t offset, Block block) {
  if (block == nullptr || block->size() > capacity_) return;
  MutexLock lock(&mu_);
  auto it = map_.find(offset);
  if (it != map_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return;  // same offset, same bytes
  }
  bytes_ += block->size();
  lru_.emplace_front(offset, std::move(block));
  map_.emplace(offset, lru_.begin());
  EvictLocked();
}

void BlockCache::EvictLocked() {
  while (bytes_ > capacity_ && !lru_.empty()) {
    bytes_ -= lru_.back().second->size();
    map_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

uint64_t BlockCache::hits() const {
  MutexLock lock(&mu_);
  return hits_;
}

uint64_t BlockCache::misses() const {
  MutexLock lock(&mu_);
  return misses_;
}

uint64_t BlockCache::bytes() const {
  MutexLock lock(&mu_);
  return bytes_;
}

}  // namespace cairn::chunkserver
