#include "fsd/block_cache.h"

namespace cairn::fsd {

std::shared_ptr<const std::string> BlockCache::Get(const BlockKey& key) {
  MutexLock lock(&mu_);
  auto it = map_.find(key);
  if (it == map_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.data;
}

bool BlockCache::Contains(const BlockKey& key) {
  MutexLock lock(&mu_);
  return map_.count(key) != 0;
}

void BlockCache::Put(const BlockKey& key, std::shared_ptr<const std::string> data) {
  if (capacity_ == 0 || data->size() > capacity_) return;
  MutexLock lock(&mu_);
  auto it = map_.find(key);
  if (it != map_.end()) {
    bytes_ -= it->second.data->size();
    lru_.erase(it->second.lru);
    map_.erase(it);
  }
  bytes_ += data->size();
  lru_.push_front(key);
  map_.emplace(key, Slot{std::move(data), lru_.begin()});
  while (bytes_ > capacity_ && !lru_.empty()) {
    auto victim = map_.find(lru_.back());
    bytes_ -= victim->second.data->size();
    map_.erase(victim);
    lru_.pop_back();
  }
}

uint64_t BlockCache::bytes() {
  MutexLock lock(&mu_);
  return bytes_;
}

}  // namespace cairn::fsd
