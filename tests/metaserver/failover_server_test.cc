// Failover in the real MetaServer (issue 6 phase 2, metaserver side): one or
// two MetaServers over one MemMetaStore, on a ManualClock, called through
// mutual TLS by fake chunk servers that heartbeat with replica reports.
// Leases, failure detection and promotion, ChangeInSync, replacement, a new
// leader's wait, and failover = false leaving everything as it was.
//
// Time: the servers' failover decisions read the ManualClock, which moves
// only when a test advances it, in steps shorter than the failure timeout
// with every live node heartbeating after each step, so the failover timer
// (which also runs, in real time) can never see a live node as failed. Each
// step then runs one planning round itself (RunFailoverPlan), so what a step
// decides does not depend on the timer's schedule.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "metaserver/mem_meta_store.h"
#include "metaserver/meta_server.h"
#include "tests/common/test_seeds.h"
#include "tests/metaserver/meta_test_util.h"

namespace cairn::metaserver {
namespace {

using std::chrono::milliseconds;
using testing::MetaClient;
using testing::PoolFor;
using testing::TempDir;
using testing::TestCerts;

constexpr int kPartitions = 4;

// The test's MemMetaStore, with writes of the map key whose answer is lost
// (applied, then IOError) and failed reads of it, on demand.
class FlakyStore final : public MetaStore {
 public:
  explicit FlakyStore(MetaStore* inner) : inner_(inner) {}
  Result<std::optional<KeyValue>> Get(std::string_view key) override {
    if (fail_map_reads && key == kMapKey) return Status::IOError("injected: read lost");
    return inner_->Get(key);
  }
  Result<std::vector<KeyValue>> List(std::string_view prefix) override {
    return inner_->List(prefix);
  }
  Result<TxnResult> Txn(const std::vector<Compare>& compares, const std::vector<Op>& then_ops,
                        const std::vector<Op>& else_ops) override {
    Result<TxnResult> r = inner_->Txn(compares, then_ops, else_ops);
    const bool map = std::any_of(then_ops.begin(), then_ops.end(),
                                 [](const Op& op) { return op.key == kMapKey; });
    if (lose_map_write_answers && map) return Status::IOError("injected: answer lost");
    return r;
  }
  Result<LeaseGrant> Grant(std::chrono::seconds ttl) override { return inner_->Grant(ttl); }
  Result<std::chrono::seconds> KeepAlive(StoreLeaseId lease) override {
    return inner_->KeepAlive(lease);
  }
  Status Revoke(StoreLeaseId lease) override { return inner_->Revoke(lease); }
  Result<LeaderKey> Campaign(std::string_view election, StoreLeaseId lease, std::string_view value,
                             Nanos timeout, const std::atomic<bool>* cancel) override {
    return inner_->Campaign(election, lease, value, timeout, cancel);
  }
  Result<std::optional<KeyValue>> Leader(std::string_view election) override {
    return inner_->Leader(election);
  }
  Status Resign(const LeaderKey& leader) override { return inner_->Resign(leader); }

  static constexpr std::string_view kMapKey = "/cairn/map";
  std::atomic<bool> fail_map_reads{false};
  std::atomic<bool> lose_map_write_answers{false};

