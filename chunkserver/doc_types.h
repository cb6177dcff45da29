// Plain value types of the document store (doc_store.h): what a caller asks
// (Mutation), what a document version is (DocEntry, BlockRef), and what comes
// back. No behaviour beyond small helpers; copyable.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "chunkserver/doc_log_format.h"
#include "common/status.h"
#include "common/strong_id.h"

namespace cairn::chunkserver {

// Identifies a mutation across retries (thrift RequestId). All zero means
// "none": the mutation is not remembered for deduplication.
struct RequestId {
  uint64_t client_hi = 0;
  uint64_t client_lo = 0;
  uint64_t seq = 0;
  bool empty() const { return client_hi == 0 && client_lo == 0 && seq == 0; }
  auto operator<=>(const RequestId&) const = default;
};

// Where one block of a body lives in the volume. `offset` is the volume
// offset of the block record (its header); offsets are never reused, so a
// BlockRef names one immutable block for ever (it may become unreadable once
// compaction has released its segment).
struct BlockRef {
  uint64_t offset = 0;
  uint32_t stored_len = 0;  // bytes as stored (compressed, or raw)
  uint32_t raw_len = 0;     // bytes of body this block holds
  uint64_t hash = 0;        // XXH3-64 of the raw bytes
  BlockCodec codec = BlockCodec::kRaw;
  // The whole record: header + block header + stored bytes.
  uint64_t record_len() const {
    return uint64_t{kRecordHeaderBytes} + kBlockHeaderBytes + stored_len;
  }
  bool operator==(const BlockRef&) const = default;
};

struct DocMetadata {
  uint64_t size = 0;  // body bytes; equals the sum of the blocks' raw_len
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::map<std::string, std::string> xattrs;  // user.* attributes: name -> value bytes
  bool operator==(const DocMetadata&) const = default;
};

// The current version of one document.
struct DocEntry {
  PartitionId partition;
  std::string collection;
  std::string id;
  uint64_t version = 0;  // the LSN of the mutation that wrote this version
  Lsn lsn;               // that mutation's LSN (same as version today)
  DocMetadata meta;
  uint64_t body_hash = 0;        // as given by the writer (end-to-end check)
  std::vector<BlockRef> blocks;  // in body order
  bool operator==(const DocEntry&) const = default;
};

enum class MutationType : uint8_t { kPut, kDelete, kRename };

// expected_version values (as in the thrift API).
inline constexpr int64_t kAnyVersion = 0;     // no check
inline constexpr int64_t kMustNotExist = -1;  // the document must not exist

// One change to one partition, decided by the partition state machine.
struct Mutation {
  MutationType type = MutationType::kPut;
  PartitionId partition;
  Lsn lsn;  // > every LSN applied to the partition so far
  Epoch epoch;
  RequestId request_id;  // empty: no deduplication
  std::string collection;
  std::string id;     // put, delete: the document; rename: the source
  std::string to_id;  // rename: the target (same partition, decided by the caller)
  // kAnyVersion, kMustNotExist or the exact current version (> 0). For a
  // rename it applies to the source.
  int64_t expected_version = kAnyVersion;
  bool replace = false;  // rename: overwrite an existing target
  // put only:
  DocMetadata meta;
  uint64_t body_hash = 0;
  std::vector<BlockRef> blocks;  // from WriteBlock, or kept from an earlier version
};

struct ApplyResult {
  Lsn lsn;               // of the mutation that produced the result
  uint64_t version = 0;  // the document's new version (put, rename) or the tombstone's (delete)
  bool deduplicated = false;  // a retry: nothing was written, this is the first answer
};

struct ListItem {
  std::string id;
  uint64_t version = 0;
  DocMetadata meta;
  uint64_t body_hash = 0;
};

struct ListPage {
  std::vector<ListItem> items;  // sorted by id (bytewise)
  bool more = false;            // items after the last one exist
};

// A page of whole current entries (DocStore::ListEntries).
struct EntryPage {
  std::vector<DocEntry> entries;  // sorted by id (bytewise)
  bool more = false;              // entries after the last one exist
};

// The per-partition counters the state machine needs.
struct PartitionState {
  PartitionId partition;
  Lsn last_lsn;      // of the last applied (durable) mutation
  Epoch last_epoch;  // of that mutation
  uint64_t documents = 0;
};

struct DocStoreOptions {
  // Largest raw block WriteBlock accepts (bodies are cut into blocks of this
  // size before compression). 1 MiB by default; at most kMaxBlockBytes.
  uint32_t block_bytes = 1u << 20;
  // zstd level for blocks; 1..19. 3 is zstd's default trade-off.
  int zstd_level = 3;
  // Decompressed blocks kept for reads, in bytes. 0 disables the cache.
  uint64_t cache_bytes = 64ull << 20;
  // Request ids remembered per partition for deduplication (oldest dropped).
  // Keep it equal on every replica of a partition.
  uint32_t dedup_entries_per_partition = 4096;
  // Largest document body.
  uint64_t max_document_bytes = 4ull << 30;
  // Compact() picks sealed segments whose live fraction is below this: the
  // live share of their logical bytes times how densely they were written
  // (raidlib::SegmentInfo::dense_bytes / allocated_bytes).
  double compact_live_fraction = 0.5;
  // ...and at most this many per call.
  uint32_t max_segments_per_compaction = 16;
  // Blocks written by WriteBlock and not yet named by a put (uploads in
  // progress) are kept safe from compaction, which copies them like live
  // ones, up to this many; the oldest are forgotten first. DocStore::
  // ForgetBlocks drops an abandoned upload's at once.
  uint32_t max_unclaimed_blocks = 65536;
  // Checkpoint records carry at most this much state each.
  uint32_t checkpoint_part_bytes = 1u << 20;
  // Bodies up to this size are handed to the ApplyObserver (secondary
  // indexes); larger ones are reported without a body and are never indexed,
  // as the query executor never matches them (keep it equal to the
  // executor's query_max_body_bytes).
  uint64_t index_max_document_bytes = 16ull << 20;
  // Replication (docs/design-replication.md "Doc store"): a restart applies
  // only the checkpoint and keeps the entries logged after it for the
  // partitions' replicas to commit again (DocStore::LoggedEntries). Off: the
  // single-copy behaviour, where every durable mutation is applied at once.
  bool replicated = false;

  Status Validate() const;
};

struct DocStoreStats {
  uint64_t documents = 0;
  uint64_t live_bytes = 0;  // block records referenced by current versions
  // Everything else in unreleased segments: old versions, mutation records,
  // checkpoints, abandoned uploads. Not all of it is reclaimable: the newest
  // checkpoint and the log after it stay until the next checkpoint.
  uint64_t dead_bytes = 0;
  uint64_t cache_hits = 0;
  uint64_t cache_misses = 0;
  double cache_hit_rate = 0;  // hits / (hits + misses), 0 before any read
  uint64_t cache_bytes = 0;
  uint64_t mutations_applied = 0;  // since open, replay excluded
  uint64_t mutations_deduplicated = 0;
  uint64_t blocks_written = 0;
  uint64_t checkpoints = 0;  // since open
  uint64_t compactions = 0;
  uint64_t segments_released = 0;
  uint64_t blocks_relocated = 0;
};

}  // namespace cairn::chunkserver
