#include "chunkserver/replica_transport.h"

#include <algorithm>

#include "ChunkService.h"
#include "chunkserver/replica_wire.h"
#include "thrift/rpc_client.h"

namespace cairn::chunkserver {

ThriftReplicaTransport::ThriftReplicaTransport(net::ConnectionPool* pool, Resolve resolve,
                                               Clock* clock, size_t max_queued, Nanos max_age,
                                               size_t max_queued_bytes, size_t max_ahead_bytes,
                                               Nanos ahead_wait)
    : pool_(pool),
      resolve_(std::move(resolve)),
      clock_(clock),
      max_queued_(max_queued),
      max_age_(max_age),
      max_queued_bytes_(max_queued_bytes),
      max_ahead_bytes_(max_ahead_bytes),
      ahead_wait_(ahead_wait),
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
    p->ahead_thread.join();
  }
}

ThriftReplicaTransport::Peer* ThriftReplicaTransport::PeerFor(NodeId to) {
  MutexLock l(&mu_);
  if (stopped_) return nullptr;
  auto& slot = peers_[to];
  if (!slot) {
    slot = std::make_unique<Peer>();
    Peer* p = slot.get();
    p->thread = std::thread([this, to, p] { Loop(to, p); });
    p->ahead_thread = std::thread([this, to, p] { AheadLoop(to, p); });
  }
  return slot.get();
}

void ThriftReplicaTransport::Send(NodeId to, PeerMessage msg) {
  Peer* peer = PeerFor(to);
  if (peer == nullptr) return;
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
      s = StageAhead(to, peer, *where, msg);
      if (!s.ok()) {
        LOG_EVERY_N_SEC(log_, kWarn, 10) << "staging blocks on node " << to.value() << " ("
                                         << where->ToString() << ") failed: " << s.ToString();
        continue;  // resent by the primary
      }
      const rpc::ReplicateRequest req = ToWire(*r);
      s = pool_->Call<rpc::ChunkServiceClient>(
          *where, [&](rpc::ChunkServiceClient& c) { c.Replicate(req); });
      if (s.code() == StatusCode::kNotFound) {
        // It lacks blocks it was to have (restarted, or they expired): the
        // primary's retry stages them with the entry.
        ForgetStaged(to, peer, msg);
        LOG_EVERY_N_SEC(log_, kInfo, 10)
            << "node " << to.value() << " (" << where->ToString()
            << ") lacks staged blocks: " << s.ToString() << "; staging them again";
        continue;
      }
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

Status ThriftReplicaTransport::StageAhead(NodeId to, Peer* peer, const HostPort& where,
                                          const PeerMessage& msg) {
  const auto* rm = std::get_if<ReplicateMsg>(&msg);
  if (rm == nullptr) return Status::Ok();
  ReplicaHost* host = host_.load();
  const Nanos now = RealClock().Now();
  // Staging a batch of large entries can take seconds; a shorter memory
  // restaged whole batches again and again while a backup caught up.
  constexpr Nanos kRecent = std::chrono::seconds(60);
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
      },
      [&](const StagedBlock& b) {
        if (skipping == key(b)) return true;  // a retransmission: not staged again anyway
        if (!TakenAhead(peer, b)) return false;
        MutexLock l(&staged_mu_);
        staged_[key(b)] = RealClock().Now();  // its retransmission skips it too
        return true;
      });
  return s;
}

void ThriftReplicaTransport::SendAhead(NodeId to, StagedBlock b) {
  Peer* peer = PeerFor(to);
  if (peer == nullptr) return;
  const AheadKey key{b.partition.value(), b.source_offset};
  const size_t bytes = b.data.size();
  MutexLock l(&peer->mu);
  // A peer whose last block failed moments ago gets its blocks with their
  // entries: an upload must not wait on a dead node.
  constexpr Nanos kFailedPause = std::chrono::seconds(2);
  if (RealClock().Now() - peer->ahead_failed_at < kFailedPause) {
    ++ahead_dropped_;
    return;
  }
  // Back-pressure: the upload goes at the pace the peer takes blocks.
  const bool room = peer->cv.WaitFor(&peer->mu, ahead_wait_, [&]() REQUIRES(peer->mu) {
    return peer->stop || peer->ahead.empty() || peer->ahead_bytes + bytes <= max_ahead_bytes_;
  });
  if (!room || peer->stop) {
    ++ahead_dropped_;
    return;
  }
  peer->ahead_bytes += bytes;
  peer->ahead_pending.insert(key);
  peer->ahead.push_back(std::move(b));
  peer->cv.NotifyAll();
}