 private:
  MetaStore* const inner_;
};

// A fake chunk server: its identity and what it reports.
struct FakeNode {
  std::string name;
  int32_t id = 0;
  std::unique_ptr<net::ConnectionPool> pool;
  int64_t last_lsn = 0;
  bool can_lead = true;
  bool restarted = false;  // reports itself not primary (fenced after a restart)
};

class FailoverServerTest : public ::testing::Test {
 protected:
  MetaServerOptions Options(const std::string& name, int nodes, int replication,
                            bool failover = true) {
    MetaServerOptions o;
    TlsOptions tls = certs_.Node(name);
    o.name = name;
    o.listen = "127.0.0.1:0";
    o.store = "memory";
    o.tls_ca = tls.ca_file;
    o.tls_cert = tls.cert_file;
    o.tls_key = tls.key_file;
    o.partitions = kPartitions;
    o.initial_nodes = nodes;
    o.replication = replication;
    o.election_ttl_s = 1;
    o.failover = failover;
    // The timelines below are written for these (not the daemon's defaults).
    o.heartbeat_interval_ms = 500;
    o.failure_timeout_ms = 2000;
    o.lease_ms = 2000;
    o.replacement_timeout_ms = 30000;
    return o;
  }
  std::unique_ptr<MetaServer> Start(const MetaServerOptions& o) {
    auto s = MetaServer::Start(o, &flaky_, &clock_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) return nullptr;
    return std::move(s).value();
  }
  static bool BecomesLeader(MetaServer& s) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (s.IsLeader()) return true;
      std::this_thread::sleep_for(milliseconds(10));
    }
    return false;
  }
  // Starts a leader and registers `count` nodes n1..n<count>.
  std::unique_ptr<MetaServer> StartCluster(int count, int replication, bool failover = true) {
    auto s = Start(Options("m1", count, replication, failover));
    if (!s || !BecomesLeader(*s)) return nullptr;
    leader_ = s.get();
    for (int i = 1; i <= count; ++i) {
      auto n = std::make_unique<FakeNode>();
      n->name = "n" + std::to_string(i);
      n->pool = PoolFor(certs_.Node(n->name));
      auto id = To(*n).Register(n->name, "127.0.0." + std::to_string(i), 7100, failover);
      EXPECT_TRUE(id.ok()) << id.status().ToString();
      if (!id.ok()) return nullptr;
      n->id = *id;
      nodes_.push_back(std::move(n));
    }
    return s;
  }
  MetaClient To(const FakeNode& n) {
    return MetaClient(n.pool.get(), HostPort{"127.0.0.1", leader_->port()});
  }
  FakeNode& Node(int32_t id) {
    for (auto& n : nodes_) {
      if (n->id == id) return *n;
    }
    ADD_FAILURE() << "no node " << id;
    return *nodes_[0];
  }
  rpc::ClusterMap Map() {
    auto m = To(*nodes_[0]).GetMap();
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? *m : rpc::ClusterMap();
  }
  // A heartbeat of `n` reporting every replica it holds in the current map,
  // as primary of the map's epoch where the map names it primary.
  rpc::HeartbeatReply Beat(const FakeNode& n) {
    const rpc::ClusterMap m = Map();
    rpc::HeartbeatRequest req;
    req.node_id = n.id;
    req.__isset.replicas = true;
    for (const rpc::PartitionInfo& p : m.partitions) {
      if (std::find(p.replicas.begin(), p.replicas.end(), n.id) == p.replicas.end()) continue;
      rpc::ReplicaReport r;
      r.partition = p.id;
      r.epoch = p.epoch;
      r.primary = !n.restarted && p.replicas[0] == n.id;
      r.last_lsn = n.last_lsn;
      r.commit_lsn = n.last_lsn;
      r.active = r.primary;
      r.can_lead = n.can_lead;
      req.replicas.push_back(r);
    }
    req.__set_sent_at_ns(clock_.Now().count());
    req.__set_incarnation(1);
    auto reply = To(n).Heartbeat(req);
    EXPECT_TRUE(reply.ok()) << n.name << ": " << reply.status().ToString();
    return reply.ok() ? *reply : rpc::HeartbeatReply();
  }
  // Advances the clock by `ms`, then every node in `alive` heartbeats, then
  // one planning round runs.
  void Step(int ms, const std::vector<FakeNode*>& alive) {
    clock_.Advance(milliseconds(ms));
    for (FakeNode* n : alive) Beat(*n);
    Status s = leader_->RunFailoverPlan();
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  std::vector<FakeNode*> AllBut(int32_t id) {
    std::vector<FakeNode*> out;
    for (auto& n : nodes_) {
      if (n->id != id) out.push_back(n.get());
    }
    return out;
  }
  rpc::InSyncChange Change(bool join, const rpc::PartitionInfo& p, int32_t node) {
    rpc::InSyncChange c;
    c.join = join;
    c.partition = p.id;
    c.epoch = p.epoch;
    c.primary = p.replicas[0];
    c.node = node;
    return c;
  }
  static bool Has(const std::vector<int32_t>& v, int32_t id) {
    return std::find(v.begin(), v.end(), id) != v.end();
  }

  test::QuietLogs quiet_;
  TempDir dir_;
  TestCerts certs_{dir_.path()};
  MemMetaStore store_;  // real clock: the election lease expires in real time
  FlakyStore flaky_{&store_};
  ManualClock clock_;  // the metaservers' clock: failover decisions
  MetaServer* leader_ = nullptr;
  std::vector<std::unique_ptr<FakeNode>> nodes_;
};

TEST_F(FailoverServerTest, LeasesOnlyForTheMapsPrimaryOfTheMapsEpoch) {
  auto server = StartCluster(3, 3);
  ASSERT_TRUE(server);
  const rpc::ClusterMap m = Map();
  for (auto& n : nodes_) {
    const rpc::HeartbeatReply reply = Beat(*n);
    std::set<int32_t> want;
    for (const rpc::PartitionInfo& p : m.partitions) {
      if (p.replicas[0] == n->id) want.insert(p.id);
    }
    ASSERT_FALSE(want.empty());
    ASSERT_TRUE(reply.__isset.leases);
    std::set<int32_t> got;
    for (const rpc::PrimaryLease& l : reply.leases) {
      got.insert(l.partition);
      EXPECT_EQ(l.epoch, m.partitions[static_cast<size_t>(l.partition)].epoch);
    }
    EXPECT_EQ(got, want) << n->name;
    EXPECT_EQ(reply.sent_at_ns, clock_.Now().count());
    EXPECT_EQ(reply.incarnation, 1);
    EXPECT_EQ(reply.map_version, m.version);
  }

  // A backup that claims to be primary, and the primary of another epoch,
  // get nothing.
  const rpc::PartitionInfo& p0 = m.partitions[0];
  for (int32_t claimant : {p0.replicas[1], p0.replicas[0]}) {
    for (int64_t epoch : {p0.epoch, p0.epoch - 1, p0.epoch + 1}) {
      if (claimant == p0.replicas[0] && epoch == p0.epoch) continue;
      rpc::HeartbeatRequest req;
      req.node_id = claimant;
      rpc::ReplicaReport r;
      r.partition = 0;
      r.epoch = epoch;
      r.primary = true;
      r.can_lead = true;
      req.__set_replicas({r});
      auto reply = To(Node(claimant)).Heartbeat(req);
      ASSERT_TRUE(reply.ok()) << reply.status().ToString();
      EXPECT_TRUE(reply->leases.empty()) << "node " << claimant << " epoch " << epoch;
      EXPECT_FALSE(reply->__isset.sent_at_ns);
    }
  }
  // A heartbeat without reports (today's chunk servers) is answered as before.
  rpc::HeartbeatRequest plain;
  plain.node_id = nodes_[0]->id;
  auto reply = To(*nodes_[0]).Heartbeat(plain);
  ASSERT_TRUE(reply.ok());
  EXPECT_FALSE(reply->__isset.leases);
  // Bad reports are refused.
  rpc::HeartbeatRequest bad;
  bad.node_id = nodes_[0]->id;
  rpc::ReplicaReport r;
  r.partition = -1;
  bad.__set_replicas({r});
  EXPECT_EQ(To(*nodes_[0]).Heartbeat(bad).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Map().version, m.version);  // heartbeats never change the map
}

TEST_F(FailoverServerTest, PromotesTheLiveInSyncBackupWithTheHighestLsn) {
  auto server = StartCluster(3, 3);
  ASSERT_TRUE(server);
  const rpc::ClusterMap before = Map();
  const int32_t dead = before.partitions[0].replicas[0];
  // The two others: `best` has the higher last LSN.
  const int32_t best = before.partitions[0].replicas[2];
  const int32_t other = before.partitions[0].replicas[1];
  Node(dead).last_lsn = 20;
  Node(best).last_lsn = 12;
  Node(other).last_lsn = 9;
  for (auto& n : nodes_) Beat(*n);  // the dead node's last heartbeat and lease

  // Within the failure timeout (and the lease) nothing moves.
  for (int i = 0; i < 3; ++i) Step(500, AllBut(dead));
  EXPECT_EQ(Map().version, before.version);
  Step(499, AllBut(dead));
  EXPECT_EQ(Map().version, before.version);
  Step(1, AllBut(dead));  // 2 s since the dead node's heartbeat and lease

  const rpc::ClusterMap after = Map();
  EXPECT_GT(after.version, before.version);
  for (size_t i = 0; i < after.partitions.size(); ++i) {
    const rpc::PartitionInfo& b = before.partitions[i];
    const rpc::PartitionInfo& a = after.partitions[i];
    EXPECT_EQ(a.epoch, b.epoch + 1) << "partition " << i;
    EXPECT_FALSE(Has(a.in_sync, dead)) << "partition " << i;
    EXPECT_EQ(a.in_sync.size(), 2u) << "partition " << i;
    EXPECT_EQ(a.replicas.size(), 3u) << "partition " << i;  // replaced only after 30 s
    if (b.replicas[0] == dead) {
      EXPECT_EQ(a.replicas[0], best) << "partition " << i;
      EXPECT_EQ(a.in_sync[0], best);
    } else {
      EXPECT_EQ(a.replicas, b.replicas) << "partition " << i;
    }
  }
  // The new primary gets the lease of the new epoch; the old one, back,
  // reporting its old epoch, gets none.
  rpc::HeartbeatReply reply = Beat(Node(best));
  bool leased = false;
  for (const rpc::PrimaryLease& l : reply.leases) {
    leased |= l.partition == 0 && l.epoch == before.partitions[0].epoch + 1;
  }
  EXPECT_TRUE(leased);
  rpc::HeartbeatRequest old;
  old.node_id = dead;
  rpc::ReplicaReport r;
  r.partition = 0;
  r.epoch = before.partitions[0].epoch;
  r.primary = true;
  r.can_lead = true;
  old.__set_replicas({r});
  auto old_reply = To(Node(dead)).Heartbeat(old);
  ASSERT_TRUE(old_reply.ok());
  EXPECT_TRUE(old_reply->leases.empty());
}

TEST_F(FailoverServerTest, NoPromotionWithoutALiveInSyncReplica) {
  auto server = StartCluster(3, 3);
  ASSERT_TRUE(server);
  rpc::ClusterMap m = Map();
  const int32_t primary = m.partitions[0].replicas[0];
  for (int k = 1; k <= 2; ++k) {  // the primary drops both backups of partition 0
    const rpc::PartitionInfo p = Map().partitions[0];
    auto v = To(Node(primary)).ChangeInSync(Change(false, p, p.replicas[static_cast<size_t>(k)]));
    ASSERT_TRUE(v.ok()) << v.status().ToString();
  }
  const rpc::PartitionInfo alone = Map().partitions[0];
  ASSERT_EQ(alone.in_sync, std::vector<int32_t>{primary});
  for (auto& n : nodes_) Beat(*n);
  for (int i = 0; i < 20; ++i) Step(500, AllBut(primary));  // 10 s
  const rpc::PartitionInfo after = Map().partitions[0];
  EXPECT_EQ(after.epoch, alone.epoch);  // unavailable, never unsafe
  EXPECT_EQ(after.replicas, alone.replicas);
  EXPECT_EQ(after.in_sync, alone.in_sync);
  // The other partitions the node led did move on.
  for (const rpc::PartitionInfo& p : Map().partitions) {
    if (p.id != 0) {
      EXPECT_NE(p.replicas[0], primary) << "partition " << p.id;
    }
  }
}

TEST_F(FailoverServerTest, ChangeInSyncOnlyAtTheCurrentEpochFromThePrimary) {
  auto server = StartCluster(3, 3);
  ASSERT_TRUE(server);
  const rpc::PartitionInfo p = Map().partitions[0];
  const int32_t primary = p.replicas[0];
  const int32_t backup = p.replicas[1];
  MetaClient as_primary = To(Node(primary));
  MetaClient as_backup = To(Node(backup));
  const int64_t v0 = Map().version;

  auto v = as_primary.ChangeInSync(Change(false, p, backup));
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, v0 + 1);
  rpc::PartitionInfo q = Map().partitions[0];
  EXPECT_EQ(q.epoch, p.epoch + 1);
  EXPECT_FALSE(Has(q.in_sync, backup));
  EXPECT_EQ(q.replicas, p.replicas);  // a learner now

