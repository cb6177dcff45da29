#include "chunkserver/replica_transport.h"

#include "ChunkService.h"
#include "chunkserver/replica_wire.h"
#include "thrift/rpc_client.h"

namespace cairn::chunkserver {

ThriftReplicaTransport::ThriftReplicaTransport(net::ConnectionPool* pool, Resolve resolve,
                                               Clock* clock, size_t max_queued, Nanos max_age,
                                               size_t max_queued_bytes)
    : pool_(pool),
      resolve_(std::move(resolve)),
      clock_(clock),
      max_queued_(max_queued),
      max_age_(max_age),
      max_queued_bytes_(max_queued_bytes),
      log_("replication") {}

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
  const Nanos now = clock_->Now();
  MutexLock l(&peer->mu);
  const size_t bytes = ApproximateBytes(msg);
  peer->queue.push_back(Peer::Queued{now, std::move(msg), bytes});
  peer->queued_bytes += bytes;
  // The oldest go first (resent if they matter); the newest always stays.
  while (peer->queue.size() > 1 &&
         (peer->queue.size() > max_queued_ || peer->queued_bytes > max_queued_bytes_)) {
    PopFront(peer);
  }
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

ThriftReplicaTransport::QueueStats ThriftReplicaTransport::queued(NodeId to) const {
  Peer* peer = nullptr;
  {
    MutexLock l(&mu_);
    auto it = peers_.find(to);
    if (it == peers_.end()) return {};
    peer = it->second.get();
  }
  MutexLock l(&peer->mu);
  return {peer->queue.size(), peer->queued_bytes};
}

void ThriftReplicaTransport::PopFront(Peer* peer) {
  peer->queued_bytes -= peer->queue.front().bytes;
  peer->queue.pop_front();
}

void ThriftReplicaTransport::Loop(NodeId to, Peer* peer) {
  for (;;) {
    PeerMessage msg;
    size_t stale = 0;
    {
      MutexLock l(&peer->mu);
      peer->cv.Wait(&peer->mu,
                    [&]() REQUIRES(peer->mu) { return peer->stop || !peer->queue.empty(); });
      if (peer->stop) return;
      const Nanos now = clock_->Now();
      while (peer->queue.size() > 1 && now - peer->queue.front().at > max_age_) {
        PopFront(peer);  // resent by the protocol since (see the header)
        ++stale;
      }
      msg = std::move(peer->queue.front().msg);
      PopFront(peer);
    }
    if (stale > 0) {
      LOG_EVERY_N_SEC(log_, kInfo, 10)
          << "dropped " << stale << " replication messages to node " << to.value()
          << " that waited more than " << max_age_.count() / 1000000 << " ms";
    }
    std::optional<HostPort> where = resolve_(to);
    if (!where) continue;
    Status s;
    if (const auto* r = std::get_if<ReplicateMsg>(&msg)) {
      s = StageAhead(to, *where, msg);
      if (!s.ok()) {
        LOG_EVERY_N_SEC(log_, kWarn, 10) << "staging blocks on node " << to.value() << " ("
                                         << where->ToString() << ") failed: " << s.ToString();
        continue;  // resent by the primary
      }
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

Status ThriftReplicaTransport::StageAhead(NodeId to, const HostPort& where,
                                          const PeerMessage& msg) {
  const auto* rm = std::get_if<ReplicateMsg>(&msg);
  if (rm == nullptr) return Status::Ok();
  ReplicaHost* host = host_.load();
  const Nanos now = RealClock().Now();
  constexpr Nanos kRecent = std::chrono::seconds(2);
  auto key = [&](const StagedBlock& b) {
    return std::make_tuple(to.value(), b.partition.value(), b.epoch.value(), b.lsn.value());
  };
  std::optional<std::tuple<uint32_t, uint32_t, uint64_t, uint64_t>> skipping;
  Status s = StageBlocksOf(
      msg,
      [&](PartitionId p, const BlockRef& ref) -> Result<std::string> {
        if (host == nullptr) return Status::Unavailable("no replica host to read blocks from");
        return host->ReadBlock(p, ref);
      },
      [&](const StagedBlock& b) -> Status {
        if (skipping == key(b)) return Status::Ok();
        {
          MutexLock l(&staged_mu_);
          for (auto old = staged_.begin(); old != staged_.end();) {
            old = now - old->second >= kRecent ? staged_.erase(old) : std::next(old);
          }
          // Staged moments ago: this is a retransmission of the entry.
          if (b.index == 0 && staged_.count(key(b)) != 0) {
            skipping = key(b);
            return Status::Ok();
          }
        }
        rpc::StageBlockRequest req;
        req.partition = static_cast<int32_t>(b.partition.value());
        req.epoch = static_cast<int64_t>(b.epoch.value());
        req.lsn = static_cast<int64_t>(b.lsn.value());
        req.index = static_cast<int32_t>(b.index);
        req.hash = static_cast<int64_t>(b.hash);
        req.data = b.data;
        Status st = pool_->Call<rpc::ChunkServiceClient>(
            where, [&](rpc::ChunkServiceClient& c) { c.StageBlock(req); });
        if (st.code() == StatusCode::kAlreadyExists) {  // it holds the entry: nothing to stage
          skipping = key(b);
          return Status::Ok();
        }
        {
          MutexLock l(&staged_mu_);
          if (!st.ok()) {
            staged_.erase(key(b));  // stage it all again next time
            return st;
          }
          staged_[key(b)] = RealClock().Now();
        }
        host->NotePeerProgress(b.partition, to);
        return Status::Ok();
      });
  return s;
}

}  // namespace cairn::chunkserver
