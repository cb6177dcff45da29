// ThriftReplicaTransport: replication messages to peer chunk servers over
// the mutual-TLS Thrift connections (ChunkService Replicate,
// ReplicateAcknowledge and InstallSnapshot). One sender thread per peer with a bounded queue, so
// a slow or dead peer never holds up the replica that sends (ReplicaHost
// calls Send under a partition's lock). Messages that cannot be delivered
// are dropped: the protocol resends what matters. So are messages that
// waited in the queue longer than `max_age`: the protocol has resent them by
// then (every 200 ms), and after a peer was unreachable for a while (calls
// hanging until their timeouts while the queue filled) sending the stale
// backlog first kept every later message as late, so an old primary that
// came back could not catch up while writes went on. The queue is bounded
// by bytes as well as by count: a message carries up to stage_bytes (4 MiB)
// of blocks inline, so 1024 of them to a slow peer could hold 4 GiB.
//
// Blocks of uploads streamed ahead of their puts (SendAhead) have a queue
// and a thread of their own per peer, bounded by `max_ahead_bytes`: a
// full queue makes SendAhead wait (up to `ahead_wait`), which slows the
// upload to what the peer takes. The transport remembers which blocks each
// peer took; when an entry that names them is sent, they are not staged
// again (the sender thread first waits for the ones still in flight). A
// block the peer did not take (it failed, was dropped, or the peer lost
// it: Replicate answers NotFound) is staged with its entry as before.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <thread>
#include <tuple>

#include "chunkserver/replica_host.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/logging.h"
#include "common/mutex.h"

namespace cairn::net {
class ConnectionPool;
}

namespace cairn::chunkserver {

class ThriftReplicaTransport : public ReplicaTransport {
 public:
  // Where a node is served, from the current map (nullopt: unknown).
  using Resolve = std::function<std::optional<HostPort>(NodeId)>;
  // `pool` and `clock` are borrowed and must outlive the transport.
  ThriftReplicaTransport(net::ConnectionPool* pool, Resolve resolve, Clock* clock,
                         size_t max_queued = 1024, Nanos max_age = std::chrono::milliseconds(1000),
                         size_t max_queued_bytes = size_t{64} << 20,
                         size_t max_ahead_bytes = size_t{16} << 20,
                         Nanos ahead_wait = std::chrono::seconds(2));
  ~ThriftReplicaTransport() override;  // Stop()
  ThriftReplicaTransport(const ThriftReplicaTransport&) = delete;
  ThriftReplicaTransport& operator=(const ThriftReplicaTransport&) = delete;

  void Send(NodeId to, PeerMessage msg) override;
  void SendAhead(NodeId to, StagedBlock b) override;
  // A synchronous call on the caller's thread (a snapshot stream's), not
  // through the peer's queue.
  Result<SnapshotChunkAnswer> SendSnapshotChunk(NodeId to, const SnapshotChunkMsg& c) override;
  // What waits in `to`'s queue (tests, status).
  struct QueueStats {
    size_t messages = 0;
    size_t bytes = 0;
  };
  QueueStats queued(NodeId to) const;
  // Blocks streamed ahead, over all peers, since start.
  struct AheadStats {
    uint64_t sent = 0;     // taken by the peer
    uint64_t failed = 0;   // the call failed
    uint64_t dropped = 0;  // not sent: the peer failing, or its queue full too long
    uint64_t reused = 0;   // not staged again with their entry
  };
  AheadStats ahead_stats() const;
  // Stops the senders; queued messages are dropped.
  void Stop();
  // The host whose blocks large entries stage ahead (StageBlocksOf) and that
  // hears of the progress; null: entries in staged form are not sent.
  void SetHost(ReplicaHost* host) { host_ = host; }

 private:
  // (partition, the block's offset in this node's volume).
  using AheadKey = std::pair<uint32_t, uint64_t>;
  struct Peer {
    Mutex mu;
    CondVar cv;
    // Blocks streamed ahead: queued; queued or in flight; taken, and when.
    std::deque<StagedBlock> ahead GUARDED_BY(mu);
    size_t ahead_bytes GUARDED_BY(mu) = 0;
    std::set<AheadKey> ahead_pending GUARDED_BY(mu);
    std::map<AheadKey, Nanos> ahead_taken GUARDED_BY(mu);
    Nanos ahead_failed_at GUARDED_BY(mu){INT64_MIN / 2};
    std::thread ahead_thread;
    struct Queued {
      Nanos at;  // when Send queued it
      PeerMessage msg;
      size_t bytes = 0;  // ApproximateBytes(msg)
    };
    std::deque<Queued> queue GUARDED_BY(mu);
    size_t queued_bytes GUARDED_BY(mu) = 0;
    bool stop GUARDED_BY(mu) = false;
    std::thread thread;
  };
  // The peer's queues and threads, made on first use (null once stopped).
  Peer* PeerFor(NodeId to);
  void Loop(NodeId to, Peer* peer);
  void AheadLoop(NodeId to, Peer* peer);
  // Sender thread: true when `to` took `b` streamed ahead (after waiting
  // for it while in flight); forgets it, so that a retry stages it.
  bool TakenAhead(Peer* peer, const StagedBlock& b);
  // `to` answered that it lacks the staged blocks of `msg`'s entries.
  void ForgetStaged(NodeId to, Peer* peer, const PeerMessage& msg);
  static void PopFront(Peer* peer) REQUIRES(peer->mu);

  // Stages the blocks of `msg`'s large entries on `to`, but not again for an
  // entry staged there within the last minute (a retransmission: the
  // receiver keeps staged blocks 5 minutes, and answers NotFound when it
  // lacks them, which makes the next try stage them again).
  Status StageAhead(NodeId to, Peer* peer, const HostPort& where, const PeerMessage& msg);

  net::ConnectionPool* const pool_;
  const Resolve resolve_;
  std::atomic<ReplicaHost*> host_{nullptr};
  // (node, partition, epoch, LSN) -> when its blocks were last staged there.
  Mutex staged_mu_;
  std::map<std::tuple<uint32_t, uint32_t, uint64_t, uint64_t>, Nanos> staged_
      GUARDED_BY(staged_mu_);
  Clock* const clock_;
  const size_t max_queued_;
  const Nanos max_age_;
  const size_t max_queued_bytes_;
  const size_t max_ahead_bytes_;
  const Nanos ahead_wait_;
  std::atomic<uint64_t> ahead_sent_{0}, ahead_failed_{0}, ahead_dropped_{0}, ahead_reused_{0};
  Logger log_;
  mutable Mutex mu_;
  bool stopped_ GUARDED_BY(mu_) = false;
  std::map<NodeId, std::unique_ptr<Peer>> peers_ GUARDED_BY(mu_);
};

}  // namespace cairn::chunkserver
