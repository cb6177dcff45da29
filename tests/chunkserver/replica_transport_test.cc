// ThriftReplicaTransport's per-peer queue: bounded by count and by bytes, the
// oldest messages dropped first (the protocol resends what matters), the
// newest always kept. The sender thread is held inside `resolve` so that
// messages pile up as they do behind a peer whose calls hang.
#include <gtest/gtest.h>

#include <string>

#include "chunkserver/replica_transport.h"
#include "chunkserver/replica_wire.h"

namespace cairn::chunkserver {
namespace {

ReplicateMsg Entries(uint64_t first, size_t count, size_t payload_bytes) {
  ReplicateMsg m;
  m.partition = PartitionId(1);
  m.epoch = Epoch(1);
  m.from = NodeId(1);
  m.prev_lsn = Lsn(first - 1);
  for (size_t i = 0; i < count; ++i) {
    m.entries.push_back(LogEntry{Lsn(first + i), Epoch(1), RequestId{1, 1, first + i},
                                 std::string(payload_bytes, 'x'), false});
  }
  return m;
}

class HeldSender {
 public:
  // Holds the sender thread in resolve until Release(); then every node is
  // unknown, so messages are dropped.
  ThriftReplicaTransport::Resolve resolve() {
    return [this](NodeId) -> std::optional<HostPort> {
      MutexLock l(&mu_);
      entered_ = true;
      cv_.NotifyAll();
      cv_.Wait(&mu_, [&]() REQUIRES(mu_) { return released_; });
      return std::nullopt;
    };
  }
  void WaitEntered() {
    MutexLock l(&mu_);
    cv_.Wait(&mu_, [&]() REQUIRES(mu_) { return entered_; });
  }
  void Release() {
    MutexLock l(&mu_);
    released_ = true;
    cv_.NotifyAll();
  }

 private:
  Mutex mu_;
  CondVar cv_;
  bool entered_ GUARDED_BY(mu_) = false;
  bool released_ GUARDED_BY(mu_) = false;
};

TEST(ReplicaTransport, QueueToASlowPeerIsBoundedByBytes) {
  ManualClock clock;
  HeldSender held;
  const size_t kBound = 10 << 20;
  ThriftReplicaTransport t(nullptr, held.resolve(), &clock, /*max_queued=*/1024,
                           /*max_age=*/std::chrono::seconds(60), kBound);
  const NodeId peer(2);
  t.Send(peer, Entries(1, 1, 100));  // the sender takes it and is held
  held.WaitEntered();
  // 64 messages of 1 MiB each: far more than the bound.
  for (uint64_t i = 0; i < 64; ++i) t.Send(peer, Entries(2 + i, 1, 1 << 20));
  EXPECT_LE(t.queued(peer).bytes, kBound);
  EXPECT_GE(t.queued(peer).bytes, kBound - (2 << 20));  // the newest ones stay
  EXPECT_EQ(t.queued(peer).messages, 9u);
  // A message larger than the bound on its own is still kept (the newest).
  t.Send(peer, Entries(100, 4, 4 << 20));
  EXPECT_EQ(t.queued(peer).messages, 1u);
  EXPECT_EQ(t.queued(peer).bytes, ApproximateBytes(PeerMessage(Entries(100, 4, 4 << 20))));
  held.Release();
  t.Stop();
}

TEST(ReplicaTransport, QueueIsBoundedByCount) {
  ManualClock clock;
  HeldSender held;
  ThriftReplicaTransport t(nullptr, held.resolve(), &clock, /*max_queued=*/16,
                           /*max_age=*/std::chrono::seconds(60));
  const NodeId peer(3);
  t.Send(peer, Entries(1, 1, 10));
  held.WaitEntered();
  for (uint64_t i = 0; i < 100; ++i) t.Send(peer, Entries(2 + i, 1, 10));
  EXPECT_EQ(t.queued(peer).messages, 16u);
  EXPECT_EQ(t.queued(peer).bytes, 16 * ApproximateBytes(PeerMessage(Entries(1, 1, 10))));
  held.Release();
  t.Stop();
}

}  // namespace
}  // namespace cairn::chunkserver
