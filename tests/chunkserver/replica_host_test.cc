// ReplicaHost over real doc stores: three in-process chunk servers, each with
// its own volume on a MemDisk, connected by an in-process network, and a
// small stand-in for the metaserver that sends configurations, grants leases
// and applies in-sync requests. The tests check what replication promises:
// an acknowledged write is committed on every in-sync replica, a failover to
// an in-sync backup keeps every acknowledged write, and a primary that
// crashed comes back, has its divergent tail cut, catches up and joins.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "chunkserver/replica_host.h"
#include "common/checksum.h"
#include "tests/chunkserver/doc_test_util.h"

namespace cairn::chunkserver {
namespace {

using namespace std::chrono_literals;
using dtest::RigOptions;
using dtest::StoreRig;

constexpr char kColl[] = "orders";

// ---------------------------------------------------------------- the network

class Net {
 public:
  Net() : thread_([this] { Loop(); }) {}
  ~Net() {
    {
      MutexLock l(&mu_);
      stop_ = true;
      cv_.NotifyAll();
    }
    thread_.join();
  }
  void Attach(NodeId n, ReplicaHost* host) {
    MutexLock l(&hosts_mu_);
    hosts_[n] = host;
  }
  // Returns once no delivery to `n` is in progress.
  void Detach(NodeId n) {
    MutexLock l(&hosts_mu_);
    hosts_.erase(n);
  }
  void Send(NodeId from, NodeId to, PeerMessage msg) {
    MutexLock l(&mu_);
    queue_.push_back({from, to, std::move(msg)});
    cv_.NotifyAll();
  }

  // What happens to a snapshot chunk: delivered, lost on the way (the
  // connection broke before it arrived), delivered with its answer lost, or
  // delivered with its last byte flipped.
  enum class ChunkFault { kNone, kLose, kLoseAnswer, kCorrupt };
  using ChunkHook = std::function<ChunkFault(NodeId to, const SnapshotChunkMsg& c)>;
  void SetChunkHook(ChunkHook hook) {
    MutexLock l(&mu_);
    chunk_hook_ = std::move(hook);
  }
  // A snapshot chunk, delivered at once on the caller's thread.
  Result<SnapshotChunkAnswer> Chunk(NodeId from, NodeId to, const SnapshotChunkMsg& c) {
    ChunkFault fault = ChunkFault::kNone;
    {
      MutexLock l(&mu_);
      if (chunk_hook_) fault = chunk_hook_(to, c);
    }
    if (fault == ChunkFault::kLose) return Status::Unavailable("injected: connection broken");
    SnapshotChunkMsg bad;
    if (fault == ChunkFault::kCorrupt) {
      bad = c;
      bad.data.back() = static_cast<char>(bad.data.back() ^ 0x55);
    }
    Result<SnapshotChunkAnswer> answer = Status::Unavailable("node down");
    {
      MutexLock l(&hosts_mu_);
      auto t = hosts_.find(to);
      if (t != hosts_.end() && hosts_.count(from) != 0) {
        answer = t->second->OnSnapshotChunk(fault == ChunkFault::kCorrupt ? bad : c);
      }
    }
    if (fault == ChunkFault::kLoseAnswer) return Status::Unavailable("injected: answer lost");
    return answer;
  }

 private:
  struct Item {
    NodeId from, to;
    PeerMessage msg;
  };
  void Loop() {
    for (;;) {
      Item item;
      {
        MutexLock l(&mu_);
        cv_.Wait(&mu_, [&]() REQUIRES(mu_) { return stop_ || !queue_.empty(); });
        if (stop_) return;
        item = std::move(queue_.front());
        queue_.pop_front();
      }
      MutexLock l(&hosts_mu_);
      // Both ends must be up: a crashed node neither sends nor receives.
      auto to = hosts_.find(item.to);
      auto from = hosts_.find(item.from);
      if (to == hosts_.end() || from == hosts_.end()) continue;
      // Large entries: their blocks first, as ThriftReplicaTransport does
      // (a lost staging, when asked for, skips that and sends the entry).
      if (skip_staging > 0) {
        --skip_staging;
      } else {
        Status s = StageBlocksOf(
            item.msg,
            [&](PartitionId p, const BlockRef& ref) { return from->second->ReadBlock(p, ref); },
            [&](const StagedBlock& b) {
              Status st = to->second->StageBlock(b);
              if (st.ok()) ++staged_calls;
              return st.code() == StatusCode::kAlreadyExists ? Status::Ok() : st;
            },
            [&](const StagedBlock& b) {
              // Streamed ahead and taken: not staged again (once, as the
              // transport does, so that a retry stages it).
              MutexLock a(&ahead_mu_);
              return taken_.erase({item.from, item.to, b.partition, b.source_offset}) > 0;
            });
        if (!s.ok()) continue;
      }
      if (to->second->OnMessage(item.msg).code() == StatusCode::kNotFound) {
        // The receiver lacks blocks it was to hold: the retry stages them.
        ++not_staged_answers;
        MutexLock a(&ahead_mu_);
        std::erase_if(taken_, [&](const auto& t) { return std::get<1>(t) == item.to; });
      }
    }
  }

 public:
  // A block of an upload streamed ahead, delivered at once on the caller's
  // thread. With lose_ahead > 0 it is lost after the sender thought it taken
  // (the receiver restarted, say).
  void Ahead(NodeId from, NodeId to, const StagedBlock& b) {
    if (lose_ahead > 0) {
      --lose_ahead;
    } else {
      MutexLock l(&hosts_mu_);
      auto t = hosts_.find(to);
      if (t == hosts_.end() || hosts_.count(from) == 0) return;
      Status st = t->second->StageBlock(b);
      ahead_results.push_back(st.code());
      if (!st.ok()) return;
    }
    MutexLock a(&ahead_mu_);
    taken_.insert({from, to, b.partition, b.source_offset});
  }
  std::atomic<int> lose_ahead{0};
  std::atomic<int> not_staged_answers{0};
  std::vector<StatusCode> ahead_results;  // guarded by hosts_mu_ (read when idle)

