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
// applied state and the bytes of every block it names, streamed in chunks
// (snapshot_stream.h, docs/snapshot-stream.md) by a thread per outgoing
// stream, paced by one RateLimiter for all of them, and resumed from the
// first chunk the receiver has not acknowledged after a failed call. The
// receiver writes each chunk's blocks as it arrives and stages them under the
// snapshot id; only the last chunk hands the replica a whole SnapshotMsg
// (whose install is the doc store's one atomic snapshot record). A staged
// snapshot that is replaced, idle past snapshot_stream_timeout, overtaken by
// the replica's commit point, or stopped has its blocks forgotten; after a
// crash they are unreferenced and compaction reclaims them.
//
// The blocks of an upload are streamed on to the other replicas as they
// reach the primary (StreamAhead, before the put that commits them has an
// LSN), so that the entry finds them there (docs/design-replication.md
// "Large puts"). Cut from this step: pinning the blocks of kept entries
// against compaction.
//
// Thread-safe. Lock order: a partition's stage lock -> its slot lock ->
// the stream table lock -> the DocStore's locks; the slot table lock, the
// waiter lock and run_mu_ are leaves.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include "chunkserver/doc_store.h"
#include "chunkserver/replica.h"
#include "chunkserver/snapshot_stream.h"
#include "common/clock.h"
#include "common/logging.h"
#include "common/mutex.h"
#include "common/rate_limiter.h"
#include "common/status.h"

