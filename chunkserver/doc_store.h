// DocStore: a chunk server's documents on its raidlib volume (DESIGN.md
// "Storage on a chunk server", docs/design-store.md "Documents on a chunk
// server", format in docs/docstore-format.md).
//
// The store is a log of records in the volume (blocks of document bodies and
// put/delete/rename records) plus an in-memory index (partition ->
// collection -> id -> current version) that is checkpointed into the volume.
// It has no network code and no notion of primaries: the partition state
// machine decides LSNs, epochs and request ids, and calls Apply(). A replica
// applies the same mutations (with block references of its own volume) and
// reaches the same state.
//
// Guarantees
//  - Apply() returns after its record is durable (volume Sync, group
//    committed); the index shows the mutation only once it is durable, so a
//    reader never sees a change that a crash could take back. After a crash
//    at any point, every mutation Apply() acknowledged is visible with its
//    exact bytes; one in flight is either fully there or absent.
//  - Mutations of one partition take effect in LSN order. A mutation whose
//    request id is remembered (a bounded per-partition table, persisted in the
//    log and the checkpoints) is not applied again: Apply returns the first
//    answer. A failed check (expected version, existence) writes nothing.
//  - Reads verify every block (record checksums, then the XXH3-64 of the raw
//    bytes): they return the stored bytes or an error, never wrong data.
//  - Compaction never loses a live block. A reader (or a copy-on-write put)
//    holding a DocEntry from before a compaction is sent to the copies for
//    the next few compactions; after that it gets Unavailable ("look the
//    document up again"), never other bytes: volume offsets are never reused.
//
// Concurrency: every public method is thread-safe. Reads (Lookup, List,
// ReadRange, stats) run concurrently with each other and with writes;
// Apply and WriteBlock calls run concurrently (mutation records are appended
// one at a time, their fsyncs are shared). Checkpoint and Compact run one at
// a time, concurrently with everything else; while a partition's state is
// serialized into a checkpoint, Lookup and the index update of Apply wait.
//
// Lock order: maintenance_mu_ -> write_mu_ -> mu_ -> append_mu_ -> unclaimed_mu_ ->
// sticky_mu_, and notify_mu_ -> mu_ (notify_mu_ is taken alone, never with
// write_mu_ or maintenance_mu_); BlockCache's lock is a leaf. Volume calls may
// be made under any of them (the volume never calls back).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "chunkserver/block_cache.h"
#include "chunkserver/doc_index.h"
#include "chunkserver/doc_record.h"
#include "chunkserver/doc_types.h"
#include "common/logging.h"
#include "common/mutex.h"
#include "common/status.h"
#include "raidlib/volume.h"

namespace cairn::chunkserver {

struct CompactionReport {
  std::vector<SegmentId> released;  // segments given back to the volume
  uint64_t blocks_relocated = 0;
  uint64_t bytes_relocated = 0;  // block record bytes copied
};

// One document changed by an applied mutation, as an ApplyObserver sees it.
// A rename is two changes: the source gone, the target with the body.
struct AppliedChange {
  PartitionId partition;
  std::string collection;
  std::string id;
  uint64_t version = 0;  // the mutation's LSN (the document's new version or its tombstone's)
  bool exists = false;   // false: deleted (or renamed away)
  uint64_t size = 0;     // body bytes when it exists
  // The body when it exists and size <= options.index_max_document_bytes and
  // it could be read; nullopt otherwise (too large, or read_error says why).
  std::optional<std::string> body;
  Status read_error;
};

// Told about every applied mutation of the collections it wants, e.g. to
// keep secondary indexes. Implementations must be thread-safe as described.
class ApplyObserver {
 public:
  virtual ~ApplyObserver() = default;
  // Whether changes to `collection` on partition `p` are wanted. Called for
  // every applied mutation with the store's internal lock held: it must be
  // cheap, must not block on I/O and must not call the store.
  virtual bool Wants(PartitionId p, std::string_view collection) const = 0;
  // The wanted changes in apply (LSN) order, one call at a time, with no lock
  // of the store's index held (it may call the store's read methods, never
  // Apply). Apply() returns only after its own changes have been delivered,
  // so an acknowledged mutation is visible to the observer.
  virtual void OnApplied(const AppliedChange& change) = 0;
};

class DocStore {
 public:
  // Loads the newest checkpoint named by the volume's application root,
  // replays the log after it and, if a crash tore the log's tail, records the
  // torn range in the root before anything new is appended. `volume` is
  // borrowed: it must outlive the store, and the store must be its only
  // writer. Corruption if the root, the checkpoint or a record is damaged
  // beyond what a crash explains.
  static Result<std::unique_ptr<DocStore>> Open(raidlib::Volume* volume, DocStoreOptions options);
  ~DocStore();
  DocStore(const DocStore&) = delete;
  DocStore& operator=(const DocStore&) = delete;