  // The same request again (a duplicate, or late): the epoch moved on.
  EXPECT_EQ(as_primary.ChangeInSync(Change(false, p, backup)).status().code(),
            StatusCode::kStaleEpoch);
  // A join at the current epoch.
  v = as_primary.ChangeInSync(Change(true, q, backup));
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, v0 + 2);
  q = Map().partitions[0];
  EXPECT_EQ(q.epoch, p.epoch + 2);
  EXPECT_TRUE(Has(q.in_sync, backup));
  EXPECT_EQ(as_primary.ChangeInSync(Change(true, p, backup)).status().code(),
            StatusCode::kStaleEpoch);

  // Only the primary, only as itself, only for a backup of the partition.
  rpc::InSyncChange c = Change(false, q, primary);
  c.primary = backup;
  EXPECT_EQ(as_backup.ChangeInSync(c).status().code(), StatusCode::kNotPrimary);
  EXPECT_EQ(as_backup.ChangeInSync(Change(false, q, backup)).status().code(),
            StatusCode::kPermissionDenied);
  auto user = PoolFor(certs_.For(Role::kUser, "alice"));
  EXPECT_EQ(MetaClient(user.get(), HostPort{"127.0.0.1", leader_->port()})
                .ChangeInSync(Change(false, q, backup))
                .status()
                .code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(as_primary.ChangeInSync(Change(false, q, primary)).status().code(),
            StatusCode::kFailedPrecondition);
  c = Change(false, q, backup);
  c.partition = 99;
  EXPECT_EQ(as_primary.ChangeInSync(c).status().code(), StatusCode::kInvalidArgument);
  c.partition = -1;
  EXPECT_EQ(as_primary.ChangeInSync(c).status().code(), StatusCode::kInvalidArgument);
  const rpc::PartitionInfo end = Map().partitions[0];
  EXPECT_EQ(end, q);
  EXPECT_EQ(Map().version, v0 + 2);
}

