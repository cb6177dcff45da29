// Replica: the replication state machine of one partition on one chunk server
// (docs/design-replication.md). I/O-free: every input (a client mutation
// already validated by PartitionLogic, a message from a peer, the metaserver's
// configuration for the partition, a lease grant, a durable-write completion,
// a timer tick) comes with `now` (this node's monotonic clock) and returns the
// effects the host must carry out, in order: write to the local log, send a
// message, answer a client, ask the metaserver, apply a committed entry.
//
// The host's duties (what the proof in the design page relies on):
//  - Write effects (Append, Truncate, InstallSnapshot, Compact) are applied to
//    the local log in the order given; each carries a sequence number, and
//    OnDurable(seq) is called once every write up to seq is fsynced (group
//    commit: one call may cover many).
//  - Apply effects come in LSN order, only for committed entries; the host
//    keeps the applied state (documents and the request-id table) and must
//    answer a client retry whose request id that table holds before calling
//    OnClientMutation.
//  - After a restart the Replica is rebuilt from the durable log (Recovered)
//    and its applied state is the durable base; the first configuration it is
//    given must come from a heartbeat answer to a heartbeat sent after the
//    restart (so the replica knows no epoch it may have led before the crash
//    is still current).
//  - SendSnapshot effects are turned into a SnapshotMsg carrying the applied
//    state, which is exactly at applied_lsn() when the effect is emitted.
//
// Thread-compatible: one caller at a time (the host serializes a partition).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "chunkserver/doc_types.h"
#include "common/clock.h"
#include "common/status.h"
#include "common/strong_id.h"

