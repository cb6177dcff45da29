// ReplicaHost: runs the replication state machines (replica.h) of one chunk
// server over its DocStore (docs/design-replication.md "Phase 2"). One
// Replica per partition this node holds; the host carries out their effects:
//
//   Append    DocStore::Log / LogNoop (the entry's payload is its mutation
//             record with this volume's block references)
//   Truncate  DocStore::Truncate
//   Apply     DocStore::Commit (the index shows the entry from then on)
//   Send      the transport, with the put's block bytes attached
//             (hydrated: block references are local to a volume)
//   Reply     wakes the Mutate() call waiting for it
//   Meta      the metaserver link (in-sync drop or join)
//
// and calls OnDurable after its group-commit thread has synced the volume,
// and OnTick from a timer thread. A restart rebuilds every replica from the
// doc store: the checkpoint is the base, the logged entries after it the log
// (options.replicated must be on).
//
// A replica behind the primary's kept log gets a snapshot: the partition's
// applied state and the bytes of every block it names, in one message.
//
// Cut from this step (see the design page): streamed, throttled, resumable
// snapshots; blocks streamed ahead of a large put (a put's blocks travel with
// its entry); pinning the blocks of kept entries against compaction.
//
// Thread-safe. Lock order: a partition's slot lock -> the DocStore's locks;
// the slot table lock and the waiter lock are leaves.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "chunkserver/doc_store.h"
#include "chunkserver/replica.h"
#include "common/clock.h"
#include "common/logging.h"
#include "common/mutex.h"
#include "common/status.h"

namespace cairn::chunkserver {

// Delivers replication messages to peers. Send must not block on the peer
// and may lose messages (the protocol resends).
class ReplicaTransport {
 public:
  virtual ~ReplicaTransport() = default;
  virtual void Send(NodeId to, PeerMessage msg) = 0;
};

// The metaserver, for a primary's in-sync requests (asynchronous: the answer
// comes back as a new configuration).
class ReplicaMetaLink {
 public:
  virtual ~ReplicaMetaLink() = default;
  virtual void RequestInSync(const InSyncRequest& request) = 0;
};

struct ReplicaHostOptions {
  ReplicaOptions replica;
  Nanos tick = std::chrono::milliseconds(20);
  // A mutation not committed within this is answered Unavailable (the
  // client retries with the same request id).
  Nanos mutation_timeout = std::chrono::seconds(5);
  // A backup serves reads that allow it only while it heard from its primary
  // and from the metaserver (an answered heartbeat) within this.
  Nanos backup_read_max_lag = std::chrono::milliseconds(1000);
  // A put entry whose blocks hold more raw bytes than this, or that would
  // take a message's inline block bytes past it, travels without them: the
  // transport first stages its blocks on the receiver, one per call
  // (StageBlocksOf). So no message carries more than this of block bytes.
  uint64_t stage_bytes = 4ull << 20;
  // Staged blocks no entry claimed are forgotten after this.
  Nanos stage_expiry = std::chrono::minutes(5);
};

// The wire form of a log entry's payload: the mutation record, then the raw
// bytes of each block it names, in order (none for deletes, renames and
// no-ops).
std::string EncodeWirePayload(std::string_view record, const std::vector<std::string>& blocks);
// The wire form of an entry whose blocks are staged ahead of it.
std::string EncodeStagedWirePayload(std::string_view record);
// `staged` (may be null) says which form it was; a staged one has no blocks.
Status DecodeWirePayload(std::string_view wire, std::string* record,
                         std::vector<std::string>* blocks, bool* staged = nullptr);

// One block of a large put entry, staged on a replica ahead of the entry.
struct StagedBlock {
  PartitionId partition;
  Epoch epoch;  // the entry's
  Lsn lsn;
  uint32_t index = 0;
  uint64_t hash = 0;  // the block's content hash (BlockRef::hash)
  std::string data;   // raw bytes
};
// For every entry of `msg` in staged form, in order: each block, read with
// `read` (the sender's local ref) and handed to `stage`. Stops at the first
// error. What a transport does before it sends `msg`.
Status StageBlocksOf(const PeerMessage& msg,
                     const std::function<Result<std::string>(PartitionId, const BlockRef&)>& read,
                     const std::function<Status(const StagedBlock&)>& stage);

class ReplicaHost {
 public:
  // `store` (opened with options.replicated), `transport`, `meta` and
  // `clock` are borrowed and must outlive the host.
  ReplicaHost(NodeId self, DocStore* store, ReplicaHostOptions options, ReplicaTransport* transport,
              ReplicaMetaLink* meta, Clock* clock);
  ~ReplicaHost();
  ReplicaHost(const ReplicaHost&) = delete;
  ReplicaHost& operator=(const ReplicaHost&) = delete;

  // Rebuilds a replica for every partition the store holds and starts the
  // sync and timer threads.
  Status Start();
  // Stops the threads; pending Mutate calls get Unavailable.
  void Stop();

