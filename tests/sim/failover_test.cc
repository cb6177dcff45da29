// Unit tests of the metaserver's failover decisions (metaserver/failover.h).
#include "metaserver/failover.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "metaserver/placement.h"

namespace cairn::metaserver {
namespace {

using namespace std::chrono_literals;

ClusterMap MapWith(uint32_t nodes, uint32_t partitions, uint32_t r) {
  ClusterMap m = ClusterMap::New(partitions);
  for (uint32_t i = 1; i <= nodes; ++i) {
    m.nodes.push_back(
        NodeEntry{NodeId(i), "n" + std::to_string(i), "127.0.0.1", static_cast<int>(7000 + i), 0});
  }
  m.next_node_id = NodeId(nodes + 1);
  EXPECT_TRUE(PlaceUnplacedPartitions(&m, r).ok());
  return m;
}

PartitionReport Rep(uint32_t p, uint64_t epoch, bool primary, uint64_t last) {
  return PartitionReport{PartitionId(p), Epoch(epoch), primary, Lsn(last), Lsn(last), true};
}

TEST(Failover, LeaseOnlyForTheMapsPrimaryAtItsEpoch) {
  ClusterMap m = MapWith(3, 1, 3);
  FailoverLogic f(FailoverOptions{}, Nanos(0));
  const NodeId primary = m.partitions[0].replicas[0];
  const NodeId backup = m.partitions[0].replicas[1];
  EXPECT_EQ(f.OnHeartbeat(m, primary, {Rep(0, 1, true, 5)}, 1s).size(), 1u);
  EXPECT_TRUE(f.OnHeartbeat(m, primary, {Rep(0, 0, true, 5)}, 1s).empty());  // old epoch
  EXPECT_TRUE(f.OnHeartbeat(m, backup, {Rep(0, 1, true, 5)}, 1s).empty());   // not primary
}

TEST(Failover, PromotionWaitsForTheLeaseAndPicksTheHighestInSync) {
  ClusterMap m = MapWith(3, 1, 3);
  FailoverOptions o;
  FailoverLogic f(o, Nanos(0));
  const auto r = m.partitions[0].replicas;
  // Everyone reports at t=1s; the primary holds a lease granted at 1s.
  f.OnHeartbeat(m, r[0], {Rep(0, 1, true, 10)}, 1s);
  f.OnHeartbeat(m, r[1], {Rep(0, 1, false, 8)}, 1s);
  f.OnHeartbeat(m, r[2], {Rep(0, 1, false, 9)}, 1s);
  // The primary goes silent; the backups keep reporting.
  for (auto t = 1500ms; t <= 4000ms; t += 500ms) {
    f.OnHeartbeat(m, r[1], {Rep(0, 1, false, 8)}, t);
    f.OnHeartbeat(m, r[2], {Rep(0, 1, false, 9)}, t);
    ClusterMap copy = m;
    const bool changed = f.Plan(&copy, t);
    if (t < 3000ms) {
      EXPECT_FALSE(changed) << "promoted at " << t.count() << " before the failure timeout";
    } else {
      ASSERT_TRUE(changed);
      EXPECT_EQ(copy.partitions[0].replicas[0], r[2]);  // highest LSN
      EXPECT_EQ(copy.partitions[0].epoch, Epoch(2));
      EXPECT_EQ(copy.partitions[0].in_sync, (std::vector<NodeId>{r[2], r[1]}));
      EXPECT_TRUE(copy.Validate().ok());
      return;
    }
  }
  FAIL() << "never promoted";
}

TEST(Failover, NeverPromotesOutsideTheInSyncSet) {
  ClusterMap m = MapWith(3, 1, 3);
  m.partitions[0].in_sync = {m.partitions[0].replicas[0], m.partitions[0].replicas[1]};
  FailoverLogic f(FailoverOptions{}, Nanos(0));
  const auto r = m.partitions[0].replicas;
  // Only the learner is alive: no promotion (unavailable, not unsafe).
  for (auto t = 500ms; t <= 10s; t += 500ms) {
    f.OnHeartbeat(m, r[2], {Rep(0, 1, false, 100)}, t);
    ClusterMap copy = m;
    EXPECT_FALSE(f.Plan(&copy, t) && copy.partitions[0].replicas[0] == r[2]);
  }
}

TEST(Failover, NewLeaderWaitsOneLease) {
  ClusterMap m = MapWith(3, 1, 3);
  FailoverLogic f(FailoverOptions{}, 10s);  // became leader at 10 s
  const auto r = m.partitions[0].replicas;
  f.OnHeartbeat(m, r[0], {Rep(0, 1, false, 3)}, 10s);
  f.OnHeartbeat(m, r[1], {Rep(0, 1, false, 3)}, 10s);
  // The primary restarted and cannot lead its epoch: still wait a lease.
  PartitionReport fenced = Rep(0, 1, false, 3);
  fenced.can_lead = false;
  f.OnHeartbeat(m, r[0], {fenced}, 11s);
  f.OnHeartbeat(m, r[1], {Rep(0, 1, false, 3)}, 11s);
  ClusterMap copy = m;
  EXPECT_FALSE(f.Plan(&copy, 11s));
  f.OnHeartbeat(m, r[0], {fenced}, 12s);
  f.OnHeartbeat(m, r[1], {Rep(0, 1, false, 3)}, 12s);
  EXPECT_TRUE(f.Plan(&copy, 12s));
  EXPECT_EQ(copy.partitions[0].epoch, Epoch(2));
}

TEST(Failover, InSyncChangesAreCompareAndSwapOnTheEpoch) {
  ClusterMap m = MapWith(3, 1, 3);
  FailoverLogic f(FailoverOptions{}, Nanos(0));
  const auto r = m.partitions[0].replicas;
  bool changed = false;
  InSyncChange drop{InSyncChange::Kind::kDrop, PartitionId(0), Epoch(1), r[0], r[2]};
  ASSERT_TRUE(f.ApplyInSyncChange(&m, drop, Nanos(0), &changed).ok());
  EXPECT_TRUE(changed);
  EXPECT_EQ(m.partitions[0].epoch, Epoch(2));
  EXPECT_EQ(m.partitions[0].in_sync.size(), 2u);
  // The same request again (a duplicate) finds a newer epoch.
  EXPECT_EQ(f.ApplyInSyncChange(&m, drop, Nanos(0), &changed).code(), StatusCode::kStaleEpoch);
  // Only the primary may ask.
  InSyncChange bad{InSyncChange::Kind::kJoin, PartitionId(0), Epoch(2), r[1], r[2]};
  EXPECT_EQ(f.ApplyInSyncChange(&m, bad, Nanos(0), &changed).code(), StatusCode::kNotPrimary);
  InSyncChange join{InSyncChange::Kind::kJoin, PartitionId(0), Epoch(2), r[0], r[2]};
  ASSERT_TRUE(f.ApplyInSyncChange(&m, join, Nanos(0), &changed).ok());
  EXPECT_EQ(m.partitions[0].in_sync.size(), 3u);
  EXPECT_EQ(m.partitions[0].epoch, Epoch(3));
}

// A primary that still reaches a node the leader no longer hears (cut from
// the metaserver only) asks for it to join; admitting it would be undone by
// the next Plan, and the two would alternate, a new epoch each time.
TEST(Failover, AJoinOfAFailedNodeIsRefusedUntilItIsHeard) {
  ClusterMap m = MapWith(3, 1, 3);
  FailoverLogic f(FailoverOptions{}, Nanos(0));
  const auto r = m.partitions[0].replicas;
  auto beat = [&](NodeId n, bool primary, Nanos t) {
    f.OnHeartbeat(m, n, {Rep(0, m.partitions[0].epoch.value(), primary, 5)}, t);
  };
  // r[2] goes silent: dropped from the in-sync set.
  Nanos t = 500ms;
  for (; t <= 3s; t += 500ms) {
    beat(r[0], true, t);
    beat(r[1], false, t);
    f.Plan(&m, t);
  }
  ASSERT_EQ(m.partitions[0].in_sync, (std::vector<NodeId>{r[0], r[1]}));
  const Epoch dropped = m.partitions[0].epoch;
  bool changed = true;
  InSyncChange join{InSyncChange::Kind::kJoin, PartitionId(0), dropped, r[0], r[2]};
  EXPECT_EQ(f.ApplyInSyncChange(&m, join, t, &changed).code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(changed);
  EXPECT_EQ(m.partitions[0].epoch, dropped);
  // A drop of it is still applied (it resolves the primary's request).
  InSyncChange drop{InSyncChange::Kind::kDrop, PartitionId(0), dropped, r[0], r[2]};
  ClusterMap copy = m;
  EXPECT_TRUE(f.ApplyInSyncChange(&copy, drop, t, &changed).ok());
  // Heard again: the join goes through, and Plan leaves it in.
  beat(r[2], false, t);
  ASSERT_TRUE(f.ApplyInSyncChange(&m, join, t, &changed).ok());
  EXPECT_TRUE(changed);
  EXPECT_EQ(m.partitions[0].in_sync.size(), 3u);
  EXPECT_FALSE(f.Plan(&m, t));
}

TEST(Failover, ReplacementAddsALearnerThenRemovesTheDeadReplica) {
  ClusterMap m = MapWith(4, 1, 3);
  FailoverOptions o;
  o.replacement_timeout = 10s;
  FailoverLogic f(o, Nanos(0));
  const auto r = m.partitions[0].replicas;
  NodeId spare;
  for (const auto& n : m.nodes) {
    if (std::find(r.begin(), r.end(), n.id) == r.end()) spare = n.id;
  }
  auto beat = [&](Nanos t) {
    f.OnHeartbeat(m, r[0], {Rep(0, m.partitions[0].epoch.value(), true, 5)}, t);
    f.OnHeartbeat(m, r[1], {Rep(0, m.partitions[0].epoch.value(), false, 5)}, t);
    f.OnHeartbeat(m, spare, {}, t);
  };
  // r[2] dies: first dropped from the in-sync set, later replaced.
  Nanos t = 500ms;
  for (; t <= 12s; t += 500ms) {
    beat(t);
    f.Plan(&m, t);
  }
  EXPECT_EQ(m.partitions[0].in_sync, (std::vector<NodeId>{r[0], r[1]}));
  ASSERT_EQ(m.partitions[0].replicas.size(), 4u);
  EXPECT_EQ(m.partitions[0].replicas[3], spare);
  // The spare caught up and its primary had it join: the dead one goes.
  bool changed = false;
  ASSERT_TRUE(f.ApplyInSyncChange(&m,
                                  InSyncChange{InSyncChange::Kind::kJoin, PartitionId(0),
                                               m.partitions[0].epoch, r[0], spare},
                                  t, &changed)
                  .ok());
  beat(t);
  EXPECT_TRUE(f.Plan(&m, t));
  EXPECT_EQ(m.partitions[0].replicas, (std::vector<NodeId>{r[0], r[1], spare}));
  EXPECT_TRUE(m.Validate().ok());
}

// A cluster placed while one node had registered (R = 3): as nodes join,
// every partition gets learners up to R, spread over the new nodes, and the
// planner adds nothing more once they are there.
TEST(Failover, PartitionsPlacedOnFewerNodesGrowToRAsNodesJoin) {
  ClusterMap m = MapWith(1, 4, 1);
  FailoverOptions o;
  o.replication = 3;
  FailoverLogic f(o, Nanos(0));
  Nanos t = 500ms;
  f.OnHeartbeat(m, NodeId(1), {}, t);
  EXPECT_FALSE(f.Plan(&m, t));  // no other live node to use
  for (uint32_t i = 2; i <= 3; ++i) {
    m.nodes.push_back(
        NodeEntry{NodeId(i), "n" + std::to_string(i), "127.0.0.1", static_cast<int>(7000 + i), 0});
  }
  m.next_node_id = NodeId(4);
  for (int round = 0; round < 10; ++round) {
    t += 100ms;
    for (uint32_t i = 1; i <= 3; ++i) f.OnHeartbeat(m, NodeId(i), {}, t);
    f.Plan(&m, t);
  }
  for (const PartitionEntry& p : m.partitions) {
    ASSERT_EQ(p.replicas.size(), 3u) << "partition " << p.id;
    EXPECT_EQ(p.replicas[0], NodeId(1));  // the primary stays
    EXPECT_EQ(std::set<NodeId>(p.replicas.begin(), p.replicas.end()).size(), 3u);
    EXPECT_EQ(p.in_sync, (std::vector<NodeId>{NodeId(1)}));  // learners join through the primary
  }
  EXPECT_TRUE(m.Validate().ok());
  ClusterMap copy = m;
  EXPECT_FALSE(f.Plan(&copy, t + 100ms));
}

}  // namespace
}  // namespace cairn::metaserver

namespace cairn::metaserver {
namespace {

// R up to 5 (the range; cluster_state_test covers R <= 3): distinct
// nodes, primaries and replicas spread within one of even.
TEST(Placement, FourAndFiveReplicasSpreadEvenly) {
  for (uint32_t partitions : {8u, 64u, 256u}) {
    for (uint32_t n = 4; n <= 9; ++n) {
      for (uint32_t r = 4; r <= std::min(n, 5u); ++r) {
        ClusterMap m = MapWith(n, partitions, r);
        ASSERT_TRUE(m.Validate().ok());
        std::map<NodeId, int> replicas, primaries;
        for (const PartitionEntry& p : m.partitions) {
          std::set<NodeId> distinct(p.replicas.begin(), p.replicas.end());
          ASSERT_EQ(distinct.size(), r);
          primaries[p.replicas[0]]++;
          for (NodeId id : p.replicas) replicas[id]++;
        }
        auto spread = [](const std::map<NodeId, int>& c) {
          int lo = 1 << 30, hi = 0;
          for (const auto& [id, k] : c) lo = std::min(lo, k), hi = std::max(hi, k);
          return hi - lo;
        };
        EXPECT_LE(spread(replicas), 1) << partitions << " partitions, " << n << " nodes, R=" << r;
        EXPECT_LE(spread(primaries), 1) << partitions << " partitions, " << n << " nodes, R=" << r;
      }
    }
  }
}

}  // namespace
}  // namespace cairn::metaserver
