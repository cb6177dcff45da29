// The partition logic of a chunk server (docs/design-store.md "Documents on a
// chunk server"): an I/O-free state machine that decides, for each document
// request and the current time, whether this node may serve it, what it
// must check, and what the doc store is to do. It never touches the disk,
// the network or a clock: the caller passes `now` and the doc store's
// answers in, and carries out the decisions (DocService does, over a real
// DocStore; the replication simulation of issue 6 drives the same code).
//
// What it holds:
//  - the cluster map as this node last saw it (ClusterView): which node is the
//    primary of each partition and in which epoch, the known collections;
//  - the upload sessions (UploadBegin / UploadBlock / Put with upload_id /
//    UploadAbort): in memory only, bounded in count, expired after an idle
//    timeout measured on the `now` the caller passes. An upload id carries its
//    partition in bits 47..62 so that any node can route an UploadBlock.
//
// What it decides:
//  - routing checks: InvalidArgument for a partition out of range or a
//    document that does not hash to the named partition; Unavailable before
//    the map is known or the partition placed; NotPrimary when another node
//    owns the partition; StaleEpoch when the request's epoch is older than
//    the partition's (a newer one means this node's map is behind:
//    Unavailable, retry);
//  - names and sizes (doc_names.h, max_document_bytes, block_bytes);
//  - the body's block list: every block but the last holds exactly
//    block_bytes, the last 1..block_bytes; each index comes from exactly one
//    source (inline bytes, the upload, or a block kept from the current
//    version, copy-on-write);
//  - the Mutation to apply: the next LSN after the partition's last, the
//    partition's epoch, the metadata (fields the request leaves out are kept
//    from the current version).
//
// Thread-safety: every method is thread-safe (one internal mutex, never held
// across a call out). The simulation calls it from one thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chunkserver/doc_types.h"
#include "common/clock.h"
#include "common/mutex.h"
#include "common/status.h"
#include "common/strong_id.h"

namespace cairn::chunkserver {

// ---------------------------------------------------------------- the map

struct NodeAddress {
  NodeId id;
  std::string name;  // the certificate's node name
  std::string host;
  int port = 0;
  bool operator==(const NodeAddress&) const = default;
};

struct PartitionPlacement {
  Epoch epoch;
  std::vector<NodeId> replicas;  // primary first; empty: not placed yet
  std::vector<NodeId> in_sync;   // replication: the replicas an acknowledged write is on
  bool operator==(const PartitionPlacement&) const = default;
};

// The cluster map in plain types (the thrift ClusterMap, converted at the
// edge).
struct ClusterView {
  uint64_t version = 0;  // 0: no map yet
  uint32_t partition_count = 0;
  std::vector<NodeAddress> nodes;
  std::vector<PartitionPlacement> partitions;  // index = partition id
  std::set<std::string> collections;
  // Indexed field paths per collection (secondary indexes, docs/indexes.md).
  std::map<std::string, std::vector<std::string>> indexes;
};

// ---------------------------------------------------------------- requests

// One entry of PutInput::kept_blocks (thrift BlockSpec).
struct BlockInput {
  uint32_t index = 0;
  std::optional<std::string> data;  // new bytes
  std::optional<uint64_t> data_hash;
  std::optional<uint64_t> keep_from_version;  // reuse block `index` of this version
};

struct PutInput {
  PartitionId partition;
  Epoch epoch;  // the client's view
  RequestId request_id;
  std::string collection;
  std::string id;
  int64_t expected_version = kAnyVersion;
  uint64_t size = 0;
  uint64_t body_hash = 0;
  std::optional<uint32_t> mode;
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  std::optional<int64_t> mtime_ns;
  std::optional<std::map<std::string, std::string>> xattrs;
  std::optional<std::string> body;  // at most one block
  std::optional<uint64_t> upload_id;
  std::vector<BlockInput> kept_blocks;
};

struct DeleteInput {
  PartitionId partition;
  Epoch epoch;
  RequestId request_id;
  std::string collection;
  std::string id;
  int64_t expected_version = kAnyVersion;
};

struct RenameInput {
  PartitionId partition;
  Epoch epoch;
  RequestId request_id;
  std::string collection;
  std::string from_id;
  std::string to_id;
  bool replace = false;
};

struct PartitionLimits {
  uint32_t block_bytes = 1u << 20;
  uint64_t max_document_bytes = 4ull << 30;
  uint32_t max_uploads = 1024;  // open upload sessions
  Nanos upload_idle_timeout = std::chrono::minutes(10);
  Status Validate() const;
};

// ---------------------------------------------------------------- decisions

// New bytes of a put that must be written as blocks (WriteBlock) before the
// mutation is built. Points into the PutInput: valid while it is.
struct InlineBlock {
  uint32_t index = 0;
  std::string_view data;
};

// What PreparePut decided: the blocks to write now and where the others come
// from.
struct PutPrep {
  uint32_t block_count = 0;
  std::vector<InlineBlock> inline_blocks;
  std::map<uint32_t, BlockRef> uploaded;  // from the upload session
  std::map<uint32_t, uint64_t> kept;      // index -> keep_from_version
  // The upload's running hash covers exactly the body (blocks 0..n-1 arrived
  // in order, nothing else): the body hash is checked without reading back.
  std::optional<uint64_t> streamed_body_hash;
};

// How a put's body hash is to be verified.
enum class BodyCheck { kDone, kReadBack };

class PartitionLogic {
 public:
  // `upload_id_seed` makes upload ids differ across restarts (pass something
  // random, or a fixed value in the simulation).
  PartitionLogic(PartitionLimits limits, uint64_t upload_id_seed);
  ~PartitionLogic();
  PartitionLogic(const PartitionLogic&) = delete;
  PartitionLogic& operator=(const PartitionLogic&) = delete;

