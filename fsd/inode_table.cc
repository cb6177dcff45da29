#include "fsd/inode_table.h"

#include "common/assert.h"

namespace cairn::fsd {

InodeTable::InodeTable() {
  MutexLock lock(&mu_);
  Entry root;
  root.key.kind = NodeKind::kRoot;
  root.lookups = 1;  // never forgotten
  inodes_.emplace(kRootInode.value(), root);
  by_key_.emplace(root.key, kRootInode.value());
}

InodeId InodeTable::Lookup(const NodeKey& key) {
  MutexLock lock(&mu_);
  auto it = by_key_.find(key);
  if (it != by_key_.end()) {
    ++inodes_.at(it->second).lookups;
    return InodeId(it->second);
  }
  const uint64_t ino = next_++;
  inodes_.emplace(ino, Entry{key, 1, false});
  by_key_.emplace(key, ino);
  return InodeId(ino);
}

std::optional<InodeId> InodeTable::Find(const NodeKey& key) const {
  MutexLock lock(&mu_);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return std::nullopt;
  return InodeId(it->second);
}

std::optional<NodeKey> InodeTable::Get(InodeId ino) const {
  MutexLock lock(&mu_);
  auto it = inodes_.find(ino.value());
  if (it == inodes_.end()) return std::nullopt;
  return it->second.key;
}

bool InodeTable::Detached(InodeId ino) const {
  MutexLock lock(&mu_);
  auto it = inodes_.find(ino.value());
  return it != inodes_.end() && it->second.detached;
}

bool InodeTable::Forget(InodeId ino, uint64_t n) {
  if (ino == kRootInode) return false;
  MutexLock lock(&mu_);
  auto it = inodes_.find(ino.value());
  CAIRN_CHECK(it != inodes_.end()) << "forget of unknown inode " << ino.value();
  CAIRN_CHECK(it->second.lookups >= n) << "forget of " << n << " lookups on inode " << ino.value()
                                       << " that has " << it->second.lookups;
  it->second.lookups -= n;
  if (it->second.lookups > 0) return false;
  if (!it->second.detached) {
    auto k = by_key_.find(it->second.key);
    if (k != by_key_.end() && k->second == ino.value()) by_key_.erase(k);
  }
  inodes_.erase(it);
  return true;
}

void InodeTable::Rename(const NodeKey& from, const NodeKey& to) {
  MutexLock lock(&mu_);
  auto old_to = by_key_.find(to);
  if (old_to != by_key_.end()) {
    inodes_.at(old_to->second).detached = true;
    by_key_.erase(old_to);
  }
  auto it = by_key_.find(from);
  if (it == by_key_.end()) return;
  const uint64_t ino = it->second;
  by_key_.erase(it);
  inodes_.at(ino).key = to;
  by_key_.emplace(to, ino);
}

void InodeTable::Unlink(const NodeKey& key) {
  MutexLock lock(&mu_);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return;
  inodes_.at(it->second).detached = true;
  by_key_.erase(it);
}

void InodeTable::Repoint(InodeId ino, const NodeKey& key) {
  MutexLock lock(&mu_);
  auto it = inodes_.find(ino.value());
  if (it == inodes_.end()) return;
  if (!it->second.detached) {
    auto k = by_key_.find(it->second.key);
    if (k != by_key_.end() && k->second == ino.value()) by_key_.erase(k);
    it->second.detached = true;
  }
  it->second.key = key;
}

uint64_t InodeTable::LookupCount(InodeId ino) const {
  MutexLock lock(&mu_);
  auto it = inodes_.find(ino.value());
  return it == inodes_.end() ? 0 : it->second.lookups;
}

size_t InodeTable::size() const {
  MutexLock lock(&mu_);
  return inodes_.size();
}

}  // namespace cairn::fsd