  // Compresses one block of a body (1..block_bytes bytes) and appends it.
  // Not durable on return: the Apply() that references it makes it durable
  // (its record comes later in the log). Large bodies are streamed this way,
  // block by block, then committed by one small put. Until a put names it,
  // the block is an upload in progress that compaction moves like a live one
  // (up to max_unclaimed_blocks; remembered in memory only, so not across a
  // restart).
  Result<BlockRef> WriteBlock(std::span<const std::byte> raw);

  // An upload was abandoned: its blocks (as WriteBlock returned them) need
  // no protection from compaction any more. Blocks a put names are claimed
  // by it and need no call.
  void ForgetBlocks(std::span<const BlockRef> refs);

  // Checks `m` against the current state (including mutations appended but
  // not yet durable), appends its record, waits for it to be durable, applies
  // it to the index and returns. Errors (nothing written):
  //   InvalidArgument      bad name, sizes, block references, LSN not above
  //                        the partition's last
  //   StaleEpoch           epoch below the partition's last
  //   FailedPrecondition   expected_version does not match
  //   NotFound             delete or rename of a missing document
  //   AlreadyExists        rename onto an existing id without `replace`
  //   Unavailable          a referenced block was moved by compaction and is
  //                        no longer known: look the document up again
  // A retry of a remembered request id returns the first ApplyResult with
  // `deduplicated` set, whatever the retry says (its LSN is not used). After a volume write error
  // every later mutation fails with that error (sticky).
  Result<ApplyResult> Apply(const Mutation& m);

  // The remembered answer to a request id of partition `p` if that mutation
  // is durable and applied (not one still pending), or nullopt; nullopt for
  // an empty id. Lets a
  // caller answer a retry before checks that the first attempt's own effect
  // would fail (e.g. a copy-on-write put whose base version it replaced).
  std::optional<ApplyResult> FindRequest(PartitionId p, const RequestId& id) const;

  // The current (durable) version, or nullopt.
  Result<std::optional<DocEntry>> Lookup(PartitionId p, std::string_view collection,
                                         std::string_view id) const;

  // The current versions of the documents `ids` (any order, at most
  // kMaxLookupBatch), in the order of `ids`, nullopt for missing ones: many
  // Lookups under one lock acquisition.
  Result<std::vector<std::optional<DocEntry>>> LookupMany(PartitionId p,
                                                          std::string_view collection,
                                                          std::span<const std::string> ids) const;
  static constexpr size_t kMaxLookupBatch = 4096;

  // How a read uses the block cache. kFill: blocks read from the volume are
  // cached (and hits refresh the LRU). kNoFill, for one-shot reads such as a
  // query's full scan: whole blocks are read from the volume without looking
  // at the cache, partial ones may use a cached copy (without refreshing the
  // LRU); nothing is cached, so a scan does not evict the working set.
  enum class CacheUse : uint8_t { kFill, kNoFill };

  // Reads body bytes [offset, offset + out.size()) of `doc`, which must lie
  // within doc.meta.size. Reads only the blocks the range touches, through
  // the block cache as `cache` says. Unavailable if compaction released the
  // blocks of this (old) DocEntry; DataLoss/Corruption if the volume could
  // not return them.
  Status ReadRange(const DocEntry& doc, uint64_t offset, std::span<std::byte> out,
                   CacheUse cache = CacheUse::kFill);

  // Up to `limit` (>= 1) documents of a collection with id > after_id ("" for
  // the start), sorted by id.
  Result<ListPage> List(PartitionId p, std::string_view collection, std::string_view after_id,
                        size_t limit) const;
  // As List, with each document's whole current entry (what Lookup returns),
  // so that a scan needs no Lookup per document.
  Result<EntryPage> ListEntries(PartitionId p, std::string_view collection,
                                std::string_view after_id, size_t limit) const;

  // ---- the replicated log (issue 6, docs/design-replication.md "Doc store")
  // With replication a partition's replica state machine decides what is
  // committed. Log() appends an entry of the partition's log without applying
  // it, SyncLog() makes what was logged durable, Commit() applies the logged
  // entries through an LSN, Truncate() cuts the uncommitted tail. A partition
  // is written either this way or through Apply(), not both. Reads (Lookup,
  // List, FindRequest) see committed entries only.