void ThriftReplicaTransport::AheadLoop(NodeId to, Peer* peer) {
  for (;;) {
    StagedBlock b;
    {
      MutexLock l(&peer->mu);
      peer->cv.Wait(&peer->mu,
                    [&]() REQUIRES(peer->mu) { return peer->stop || !peer->ahead.empty(); });
      if (peer->stop) return;
      b = std::move(peer->ahead.front());
      peer->ahead.pop_front();
    }
    const AheadKey key{b.partition.value(), b.source_offset};
    const size_t bytes = b.data.size();
    Status s = Status::Unavailable("node " + std::to_string(to.value()) + " is not in the map");
    if (std::optional<HostPort> where = resolve_(to)) {
      rpc::StageBlockRequest req;
      req.partition = static_cast<int32_t>(b.partition.value());
      req.epoch = static_cast<int64_t>(b.epoch.value());
      req.lsn = 0;
      req.index = 0;
      req.hash = static_cast<int64_t>(b.hash);
      req.data = std::move(b.data);
      req.__set_ahead(true);
      req.__set_source_offset(static_cast<int64_t>(b.source_offset));
      req.__set_from_node(static_cast<int32_t>(b.source.value()));
      s = pool_->Call<rpc::ChunkServiceClient>(
          *where, [&](rpc::ChunkServiceClient& c) { c.StageBlock(req); });
      if (!s.ok()) {
        LOG_EVERY_N_SEC(log_, kWarn, 10)
            << "streaming a block to node " << to.value() << " (" << where->ToString()
            << ") failed: " << s.ToString() << "; it goes with its entry";
      }
    }
    {
      MutexLock l(&peer->mu);
      peer->ahead_bytes -= std::min(peer->ahead_bytes, bytes);
      peer->ahead_pending.erase(key);
      const Nanos now = RealClock().Now();
      if (s.ok()) {
        // Taken blocks no entry asked about for a minute were for uploads
        // that never committed (the peer forgets them after stage_expiry).
        constexpr Nanos kForget = std::chrono::seconds(60);
        std::erase_if(peer->ahead_taken, [&](const auto& t) { return now - t.second > kForget; });
        peer->ahead_taken[key] = now;
      } else {
        peer->ahead_failed_at = now;
      }
      peer->cv.NotifyAll();
    }
    if (s.ok()) {
      ++ahead_sent_;
      if (ReplicaHost* host = host_.load(); host != nullptr)
        host->NotePeerProgress(b.partition, to);
    } else {
      ++ahead_failed_;
    }
  }
}

bool ThriftReplicaTransport::TakenAhead(Peer* peer, const StagedBlock& b) {
  const AheadKey key{b.partition.value(), b.source_offset};
  MutexLock l(&peer->mu);
  // Still on its way: wait for it rather than send it twice.
  peer->cv.WaitFor(&peer->mu, std::chrono::seconds(30), [&]() REQUIRES(peer->mu) {
    return peer->stop || peer->ahead_pending.count(key) == 0;
  });
  auto it = peer->ahead_taken.find(key);
  if (it == peer->ahead_taken.end()) return false;
  peer->ahead_taken.erase(it);
  ++ahead_reused_;
  return true;
}

void ThriftReplicaTransport::ForgetStaged(NodeId to, Peer* peer, const PeerMessage& msg) {
  const auto* rm = std::get_if<ReplicateMsg>(&msg);
  if (rm == nullptr) return;
  {
    MutexLock l(&staged_mu_);
    for (const LogEntry& e : rm->entries) {
      staged_.erase(
          std::make_tuple(to.value(), rm->partition.value(), e.epoch.value(), e.lsn.value()));
    }
  }
  MutexLock l(&peer->mu);
  std::erase_if(peer->ahead_taken,
                [&](const auto& t) { return t.first.first == rm->partition.value(); });
}

ThriftReplicaTransport::AheadStats ThriftReplicaTransport::ahead_stats() const {
  return {ahead_sent_.load(), ahead_failed_.load(), ahead_dropped_.load(), ahead_reused_.load()};
}

}  // namespace cairn::chunkserver