  std::atomic<int> skip_staging{0};  // messages delivered without staging their blocks
  std::atomic<int> staged_calls{0};

 private:
  Mutex mu_;
  CondVar cv_;
  std::deque<Item> queue_ GUARDED_BY(mu_);
  bool stop_ GUARDED_BY(mu_) = false;
  ChunkHook chunk_hook_ GUARDED_BY(mu_);
  Mutex hosts_mu_;
  std::map<NodeId, ReplicaHost*> hosts_ GUARDED_BY(hosts_mu_);
  Mutex ahead_mu_;
  std::set<std::tuple<NodeId, NodeId, PartitionId, uint64_t>> taken_ GUARDED_BY(ahead_mu_);
  std::thread thread_;
};

class NodeTransport : public ReplicaTransport {
 public:
  NodeTransport(Net* net, NodeId self) : net_(net), self_(self) {}
  void Send(NodeId to, PeerMessage msg) override { net_->Send(self_, to, std::move(msg)); }
  Result<SnapshotChunkAnswer> SendSnapshotChunk(NodeId to, const SnapshotChunkMsg& c) override {
    return net_->Chunk(self_, to, c);
  }
  void SendAhead(NodeId to, StagedBlock b) override { net_->Ahead(self_, to, b); }

 private:
  Net* net_;
  NodeId self_;
};

// ---------------------------------------------------------------- the metaserver

class Meta : public ReplicaMetaLink {
 public:
  Meta() = default;
  ~Meta() override { StopThread(); }

  void Start() {
    thread_ = std::thread([this] { Loop(); });
  }
  void StopThread() {
    {
      MutexLock l(&mu_);
      stop_ = true;
      cv_.NotifyAll();
    }
    if (thread_.joinable()) thread_.join();
  }
  void SetHost(NodeId n, ReplicaHost* h) {
    MutexLock c(&call_mu_);  // no call into the host it replaces is in progress after this
    MutexLock l(&mu_);
    if (h == nullptr) {
      hosts_.erase(n);
    } else {
      hosts_[n] = h;
    }
  }
  // A new configuration for a partition, sent to every live replica.
  void Configure(ReplicaConfig c) {
    MutexLock l(&mu_);
    configs_[c.partition] = c;
    dirty_ = true;
    cv_.NotifyAll();
  }
  ReplicaConfig Config(PartitionId p) {
    MutexLock l(&mu_);
    return configs_.at(p);
  }
  void RequestInSync(const InSyncRequest& r) override {
    MutexLock l(&mu_);
    requests_.push_back(r);
    cv_.NotifyAll();
  }

 private:
  void Loop() {
    for (;;) {
      std::vector<std::pair<ReplicaHost*, ReplicaConfig>> sends;
      {
        MutexLock l(&mu_);
        cv_.WaitFor(&mu_, 50ms,
                    [&]() REQUIRES(mu_) { return stop_ || dirty_ || !requests_.empty(); });
        if (stop_) return;
        for (const InSyncRequest& r : requests_) {
          ReplicaConfig& c = configs_.at(r.partition);
          if (c.epoch != r.epoch || c.replicas.front() != r.primary) continue;
          auto& in = c.in_sync;
          if (r.kind == InSyncRequest::Kind::kDrop) {
            in.erase(std::remove(in.begin(), in.end(), r.node), in.end());
          } else if (std::find(in.begin(), in.end(), r.node) == in.end()) {
            in.push_back(r.node);
          }
          c.epoch = c.epoch.Next();
          dirty_ = true;
        }
        requests_.clear();
        // Every tick resends the configuration (as heartbeat answers do) and
        // grants the primary its lease. Like ChunkServer::PushConfigs, a
        // node that holds a replica the map no longer gives it hears too.
        for (const auto& [p, c] : configs_) {
          for (const auto& [n, h] : hosts_) sends.emplace_back(h, c);
        }
        dirty_ = false;
      }
      MutexLock calls(&call_mu_);
      {
        MutexLock l(&mu_);  // hosts may have gone while the lock was released
        std::erase_if(sends, [&](const auto& s) REQUIRES(mu_) {
          return std::none_of(hosts_.begin(), hosts_.end(),
                              [&](const auto& h) { return h.second == s.first; });
        });
      }
      for (const auto& [h, c] : sends) {
        const bool member =
            std::find(c.replicas.begin(), c.replicas.end(), h->self()) != c.replicas.end();
        if (!member && !h->Report(c.partition).has_value()) continue;
        h->OnConfig(c);
        if (h->self() == c.replicas.front()) h->OnLease(c.partition, c.epoch, RealClock().Now());
      }
    }
  }

  Mutex call_mu_ ACQUIRED_BEFORE(mu_);  // held across calls into hosts
  Mutex mu_;
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  bool dirty_ GUARDED_BY(mu_) = false;
  std::map<NodeId, ReplicaHost*> hosts_ GUARDED_BY(mu_);
  std::map<PartitionId, ReplicaConfig> configs_ GUARDED_BY(mu_);
  std::vector<InSyncRequest> requests_ GUARDED_BY(mu_);
  std::thread thread_;
};

// ---------------------------------------------------------------- one node

struct Node {
  Node(NodeId node_id, Net* network, Meta* metaserver)
      : id(node_id), net(network), meta(metaserver), transport(network, node_id) {
    RigOptions o;
    o.store.replicated = true;
    o.store.block_bytes = 4096;
    rig = std::make_unique<StoreRig>(o);
    EXPECT_TRUE(rig->Create().ok());
  }
  ~Node() { Down(/*crash=*/false); }