  // Appends `m` as the entry right after the partition's last logged one
  // (m.lsn must be last + 1). With `check_state` (a primary taking a client's
  // mutation) the expected version and existence are checked against the
  // latest logged state, with Apply()'s errors; without (a backup copying the
  // primary's log) they are not. Returns the record's end offset: the entry is
  // durable once SyncLog() has returned an offset at or past it.
  Result<uint64_t> Log(const Mutation& m, bool check_state);
  // Log()'s checks with check_state, block references aside, writing nothing.
  Status CheckLog(const Mutation& m) const;
  // The no-op entry that starts a primary's epoch.
  Result<uint64_t> LogNoop(PartitionId p, Lsn lsn, Epoch epoch);
  // Cuts the logged entries of `p` after `after`, which must not be below the
  // partition's committed LSN (FailedPrecondition). Durable with the next
  // SyncLog(), before any entry logged after it. Returns the end offset.
  Result<uint64_t> Truncate(PartitionId p, Lsn after, Epoch epoch);
  // Syncs the volume (group commit), applies committed durable entries, and
  // returns the durable offset.
  Result<uint64_t> SyncLog();
  // Entries of `p` through `through` are committed: the durable ones are
  // applied now (in LSN order, observer included), the rest once durable.
  Status Commit(PartitionId p, Lsn through);
  // The logged entries of `p` not yet applied, in LSN order (after a restart
  // with options.replicated: every entry after the checkpoint).
  std::vector<MutationRecord> LoggedEntries(PartitionId p) const;
  // The last logged LSN of `p` and its epoch (applied or not).
  std::pair<Lsn, Epoch> last_logged(PartitionId p) const;

  // A replica far behind gets the primary's applied state instead of its log.
  struct PartitionSnapshot {
    Lsn lsn;
    Epoch epoch;
    std::vector<std::byte> state;  // as a checkpoint holds the partition
    std::vector<BlockRef> blocks;  // every block the state names
  };
  // The applied state of `p` now.
  PartitionSnapshot SnapshotPartition(PartitionId p) const;
  // Replaces the state of `p` by `state` (SnapshotPartition's form, naming
  // blocks of this volume that WriteBlock returned) at `lsn`, and drops every
  // logged entry of `p`. Visible at once; durable with the next SyncLog().
  // Returns the record's end offset.
  // Forgets everything of partition `p` (its documents, request ids and
  // logged entries), durably once synced: a replica the map no longer gives
  // this node. A snapshot record of the empty partition at LSN 0, so the
  // blocks become dead (compaction reclaims them) and pending entries stop
  // holding back checkpoints and compaction. Returns the record's end.
  Result<uint64_t> DropPartitionData(PartitionId p);
  Result<uint64_t> InstallSnapshot(PartitionId p, Lsn lsn, Epoch epoch,
                                   std::span<const std::byte> state);

  // The applied state: the last applied LSN is the committed one.
  PartitionState partition_state(PartitionId p) const;
  std::vector<PartitionId> partitions() const;

  // Writes the index into the volume as checkpoint records, syncs, then points
  // the volume's application root at it. Replay at the next open starts there.
  Status Checkpoint();

  // Picks sealed segments whose live fraction is below
  // options.compact_live_fraction, copies their live blocks to the log's end,
  // points the index at the copies, checkpoints, then releases the segments.
  Result<CompactionReport> Compact();

  DocStoreStats stats() const;
  const DocStoreOptions& options() const { return options_; }

  // Attaches `observer` (borrowed; nullptr detaches). Changes applied from
  // now on are delivered to it; on return, no delivery to the previous
  // observer is in progress or will start.
  void SetApplyObserver(ApplyObserver* observer) EXCLUDES(notify_mu_, mu_);

 private:
  // A mutation appended but not yet durable and applied, in log order.
  struct Pending {
    uint64_t offset = 0;
    uint64_t end = 0;
    MutationRecord rec;
    bool logged = false;  // Log(): applied only through Commit()
  };
  // The latest state of a document touched by pending mutations.
  struct Overlay {
    bool exists = false;
    uint64_t version = 0;
    uint32_t pending = 0;  // pending mutations touching the key
  };
  using DocKey = std::tuple<PartitionId, std::string, std::string>;
  struct Latest {
    bool exists = false;
    uint64_t version = 0;
  };

  DocStore(raidlib::Volume* volume, DocStoreOptions options);

  // doc_store_recovery.cc
  Status Recover();
  Status LoadCheckpoint(const DocRoot& root) REQUIRES(maintenance_mu_, mu_);
  Status Replay(DocRoot* root) REQUIRES(maintenance_mu_, mu_);