namespace cairn::chunkserver {

// One block of a large put entry, staged on a replica ahead of the entry:
// either for a known entry (epoch, lsn, index), or (`ahead`) a block of an
// upload, streamed on by the primary `source` before its put has an LSN,
// known by its offset in that node's volume (the entry's record, sent by
// that node, names it by that BlockRef; offsets are never reused).
struct StagedBlock {
  PartitionId partition;
  Epoch epoch;  // the entry's; ahead: the primary's when it streamed it
  Lsn lsn;
  uint32_t index = 0;
  uint64_t hash = 0;  // the block's content hash (BlockRef::hash)
  std::string data;   // raw bytes
  bool ahead = false;
  NodeId source;               // ahead: the primary that streamed it
  uint64_t source_offset = 0;  // ahead: BlockRef::offset on that node
};

// Delivers replication messages to peers. Send must not block on the peer
// and may lose messages (the protocol resends).
class ReplicaTransport {
 public:
  virtual ~ReplicaTransport() = default;
  virtual void Send(NodeId to, PeerMessage msg) = 0;
  // Sends one chunk of a streamed snapshot and returns the receiver's
  // answer. Blocking; called from a snapshot stream's own thread, never under
  // a partition's lock. An error means the chunk may or may not have arrived
  // (the stream sends it again; the receiver's answer sorts it out).
  virtual Result<SnapshotChunkAnswer> SendSnapshotChunk(NodeId to, const SnapshotChunkMsg& c) = 0;
  // A block of an upload, streamed to `to` ahead of the put that will name
  // it (`b.ahead`). Best effort: a block that does not arrive is staged
  // with its entry later. May wait a little while the peer is behind
  // (back-pressure on the upload); never under a partition's lock.
  virtual void SendAhead(NodeId to, StagedBlock b) { (void)to, (void)b; }
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
  // Raw bytes of blocks streamed ahead held here (for puts not yet come).
  // Past it, more are refused (the primary stages them with their entries):
  // puts that keep failing cannot fill the disks with orphans.
  uint64_t max_ahead_bytes = uint64_t{4} << 30;
  // Snapshots: data bytes per chunk; bytes per second sent over all
  // outgoing streams (0: unlimited); outgoing streams at a time (more wait
  // for the replica to ask again), in all and to one peer; the first retry delay after a failed
  // chunk (doubling to 5 s); a stream failing this long is given up, and a
  // staged snapshot receiving nothing this long is dropped.
  size_t snapshot_chunk_bytes = size_t{4} << 20;
  uint64_t snapshot_rate_bytes_per_s = uint64_t{100} << 20;
  size_t max_snapshot_streams = 16;
  size_t max_snapshot_streams_per_peer = 4;  // a dead peer's streams block only its own
  Nanos snapshot_retry = std::chrono::milliseconds(200);
  Nanos snapshot_stream_timeout = std::chrono::seconds(60);
};

// Snapshot counters (sender and receiver side), monotonic.
struct SnapshotStats {
  uint64_t streams_started = 0;
  uint64_t streams_completed = 0;  // the receiver answered done
  uint64_t streams_abandoned = 0;  // given up, superseded or stopped
  uint64_t chunks_planned = 0;     // over every stream started
  uint64_t chunks_sent = 0;        // calls that returned an answer
  uint64_t chunk_failures = 0;     // calls that failed (the chunk is retried)
  uint64_t chunks_rewound = 0;     // answers asking for an earlier chunk
  uint64_t bytes_sent = 0;         // chunk data bytes of chunks_sent
  uint64_t chunks_received = 0;    // taken into a stage
  uint64_t chunks_duplicate = 0;   // already held (an answer was lost)
  uint64_t stages_dropped = 0;     // abandoned, their blocks forgotten
  uint64_t snapshots_installed = 0;
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

// For every entry of `msg` in staged form, in order: each block, read with
// `read` (the sender's local ref) and handed to `stage`, unless `held` (may
// be null) says the receiver has it already (streamed ahead: `b` without
// data, its source_offset set). Stops at the first error. What a transport
// does before it sends `msg`.
Status StageBlocksOf(const PeerMessage& msg,
                     const std::function<Result<std::string>(PartitionId, const BlockRef&)>& read,
                     const std::function<Status(const StagedBlock&)>& stage,
                     const std::function<bool(const StagedBlock&)>& held = nullptr);

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
  // A message from a peer, payloads in wire form. NotFound when an entry's
  // blocks were to be staged here and are not (lost in a restart, or
  // expired): the sender stages them again with its next try. Other
  // failures are logged and the message dropped (the sender resends).
  Status OnMessage(const PeerMessage& msg);
  // A block staged ahead of its entry (receiver side): written to the volume
  // and kept until the entry claims it or it expires. DataLoss when the
  // bytes do not match the hash; AlreadyExists when the replica holds the
  // entry already (the sender skips the rest of its blocks); StaleEpoch for
  // a block streamed ahead in an epoch older than this replica's;
  // LimitExceeded when max_ahead_bytes are held.
  Status StageBlock(const StagedBlock& b);
  // Primary side of an upload: `data` was written here as `ref` for a put
  // of `p` still to come. Streams it to the replicas that will get that
  // put through the log (no-op unless this node is p's active primary).
  // May wait while a peer is behind (the transport's back-pressure).
  void StreamAhead(PartitionId p, const BlockRef& ref, std::string_view data);
  // The raw bytes of one of this node's blocks (sender side of staging).
  Result<std::string> ReadBlock(PartitionId p, const BlockRef& ref);
  // The transport delivered part of a large entry to `peer` (sender side).
  void NotePeerProgress(PartitionId p, NodeId peer);
  size_t staged_blocks();  // held for entries not yet received (ahead ones too)
  // Blocks streamed ahead: handed to the transport here (as a primary);
  // received here, and claimed here by their entries.
  uint64_t ahead_sent() const { return ahead_sent_.load(); }
  uint64_t ahead_received() const { return ahead_received_.load(); }
  uint64_t ahead_claimed() const { return ahead_claimed_.load(); }

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

  // One chunk of a snapshot streamed to this node (a partition it holds):
  // staged, and on the last one handed to the replica. The answer names the
  // chunk wanted next, or done. StaleEpoch for a sender below the replica's
  // epoch; Unavailable when the partition is not configured here yet; a
  // malformed or corrupt chunk drops the stage (the sender starts again).
  Result<SnapshotChunkAnswer> OnSnapshotChunk(const SnapshotChunkMsg& c);
  // A snapshot being received for `p`: bytes staged and in all.
  struct SnapshotProgress {
    uint64_t bytes_done = 0;
    uint64_t bytes_total = 0;
  };
  std::optional<SnapshotProgress> ReceivingSnapshot(PartitionId p);
  SnapshotStats snapshot_stats() const;

