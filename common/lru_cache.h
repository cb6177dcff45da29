// A bounded LRU map from keys to shared immutable values, bounded by the sum
// of the values' charges (bytes, as `Charge` counts them). The caches built on
// it (chunk servers' decoded blocks, fsd's document blocks, raidlib's unit
// headers) key values that never change once written, so entries never go
// stale: they only age out.
//
// Thread-safe: one mutex (a leaf lock) guards all state. Values are shared
// immutable objects, so a reader keeps using one evicted meanwhile.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <unordered_map>
#include <utility>

#include "common/mutex.h"

namespace cairn {

// Mixes `v` into a hash `seed`, for the Hash of a key with several fields.
inline size_t HashCombine(size_t seed, size_t v) {
  return seed ^ (v + 0x9E3779B97F4A7C15ull + (seed << 6) + (seed >> 2));
}

// The default charge: the value's size() (a byte buffer or string).
struct SizeCharge {
  template <class V>
  uint64_t operator()(const V& v) const {
    return v.size();
  }
};

template <class Key, class Value, class Hash = std::hash<Key>, class Charge = SizeCharge>
class LruCache {
 public:
  using Ptr = std::shared_ptr<const Value>;

  // capacity 0 disables caching (every Get misses, Put keeps nothing).
  explicit LruCache(uint64_t capacity) : capacity_(capacity) {}
  LruCache(const LruCache&) = delete;
  LruCache& operator=(const LruCache&) = delete;

  // The value under `key`, or nullptr; counts a hit or a miss and makes the
  // entry the most recently used.
  Ptr Get(const Key& key) { return Find(key, /*touch=*/true); }
  // The same without refreshing its place in the LRU (one-shot reads).
  Ptr Peek(const Key& key) { return Find(key, /*touch=*/false); }
  // Whether `key` is cached; counts nothing, touches nothing.
  bool Contains(const Key& key) const {
    MutexLock lock(&mu_);
    return map_.count(key) != 0;
  }

  // Inserts (or replaces) the value under `key` as the most recently used,
  // then evicts the least recently used entries to stay within capacity. A
  // value whose charge exceeds the capacity is not kept.
  void Put(const Key& key, Ptr value) {
    if (value == nullptr) return;
    const uint64_t charge = Charge()(*value);
    if (charge > capacity_) return;
    MutexLock lock(&mu_);
    if (auto it = map_.find(key); it != map_.end()) {
      bytes_ -= it->second->charge;
      lru_.erase(it->second);
      map_.erase(it);
    }
    bytes_ += charge;
    lru_.push_front(Entry{key, std::move(value), charge});
    map_.emplace(key, lru_.begin());
    while (bytes_ > capacity_ && !lru_.empty()) {
      bytes_ -= lru_.back().charge;
      map_.erase(lru_.back().key);
      lru_.pop_back();
    }
  }

  uint64_t hits() const {
    MutexLock lock(&mu_);
    return hits_;
  }
  uint64_t misses() const {
    MutexLock lock(&mu_);
    return misses_;
  }
  uint64_t bytes() const {
    MutexLock lock(&mu_);
    return bytes_;
  }
  uint64_t capacity() const { return capacity_; }

 private:
  struct Entry {
    Key key;
    Ptr value;
    uint64_t charge;
  };
  using Lru = std::list<Entry>;  // most recent first

  Ptr Find(const Key& key, bool touch) {
    MutexLock lock(&mu_);
    auto it = map_.find(key);
    if (it == map_.end()) {
      ++misses_;
      return nullptr;
    }
    ++hits_;
    if (touch) lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->value;
  }

  const uint64_t capacity_;
  mutable Mutex mu_;
  Lru lru_ GUARDED_BY(mu_);
  std::unordered_map<Key, typename Lru::iterator, Hash> map_ GUARDED_BY(mu_);
  uint64_t bytes_ GUARDED_BY(mu_) = 0;
  uint64_t hits_ GUARDED_BY(mu_) = 0;
  uint64_t misses_ GUARDED_BY(mu_) = 0;
};

}  // namespace cairn