  // doc_store_write.cc
  Status CheckArgs(const Mutation& m) const;
  // Verifies references that are not live blocks of the index against the
  // log (one header read each) and translates moved ones.
  Status CheckBlockRefs(std::vector<BlockRef>* refs);
  Status CheckOrderLocked(const Mutation& m) const REQUIRES(mu_);
  Status CheckStateLocked(const Mutation& m) const REQUIRES(mu_);
  // The first answer to a remembered (applied or pending) request id.
  std::optional<ApplyResult> FindRequestLocked(PartitionId p, const RequestId& id) const
      REQUIRES(mu_);
  Latest LatestLocked(PartitionId p, const std::string& collection, const std::string& id) const
      REQUIRES(mu_);
  // Follows where unclaimed blocks and compaction's forwarding moved blocks;
  // Unavailable for a block in a segment being (or already) released that
  // was not moved.
  Status TranslateRefsLocked(std::vector<BlockRef>* refs) const REQUIRES(mu_);
  void AddPendingLocked(Pending p) REQUIRES(mu_);
  // Syncs the volume, then applies every pending mutation now durable and
  // delivers the observer's changes.
  Status SyncAndApply() EXCLUDES(notify_mu_, mu_);
  // Delivers queued changes to the observer, in order; returns when every
  // change queued before the call has been delivered.
  void DeliverChanges() EXCLUDES(notify_mu_, mu_);
  void ApplyDurableLocked() REQUIRES(mu_);
  void ApplyPendingLocked(Pending* p) REQUIRES(mu_);
  // Drops the logged entries of `p` after `after` (Truncate, and replay).
  void CutLoggedLocked(PartitionId p, Lsn after) REQUIRES(mu_);
  // Replaces `p`'s applied state (InstallSnapshot and replay); queues the
  // changes for the observer when `notify`.
  Status LoadSnapshotLocked(PartitionId p, Lsn lsn, std::span<const std::byte> state, bool notify)
      REQUIRES(mu_);
  Lsn CommittedLocked(PartitionId p) const REQUIRES(mu_);
  std::pair<Lsn, Epoch> last_logged_locked(PartitionId p) const REQUIRES(mu_);
  Status CheckLogLocked(const Mutation& m, bool check_state) const REQUIRES(mu_);
  // Appends the framed record of `rec` (a log entry or a truncate).
  Result<uint64_t> AppendMutationRecord(const MutationRecord& rec, uint64_t* end)
      REQUIRES(write_mu_);
  // Queues the change of (p, collection, id) just applied for the observer.
  void QueueChangeLocked(PartitionId p, const std::string& collection, const std::string& id,
                         Lsn lsn) REQUIRES(mu_);
  void TouchOverlayLocked(const DocKey& key, bool exists, uint64_t version) REQUIRES(mu_);
  void ReleaseOverlayLocked(const DocKey& key) REQUIRES(mu_);
  // Seals `record` for the log's end and appends it; returns its offset. If
  // `upload` is given (a block record's ref, offset unset), the block is
  // registered as unclaimed in the same critical section: compaction, which
  // passes append_mu_ before it looks at unclaimed_, cannot miss it.
  Result<uint64_t> AppendRecord(std::span<std::byte> record, const BlockRef* upload = nullptr)
      EXCLUDES(append_mu_);

  // doc_store_read.cc
  Result<BlockCache::Ptr> GetBlock(const BlockRef& ref, CacheUse cache);
  // Reads, verifies and decodes block `ref` from the volume into `raw`
  // (ref.raw_len bytes), following compaction's forwarding; sets *at to
  // where it was read (ref.offset unless it moved). No cache.
  Status ReadBlock(const BlockRef& ref, std::span<std::byte> raw, uint64_t* at);
  // Reads dest.size() bytes at in_block of a raw block straight from the
  // volume when the slice is small and the block is not cached; false: take
  // GetBlock instead (doc_store_read.cc).
  bool ReadSlice(const BlockRef& ref, uint64_t in_block, std::span<std::byte> dest);

  // doc_store_maintenance.cc
  Status CheckpointLocked() REQUIRES(maintenance_mu_) EXCLUDES(write_mu_, mu_);
  Status AppendCheckpointPartition(uint64_t seq, PartitionId p, CheckpointEnd* end) EXCLUDES(mu_);
  // Reads, verifies and re-appends one block record; returns the copy's ref.
  Result<BlockRef> CopyBlock(const BlockRef& ref);
  bool FrozenLocked(const BlockRef& ref) const REQUIRES(mu_);