namespace cairn::chunkserver {

// ---------------------------------------------------------------- log

// One entry of a partition's replicated log. A no-op (empty payload, `noop`)
// starts every primary's epoch.
struct LogEntry {
  Lsn lsn;
  Epoch epoch;           // the epoch of the primary that created it
  RequestId request_id;  // empty: not deduplicated (no-ops)
  std::string payload;   // the mutation record, opaque to replication
  bool noop = false;
  bool operator==(const LogEntry&) const = default;
};

// The metaserver's word on one partition (the map's PartitionEntry).
struct ReplicaConfig {
  PartitionId partition;
  Epoch epoch;
  std::vector<NodeId> replicas;  // primary first; the others are backups or learners
  std::vector<NodeId> in_sync;   // includes the primary
  bool operator==(const ReplicaConfig&) const = default;
};

enum class ReplicaRole : uint8_t {
  kNone,     // no configuration yet (just started)
  kPrimary,  // primary of epoch()
  kBackup,   // in the in-sync set of epoch() (or following its primary)
  kLearner,  // a replica outside the in-sync set: catching up
  kFenced,   // named primary of an epoch it may have led before a restart
  kRemoved,  // not a replica of the partition any more
};
const char* ReplicaRoleName(ReplicaRole r);

struct ReplicaOptions {
  // A backup that has not acknowledged outstanding entries for this long is
  // reported to the metaserver (drop from the in-sync set).
  Nanos replication_timeout = std::chrono::milliseconds(1000);
  // Unacknowledged entries are sent again after this (go-back-N), and an
  // idle primary sends an empty Replicate (commit point) this often.
  Nanos retransmit = std::chrono::milliseconds(200);
  // The lease the metaserver grants with each heartbeat answer, and the
  // fraction the primary gives up to bound clock-rate skew.
  Nanos lease = std::chrono::milliseconds(2000);
  double lease_margin = 0.1;
  uint32_t max_batch = 64;      // entries per Replicate
  uint32_t max_inflight = 512;  // entries sent beyond a peer's acknowledged point
  // Committed entries kept in the log for catch-up; a peer further behind
  // gets a snapshot. The log is compacted when twice this many are kept.
  uint32_t log_retention = 1024;
};

// ---------------------------------------------------------------- messages

// Primary -> replica: entries (prev_lsn, prev_lsn + entries.size()] that follow
// the entry (prev_lsn, prev_epoch) of the primary's log, and its commit point.
// Empty `entries` is a heartbeat carrying the commit point.
struct ReplicateMsg {
  PartitionId partition;
  Epoch epoch;
  NodeId from;
  Lsn prev_lsn;
  Epoch prev_epoch;
  std::vector<LogEntry> entries;
  Lsn commit_lsn;
};

// Replica -> primary. ok: the replica's log equals the primary's through
// last_lsn and is durable through it. !ok: the prev entry did not match (or
// the epoch is old: `epoch` is then the replica's newer one); last_lsn is a
// hint where to restart (the replica's last LSN, or prev_lsn - 1).
struct ReplicateAck {
  PartitionId partition;
  Epoch epoch;
  NodeId from;
  bool ok = false;
  Lsn last_lsn;
};

// Primary -> replica too far behind: the applied state at `lsn` (whose entry
// has `lsn_epoch`). `state` is the host's encoding (documents and request-id
// table); ReplicaHost streams it in throttled, resumable chunks below this
// interface (docs/snapshot-stream.md).
struct SnapshotMsg {
  PartitionId partition;
  Epoch epoch;
  NodeId from;
  Lsn lsn;
  Epoch lsn_epoch;
  std::string state;
};

using PeerMessage = std::variant<ReplicateMsg, ReplicateAck, SnapshotMsg>;
PartitionId PartitionOfMessage(const PeerMessage& m);

// Primary -> metaserver: a change of the in-sync set, valid only if the map
// is still at `epoch` with `primary` as primary (compare-and-swap).
struct InSyncRequest {
  enum class Kind : uint8_t { kDrop, kJoin };
  Kind kind = Kind::kDrop;
  PartitionId partition;
  Epoch epoch;
  NodeId primary;
  NodeId node;
};

// What a heartbeat reports for this replica.
struct ReplicaReport {
  PartitionId partition;
  Epoch epoch;
  ReplicaRole role = ReplicaRole::kNone;
  Lsn last_lsn;
  Epoch last_epoch;
  Lsn commit_lsn;
  bool active = false;    // primary whose epoch no-op is committed
  bool can_lead = false;  // false until the first post-restart configuration
};

// ---------------------------------------------------------------- effects

struct AppendEffect {  // write: append these entries at the log's end
  uint64_t seq = 0;
  std::vector<LogEntry> entries;
};
struct TruncateEffect {  // write: remove every entry with lsn > after
  uint64_t seq = 0;
  Lsn after;
};
struct InstallSnapshotEffect {  // write: replace state and log by the snapshot
  uint64_t seq = 0;
  SnapshotMsg snapshot;
};
struct CompactEffect {  // write: entries through `through` may be folded into the base
  uint64_t seq = 0;
  Lsn through;
  Epoch through_epoch;
};
struct SendEffect {
  NodeId to;
  PeerMessage msg;
};
struct SendSnapshotEffect {  // build a SnapshotMsg from the applied state, send it
  NodeId to;
  Epoch epoch;
  Lsn lsn;
  Epoch lsn_epoch;
};
struct ApplyEffect {  // a committed entry, in LSN order
  LogEntry entry;
};
struct ReplyEffect {  // the answer to OnClientMutation's token
  uint64_t token = 0;
  Status status;
  Lsn lsn;
};
struct MetaRequestEffect {
  InSyncRequest request;
};

using ReplicaEffect =
    std::variant<AppendEffect, TruncateEffect, InstallSnapshotEffect, CompactEffect, SendEffect,
                 SendSnapshotEffect, ApplyEffect, ReplyEffect, MetaRequestEffect>;
using Effects = std::vector<ReplicaEffect>;

// What the durable log held at a restart: a base (the state through base_lsn,
// folded) and the entries after it.
struct RecoveredLog {
  Lsn base_lsn;
  Epoch base_epoch;
  std::vector<LogEntry> entries;
  // The partition never existed on this node before this process made it
  // (no log at all, not an empty one): it cannot have led any epoch, so it
  // need not wait for a post-restart configuration before leading.
  bool fresh = false;
};

// ---------------------------------------------------------------- the machine

class Replica {
 public:
  // A replica whose durable log is `log` (empty for a new one).
  Replica(NodeId self, PartitionId partition, ReplicaOptions options, RecoveredLog log);
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  // The partition's configuration from the metaserver (older epochs ignored).
  Effects OnConfig(const ReplicaConfig& config, Nanos now);
  // The answer to a heartbeat sent at `sent_at` (this node's clock) granted a
  // lease for `epoch`: valid until sent_at + lease * (1 - lease_margin).
  Effects OnLease(Epoch epoch, Nanos sent_at, Nanos now);
  // A validated mutation. Answered by a ReplyEffect with `token`: OK with the
  // LSN once committed on every in-sync replica; NotPrimary / Unavailable
  // (no lease, epoch not yet active) otherwise. A request id already in the
  // log of this epoch joins that entry's answer.
  Effects OnClientMutation(uint64_t token, const RequestId& request_id, std::string payload,
                           Nanos now);
  Effects OnMessage(const PeerMessage& msg, Nanos now);
  // Every write effect with seq <= `seq` is durable.
  Effects OnDurable(uint64_t seq, Nanos now);
  Effects OnTick(Nanos now);
  // Primary: the transport is delivering to `peer` (the blocks of a large
  // entry, staged ahead of it): it counts as progress, so a backup is not
  // reported for a slow transfer of one big entry.
  Effects OnPeerProgress(NodeId peer, Nanos now);
  // Primary: `peer` confirmed it holds the snapshot at `lsn` (the host's
  // stream ended with the receiver's "done"). Sending goes on from the entry
  // after it at once; waiting for the peer's durable acknowledgement instead
  // let the next tick start another snapshot of a moving state, again and
  // again while writes ran.
  Effects OnSnapshotDelivered(NodeId peer, Lsn lsn, Nanos now);