  void Up() {
    ASSERT_TRUE(rig->Open().ok());
    ReplicaHostOptions ho;
    ho.replica.log_retention = log_retention;
    ho.replica.lease = 800ms;
    ho.replica.replication_timeout = 500ms;
    ho.replica.retransmit = 50ms;
    ho.tick = 10ms;
    ho.stage_bytes = stage_bytes;
    ho.max_ahead_bytes = max_ahead_bytes;
    ho.snapshot_chunk_bytes = snapshot_chunk_bytes;
    ho.snapshot_rate_bytes_per_s = snapshot_rate;
    ho.snapshot_retry = 20ms;
    ho.snapshot_stream_timeout = snapshot_stream_timeout;
    host = std::make_unique<ReplicaHost>(id, rig->store(), ho, &transport, meta, &RealClock());
    ASSERT_TRUE(host->Start().ok());
    net->Attach(id, host.get());
    meta->SetHost(id, host.get());
  }
  // A power cut (unsynced writes lost) or a clean stop.
  void Down(bool crash) {
    if (!host) return;
    meta->SetHost(id, nullptr);
    net->Detach(id);
    host->Stop();
    host.reset();
    if (crash) {
      rig->Crash(dtest::CrashMode::kDropUnsynced, 0);
    } else {
      rig->Close(false);
    }
  }

  NodeId id;
  Net* net;
  Meta* meta;
  uint32_t log_retention = 1024;
  uint64_t stage_bytes = 4ull << 20;
  uint64_t max_ahead_bytes = 4ull << 30;
  size_t snapshot_chunk_bytes = 64 << 10;
  uint64_t snapshot_rate = 0;
  Nanos snapshot_stream_timeout = 60s;
  NodeTransport transport;
  std::unique_ptr<StoreRig> rig;
  std::unique_ptr<ReplicaHost> host;
};

class ReplicaHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    meta_ = std::make_unique<Meta>();
    for (uint32_t i = 1; i <= 3; ++i) {
      nodes_.push_back(std::make_unique<Node>(NodeId(i), &net_, meta_.get()));
      nodes_.back()->Up();
    }
    meta_->Start();
  }
  void TearDown() override {
    meta_->StopThread();
    nodes_.clear();
  }
  Node& node(uint32_t id) { return *nodes_[id - 1]; }

  static ReplicaConfig Config(uint32_t p, uint64_t epoch, std::vector<uint32_t> replicas,
                              std::vector<uint32_t> in_sync) {
    ReplicaConfig c;
    c.partition = PartitionId(p);
    c.epoch = Epoch(epoch);
    for (uint32_t r : replicas) c.replicas.push_back(NodeId(r));
    for (uint32_t r : in_sync) c.in_sync.push_back(NodeId(r));
    return c;
  }

  // A put of `body` (held by `ref`) as `id` in partition `p`.
  static Mutation PutOf(uint32_t p, const std::string& id, const std::string& body,
                        const BlockRef& ref, const RequestId& request_id) {
    Mutation m;
    m.type = MutationType::kPut;
    m.partition = PartitionId(p);
    m.collection = kColl;
    m.id = id;
    m.request_id = request_id;
    m.meta.size = body.size();
    m.meta.mode = 0644;
    m.body_hash = 1;
    m.blocks = {ref};
    return m;
  }

  // Puts `body` as `id` through node `n`, retrying while the partition is
  // not ready there (a new primary reconciling, no lease yet).
  Result<ApplyResult> Put(uint32_t n, uint32_t p, const std::string& id, const std::string& body,
                          uint64_t seq) {
    Status last;
    for (int attempt = 0; attempt < 300; ++attempt) {
      DocStore* store = node(n).rig->store();
      auto ref = store->WriteBlock(std::as_bytes(std::span(body.data(), body.size())));
      if (!ref.ok()) return ref.status();
      Mutation m = PutOf(p, id, body, *ref, RequestId{7, 7, seq});
      Result<ApplyResult> r = node(n).host->Mutate(m);
      if (r.ok() || (r.status().code() != StatusCode::kUnavailable &&
                     r.status().code() != StatusCode::kNotPrimary)) {
        return r;
      }
      store->ForgetBlocks(m.blocks);
      last = r.status();
      std::this_thread::sleep_for(20ms);
    }
    return last;
  }

  static std::string Body(const std::string& id, uint64_t v) {
    return "{\"id\":\"" + id + "\",\"v\":" + std::to_string(v) + ",\"pad\":\"" +
           std::string(200 + v % 300, 'x') + "\"}";
  }

  // The committed documents of partition `p` on node `n`: id -> body.
  std::map<std::string, std::string> Docs(uint32_t n, uint32_t p) {
    std::map<std::string, std::string> out;
    DocStore* store = node(n).rig->store();
    std::string after;
    for (;;) {
      auto page = store->List(PartitionId(p), kColl, after, 100);
      EXPECT_TRUE(page.ok()) << page.status().ToString();
      if (!page.ok()) return out;
      for (const ListItem& it : page->items) {
        auto e = store->Lookup(PartitionId(p), kColl, it.id);
        EXPECT_TRUE(e.ok() && e->has_value());
        if (!e.ok() || !e->has_value()) continue;
        std::string body((*e)->meta.size, '\0');
        EXPECT_TRUE(store->ReadRange(**e, 0, std::as_writable_bytes(std::span(body))).ok());
        out[it.id] = body;
      }
      if (!page->more) break;
      after = page->items.back().id;
    }
    return out;
  }