  Status sticky() const EXCLUDES(sticky_mu_);
  void SetSticky(const Status& s) EXCLUDES(sticky_mu_);

  raidlib::Volume* const volume_;  // borrowed
  const DocStoreOptions options_;
  Logger log_;
  BlockCache cache_;

  // Serializes Checkpoint and Compact (held across their I/O).
  Mutex maintenance_mu_ ACQUIRED_BEFORE(write_mu_);
  DocRoot root_ GUARDED_BY(maintenance_mu_);  // what the volume's root says
  uint64_t checkpoint_seq_ GUARDED_BY(maintenance_mu_) = 0;

  // Serializes the check-and-append of mutation records, so that records
  // enter the log in the order their checks saw the state. Held across the
  // volume Append, never across Sync. While it is held, pending_ and
  // overlay_ change only by ApplyDurableLocked, which keeps the latest state.
  Mutex write_mu_ ACQUIRED_BEFORE(mu_);

  // Serializes deliveries to the observer (held across them, so across the
  // body reads and the observer's own work; never across an Apply's append).
  Mutex notify_mu_ ACQUIRED_BEFORE(mu_);

  mutable Mutex mu_ ACQUIRED_BEFORE(append_mu_);
  DocIndex index_ GUARDED_BY(mu_);  // durable mutations only
  // The observer and the changes applied but not yet delivered to it.
  struct QueuedChange {
    bool exists = false;
    DocEntry entry;  // partition, collection and id always; the rest when it exists
  };
  ApplyObserver* observer_ GUARDED_BY(mu_) = nullptr;
  std::deque<QueuedChange> changes_ GUARDED_BY(mu_);
  // Per partition, in log order (so in LSN order): a partition whose logged
  // entries wait for their commit point holds up only itself, and cutting
  // or applying one partition's entries never walks the others' (one queue
  // for all made a snapshot install on a node with ~100,000 pending entries
  // take over 30 s under mu_).
  std::map<PartitionId, std::deque<Pending>> pending_ GUARDED_BY(mu_);
  // The log offset of the oldest pending record (UINT64_MAX: none).
  uint64_t OldestPendingOffsetLocked() const REQUIRES(mu_);
  std::map<DocKey, Overlay> overlay_ GUARDED_BY(mu_);
  std::map<std::pair<PartitionId, RequestId>, ApplyResult> pending_requests_ GUARDED_BY(mu_);
  std::map<PartitionId, std::pair<Lsn, Epoch>> latest_lsn_ GUARDED_BY(mu_);  // incl. pending
  // Commit(): logged entries through here may be applied (soft: after a
  // restart every logged entry waits for its replica to commit it again).
  std::map<PartitionId, Lsn> commit_through_ GUARDED_BY(mu_);
  // Compaction: blocks moved by the last kForwardingGenerations compactions
  // (old record offset -> where the block is now), the old offsets each one
  // added, and the ranges of segments being or already released.
  static constexpr size_t kForwardingGenerations = 4;
  std::map<uint64_t, BlockRef> forwarding_ GUARDED_BY(mu_);
  std::deque<std::vector<uint64_t>> forwarding_generations_ GUARDED_BY(mu_);
  std::vector<std::pair<uint64_t, uint64_t>> frozen_ GUARDED_BY(mu_);

  // Held across one seal + volume Append, so a record's offset is known
  // before it is appended (its header checksum is seeded with it).
  Mutex append_mu_ ACQUIRED_BEFORE(unclaimed_mu_, sticky_mu_);

  mutable Mutex unclaimed_mu_ ACQUIRED_BEFORE(sticky_mu_);
  // Blocks written but not yet named by a put: offset WriteBlock returned ->
  // where the block is now (compaction moves them like live ones).
  std::map<uint64_t, BlockRef> unclaimed_ GUARDED_BY(unclaimed_mu_);
  // Offsets in WriteBlock order, for forgetting the oldest; may still list
  // claimed or forgotten ones.
  std::deque<uint64_t> unclaimed_order_ GUARDED_BY(unclaimed_mu_);

  mutable Mutex sticky_mu_;
  Status sticky_ GUARDED_BY(sticky_mu_);  // the first volume write failure

  struct Counters {
    std::atomic<uint64_t> mutations_applied{0};
    std::atomic<uint64_t> mutations_deduplicated{0};
    std::atomic<uint64_t> blocks_written{0};
    std::atomic<uint64_t> checkpoints{0};
    std::atomic<uint64_t> compactions{0};
    std::atomic<uint64_t> segments_released{0};
    std::atomic<uint64_t> blocks_relocated{0};
  } counters_;
};

}  // namespace cairn::chunkserver
