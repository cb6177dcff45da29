// The chunked form of a partition snapshot (docs/snapshot-stream.md): how a
// primary cuts the applied state and the blocks it names into chunks of
// bounded size, and how a replica takes them in, one at a time, writing the
// blocks to its own volume as they come. No I/O of its own and no threads:
// ReplicaHost (replica_host_snapshot.cc) reads and writes blocks through the
// callbacks and carries the chunks over its transport.
//
// Not thread-safe: each object belongs to one stream; callers serialize.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "chunkserver/doc_index.h"
#include "chunkserver/doc_types.h"
#include "chunkserver/replica.h"
#include "common/status.h"

namespace cairn::chunkserver {

// Version of the chunk layout, first in chunk 0.
inline constexpr uint32_t kSnapshotStreamVersion = 1;
// Chunk 0 starts with: version u32, state length u64, block count u32, raw
// block bytes u64, chunk count u32.
inline constexpr size_t kSnapshotHeaderBytes = 4 + 8 + 4 + 8 + 4;
// Before each block in a block chunk: its offset on the sender u64, its raw
// length u32.
inline constexpr size_t kSnapshotBlockHeaderBytes = 8 + 4;

// One chunk on its way (the plain twin of rpc::SnapshotChunk).
struct SnapshotChunkMsg {
  PartitionId partition;
  Epoch epoch;  // the sending primary's
  NodeId from;
  Lsn lsn;  // the snapshot's point and its entry's epoch
  Epoch lsn_epoch;
  uint64_t snapshot_id = 0;  // chosen by the sender, unique per stream
  uint32_t chunk_index = 0;
  bool last = false;
  std::string data;
};

// The receiver's answer (rpc::SnapshotChunkAck).
struct SnapshotChunkAnswer {
  uint32_t next_chunk = 0;
  bool done = false;
};

// Sender side: the chunk plan of one snapshot. Chunks hold the state first
// (chunk 0 begins with the header), then whole blocks, at most `chunk_bytes`
// of data each (a block larger than that travels alone).
class SnapshotSource {
 public:
  // Reads block `ref`'s raw bytes into `out` (ref.raw_len bytes).
  using ReadBlock = std::function<Status(const BlockRef& ref, std::span<std::byte> out)>;

  SnapshotSource(std::vector<std::byte> state, std::vector<BlockRef> blocks, size_t chunk_bytes);

  uint32_t chunk_count() const { return static_cast<uint32_t>(plan_.size()); }
  // State bytes plus raw block bytes: what a receiver's progress counts.
  uint64_t total_bytes() const { return state_.size() + block_bytes_; }
  // The data of chunk `index` (< chunk_count()); reads its blocks.
  Result<std::string> Chunk(uint32_t index, const ReadBlock& read) const;

 private:
  struct Span {
    bool state = false;
    size_t begin = 0;  // state: byte range; blocks: block index range
    size_t end = 0;
  };
  std::vector<std::byte> state_;
  std::vector<BlockRef> blocks_;
  uint64_t block_bytes_ = 0;
  std::vector<Span> plan_;
};

// Receiver side: one snapshot being staged. Chunks must be added in order;
// blocks are written (through `write`) as their chunk arrives and checked
// against the hash the state names.
class SnapshotStage {
 public:
  using WriteBlock = std::function<Result<BlockRef>(std::span<const std::byte> raw)>;

  SnapshotStage(uint64_t snapshot_id, NodeId from, Epoch epoch, Lsn lsn, Epoch lsn_epoch,
                uint32_t dedup_entries);

  uint64_t snapshot_id() const { return id_; }
  NodeId from() const { return from_; }
  Epoch epoch() const { return epoch_; }
  Lsn lsn() const { return lsn_; }
  Epoch lsn_epoch() const { return lsn_epoch_; }
  uint32_t next_chunk() const { return next_; }
  bool complete() const { return complete_; }
  // Progress: state and raw block bytes taken, and in all (0 before chunk 0).
  uint64_t bytes_done() const { return done_bytes_; }
  uint64_t bytes_total() const { return state_len_ + block_bytes_; }
  // Every block written for this stage so far (to free if it is abandoned).
  const std::vector<BlockRef>& written() const { return written_; }

  // Takes chunk `c` (c.chunk_index == next_chunk()). On error the stage is
  // unusable (the caller drops it and frees written()): InvalidArgument for
  // a malformed chunk, DataLoss for a block that does not match its hash,
  // the write's error.
  Status Add(const SnapshotChunkMsg& c, const WriteBlock& write);
  // After the last chunk: the partition's state naming this volume's blocks.
  Result<std::string> LocalState(PartitionId p);

 private:
  Status AddBlocks(std::string_view in, const WriteBlock& write);

  const uint64_t id_;
  const NodeId from_;
  const Epoch epoch_;
  const Lsn lsn_;
  const Epoch lsn_epoch_;
  const uint32_t dedup_entries_;
  uint32_t next_ = 0;
  bool complete_ = false;
  uint64_t state_len_ = 0;
  uint32_t block_count_ = 0;
  uint64_t block_bytes_ = 0;
  uint32_t chunk_count_ = 0;
  uint64_t done_bytes_ = 0;
  uint32_t blocks_seen_ = 0;
  std::string state_;                   // the sender's state (held whole: it is the snapshot)
  std::unique_ptr<DocIndex> index_;     // state_ loaded, once complete: names the blocks
  std::map<uint64_t, BlockRef> moved_;  // sender's offset -> our copy
  std::vector<BlockRef> written_;
};

}  // namespace cairn::chunkserver