TEST_F(FailoverServerTest, ReplacesAReplicaAfterTheReplacementTimeout) {
  auto server = StartCluster(4, 3);
  ASSERT_TRUE(server);
  const rpc::ClusterMap before = Map();
  const int32_t dead = nodes_[3]->id;
  for (auto& n : nodes_) Beat(*n);
  // 2 s: failed, out of every in-sync set; 30 s: replaced by a learner.
  for (int i = 0; i < 4; ++i) Step(500, AllBut(dead));
  for (const rpc::PartitionInfo& p : Map().partitions) EXPECT_FALSE(Has(p.in_sync, dead));
  for (int i = 4; i < 59; ++i) Step(500, AllBut(dead));
  rpc::ClusterMap m = Map();
  for (const rpc::PartitionInfo& p : m.partitions) {
    if (Has(before.partitions[static_cast<size_t>(p.id)].replicas, dead)) {
      EXPECT_TRUE(Has(p.replicas, dead)) << "partition " << p.id << " replaced before 30 s";
    }
  }
  Step(500, AllBut(dead));  // 30 s
  m = Map();
  int replaced = 0;
  for (const rpc::PartitionInfo& p : m.partitions) {
    if (!Has(before.partitions[static_cast<size_t>(p.id)].replicas, dead)) {
      EXPECT_EQ(p.replicas, before.partitions[static_cast<size_t>(p.id)].replicas);
      continue;
    }
    ++replaced;
    ASSERT_EQ(p.replicas.size(), 4u) << "partition " << p.id;
    const int32_t learner = p.replicas[3];
    EXPECT_NE(learner, dead);
    EXPECT_FALSE(Has(p.in_sync, learner));
    // The primary admits the learner once it caught up; then the dead
    // replica leaves the partition.
    auto v = To(Node(p.replicas[0])).ChangeInSync(Change(true, p, learner));
    ASSERT_TRUE(v.ok()) << v.status().ToString();
  }
  EXPECT_GT(replaced, 0);
  Step(500, AllBut(dead));
  for (const rpc::PartitionInfo& p : Map().partitions) {
    EXPECT_FALSE(Has(p.replicas, dead)) << "partition " << p.id;
    EXPECT_EQ(p.replicas.size(), 3u) << "partition " << p.id;
    EXPECT_EQ(p.in_sync.size(), 3u) << "partition " << p.id;
  }
}