  const PartitionLimits& limits() const { return limits_; }

  // ---- the map
  // This node's id (from RegisterNode). Until set, the node owns nothing.
  void SetSelf(NodeId self);
  NodeId self() const;
  // Installs `view` if it is newer than the current one; returns whether it did.
  bool UpdateMap(ClusterView view);
  uint64_t map_version() const;
  ClusterView map() const;
  // The primary of `p` per the map, if placed.
  std::optional<NodeAddress> PrimaryOf(PartitionId p) const;
  bool IsPrimary(PartitionId p) const;
  // This node is one of `p`'s replicas per the map (primary or not).
  bool HoldsReplica(PartitionId p) const;
  Epoch EpochOf(PartitionId p) const;

  // ---- checks (see the file comment)
  // `p` exists, this node is its primary (or, with `any_replica`, one of its
  // replicas) and `client_epoch` is the map's epoch of `p`.
  Status CheckPartition(PartitionId p, Epoch client_epoch, bool any_replica = false) const;
  // NotFound("no collection 'x'") when the map does not list it.
  Status CheckCollection(std::string_view collection) const;
  // Valid names, and the document lies in `p`.
  Status CheckDocument(PartitionId p, std::string_view collection, std::string_view id) const;
  // Partition, collection and document checks together.
  Status CheckRequest(PartitionId p, Epoch client_epoch, std::string_view collection,
                      std::string_view id, bool any_replica = false) const;

  // ---- put
  // Validates everything that does not need the current version: routing,
  // names, sizes, the data hashes of inline blocks, the upload session
  // (which is marked as committing: UploadBlock then fails until
  // FinishPut). Touches the session at `now`.
  Result<PutPrep> PreparePut(const PutInput& in, Nanos now);
  // Builds the mutation. `inline_refs` are the WriteBlock results of
  // prep.inline_blocks; `current` the document now, `state` the partition's
  // (its last LSN; the caller serializes the partition's mutations so that
  // it is exact). `wall_ns` is the ctime (and the mtime if not given).
  // InvalidArgument for blocks that do not make up the body, VersionMismatch
  // for a kept block of a version that is not the current one.
  Result<Mutation> BuildPut(const PutInput& in, const PutPrep& prep,
                            const std::map<uint32_t, BlockRef>& inline_refs,
                            const std::optional<DocEntry>& current, const PartitionState& state,
                            int64_t wall_ns) const;
  // How to verify the body hash of `m` built from `prep`: kDone when the
  // hashes already seen prove it (all inline, or streamed in order), kReadBack
  // when the caller must read the blocks back and compare with m.body_hash.
  // InvalidArgument (body hash mismatch) when a known hash differs.
  Result<BodyCheck> CheckBodyHash(const PutInput& in, const PutPrep& prep) const;
  // The put of `in` ended: on success its upload session (if any) is gone,
  // its blocks now claimed by the put; on failure the session may be used
  // again (a retry, or UploadAbort).
  void FinishPut(const PutInput& in, bool committed);

  Result<Mutation> BuildDelete(const DeleteInput& in, const PartitionState& state) const;
  Result<Mutation> BuildRename(const RenameInput& in, const PartitionState& state) const;

  // ---- uploads
  // A new session for a body of (collection, id) in `p`. Unavailable when
  // max_uploads are open (after the caller expired idle ones).
  Result<uint64_t> BeginUpload(PartitionId p, Epoch client_epoch, std::string_view collection,
                               std::string_view id, Nanos now);
  // Checks a block before it is written: the session exists, is not
  // committing, the index fits max_document_bytes, 1..block_bytes bytes,
  // `data_hash` equals `actual_hash` (computed by the caller over the bytes).
  Status CheckUploadBlock(uint64_t upload_id, uint32_t index, size_t bytes, uint64_t data_hash,
                          uint64_t actual_hash, Nanos now) const;
  // Records a written block. Returns the blocks to ForgetBlocks: the one it
  // replaces (the same index sent again), or `ref` itself if the session
  // ended meanwhile. `data` feeds the running body hash.
  std::vector<BlockRef> AddUploadBlock(uint64_t upload_id, uint32_t index, const BlockRef& ref,
                                       std::span<const std::byte> data, Nanos now);
  // Ends a session; returns its blocks to ForgetBlocks. NotFound if unknown.
  Result<std::vector<BlockRef>> AbortUpload(uint64_t upload_id);
  // Ends every session idle for upload_idle_timeout at `now` (not one being
  // committed); returns their blocks to ForgetBlocks.
  std::vector<BlockRef> ExpireUploads(Nanos now);
  size_t open_uploads() const;
  // The partition encoded in an upload id.
  static PartitionId UploadPartition(uint64_t upload_id);
  bool HasUpload(uint64_t upload_id) const;

 private:
  struct Upload;
  Status CheckPartitionLocked(PartitionId p, Epoch client_epoch, bool any_replica) const
      REQUIRES(mu_);
  Status CheckCollectionLocked(std::string_view collection) const REQUIRES(mu_);
  uint64_t MaxBlocks() const;

  const PartitionLimits limits_;
  mutable Mutex mu_;
  NodeId self_ GUARDED_BY(mu_);
  ClusterView map_ GUARDED_BY(mu_);
  std::map<uint64_t, std::unique_ptr<Upload>> uploads_ GUARDED_BY(mu_);
  uint64_t next_upload_ GUARDED_BY(mu_);
};

}  // namespace cairn::chunkserver