  // The metaserver's configuration of a partition (creates its replica on a
  // node that did not hold it: a fresh, empty one).
  void OnConfig(const ReplicaConfig& config);
  // A lease for `epoch` from the answer to a heartbeat sent at `sent_at`.
  void OnLease(PartitionId p, Epoch epoch, Nanos sent_at);
  // The metaserver answered a heartbeat sent at `sent_at` (this node's clock).
  void OnMetaContact(Nanos sent_at);
  // A message from a peer, payloads in wire form.
  void OnMessage(const PeerMessage& msg);
  // A block staged ahead of its entry (receiver side): written to the volume
  // and kept until the entry claims it or it expires. DataLoss when the
  // bytes do not match the hash; AlreadyExists when the replica holds the
  // entry already (the sender skips the rest of its blocks).
  Status StageBlock(const StagedBlock& b);
  // The raw bytes of one of this node's blocks (sender side of staging).
  Result<std::string> ReadBlock(PartitionId p, const BlockRef& ref);
  // The transport delivered part of a large entry to `peer` (sender side).
  void NotePeerProgress(PartitionId p, NodeId peer);
  size_t staged_blocks();  // held for entries not yet received

  // A client's mutation of `m.partition` (its LSN and epoch are assigned
  // here): checked against the logged state, replicated, and answered once
  // committed on every in-sync replica. A request id already applied gets its
  // first answer. NotPrimary / Unavailable when this node cannot take it now.
  Result<ApplyResult> Mutate(Mutation m);
  // OK when a read of `p` may be served here: the active primary under its
  // lease, or with `allow_backup` also an in-sync backup in recent touch
  // with its primary and the metaserver (Replica::CheckBackupRead).
  Status CheckRead(PartitionId p, bool allow_backup = false);

  // Reads CheckRead let a backup serve, since start.
  uint64_t backup_reads() const { return backup_reads_.load(); }

  std::vector<ReplicaReport> Reports();
  std::optional<ReplicaReport> Report(PartitionId p);
  NodeId self() const { return self_; }

 private:
  struct Slot {
    Mutex mu;
    std::unique_ptr<Replica> replica GUARDED_BY(mu);
    // Write effects not yet durable: (seq, the record's end offset).
    std::vector<std::pair<uint64_t, uint64_t>> unsynced GUARDED_BY(mu);
  };
  struct Waiter {
    bool done = false;
    Status status;
    Lsn lsn;
  };

  Slot* Find(PartitionId p);
  Slot* FindOrCreate(PartitionId p);
  // Carries out `fx` in order; `slot->mu` held.
  void Run(Slot* slot, Effects fx) REQUIRES(slot->mu);
  Status DoAppend(Slot* slot, const AppendEffect& a) REQUIRES(slot->mu);
  // The wire form of `msg` (block bytes attached).
  Result<PeerMessage> Hydrate(const PeerMessage& msg);
  // Replaces wire payloads by local ones, writing the blocks of entries the
  // replica lacks; `written` gets the blocks per LSN.
  Result<PeerMessage> Localize(Slot* slot, const PeerMessage& msg,
                               std::map<Lsn, std::vector<BlockRef>>* written) REQUIRES(slot->mu);
  // The snapshot a SendSnapshot effect asks for (wire form), and one received
  // turned into this volume's blocks.
  Result<PeerMessage> BuildSnapshot(PartitionId p, const SendSnapshotEffect& e);
  Result<PeerMessage> LocalizeSnapshot(Slot* slot, const SnapshotMsg& m,
                                       std::map<Lsn, std::vector<BlockRef>>* written)
      REQUIRES(slot->mu);
  void Fail(const Status& s);
  void SyncLoop();
  void TickLoop();

  const NodeId self_;
  DocStore* const store_;
  const ReplicaHostOptions options_;
  ReplicaTransport* const transport_;
  ReplicaMetaLink* const meta_;
  Clock* const clock_;
  Logger log_;

  Mutex slots_mu_;
  std::map<PartitionId, std::unique_ptr<Slot>> slots_ GUARDED_BY(slots_mu_);

  Mutex waiters_mu_;
  CondVar waiters_cv_;
  std::map<uint64_t, Waiter> waiters_ GUARDED_BY(waiters_mu_);
  std::atomic<uint64_t> next_token_{0};

  Mutex run_mu_;
  CondVar run_cv_;
  bool stopping_ GUARDED_BY(run_mu_) = false;
  bool sync_wanted_ GUARDED_BY(run_mu_) = false;
  std::atomic<bool> failed_{false};                   // a write to the store failed: stop acting
  std::atomic<int64_t> meta_contact_{INT64_MIN / 2};  // OnMetaContact, Nanos count
  std::atomic<uint64_t> backup_reads_{0};

  struct StageKey {
    PartitionId partition;
    uint64_t epoch = 0;
    uint64_t lsn = 0;
    uint32_t index = 0;
    auto operator<=>(const StageKey&) const = default;
  };
  struct Staged {
    BlockRef ref;
    Nanos at;
  };
  // Takes the staged blocks of an entry (all or none).
  Result<std::vector<BlockRef>> TakeStaged(PartitionId p, Epoch epoch, Lsn lsn,
                                           const std::vector<BlockRef>& want);
  void ExpireStaged();
  Mutex stage_mu_;
  std::map<StageKey, Staged> staged_ GUARDED_BY(stage_mu_);
  std::thread sync_thread_;
  std::thread tick_thread_;
};

}  // namespace cairn::chunkserver
