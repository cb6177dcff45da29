// ThriftReplicaTransport: replication messages to peer chunk servers over
// the mutual-TLS Thrift connections (ChunkService Replicate,
// ReplicateAcknowledge and InstallSnapshot). One sender thread per peer with a bounded queue, so
// a slow or dead peer never holds up the replica that sends (ReplicaHost
// calls Send under a partition's lock). Messages that cannot be delivered
// are dropped: the protocol resends what matters.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <tuple>

#include "chunkserver/replica_host.h"
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
  // `pool` is borrowed and must outlive the transport.
  ThriftReplicaTransport(net::ConnectionPool* pool, Resolve resolve, size_t max_queued = 1024);
  ~ThriftReplicaTransport() override;  // Stop()
  ThriftReplicaTransport(const ThriftReplicaTransport&) = delete;
  ThriftReplicaTransport& operator=(const ThriftReplicaTransport&) = delete;

  void Send(NodeId to, PeerMessage msg) override;
  // A synchronous call on the caller's thread (a snapshot stream's), not
  // through the peer's queue.
  Result<SnapshotChunkAnswer> SendSnapshotChunk(NodeId to, const SnapshotChunkMsg& c) override;
  // Stops the senders; queued messages are dropped.
  void Stop();
  // The host whose blocks large entries stage ahead (StageBlocksOf) and that
  // hears of the progress; null: entries in staged form are not sent.
  void SetHost(ReplicaHost* host) { host_ = host; }

 private:
  struct Peer {
    Mutex mu;
    CondVar cv;
    std::deque<PeerMessage> queue GUARDED_BY(mu);
    bool stop GUARDED_BY(mu) = false;
    std::thread thread;
  };
  void Loop(NodeId to, Peer* peer);

  // Stages the blocks of `msg`'s large entries on `to`, but not again for an
  // entry staged there within the last seconds (a retransmission).
  Status StageAhead(NodeId to, const HostPort& where, const PeerMessage& msg);

  net::ConnectionPool* const pool_;
  const Resolve resolve_;
  std::atomic<ReplicaHost*> host_{nullptr};
  // (node, partition, epoch, LSN) -> when its blocks were last staged there.
  Mutex staged_mu_;
  std::map<std::tuple<uint32_t, uint32_t, uint64_t, uint64_t>, Nanos> staged_
      GUARDED_BY(staged_mu_);
  const size_t max_queued_;
  Logger log_;
  Mutex mu_;
  bool stopped_ GUARDED_BY(mu_) = false;
  std::map<NodeId, std::unique_ptr<Peer>> peers_ GUARDED_BY(mu_);
};

}  // namespace cairn::chunkserver