TEST_F(FailoverServerTest, NewLeaderWaitsOneLeaseBeforePromoting) {
  auto a = StartCluster(3, 3);
  ASSERT_TRUE(a);
  auto b = Start(Options("m2", 3, 3));
  ASSERT_TRUE(b);
  for (auto& n : nodes_) Beat(*n);
  const rpc::ClusterMap before = Map();
  const int32_t restarted = before.partitions[0].replicas[0];
  a->Stop();  // resigns: b takes over, its failover term starts now
  ASSERT_TRUE(BecomesLeader(*b));
  leader_ = b.get();
  // The primary of partition 0 restarted: it reports its partitions, not as
  // primary, and will not lead the epochs it saw. The others are ahead of it.
  Node(restarted).restarted = true;
  Node(restarted).can_lead = false;
  for (auto& n : nodes_) n->last_lsn = n->id == restarted ? 1 : 5 + n->id;
  for (auto& n : nodes_) Beat(*n);
  for (int i = 0; i < 3; ++i) Step(500, AllBut(0));
  Step(499, AllBut(0));
  EXPECT_EQ(Map().version, before.version) << "promoted within one lease of the new leader's start";
  Step(1, AllBut(0));
  const rpc::PartitionInfo p = Map().partitions[0];
  EXPECT_EQ(p.epoch, before.partitions[0].epoch + 1);
  EXPECT_NE(p.replicas[0], restarted);
  EXPECT_TRUE(Has(p.in_sync, restarted));  // alive: stays in sync, as a backup
  b->Stop();
}