 private:
  struct Slot {
    // The snapshot being received (held across a chunk's block writes, so
    // that the replica's lock is not).
    Mutex stage_mu ACQUIRED_BEFORE(mu);
    std::unique_ptr<SnapshotStage> stage GUARDED_BY(stage_mu);
    Nanos stage_touched GUARDED_BY(stage_mu){0};
    Mutex mu;
    std::unique_ptr<Replica> replica GUARDED_BY(mu);
    // Write effects not yet durable: (seq, the record's end offset).
    std::vector<std::pair<uint64_t, uint64_t>> unsynced GUARDED_BY(mu);
  };
  // An outgoing snapshot, streamed by its own thread.
  struct OutStream {
    PartitionId partition;
    NodeId to;
    Epoch epoch;  // the primary's when the stream started
    Lsn lsn;
    Epoch lsn_epoch;
    uint64_t id = 0;
    std::unique_ptr<SnapshotSource> source;
    std::thread thread;
    bool finished = false;  // guarded by streams_mu_: the thread is about to return
  };
  struct Probe {
    std::atomic<uint64_t> streams_started{0}, streams_completed{0}, streams_abandoned{0},
        chunks_planned{0}, chunks_sent{0}, chunk_failures{0}, chunks_rewound{0}, bytes_sent{0},
        chunks_received{0}, chunks_duplicate{0}, stages_dropped{0}, snapshots_installed{0};
  };
  struct Waiter {
    bool done = false;
    Status status;
    Lsn lsn;
  };

  Slot* Find(PartitionId p);
  // A replica the map no longer gives this node: its data is dropped from
  // the store and the replica starts over empty.
  void DropRemoved(Slot* slot, const ReplicaConfig& config) REQUIRES(slot->mu);
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
  // replica_host_snapshot.cc. Starts streaming the snapshot a SendSnapshot
  // effect asks for, unless one to that peer is under way.
  void StartSnapshotStream(Slot* slot, const SendSnapshotEffect& e) REQUIRES(slot->mu);
  void StreamLoop(OutStream* s);
  // The current epoch if this node is still `p`'s primary, else nullopt.
  std::optional<Epoch> PrimaryEpoch(PartitionId p);
  // Drops a staged snapshot and forgets its blocks.
  void DropStage(Slot* slot, const char* why) REQUIRES(slot->stage_mu);
  // Drops `slot`'s stage if it is idle too long or no longer needed.
  void ExpireStage(Slot* slot);
  // Waits `d` unless the host stops first (true: stopping).
  bool SleepOrStop(Nanos d);
  void StopStreams();
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
  // (partition, the primary that streamed it, the block's offset there).
  using AheadKey = std::tuple<uint32_t, uint64_t, uint64_t>;
  // StageBlock of a block streamed ahead (`b.ahead`).
  Status KeepStreamed(const StagedBlock& b);
  // Takes the staged blocks of an entry (all or none): staged for it, or
  // streamed ahead under the primary's ref that its record names.
  // NotFound when one is missing.
  Result<std::vector<BlockRef>> TakeStaged(PartitionId p, NodeId from, Epoch epoch, Lsn lsn,
                                           const std::vector<BlockRef>& want);
  void ExpireStaged();
  Mutex stage_mu_;
  std::map<StageKey, Staged> staged_ GUARDED_BY(stage_mu_);
  std::map<AheadKey, Staged> ahead_ GUARDED_BY(stage_mu_);
  // Primary side: blocks this node streamed ahead, (partition, offset) ->
  // when. An entry naming one travels in staged form whatever its size, so
  // that the blocks the peer took are not sent again inside the entry.
  std::map<std::pair<uint32_t, uint64_t>, Nanos> streamed_ GUARDED_BY(stage_mu_);
  uint64_t ahead_bytes_ GUARDED_BY(stage_mu_) = 0;  // raw_len over ahead_
  std::atomic<uint64_t> ahead_sent_{0}, ahead_received_{0}, ahead_claimed_{0};
  std::thread sync_thread_;
  std::thread tick_thread_;

  RateLimiter snapshot_limiter_;
  const uint64_t snapshot_id_base_;  // ids of this incarnation's streams start here
  std::atomic<uint64_t> snapshot_seq_{0};
  Probe probe_;
  Mutex streams_mu_;
  bool streams_stopped_ GUARDED_BY(streams_mu_) = false;
  std::map<std::pair<PartitionId, NodeId>, std::unique_ptr<OutStream>> streams_
      GUARDED_BY(streams_mu_);
};

}  // namespace cairn::chunkserver