  // Primary, active: the peers that take new entries through the log now
  // (not waiting for a snapshot, within max_inflight of the log's end), to
  // which an upload's blocks are worth streaming ahead of its put.
  std::vector<NodeId> StreamPeers() const;

  // OK when a read may be served from the applied state: primary, its epoch
  // active, lease valid at `now`. NotPrimary / Unavailable otherwise.
  Status CheckRead(Nanos now) const;
  // OK when a read may be served from the applied state of this node as a
  // backup (docs/design-replication.md "Reads from backups"): it is in the
  // in-sync set of its epoch's configuration and heard from that epoch's
  // primary less than `max_lag` before `now`. Its state then holds every
  // write acknowledged before that contact. The primary answers as
  // CheckRead; a learner, fenced or removed replica refuses.
  Status CheckBackupRead(Nanos now, Nanos max_lag) const;

  ReplicaReport Report() const;
  NodeId self() const { return self_; }
  PartitionId partition() const { return partition_; }
  Epoch epoch() const { return epoch_; }
  ReplicaRole role() const { return role_; }
  bool active() const { return active_; }
  Lsn last_lsn() const { return Lsn(base_lsn_.value() + entries_.size()); }
  Lsn commit_lsn() const { return commit_; }
  Lsn applied_lsn() const { return applied_; }
  Lsn durable_lsn() const { return durable_; }
  Lsn base_lsn() const { return base_lsn_; }
  // The epoch of the entry at `lsn` (base_lsn..last_lsn), Epoch(0) for lsn 0.
  Epoch EpochAt(Lsn lsn) const;
  // The entry at `lsn` (base_lsn < lsn <= last_lsn), else nullptr.
  const LogEntry* EntryAt(Lsn lsn) const;

 private:
  struct Peer {
    Lsn next;   // next LSN to send
    Lsn match;  // acknowledged: equal and durable through here
    // A snapshot the peer said it installed, not yet acknowledged durably:
    // retransmissions go back to it, not below it (which would be another
    // snapshot). Lowered to what the peer says it holds when it refuses an
    // entry.
    Lsn delivered;
    Nanos last_send{INT64_MIN / 2};
    Nanos last_progress{0};
    Nanos last_snapshot{INT64_MIN / 2};
    Nanos last_request{INT64_MIN / 2};  // drop or join asked at
    Nanos last_ack{INT64_MIN / 2};      // its last answer in this epoch
  };

  uint64_t NextSeq() { return ++write_seq_; }
  void Append(std::vector<LogEntry> entries);
  void TruncateAfter(Lsn after);
  void ApplyThrough(Lsn lsn);
  void MaybeCompact();
  void BecomePrimary(Epoch epoch, Nanos now);
  void StepDown(const Status& why);
  void AdoptEpoch(Epoch epoch, NodeId primary);
  void SyncPeers(Nanos now);
  void SendTo(NodeId to, Peer* peer, Nanos now, bool force);
  void AdvanceCommit(Nanos now);
  void MaybeRequest(Nanos now);
  bool InCommitSet(NodeId n) const;
  bool InSync(NodeId n) const;
  void AckPrimary(NodeId to);
  void OnReplicate(const ReplicateMsg& m, Nanos now);
  void OnAck(const ReplicateAck& m, Nanos now);
  void OnSnapshot(const SnapshotMsg& m, Nanos now);
  Effects Take();

  const NodeId self_;
  const PartitionId partition_;
  const ReplicaOptions options_;

  // Configuration.
  Epoch epoch_;
  ReplicaRole role_ = ReplicaRole::kNone;
  NodeId primary_;
  std::optional<ReplicaConfig> config_;  // of epoch_, once known
  bool awaiting_first_config_ = true;
  Epoch lead_floor_;  // never lead an epoch below this (restart fence)

  // The log: base (folded, committed) + entries.
  Lsn base_lsn_;
  Epoch base_epoch_;
  std::deque<LogEntry> entries_;
  Lsn durable_;  // the log through here is durable (and is this log)
  uint64_t write_seq_ = 0;
  std::deque<std::pair<uint64_t, Lsn>> unsynced_;  // write seq -> last LSN it makes durable
  Lsn commit_;
  Lsn applied_;
  Lsn matched_;  // backup: equal to the primary's log of epoch_ through here
  Nanos primary_contact_{INT64_MIN / 2};  // backup: last Replicate of epoch_'s primary

  // Primary only.
  bool active_ = false;
  Lsn epoch_start_;  // the no-op of this epoch
  Nanos lease_expiry_{INT64_MIN / 2};
  std::map<NodeId, Peer> peers_;
  // Learners close to the commit point (asked to join, or to be asked once
  // they hold every committed entry): counted in the commit set.
  std::set<NodeId> pending_joins_;
  std::map<Lsn, std::vector<uint64_t>> waiters_;
  std::map<RequestId, Lsn> pending_requests_;

  Effects out_;
};

}  // namespace cairn::chunkserver