TEST_F(FailoverServerTest, FailoverOffChangesNothing) {
  auto server = StartCluster(3, 1, /*failover=*/false);
  ASSERT_TRUE(server);
  const rpc::ClusterMap before = Map();
  for (auto& n : nodes_) {
    const rpc::HeartbeatReply reply = Beat(*n);
    EXPECT_FALSE(reply.__isset.leases);
    EXPECT_FALSE(reply.__isset.sent_at_ns);
    EXPECT_FALSE(reply.__isset.incarnation);
  }
  const int32_t dead = before.partitions[0].replicas[0];
  EXPECT_EQ(leader_->RunFailoverPlan().code(), StatusCode::kFailedPrecondition);
  for (int i = 0; i < 70; ++i) {
    clock_.Advance(milliseconds(500));
    for (FakeNode* n : AllBut(dead)) Beat(*n);
  }
  const rpc::PartitionInfo p = before.partitions[0];
  EXPECT_EQ(To(Node(dead)).ChangeInSync(Change(false, p, p.replicas[0])).status().code(),
            StatusCode::kFailedPrecondition);
  const rpc::ClusterMap after = Map();
  EXPECT_EQ(after.version, before.version);
  EXPECT_EQ(after.partitions, before.partitions);
}

// A promotion stored without a known outcome (the store applied it, its
// answer and the re-read were lost): the cache still names the old primary,
// which must get no lease until the map has been read again.
TEST_F(FailoverServerTest, NoLeaseAfterAMapWriteOfUnknownOutcome) {
  auto server = StartCluster(3, 3);
  ASSERT_TRUE(server);
  const rpc::PartitionInfo p = Map().partitions[0];
  const int32_t old_primary = p.replicas[0];
  for (auto& n : nodes_) Beat(*n);
  for (int i = 0; i < 3; ++i) Step(500, AllBut(old_primary));
  flaky_.fail_map_reads = true;
  flaky_.lose_map_write_answers = true;
  clock_.Advance(milliseconds(500));  // 2 s: the promotion is due
  for (FakeNode* n : AllBut(old_primary)) Beat(*n);
  EXPECT_FALSE(leader_->RunFailoverPlan().ok());

  // The old primary is back and reports the epoch the cache still shows.
  EXPECT_EQ(Map().partitions[0], p);  // the cache
  rpc::HeartbeatRequest req;
  req.node_id = old_primary;
  rpc::ReplicaReport r;
  r.partition = 0;
  r.epoch = p.epoch;
  r.primary = true;
  r.can_lead = true;
  req.__set_replicas({r});
  auto reply = To(Node(old_primary)).Heartbeat(req);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_TRUE(reply->leases.empty());

  flaky_.fail_map_reads = false;
  flaky_.lose_map_write_answers = false;
  ASSERT_TRUE(leader_->RunFailoverPlan().ok());
  const rpc::PartitionInfo q = Map().partitions[0];
  EXPECT_EQ(q.epoch, p.epoch + 1);
  EXPECT_NE(q.replicas[0], old_primary);
  reply = To(Node(old_primary)).Heartbeat(req);
  ASSERT_TRUE(reply.ok());
  EXPECT_TRUE(reply->leases.empty());
  const rpc::HeartbeatReply fresh = Beat(Node(q.replicas[0]));
  ASSERT_FALSE(fresh.leases.empty());  // granted again, on the read map
}

