#include "chunkserver/replica_transport.h"

#include "ChunkService.h"
#include "chunkserver/replica_wire.h"
#include "thrift/rpc_client.h"

namespace cairn::chunkserver {

ThriftReplicaTransport::ThriftReplicaTransport(net::ConnectionPool* pool, Resolve resolve,
                                               size_t max_queued)
    : pool_(pool), resolve_(std::move(resolve)), max_queued_(max_queued), log_("replication") {}

ThriftReplicaTransport::~ThriftReplicaTransport() { Stop(); }

void ThriftReplicaTransport::Stop() {
  std::map<NodeId, std::unique_ptr<Peer>> peers;
  {
    MutexLock l(&mu_);
    stopped_ = true;
    peers.swap(peers_);
  }
  for (auto& [n, p] : peers) {
    {
      MutexLock l(&p->mu);
      p->stop = true;
      p->cv.NotifyAll();
    }
    p->thread.join();
  }
}

void ThriftReplicaTransport::Send(NodeId to, PeerMessage msg) {
  Peer* peer = nullptr;
  {
    MutexLock l(&mu_);
    if (stopped_) return;
    auto& slot = peers_[to];
    if (!slot) {
      slot = std::make_unique<Peer>();
      Peer* p = slot.get();
      p->thread = std::thread([this, to, p] { Loop(to, p); });
    }
    peer = slot.get();
  }
  MutexLock l(&peer->mu);
  peer->queue.push_back(std::move(msg));
  while (peer->queue.size() > max_queued_) peer->queue.pop_front();  // resent if it matters
  peer->cv.NotifyAll();
}

Result<SnapshotChunkAnswer> ThriftReplicaTransport::SendSnapshotChunk(NodeId to,
                                                                      const SnapshotChunkMsg& c) {
  std::optional<HostPort> where = resolve_(to);
  if (!where) {
    return Status::Unavailable("node " + std::to_string(to.value()) + " is not in the map");
  }
  const rpc::SnapshotChunk chunk = ToWire(c);
  rpc::SnapshotChunkAck ack;
  RETURN_IF_ERROR(pool_->Call<rpc::ChunkServiceClient>(
      *where, [&](rpc::ChunkServiceClient& client) { client.InstallSnapshot(ack, chunk); }));
  return FromWire(ack);
}

void ThriftReplicaTransport::Loop(NodeId to, Peer* peer) {
  for (;;) {
    PeerMessage msg;
    {
      MutexLock l(&peer->mu);
      peer->cv.Wait(&peer->mu,
                    [&]() REQUIRES(peer->mu) { return peer->stop || !peer->queue.empty(); });
      if (peer->stop) return;
      msg = std::move(peer->queue.front());
      peer->queue.pop_front();
    }
    std::optional<HostPort> where = resolve_(to);
    if (!where) continue;
    Status s;
    if (const auto* r = std::get_if<ReplicateMsg>(&msg)) {
      const rpc::ReplicateRequest req = ToWire(*r);
      s = pool_->Call<rpc::ChunkServiceClient>(
          *where, [&](rpc::ChunkServiceClient& c) { c.Replicate(req); });
    } else if (const auto* a = std::get_if<ReplicateAck>(&msg)) {
      const rpc::ReplicateAck ack = ToWire(*a);
      s = pool_->Call<rpc::ChunkServiceClient>(
          *where, [&](rpc::ChunkServiceClient& c) { c.ReplicateAcknowledge(ack); });
    } else {
      continue;  // whole snapshots are never sent: ReplicaHost streams them
    }
    if (!s.ok()) {
      LOG_EVERY_N_SEC(log_, kWarn, 10) << "replication message to node " << to.value() << " ("
                                       << where->ToString() << ") failed: " << s.ToString();
    }
  }
}

}  // namespace cairn::chunkserver