  // Waits until every listed node has committed through `lsn` on `p`.
  bool WaitCommitted(std::vector<uint32_t> ns, uint32_t p, Lsn lsn) {
    for (int i = 0; i < 500; ++i) {
      bool all = true;
      for (uint32_t n : ns) {
        all = all && node(n).rig->store()->partition_state(PartitionId(p)).last_lsn >= lsn;
      }
      if (all) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  Net net_;
  std::unique_ptr<Meta> meta_;
  std::vector<std::unique_ptr<Node>> nodes_;
};

TEST_F(ReplicaHostTest, AcknowledgedWritesAreCommittedOnEveryInSyncReplica) {
  meta_->Configure(Config(0, 1, {1, 2, 3}, {1, 2, 3}));
  meta_->Configure(Config(1, 1, {2, 3, 1}, {2, 3, 1}));
  std::map<std::string, std::string> want0, want1;
  Lsn last0, last1;
  for (uint64_t i = 0; i < 60; ++i) {
    const std::string id = "o" + std::to_string(i % 25);
    const std::string body = Body(id, i);
    auto r0 = Put(1, 0, id, body, i);
    ASSERT_TRUE(r0.ok()) << r0.status().ToString();
    want0[id] = body;
    last0 = r0->lsn;
    auto r1 = Put(2, 1, id, body + " ", 1000 + i);
    ASSERT_TRUE(r1.ok()) << r1.status().ToString();
    want1[id] = body + " ";
    last1 = r1->lsn;
    // Acknowledged means committed on the primary: readable there at once.
    EXPECT_EQ(Docs(1, 0).at(id), body);
  }
  ASSERT_TRUE(WaitCommitted({1, 2, 3}, 0, last0));
  ASSERT_TRUE(WaitCommitted({1, 2, 3}, 1, last1));
  for (uint32_t n = 1; n <= 3; ++n) {
    EXPECT_EQ(Docs(n, 0), want0) << "node " << n;
    EXPECT_EQ(Docs(n, 1), want1) << "node " << n;
  }
  // A retry of an acknowledged request is answered from the first time.
  auto again = Put(1, 0, "o0", "something else", 0);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->deduplicated);
  EXPECT_EQ(Docs(1, 0).at("o0"), want0.at("o0"));
  // A backup refuses client writes.
  Mutation m;
  m.type = MutationType::kDelete;
  m.partition = PartitionId(0);
  m.collection = kColl;
  m.id = "o1";
  EXPECT_EQ(node(2).host->Mutate(m).status().code(), StatusCode::kNotPrimary);
}

TEST_F(ReplicaHostTest, FailoverKeepsAcknowledgedWritesAndTheOldPrimaryCatchesUp) {
  meta_->Configure(Config(0, 1, {1, 2, 3}, {1, 2, 3}));
  std::map<std::string, std::string> acked;
  uint64_t seq = 0;
  for (; seq < 40; ++seq) {
    const std::string id = "o" + std::to_string(seq % 15);
    auto r = Put(1, 0, id, Body(id, seq), seq);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    acked[id] = Body(id, seq);
  }
  // The primary dies with a power cut; the metaserver waits out its lease
  // and promotes an in-sync backup.
  node(1).Down(/*crash=*/true);
  std::this_thread::sleep_for(900ms);
  meta_->Configure(Config(0, 2, {2, 3, 1}, {2, 3}));
  for (; seq < 80; ++seq) {
    const std::string id = "o" + std::to_string(seq % 15);
    auto r = Put(2, 0, id, Body(id, seq), seq);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    acked[id] = Body(id, seq);
  }
  EXPECT_EQ(Docs(2, 0), acked);

  // The old primary restarts from its disk as a learner, catches up, and
  // the new primary asks for it to join the in-sync set.
  node(1).Up();
  for (int i = 0; i < 500; ++i) {
    if (meta_->Config(PartitionId(0)).in_sync.size() == 3) break;
    std::this_thread::sleep_for(20ms);
  }
  const ReplicaConfig c = meta_->Config(PartitionId(0));
  EXPECT_EQ(c.in_sync.size(), 3u) << "node 1 never joined";
  EXPECT_EQ(c.replicas.front(), NodeId(2));
  const Lsn last = node(2).rig->store()->partition_state(PartitionId(0)).last_lsn;
  ASSERT_TRUE(WaitCommitted({1, 2, 3}, 0, last));
  for (uint32_t n = 1; n <= 3; ++n) EXPECT_EQ(Docs(n, 0), acked) << "node " << n;

  // And it takes writes as a backup again.
  auto r = Put(2, 0, "late", Body("late", 1), 999);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(WaitCommitted({1, 2, 3}, 0, r->lsn));
  EXPECT_EQ(Docs(1, 0).at("late"), Body("late", 1));
}

// Entries whose blocks are larger than stage_bytes travel without them: the
// blocks are staged on each backup ahead of the entry (one per call), the
// entry claims them there, and a staging that was lost is done again when
// the primary resends.
TEST_F(ReplicaHostTest, LargeEntriesHaveTheirBlocksStagedAhead) {
  for (auto& n : nodes_) {
    n->Down(false);
    n->stage_bytes = 64;  // every put here is "large"
    n->Up();
  }
  meta_->Configure(Config(0, 1, {1, 2, 3}, {1, 2, 3}));
  std::map<std::string, std::string> acked;
  Lsn last;
  for (uint64_t seq = 0; seq < 30; ++seq) {
    if (seq == 10) net_.skip_staging = 3;  // the next messages arrive without their blocks
    const std::string id = "o" + std::to_string(seq % 11);
    auto r = Put(1, 0, id, Body(id, seq), seq);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    acked[id] = Body(id, seq);
    last = r->lsn;
  }
  ASSERT_TRUE(WaitCommitted({1, 2, 3}, 0, last));
  for (uint32_t n = 1; n <= 3; ++n) EXPECT_EQ(Docs(n, 0), acked) << "node " << n;
  EXPECT_GE(net_.staged_calls.load(), 2 * 30) << "blocks were not staged ahead";
  // Every staged block was claimed by its entry (none left to expire).
  for (uint32_t n = 1; n <= 3; ++n) EXPECT_EQ(node(n).host->staged_blocks(), 0u) << "node " << n;
  // A block staged for an entry that never comes is kept until it expires;
  // a staged block with the wrong bytes is refused.
  StagedBlock b;
  b.partition = PartitionId(0);
  b.epoch = Epoch(1);
  b.lsn = Lsn(last.value() + 100);
  b.data = "orphan";
  b.hash = 1;
  EXPECT_EQ(node(2).host->StageBlock(b).code(), StatusCode::kDataLoss);
  // And one for an entry the replica holds already is not wanted.
  b.lsn = last;
  EXPECT_EQ(node(2).host->StageBlock(b).code(), StatusCode::kAlreadyExists);
}

// The blocks of an upload go to the backups as they reach the primary
// (StreamAhead), before the put has an LSN; the put's entry, sent without
// its blocks, claims them there by the primary's refs. A block the sender
// thought taken but the backup lacks (lost in a restart) makes the backup
// answer NotFound, and the primary's retry stages it with the entry.
TEST_F(ReplicaHostTest, UploadBlocksStreamedAheadAreClaimedByTheirPut) {
  // The puts are small (below stage_bytes): their entries would carry their
  // blocks, but blocks streamed ahead are not sent twice.
  meta_->Configure(Config(0, 1, {1, 2, 3}, {1, 2, 3}));
  // Until the primary is active it streams nothing (nobody to stream to).
  ASSERT_TRUE(Put(1, 0, "first", Body("first", 0), 1000).ok());
  const int staged_before = net_.staged_calls.load();
  std::map<std::string, std::string> acked;
  acked["first"] = Body("first", 0);
  Lsn last;
  constexpr int kPuts = 30;
  for (uint64_t seq = 0; seq < kPuts; ++seq) {
    if (seq == 20) net_.lose_ahead = 2;  // both backups "lose" this put's block
    const std::string id = "u" + std::to_string(seq % 13);
    const std::string body = Body(id, seq);
    DocStore* store = node(1).rig->store();
    auto ref = store->WriteBlock(std::as_bytes(std::span(body.data(), body.size())));
    ASSERT_TRUE(ref.ok()) << ref.status().ToString();
    node(1).host->StreamAhead(PartitionId(0), *ref, body);
    auto r = node(1).host->Mutate(PutOf(0, id, body, *ref, RequestId{7, 8, seq}));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    acked[id] = body;
    last = r->lsn;
  }
  ASSERT_TRUE(WaitCommitted({1, 2, 3}, 0, last));
  for (uint32_t n = 1; n <= 3; ++n) EXPECT_EQ(Docs(n, 0), acked) << "node " << n;
  // Every block but the lost ones was claimed from what was streamed ahead.
  EXPECT_EQ(node(2).host->ahead_received() + node(3).host->ahead_received(), 2u * kPuts - 2);
  EXPECT_EQ(node(2).host->ahead_claimed() + node(3).host->ahead_claimed(), 2u * kPuts - 2);
  // The lost ones: answered NotFound, then staged with their entry.
  EXPECT_GE(net_.not_staged_answers.load(), 2);
  EXPECT_EQ(net_.staged_calls.load() - staged_before, 2);
  for (uint32_t n = 1; n <= 3; ++n) EXPECT_EQ(node(n).host->staged_blocks(), 0u) << "node " << n;

  // A streamed block with the wrong bytes is refused; one streamed in an
  // epoch older than the replica's is not written.
  StagedBlock b;
  b.partition = PartitionId(0);
  b.epoch = Epoch(1);
  b.ahead = true;
  b.source = NodeId(1);
  b.source_offset = 12345;
  b.data = "streamed";
  b.hash = 1;
  EXPECT_EQ(node(2).host->StageBlock(b).code(), StatusCode::kDataLoss);
  meta_->Configure(Config(0, 2, {1, 2, 3}, {1, 2, 3}));
  ASSERT_TRUE(Put(1, 0, "second", Body("second", 0), 2000).ok());  // epoch 2 reached node 1
  ASSERT_TRUE(
      WaitCommitted({2}, 0, node(1).rig->store()->partition_state(PartitionId(0)).last_lsn));
  EXPECT_EQ(node(2).host->StageBlock(b).code(), StatusCode::kStaleEpoch);
  EXPECT_EQ(node(2).host->staged_blocks(), 0u);
  // A block streamed ahead that no entry claims is kept until it expires.
  b.epoch = Epoch(2);
  b.hash = Checksum64(b.data.data(), b.data.size());
  EXPECT_TRUE(node(2).host->StageBlock(b).ok());
  EXPECT_EQ(node(2).host->staged_blocks(), 1u);
  // A replica holds at most max_ahead_bytes of them: puts that never come
  // cannot fill its disks.
  node(3).Down(false);
  node(3).max_ahead_bytes = 2 * b.data.size();
  node(3).Up();
  for (uint64_t off : {1u, 2u, 3u}) {
    b.source_offset = off;
    const Status st = node(3).host->StageBlock(b);
    if (off < 3) {
      EXPECT_TRUE(st.ok()) << st.ToString();
    } else {
      EXPECT_EQ(st.code(), StatusCode::kLimitExceeded) << st.ToString();
    }
  }
  EXPECT_EQ(node(3).host->staged_blocks(), 2u);
}

TEST_F(ReplicaHostTest, AReplicaBehindTheKeptLogGetsASnapshot) {
  // Keep only a few entries: a node away for longer needs the state.
  for (auto& n : nodes_) {
    n->Down(false);
    n->log_retention = 4;
    n->Up();
  }
  meta_->Configure(Config(0, 1, {1, 2, 3}, {1, 2, 3}));
  std::map<std::string, std::string> acked;
  uint64_t seq = 0;
  for (; seq < 10; ++seq) {
    const std::string id = "o" + std::to_string(seq % 7);
    auto r = Put(1, 0, id, Body(id, seq), seq);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    acked[id] = Body(id, seq);
  }
  node(3).Down(/*crash=*/false);
  meta_->Configure(Config(0, 2, {1, 2, 3}, {1, 2}));
  for (; seq < 60; ++seq) {
    const std::string id = "o" + std::to_string(seq % 7);
    auto r = Put(1, 0, id, Body(id, seq), seq);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    acked[id] = Body(id, seq);
  }
  ASSERT_TRUE(node(1).host->Report(PartitionId(0))->last_lsn.value() > 2 * 4 + 10);
  node(3).Up();
  for (int i = 0; i < 500; ++i) {
    if (meta_->Config(PartitionId(0)).in_sync.size() == 3) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(meta_->Config(PartitionId(0)).in_sync.size(), 3u) << "node 3 never joined";
  const Lsn last = node(1).rig->store()->partition_state(PartitionId(0)).last_lsn;
  ASSERT_TRUE(WaitCommitted({1, 2, 3}, 0, last));
  EXPECT_EQ(Docs(3, 0), acked);
  // The installed state survives a crash of the node that received it.
  node(3).Down(/*crash=*/true);
  ASSERT_TRUE(node(3).rig->Open().ok());
  EXPECT_GE(node(3).rig->store()->partition_state(PartitionId(0)).last_lsn.value() +
                node(3).rig->store()->LoggedEntries(PartitionId(0)).size(),
            last.value());
  node(3).rig->Close(false);
}

// A replica the map takes from a node (replaced while it was away) has its
// data dropped there, uncommitted tail included, so that it holds no space
// and no checkpoint waits for it; given the partition again, the node
// catches up from nothing.
TEST_F(ReplicaHostTest, ARemovedReplicaDropsItsDataAndCanComeBackEmpty) {
  meta_->Configure(Config(0, 1, {1, 2, 3}, {1, 2, 3}));
  std::map<std::string, std::string> acked;
  uint64_t seq = 0;
  for (; seq < 30; ++seq) {
    const std::string id = "r" + std::to_string(seq % 11);
    auto r = Put(1, 0, id, Body(id, seq), seq);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    acked[id] = Body(id, seq);
  }
  const Lsn last = node(1).rig->store()->partition_state(PartitionId(0)).last_lsn;
  ASSERT_TRUE(WaitCommitted({1, 2, 3}, 0, last));
  ASSERT_EQ(Docs(3, 0), acked);
  // Node 3 leaves the partition (replaced): its copy goes.
  meta_->Configure(Config(0, 2, {1, 2}, {1, 2}));
  bool dropped = false;
  for (int i = 0; i < 500 && !dropped; ++i) {
    dropped = node(3).rig->store()->partition_state(PartitionId(0)).documents == 0 &&
              node(3).rig->store()->LoggedEntries(PartitionId(0)).empty();
    if (!dropped) std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(dropped) << "node 3 still holds the removed partition";
  EXPECT_EQ(node(3).host->Report(PartitionId(0))->role, ReplicaRole::kRemoved);
  EXPECT_EQ(node(3).host->Report(PartitionId(0))->last_lsn, Lsn(0));
  // The drop survives a crash.
  node(3).Down(/*crash=*/true);
  ASSERT_TRUE(node(3).rig->Open().ok());
  EXPECT_EQ(node(3).rig->store()->partition_state(PartitionId(0)).documents, 0u);
  EXPECT_TRUE(node(3).rig->store()->LoggedEntries(PartitionId(0)).empty());
  node(3).rig->Close(false);
  node(3).Up();
  // Writes go on without it; then it is given the partition again as a
  // learner, catches up from nothing and is admitted.
  for (; seq < 50; ++seq) {
    const std::string id = "r" + std::to_string(seq % 11);
    auto r = Put(1, 0, id, Body(id, seq), seq);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    acked[id] = Body(id, seq);
  }
  meta_->Configure(Config(0, 3, {1, 2, 3}, {1, 2}));
  for (int i = 0; i < 500; ++i) {
    if (meta_->Config(PartitionId(0)).in_sync.size() == 3) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(meta_->Config(PartitionId(0)).in_sync.size(), 3u) << "node 3 never joined again";
  const Lsn now_last = node(1).rig->store()->partition_state(PartitionId(0)).last_lsn;
  ASSERT_TRUE(WaitCommitted({1, 2, 3}, 0, now_last));
  EXPECT_EQ(Docs(3, 0), acked);
}

// ---------------------------------------------------------------- streamed snapshots

class SnapshotStreamTest : public ReplicaHostTest {
 protected:
  // Restarts every node with a log kept so short that a node away for a
  // while needs a snapshot, and with `rate` bytes/s of snapshot sending.
  void Restart(uint64_t rate) {
    for (auto& n : nodes_) {
      n->Down(false);
      n->log_retention = 4;
      n->snapshot_rate = rate;
      n->Up();
    }
  }
  static std::string BigBody(const std::string& id, uint64_t v) {
    std::string b = "{\"id\":\"" + id + "\",\"v\":" + std::to_string(v) + ",\"pad\":\"";
    b += std::string(3900 + v % 150 - b.size(), static_cast<char>('a' + v % 26));
    return b + "\"}";
  }
  // Writes a few documents with every node in step, takes node 3 out of the
  // configuration (a clean stop), then writes `n` more of about 4 KB (one
  // block each) so that it falls behind the kept log by far. Returns what
  // node 3 held when it left in *before.
  void WriteWhileNode3Away(int n, std::map<std::string, std::string>* before) {
    meta_->Configure(Config(0, 1, {1, 2, 3}, {1, 2, 3}));
    for (; seq_ < 10; ++seq_) PutAcked("b" + std::to_string(seq_));
    ASSERT_TRUE(WaitCommitted({1, 2, 3}, 0, LastOn(1)));
    *before = acked_;
    node(3).Down(/*crash=*/false);
    meta_->Configure(Config(0, 2, {1, 2}, {1, 2}));
    for (int i = 0; i < n; ++i, ++seq_) PutAcked("b" + std::to_string(seq_));
  }
  void PutAcked(const std::string& id) {
    auto r = Put(1, 0, id, BigBody(id, seq_), seq_);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    acked_[id] = BigBody(id, seq_);
  }
  Lsn LastOn(uint32_t n) { return node(n).rig->store()->partition_state(PartitionId(0)).last_lsn; }
  // Node 3 comes back as a learner (re-replication).
  void BringBackNode3() {
    node(3).Up();
    meta_->Configure(Config(0, 3, {1, 2, 3}, {1, 2}));
  }
  // Waits for node 3 to have joined and to hold every acknowledged write.
  void ExpectNode3Complete() {
    for (int i = 0; i < 1500; ++i) {
      if (meta_->Config(PartitionId(0)).in_sync.size() == 3) break;
      std::this_thread::sleep_for(20ms);
    }
    ASSERT_EQ(meta_->Config(PartitionId(0)).in_sync.size(), 3u) << "node 3 never joined";
    ASSERT_TRUE(WaitCommitted({1, 2, 3}, 0, LastOn(1)));
    EXPECT_EQ(Docs(3, 0), acked_);
  }
  template <typename Pred>
  bool WaitFor(Pred pred) {
    for (int i = 0; i < 1500; ++i) {
      if (pred()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  uint64_t seq_ = 0;
  std::map<std::string, std::string> acked_;
};

TEST_F(SnapshotStreamTest, APartitionMuchLargerThanAChunkIsStreamedInManyChunks) {
  Restart(/*rate=*/0);
  std::map<std::string, std::string> before;
  WriteWhileNode3Away(400, &before);  // ~1.6 MB, 64 KiB chunks
  BringBackNode3();
  ExpectNode3Complete();
  const SnapshotStats sent = node(1).host->snapshot_stats();
  const SnapshotStats got = node(3).host->snapshot_stats();
  EXPECT_EQ(sent.streams_started, 1u);
  EXPECT_EQ(sent.streams_completed, 1u);
  EXPECT_GE(sent.chunks_planned, 20u);
  EXPECT_EQ(sent.chunks_sent, sent.chunks_planned);
  EXPECT_EQ(sent.chunk_failures, 0u);
  EXPECT_GE(sent.bytes_sent, 400u * 3900);
  EXPECT_EQ(got.chunks_received, sent.chunks_planned);
  EXPECT_EQ(got.snapshots_installed, 1u);
  EXPECT_FALSE(node(3).host->ReceivingSnapshot(PartitionId(0)).has_value());
  // The installed state survives a power cut of the node that received it.
  node(3).Down(/*crash=*/true);
  ASSERT_TRUE(node(3).rig->Open().ok());
  EXPECT_EQ(Docs(3, 0), acked_);
  node(3).rig->Close(false);
}

TEST_F(SnapshotStreamTest, ABrokenStreamResumesWhereTheReceiverStopped) {
  Restart(/*rate=*/0);
  std::map<std::string, std::string> before;
  WriteWhileNode3Away(300, &before);
  // Chunk 5 is lost three times (the connection broke before it arrived),
  // chunk 9 arrives but its answer is lost once.
  std::atomic<int> lost5{0}, lost9{0};
  net_.SetChunkHook([&](NodeId to, const SnapshotChunkMsg& c) {
    if (to != NodeId(3)) return Net::ChunkFault::kNone;
    if (c.chunk_index == 5 && lost5 < 3) {
      ++lost5;
      return Net::ChunkFault::kLose;
    }
    if (c.chunk_index == 9 && lost9 < 1) {
      ++lost9;
      return Net::ChunkFault::kLoseAnswer;
    }
    return Net::ChunkFault::kNone;
  });
  BringBackNode3();
  ExpectNode3Complete();
  net_.SetChunkHook(nullptr);
  EXPECT_EQ(lost5.load(), 3);
  EXPECT_EQ(lost9.load(), 1);
  const SnapshotStats sent = node(1).host->snapshot_stats();
  const SnapshotStats got = node(3).host->snapshot_stats();
  // One stream, never restarted: every chunk was answered once (chunk 9's
  // lost answer came with its retry, which the receiver recognized), chunk 5
  // went again only after its failures; nothing before them was resent.
  EXPECT_EQ(sent.streams_started, 1u);
  EXPECT_EQ(sent.streams_completed, 1u);
  EXPECT_GE(sent.chunks_planned, 15u);
  EXPECT_EQ(sent.chunk_failures, 4u);
  EXPECT_EQ(sent.chunks_rewound, 0u);
  EXPECT_EQ(sent.chunks_sent, sent.chunks_planned);
  EXPECT_EQ(got.chunks_received, sent.chunks_planned);
  EXPECT_EQ(got.chunks_duplicate, 1u);
  EXPECT_EQ(got.stages_dropped, 0u);
  EXPECT_EQ(got.snapshots_installed, 1u);
}

TEST_F(SnapshotStreamTest, AReceiverCrashMidStreamLeavesAConsistentStore) {
  Restart(/*rate=*/0);
  std::map<std::string, std::string> before;
  WriteWhileNode3Away(300, &before);
  // The connection to node 3 breaks for good at chunk 8; node 3 then loses
  // power with chunks 0..7 staged (their blocks written, not synced).
  std::atomic<bool> cut{true};
  net_.SetChunkHook([&](NodeId to, const SnapshotChunkMsg& c) {
    return to == NodeId(3) && cut && c.chunk_index >= 8 ? Net::ChunkFault::kLose
                                                        : Net::ChunkFault::kNone;
  });
  BringBackNode3();
  ASSERT_TRUE(WaitFor([&] {
    auto p = node(3).host->ReceivingSnapshot(PartitionId(0));
    return p && node(3).host->snapshot_stats().chunks_received == 8;
  }));
  const auto progress = node(3).host->ReceivingSnapshot(PartitionId(0));
  ASSERT_TRUE(progress.has_value());
  EXPECT_GT(progress->bytes_done, 0u);
  EXPECT_LT(progress->bytes_done, progress->bytes_total);
  // What node 3 holds (its applied state and its logged entries: after a
  // restart, entries wait for their replica to commit them again).
  DocStore* store3 = node(3).rig->store();
  const Lsn applied3 = LastOn(3);
  const auto logged3 = store3->last_logged(PartitionId(0));
  ASSERT_GE(logged3.first.value(), before.size());
  node(3).Down(/*crash=*/true);
  // Its store opens with just that: nothing of the partial snapshot is
  // installed.
  ASSERT_TRUE(node(3).rig->Open().ok());
  store3 = node(3).rig->store();
  EXPECT_EQ(LastOn(3), applied3);
  EXPECT_EQ(store3->last_logged(PartitionId(0)), logged3);
  EXPECT_LT(store3->stats().documents, 300u);
  node(3).rig->Close(false);
  // Back up and reachable: the same stream goes on from chunk 0 (the staged
  // chunks went with the crash) and the snapshot is installed.
  cut = false;
  node(3).Up();
  ExpectNode3Complete();
  net_.SetChunkHook(nullptr);
  const SnapshotStats sent = node(1).host->snapshot_stats();
  EXPECT_GE(sent.chunks_rewound, 1u);
  EXPECT_GE(sent.streams_completed, 1u);
  EXPECT_EQ(node(3).host->snapshot_stats().snapshots_installed, 1u);
}

TEST_F(SnapshotStreamTest, AStageReplacedByANewerSnapshotIsDroppedAndTheStreamStartsOver) {
  Restart(/*rate=*/0);
  std::map<std::string, std::string> before;
  WriteWhileNode3Away(300, &before);
  // Chunks from 6 on do not get through; chunk 0 is kept.
  std::atomic<bool> cut{true};
  Mutex mu;
  std::optional<SnapshotChunkMsg> first;
  net_.SetChunkHook([&](NodeId to, const SnapshotChunkMsg& c) {
    if (to != NodeId(3)) return Net::ChunkFault::kNone;
    if (c.chunk_index == 0) {
      MutexLock l(&mu);
      first = c;
    }
    return cut && c.chunk_index >= 6 ? Net::ChunkFault::kLose : Net::ChunkFault::kNone;
  });
  BringBackNode3();
  ASSERT_TRUE(WaitFor([&] { return node(3).host->snapshot_stats().chunks_received == 6; }));
  // Chunk 0 of another snapshot (another id) replaces the stage: the six
  // chunks' blocks are forgotten.
  SnapshotChunkMsg other;
  {
    MutexLock l(&mu);
    ASSERT_TRUE(first.has_value());
    other = *first;
  }
  other.snapshot_id += 1000;
  auto answer = node(3).host->OnSnapshotChunk(other);
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(answer->next_chunk, 1u);
  EXPECT_FALSE(answer->done);
  EXPECT_EQ(node(3).host->snapshot_stats().stages_dropped, 1u);
  // The first stream's next chunk is refused ("want 0"): it starts over and
  // replaces the other stage in turn, then completes.
  cut = false;
  ExpectNode3Complete();
  net_.SetChunkHook(nullptr);
  EXPECT_GE(node(1).host->snapshot_stats().chunks_rewound, 1u);
  EXPECT_EQ(node(3).host->snapshot_stats().stages_dropped, 2u);
  EXPECT_EQ(node(3).host->snapshot_stats().snapshots_installed, 1u);
  EXPECT_FALSE(node(3).host->ReceivingSnapshot(PartitionId(0)).has_value());
}

TEST_F(SnapshotStreamTest, ACorruptChunkDropsTheStageAndTheStreamStartsOver) {
  Restart(/*rate=*/0);
  std::map<std::string, std::string> before;
  WriteWhileNode3Away(300, &before);
  // Chunk 10 (blocks) arrives once with a flipped byte.
  std::atomic<int> corrupted{0};
  net_.SetChunkHook([&](NodeId to, const SnapshotChunkMsg& c) {
    if (to == NodeId(3) && c.chunk_index == 10 && corrupted == 0) {
      ++corrupted;
      return Net::ChunkFault::kCorrupt;
    }
    return Net::ChunkFault::kNone;
  });
  BringBackNode3();
  ExpectNode3Complete();
  net_.SetChunkHook(nullptr);
  EXPECT_EQ(corrupted.load(), 1);
  const SnapshotStats sent = node(1).host->snapshot_stats();
  const SnapshotStats got = node(3).host->snapshot_stats();
  // The receiver refused the chunk (its block did not match its hash) and
  // dropped what it had staged; the sender's retry was told to start over.
  EXPECT_EQ(got.stages_dropped, 1u);
  EXPECT_GE(sent.chunk_failures, 1u);
  EXPECT_EQ(sent.chunks_rewound, 1u);
  EXPECT_EQ(got.snapshots_installed, 1u);
}

TEST_F(SnapshotStreamTest, AnIdleStageIsDroppedAndTheStreamStartsOver) {
  nodes_[2]->snapshot_stream_timeout = 300ms;  // node 3 drops idle stages fast
  Restart(/*rate=*/0);
  std::map<std::string, std::string> before;
  WriteWhileNode3Away(300, &before);
  std::atomic<bool> cut{true};
  net_.SetChunkHook([&](NodeId to, const SnapshotChunkMsg& c) {
    return to == NodeId(3) && cut && c.chunk_index >= 6 ? Net::ChunkFault::kLose
                                                        : Net::ChunkFault::kNone;
  });
  BringBackNode3();
  ASSERT_TRUE(WaitFor([&] { return node(3).host->snapshot_stats().chunks_received == 6; }));
  ASSERT_TRUE(WaitFor([&] { return node(3).host->snapshot_stats().stages_dropped == 1; }));
  EXPECT_FALSE(node(3).host->ReceivingSnapshot(PartitionId(0)).has_value());
  cut = false;
  ExpectNode3Complete();
  net_.SetChunkHook(nullptr);
  EXPECT_GE(node(1).host->snapshot_stats().chunks_rewound, 1u);
  EXPECT_EQ(node(3).host->snapshot_stats().snapshots_installed, 1u);
}

TEST_F(SnapshotStreamTest, TheThrottleLimitsTheSendingRate) {
  constexpr uint64_t kRate = 1 << 20;  // 1 MiB/s
  Restart(kRate);
  std::map<std::string, std::string> before;
  WriteWhileNode3Away(400, &before);  // ~1.6 MB: at least 1.5 s at 1 MiB/s
  const auto start = std::chrono::steady_clock::now();
  BringBackNode3();
  ASSERT_TRUE(WaitFor([&] { return node(3).host->snapshot_stats().snapshots_installed == 1; }));
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const SnapshotStats sent = node(1).host->snapshot_stats();
  const double floor = static_cast<double>(sent.bytes_sent) / kRate;
  EXPECT_GE(sent.bytes_sent, 400u * 3900);
  EXPECT_GE(elapsed, 0.9 * floor) << sent.bytes_sent << " bytes";
  ExpectNode3Complete();
}

}  // namespace
}  // namespace cairn::chunkserver