// Today's chunk servers heartbeat without replica reports: failover must act
// on none of their partitions (README, `failover`).
TEST_F(FailoverServerTest, NodesThatDoNotReportAreNeverActedOn) {
  auto server = StartCluster(3, 3);
  ASSERT_TRUE(server);
  const rpc::ClusterMap before = Map();
  for (int i = 0; i < 70; ++i) {  // 35 s: past the failure and replacement timeouts
    clock_.Advance(milliseconds(500));
    for (auto& n : nodes_) {
      rpc::HeartbeatRequest req;
      req.node_id = n->id;
      auto reply = To(*n).Heartbeat(req);
      ASSERT_TRUE(reply.ok()) << reply.status().ToString();
      EXPECT_FALSE(reply->__isset.leases);
    }
    ASSERT_TRUE(leader_->RunFailoverPlan().ok());
  }
  const rpc::ClusterMap after = Map();
  EXPECT_EQ(after.version, before.version);
  EXPECT_EQ(after.partitions, before.partitions);
  for (const rpc::NodeInfo& n : after.nodes) EXPECT_EQ(n.state, rpc::NodeState::UP);
}

TEST_F(FailoverServerTest, RefusesBadFailoverOptions) {
  MetaServerOptions o = Options("m1", 3, 3);
  o.lease_ms = 3000;  // longer than the failure timeout
  auto s = MetaServer::Start(o, &flaky_, &clock_);
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("lease"), std::string::npos) << s.status().ToString();
  o = Options("m1", 3, 3);
  o.heartbeat_interval_ms = 2000;
  EXPECT_EQ(MetaServer::Start(o, &store_, &clock_).status().code(), StatusCode::kInvalidArgument);
  o = Options("m1", 3, 3);
  o.replacement_timeout_ms = 1000;
  EXPECT_EQ(MetaServer::Start(o, &store_, &clock_).status().code(), StatusCode::kInvalidArgument);
  o = Options("m1", 5, 6);
  s = MetaServer::Start(o, &store_, &clock_);
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("replication"), std::string::npos) << s.status().ToString();
  o = Options("m1", 3, 3, /*failover=*/false);  // replicas nobody would keep in step
  s = MetaServer::Start(o, &store_, &clock_);
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("needs failover = true"), std::string::npos)
      << s.status().ToString();
  o = Options("m1", 3, 0, /*failover=*/false);
  EXPECT_EQ(MetaServer::Start(o, &store_, &clock_).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cairn::metaserver
