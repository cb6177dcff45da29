// The in-memory index of a chunk server's documents: per partition,
// collection -> id -> current version (DocEntry), the partition's last LSN and
// epoch, and its bounded table of recently applied request ids. It also
// counts references to every live block (for compaction and statistics).
//
// It is a pure state machine over mutation records: replay at open and the
// live write path apply the same records through Apply(), so the state after
// a restart is exactly the state before it. No I/O.
//
// Not thread-safe: DocStore guards it with its mutex.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "chunkserver/doc_record.h"
#include "chunkserver/doc_types.h"
#include "common/status.h"

namespace cairn::chunkserver {

class DocIndex {
 public:
  // `dedup_entries` request ids are remembered per partition.
  explicit DocIndex(uint32_t dedup_entries) : dedup_cap_(dedup_entries) {}
  DocIndex(const DocIndex&) = delete;
  DocIndex& operator=(const DocIndex&) = delete;

  // Applies a put, delete or rename. The caller has checked it (live path) or
  // it was checked before it was logged (replay), so a delete or rename of a
  // missing document only happens with a bug: it then changes no document,
  // still advances the LSN, and returns Corruption for the caller to log.
  Status Apply(const MutationRecord& r);

  const DocEntry* Find(PartitionId p, std::string_view collection, std::string_view id) const;
  // Up to `limit` documents of `collection` with id > after_id, by id.
  ListPage List(PartitionId p, std::string_view collection, std::string_view after_id,
                size_t limit) const;
  // As List, with copies of the whole entries.
  EntryPage ListEntries(PartitionId p, std::string_view collection, std::string_view after_id,
                        size_t limit) const;
  // The first answer to `request_id` if it is still remembered.
  std::optional<ApplyResult> FindRequest(PartitionId p, const RequestId& request_id) const;
  // Zero LSN and epoch for a partition never seen.
  PartitionState State(PartitionId p) const;
  std::vector<PartitionId> Partitions() const;

  // ---- checkpoints ----
  // One partition's whole state (docs/docstore-format.md "Checkpoint").
  std::vector<std::byte> SerializePartition(PartitionId p) const;
  // SerializePartition's form of partition `p` holding nothing (LSN 0).
  static std::vector<std::byte> EmptyPartition(PartitionId p);
  // Adds a partition from SerializePartition's bytes. Corruption if malformed
  // or if the partition is already present.
  Status LoadPartition(std::span<const std::byte> blob);
  // Forgets a partition's whole state (a replica about to install a snapshot).
  void DropPartition(PartitionId p);
  // The (collection, id) of every document of `p`.
  std::vector<std::pair<std::string, std::string>> DocumentsOf(PartitionId p) const;
  // Every distinct block of `p`'s documents.
  std::vector<BlockRef> BlocksOf(PartitionId p) const;

  // ---- blocks ----
  struct LiveBlock {
    BlockRef ref;
    uint32_t refs = 0;  // current versions referencing it
  };
  // The live block whose record starts at `offset`, or nullptr.
  const LiveBlock* FindLive(uint64_t offset) const;
  // Live blocks whose records intersect [start, end), and their bytes.
  std::vector<BlockRef> LiveBlocksIn(uint64_t start, uint64_t end) const;
  uint64_t LiveBytesIn(uint64_t start, uint64_t end) const;
  // Rewrites every reference to a block in `moved` (old record offset -> new
  // copy) to the copy. Returns how many references changed.
  uint64_t Relocate(const std::map<uint64_t, BlockRef>& moved);

  uint64_t documents() const { return documents_; }
  uint64_t live_bytes() const { return live_bytes_; }

 private:
  // One collection's documents on a partition: ordered by id (listing
  // pages), with a hash of the ids beside it, so that a lookup is a hash
  // probe, not a walk down a tree of tens of thousands of nodes (a cache
  // miss each: DocIndex::Find was 14% of a chunk server's CPU in the query
  // bench's indexed query at 1,000,000 documents). About 50 bytes more per
  // document. The hash holds views of the map's keys and iterators into it,
  // both stable until their node is erased; moving keeps them, copying
  // would not (deleted).
  class Docs {
   public:
    using Map = std::map<std::string, DocEntry, std::less<>>;
    using iterator = Map::iterator;
    using const_iterator = Map::const_iterator;

    Docs() = default;
    Docs(Docs&&) = default;
    Docs& operator=(Docs&&) = default;
    Docs(const Docs&) = delete;
    Docs& operator=(const Docs&) = delete;

    iterator begin() { return map_.begin(); }
    iterator end() { return map_.end(); }
    const_iterator begin() const { return map_.begin(); }
    const_iterator end() const { return map_.end(); }
    bool empty() const { return map_.empty(); }
    size_t size() const { return map_.size(); }
    const_iterator upper_bound(std::string_view id) const { return map_.upper_bound(id); }
    iterator find(std::string_view id) {
      auto h = hash_.find(id);
      return h == hash_.end() ? map_.end() : h->second;
    }
    const_iterator find(std::string_view id) const {
      auto h = hash_.find(id);
      return h == hash_.end() ? map_.end() : const_iterator(h->second);
    }
    // Inserts unless the id is present (as std::map::emplace).
    std::pair<iterator, bool> emplace(std::string id, DocEntry entry) {
      auto r = map_.emplace(std::move(id), std::move(entry));
      if (r.second) hash_.emplace(std::string_view(r.first->first), r.first);
      return r;
    }
    iterator erase(iterator it) {
      hash_.erase(std::string_view(it->first));
      return map_.erase(it);
    }

   private:
    Map map_;
    std::unordered_map<std::string_view, iterator> hash_;
  };
  struct Dedup {
    RequestId id;
    ApplyResult result;
  };
  struct Partition {
    Lsn last_lsn;
    Epoch last_epoch;
    std::map<std::string, Docs, std::less<>> collections;
    std::deque<Dedup> dedup_order;  // oldest first
    std::map<RequestId, ApplyResult> dedup;
    uint64_t documents = 0;
  };

  void AddRefs(const std::vector<BlockRef>& refs);
  void DropRefs(const std::vector<BlockRef>& refs);
  void Remember(Partition* part, const RequestId& id, const ApplyResult& result);
  void PutEntry(Partition* part, DocEntry entry);
  // Removes and returns the entry, if present.
  std::optional<DocEntry> TakeEntry(Partition* part, std::string_view collection,
                                    std::string_view id);

  const uint32_t dedup_cap_;
  std::map<PartitionId, Partition> partitions_;
  std::map<uint64_t, LiveBlock> live_;  // by record offset
  uint64_t documents_ = 0;
  uint64_t live_bytes_ = 0;
  uint64_t max_live_record_ = 0;  // longest live block record ever seen (range queries)
};

}  // namespace cairn::chunkserver
