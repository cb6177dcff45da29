// The inode table of cairn-fsd: inode numbers for the names the kernel knows,
// counted like the kernel counts them (every entry reply is one lookup,
// forget/forget_multi give them back). I/O-free.
//
// - The root is inode 1 and is never forgotten.
// - A name keeps its inode number while the kernel holds a lookup on it;
//   Forget to zero drops it and the next lookup gets a new number.
// - Rename moves an inode to its new name (an inode already there is
//   detached: it keeps working through its number, is no longer found by
//   name). Unlink detaches.
// - A count going below zero is a kernel/daemon disagreement that could
//   hand one file's data to another: the process aborts (CAIRN_CHECK).
//
// Thread-safety: every method may be called concurrently (one mutex).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>

#include "common/mutex.h"
#include "common/strong_id.h"
#include "fsd/names.h"

namespace cairn::fsd {

inline constexpr InodeId kRootInode{1};

// What an inode names. `collection` is empty for the root and /.status; `id`
// is set for documents only.
struct NodeKey {
  NodeKind kind = NodeKind::kRoot;
  std::string collection;
  std::string id;

  auto operator<=>(const NodeKey&) const = default;
  bool operator==(const NodeKey&) const = default;
  bool is_dir() const {
    return kind == NodeKind::kRoot || kind == NodeKind::kCollection || kind == NodeKind::kQueryDir;
  }
};

class InodeTable {
 public:
  InodeTable();
  InodeTable(const InodeTable&) = delete;
  InodeTable& operator=(const InodeTable&) = delete;

  // The inode of `key` with one more lookup (a new number if none).
  InodeId Lookup(const NodeKey& key);
  // The inode of `key` if it has one, without counting a lookup.
  std::optional<InodeId> Find(const NodeKey& key) const;
  // What `ino` names now; nullopt for an unknown (forgotten) inode.
  std::optional<NodeKey> Get(InodeId ino) const;
  // Whether `ino` was detached from its name (unlinked or renamed over).
  bool Detached(InodeId ino) const;
  // Gives back `n` lookups; drops the inode at zero (returns true then).
  // Aborts if the count would go below zero or the inode is unknown.
  bool Forget(InodeId ino, uint64_t n);
  // `from`'s inode (if any) now names `to`; `to`'s old inode is detached.
  void Rename(const NodeKey& from, const NodeKey& to);
  // Detaches the inode of `key` (if any) from its name.
  void Unlink(const NodeKey& key);
  // Points a detached or live inode at a new key without a name entry
  // (an unlinked open document moved to a hidden id).
  void Repoint(InodeId ino, const NodeKey& key);
  // Lookup count of `ino` (0 if unknown); for tests.
  uint64_t LookupCount(InodeId ino) const;
  // Inodes held (the root included).
  size_t size() const;

 private:
  struct Entry {
    NodeKey key;
    uint64_t lookups = 0;
    bool detached = false;
  };
  mutable Mutex mu_;
  uint64_t next_ GUARDED_BY(mu_) = 2;
  std::unordered_map<uint64_t, Entry> inodes_ GUARDED_BY(mu_);
  std::map<NodeKey, uint64_t> by_key_ GUARDED_BY(mu_);
};

}  // namespace cairn::fsd
