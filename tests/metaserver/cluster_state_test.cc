// The metaserver's cluster-map logic on MemMetaStore and a ManualClock:
// map JSON, placement, registration, heartbeats and node states, collections,
// CAS conflicts, the leadership fence, and the partition-count check.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "common/clock.h"
#include "common/random.h"
#include "metaserver/cluster_map.h"
#include "metaserver/cluster_state.h"
#include "metaserver/mem_meta_store.h"
#include "metaserver/placement.h"
#include "tests/common/test_seeds.h"

namespace cairn::metaserver {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class FakeProbe : public CollectionProbe {
 public:
  Result<int64_t> CountDocuments(const NodeEntry& node, std::string_view collection) override {
    asked.insert(node.name);
    auto e = errors.find(node.name);
    if (e != errors.end()) return e->second;
    auto it = counts.find(node.name + "/" + std::string(collection));
    return it == counts.end() ? int64_t{0} : it->second;
  }
  std::map<std::string, int64_t> counts;  // "node/collection" -> documents
  std::map<std::string, Status> errors;   // node -> error
  std::set<std::string> asked;
};

ClusterOptions Options(uint32_t partitions = 8, uint32_t initial_nodes = 1) {
  ClusterOptions o;
  o.map_key = "/cairn/map";
  o.partition_count = partitions;
  o.initial_nodes = initial_nodes;
  o.heartbeat_timeout = milliseconds(2000);
  o.node_down = milliseconds(10000);
  return o;
}

class ClusterStateTest : public ::testing::Test {
 protected:
  ManualClock clock_;
  MemMetaStore store_{&clock_};
  test::QuietLogs quiet_;
};

TEST(ClusterMapTest, JsonRoundTripAndValidation) {
  ClusterMap m = ClusterMap::New(4);
  m.nodes.push_back(NodeEntry{NodeId(1), "n1", "127.0.0.1", 7100, 5});
  m.nodes.push_back(NodeEntry{NodeId(2), "n2", "127.0.0.2", 7101, 6});
  m.next_node_id = NodeId(3);
  ASSERT_TRUE(PlaceUnplacedPartitions(&m, 1).ok());
  m.collections["c1"] = CollectionEntry{"c1", 42, {"a.b"}};
  m.version = 9;
  ASSERT_TRUE(m.Validate().ok()) << m.Validate().ToString();
  auto back = DecodeClusterMap(EncodeClusterMap(m));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, m);

  EXPECT_EQ(DecodeClusterMap("not json").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(DecodeClusterMap("{\"format\":2}").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(DecodeClusterMap("{\"format\":1,\"version\":\"x\"}").status().code(),
            StatusCode::kCorruption);
  ClusterMap broken = m;
  broken.partitions[1].replicas = {NodeId(7)};  // unknown node
  EXPECT_EQ(DecodeClusterMap(EncodeClusterMap(broken)).status().code(), StatusCode::kCorruption);
  broken = m;
  broken.partition_count = 3;
  EXPECT_EQ(DecodeClusterMap(EncodeClusterMap(broken)).status().code(), StatusCode::kCorruption);
}

TEST(ClusterMapTest, CollectionNames) {
  EXPECT_TRUE(ValidateCollectionName("orders_2024.v-1").ok());
  EXPECT_TRUE(ValidateCollectionName(std::string(128, 'a')).ok());
  EXPECT_FALSE(ValidateCollectionName("").ok());
  EXPECT_FALSE(ValidateCollectionName(std::string(129, 'a')).ok());
  EXPECT_FALSE(ValidateCollectionName(".hidden").ok());
  EXPECT_FALSE(ValidateCollectionName("a/b").ok());
  EXPECT_FALSE(ValidateCollectionName("a b").ok());
  EXPECT_FALSE(ValidateCollectionName(std::string("a\0b", 3)).ok());
}

// Issue 6's shape of placement: R replicas spread evenly, never two on a node.
TEST(PlacementTest, ReplicasSpreadEvenlyAndDistinct) {
  for (uint32_t partitions : {1u, 8u, 64u, 256u}) {
    for (uint32_t n = 1; n <= 7; ++n) {
      for (uint32_t r = 1; r <= std::min(n, 3u); ++r) {
        ClusterMap m = ClusterMap::New(partitions);
        for (uint32_t i = 1; i <= n; ++i) {
          m.nodes.push_back(NodeEntry{NodeId(i * 3), "n" + std::to_string(i), "h", 1, 0});
        }
        m.next_node_id = NodeId(3 * n + 1);
        ASSERT_TRUE(PlaceUnplacedPartitions(&m, r).ok());
        ASSERT_TRUE(m.Validate().ok()) << m.Validate().ToString();
        std::map<NodeId, int> replicas, primaries;
        for (const PartitionEntry& p : m.partitions) {
          ASSERT_EQ(p.replicas.size(), r);
          EXPECT_EQ(p.epoch, Epoch(1));
          EXPECT_EQ(p.in_sync, p.replicas);
          std::set<NodeId> distinct(p.replicas.begin(), p.replicas.end());
          EXPECT_EQ(distinct.size(), r);
          primaries[p.replicas[0]]++;
          for (NodeId id : p.replicas) replicas[id]++;
        }
        auto spread = [](const std::map<NodeId, int>& c) {
          int lo = 1 << 30, hi = 0;
          for (const auto& [id, k] : c) lo = std::min(lo, k), hi = std::max(hi, k);
          return hi - lo;
        };
        if (partitions * r >= n) {
          EXPECT_LE(spread(replicas), 1) << partitions << " partitions, " << n << " nodes, R=" << r;
        }
        if (partitions >= n) {
          EXPECT_LE(spread(primaries), 1)
              << partitions << " partitions, " << n << " nodes, R=" << r;
        }
        if (r == 1) {  // plain round-robin over the nodes sorted by id
          for (uint32_t i = 0; i < partitions; ++i) {
            EXPECT_EQ(m.partitions[i].replicas[0], m.nodes[i % n].id);
          }
        }
      }
    }
  }
  ClusterMap m = ClusterMap::New(4);
  m.nodes.push_back(NodeEntry{NodeId(1), "n1", "h", 1, 0});
  m.next_node_id = NodeId(2);
  EXPECT_EQ(PlaceUnplacedPartitions(&m, 2).code(), StatusCode::kFailedPrecondition);
}

TEST_F(ClusterStateTest, NotLoadedAnswersUnavailable) {
  ClusterState state(&store_, &clock_, Options());
  EXPECT_EQ(state.Map().status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(state.CreateCollection("c").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(state.RegisterNode("n1", "127.0.0.1", 7100).status().code(), StatusCode::kUnavailable);
}

TEST_F(ClusterStateTest, LoadCreatesTheMapOnce) {
  ClusterState state(&store_, &clock_, Options(8));
  ASSERT_TRUE(state.Load().ok());
  auto m = state.Map();
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->version, 1u);
  EXPECT_EQ(m->partitions.size(), 8u);
  EXPECT_FALSE(m->Placed());
  auto kv = store_.Get("/cairn/map");
  ASSERT_TRUE(kv.ok() && kv->has_value());
  EXPECT_EQ(*DecodeClusterMap((*kv)->value), *m);

  // A second load (a new leader) reads the same map.
  ClusterState again(&store_, &clock_, Options(8));
  ASSERT_TRUE(again.Load().ok());
  EXPECT_EQ(*again.Map(), *m);
}

TEST_F(ClusterStateTest, RefusesAnotherPartitionCount) {
  ClusterState state(&store_, &clock_, Options(8));
  ASSERT_TRUE(state.Load().ok());
  ClusterState other(&store_, &clock_, Options(16));
  Status s = other.Load();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("has 8 partitions"), std::string::npos) << s.ToString();
  EXPECT_FALSE(other.loaded());
  ClusterOptions bad = Options(12);
  EXPECT_EQ(ClusterState(&store_, &clock_, bad).Load().code(), StatusCode::kInvalidArgument);
}

TEST_F(ClusterStateTest, PlacementWaitsForInitialNodes) {
  ClusterState state(&store_, &clock_, Options(8, 3));
  ASSERT_TRUE(state.Load().ok());
  auto a = state.RegisterNode("b-node", "127.0.0.1", 7100);
  auto b = state.RegisterNode("a-node", "127.0.0.2", 7100);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, NodeId(1));
  EXPECT_EQ(*b, NodeId(2));
  Status placed = state.CheckPlaced();
  EXPECT_EQ(placed.code(), StatusCode::kUnavailable);
  EXPECT_NE(placed.message().find("2 of 3 nodes registered"), std::string::npos);
  EXPECT_EQ(state.Map()->version, 3u);
  EXPECT_FALSE(state.Map()->Placed());

  auto c = state.RegisterNode("c-node", "127.0.0.3", 7100);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, NodeId(3));
  ClusterMap m = *state.Map();
  EXPECT_TRUE(state.CheckPlaced().ok());
  EXPECT_EQ(m.version, 4u);  // registration and placement: one change
  for (uint32_t i = 0; i < 8; ++i) {
    EXPECT_EQ(m.partitions[i].replicas, std::vector<NodeId>{NodeId(1 + i % 3)}) << i;
    EXPECT_EQ(m.partitions[i].epoch, Epoch(1));
  }

  // A late node gets no partition; placed partitions never move.
  ASSERT_TRUE(state.RegisterNode("d-node", "127.0.0.4", 7100).ok());
  ClusterMap after = *state.Map();
  EXPECT_EQ(after.partitions, m.partitions);
  EXPECT_EQ(after.nodes.size(), 4u);
}

TEST_F(ClusterStateTest, KnownNameKeepsItsIdAndMayMove) {
  ClusterState state(&store_, &clock_, Options());
  ASSERT_TRUE(state.Load().ok());
  ASSERT_EQ(*state.RegisterNode("n1", "127.0.0.1", 7100), NodeId(1));
  const uint64_t v = state.Map()->version;
  ASSERT_EQ(*state.RegisterNode("n1", "127.0.0.1", 7100), NodeId(1));
  EXPECT_EQ(state.Map()->version, v) << "an identical registration changes nothing";
  ASSERT_EQ(*state.RegisterNode("n1", "127.0.0.9", 7200), NodeId(1));
  ClusterMap m = *state.Map();
  EXPECT_EQ(m.version, v + 1);
  EXPECT_EQ(m.nodes.size(), 1u);
  EXPECT_EQ(m.nodes[0].host, "127.0.0.9");
  EXPECT_EQ(m.nodes[0].port, 7200);

  EXPECT_EQ(state.RegisterNode("bad/name", "h", 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(state.RegisterNode("n2", "", 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(state.RegisterNode("n2", "h", 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(state.RegisterNode("n2", "h", 70000).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ClusterStateTest, HeartbeatsDriveNodeStates) {
  ClusterState state(&store_, &clock_, Options(8, 2));
  ASSERT_TRUE(state.Load().ok());
  const NodeId n1 = *state.RegisterNode("n1", "127.0.0.1", 7100);
  const NodeId n2 = *state.RegisterNode("n2", "127.0.0.2", 7100);
  EXPECT_TRUE(state.Tick().empty());

  NodeReport report{1000, 10, {DiskReport{0, "/d0", "healthy", 0, 0}}, {}};
  auto v = state.Heartbeat(n1, "n1", report);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, state.Map()->version);
  EXPECT_EQ(state.Heartbeat(n1, "n2", report).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(state.Heartbeat(NodeId(9), "n1", report).status().code(), StatusCode::kNotFound);
  const uint64_t version = state.Map()->version;

  for (int i = 0; i < 5; ++i) {  // n1 keeps beating every 500 ms, n2 is silent
    clock_.Advance(milliseconds(500));
    ASSERT_TRUE(state.Heartbeat(n1, "n1", report).ok());
  }
  auto transitions = state.Tick();
  ASSERT_EQ(transitions.size(), 1u);
  EXPECT_EQ(transitions[0].node, n2);
  EXPECT_EQ(transitions[0].to, NodeState::kSuspect);
  auto snap = state.Snapshot();
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->liveness.at(n1).state, NodeState::kUp);
  EXPECT_EQ(snap->liveness.at(n1).report, report);
  EXPECT_EQ(snap->liveness.at(n1).last_heartbeat_ms,
            std::chrono::duration_cast<milliseconds>(clock_.Now()).count());
  EXPECT_EQ(snap->liveness.at(n2).state, NodeState::kSuspect);
  EXPECT_EQ(snap->liveness.at(n2).last_heartbeat_ms, 0);

  clock_.Advance(seconds(8));
  EXPECT_EQ(state.Snapshot()->liveness.at(n2).state, NodeState::kDown);
  EXPECT_EQ(state.Snapshot()->liveness.at(n1).state, NodeState::kSuspect);
  ASSERT_TRUE(state.Heartbeat(n2, "n2", {}).ok());
  EXPECT_EQ(state.Snapshot()->liveness.at(n2).state, NodeState::kUp);
  EXPECT_EQ(state.Map()->version, version) << "heartbeats never change the stored map";

  // A new leader gives every node a full timeout of grace.
  ClusterState next(&store_, &clock_, Options(8, 2));
  ASSERT_TRUE(next.Load().ok());
  EXPECT_EQ(next.Snapshot()->liveness.at(n1).state, NodeState::kUp);
  EXPECT_EQ(next.Snapshot()->liveness.at(n1).last_heartbeat_ms, 0);
}

TEST_F(ClusterStateTest, CreateAndDropCollections) {
  ClusterState state(&store_, &clock_, Options(8, 2));
  ASSERT_TRUE(state.Load().ok());
  FakeProbe probe;
  // Before placement nobody holds a partition: nobody is asked.
  ASSERT_TRUE(state.CreateCollection("early").ok());
  ASSERT_TRUE(state.DropCollection("early", &probe).ok());
  EXPECT_TRUE(probe.asked.empty());

  ASSERT_TRUE(state.RegisterNode("n1", "127.0.0.1", 7100).ok());
  ASSERT_TRUE(state.RegisterNode("n2", "127.0.0.2", 7100).ok());
  ASSERT_TRUE(state.RegisterNode("n3", "127.0.0.3", 7100).ok());  // holds nothing

  auto c = state.CreateCollection("orders");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->name, "orders");
  EXPECT_EQ(c->created_ms, clock_.WallNanos() / 1'000'000);
  EXPECT_EQ(state.CreateCollection("orders").status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(state.CreateCollection(".x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(state.DropCollection("nope", &probe).code(), StatusCode::kNotFound);

  probe.counts["n2/orders"] = 3;
  Status s = state.DropCollection("orders", &probe);
  EXPECT_EQ(s.code(), StatusCode::kNotEmpty) << s.ToString();
  EXPECT_EQ(state.Map()->collections.count("orders"), 1u);

  probe.counts.clear();
  probe.errors["n1"] = Status::Unavailable("connection refused");
  s = state.DropCollection("orders", &probe);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("n1"), std::string::npos);
  EXPECT_EQ(state.Map()->collections.count("orders"), 1u);

  probe.errors.clear();
  probe.asked.clear();
  const uint64_t v = state.Map()->version;
  ASSERT_TRUE(state.DropCollection("orders", &probe).ok());
  EXPECT_EQ(probe.asked, (std::set<std::string>{"n1", "n2"}));
  EXPECT_EQ(state.Map()->version, v + 1);
  EXPECT_EQ(state.Map()->collections.count("orders"), 0u);
  EXPECT_EQ(state.DropCollection("orders", &probe).code(), StatusCode::kNotFound);

  // The store holds what the cache says.
  auto kv = store_.Get("/cairn/map");
  EXPECT_EQ(*DecodeClusterMap((*kv)->value), *state.Map());
}

TEST_F(ClusterStateTest, CasConflictRereadsAndRetries) {
  ClusterState a(&store_, &clock_, Options());
  ClusterState b(&store_, &clock_, Options());
  ASSERT_TRUE(a.Load().ok());
  ASSERT_TRUE(b.Load().ok());
  ASSERT_TRUE(a.CreateCollection("from-a").ok());
  // b's cache is stale: its change re-reads and applies on the fresh map.
  ASSERT_TRUE(b.CreateCollection("from-b").ok());
  ClusterMap m = *b.Map();
  EXPECT_EQ(m.version, 3u);
  EXPECT_EQ(m.collections.count("from-a"), 1u);
  EXPECT_EQ(m.collections.count("from-b"), 1u);
  // And a stale ALREADY_EXISTS is decided on the fresh map too.
  EXPECT_EQ(a.CreateCollection("from-b").status().code(), StatusCode::kAlreadyExists);
}

TEST_F(ClusterStateTest, FenceStopsADeposedLeader) {
  auto lease = store_.Grant(seconds(5));
  ASSERT_TRUE(lease.ok());
  auto key = store_.Campaign("/cairn/leader", lease->id, "a|1", Nanos(0));
  ASSERT_TRUE(key.ok());
  ClusterState state(&store_, &clock_, Options());
  state.SetFence(Compare::ValueIs(key->key, "a|1"));
  ASSERT_TRUE(state.Load().ok());
  ASSERT_TRUE(state.CreateCollection("c1").ok());

  clock_.Advance(seconds(6));  // the lease runs out: no longer leader
  Status s = state.CreateCollection("c2").status();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("lost its leadership"), std::string::npos) << s.ToString();
  auto kv = store_.Get("/cairn/map");
  EXPECT_EQ(DecodeClusterMap((*kv)->value)->collections.count("c2"), 0u);
}

TEST_F(ClusterStateTest, LoadPlacesWhenEnoughNodesAreAlreadyThere) {
  ClusterState first(&store_, &clock_, Options(8, 3));
  ASSERT_TRUE(first.Load().ok());
  ASSERT_TRUE(first.RegisterNode("n1", "127.0.0.1", 7100).ok());
  ASSERT_TRUE(first.RegisterNode("n2", "127.0.0.2", 7100).ok());
  EXPECT_FALSE(first.Map()->Placed());
  ClusterState second(&store_, &clock_, Options(8, 2));  // restarted with fewer
  ASSERT_TRUE(second.Load().ok());
  EXPECT_TRUE(second.Map()->Placed());
}

// Seeded random operations from two ClusterStates on one store (stale caches,
// so CAS conflicts happen all the time), against a simple model: after every
// step the stored map is valid, equals the acting state's cache, its version
// grew by exactly one per change, names keep their ids, and collections are
// what the model says.
TEST_F(ClusterStateTest, RandomOperationsMatchAModel) {
  for (uint64_t seed : test::Seeds(20, 31)) {
    SCOPED_TRACE(test::SeedTrace(seed));
    ManualClock clock;
    MemMetaStore store(&clock);
    Random rnd(seed);
    ClusterState a(&store, &clock, Options(16, 3));
    ClusterState b(&store, &clock, Options(16, 3));
    ASSERT_TRUE(a.Load().ok());
    ASSERT_TRUE(b.Load().ok());
    FakeProbe probe;
    std::set<std::string> collections;
    std::map<std::string, NodeId> ids;
    std::map<std::string, std::pair<std::string, int>> addresses;
    uint64_t version = 1;
    for (int step = 0; step < 200; ++step) {
      ClusterState& s = rnd.OneIn(2) ? a : b;
      const std::string node = "n" + std::to_string(rnd.Uniform(5));
      const std::string coll = "c" + std::to_string(rnd.Uniform(6));
      switch (rnd.Uniform(5)) {
        case 0: {
          const std::string host = "127.0.0." + std::to_string(1 + rnd.Uniform(2));
          const int port = 7100 + static_cast<int>(rnd.Uniform(2));
          auto id = s.RegisterNode(node, host, port);
          ASSERT_TRUE(id.ok()) << id.status().ToString();
          auto known = ids.find(node);
          if (known == ids.end()) {
            EXPECT_EQ(*id, NodeId(static_cast<uint32_t>(ids.size() + 1)));
            ids[node] = *id;
            version++;  // with the third, placement too: still one change
          } else {
            EXPECT_EQ(*id, known->second);
            if (addresses[node] != std::make_pair(host, port)) version++;
          }
          addresses[node] = {host, port};
          break;
        }
        case 1: {
          auto c = s.CreateCollection(coll);
          if (collections.insert(coll).second) {
            ASSERT_TRUE(c.ok()) << c.status().ToString();
            version++;
          } else {
            EXPECT_EQ(c.status().code(), StatusCode::kAlreadyExists);
          }
          break;
        }
        case 2: {
          Status d = s.DropCollection(coll, &probe);
          if (collections.erase(coll) == 1) {
            ASSERT_TRUE(d.ok()) << d.ToString();
            version++;
          } else {
            // A stale cache may not know it yet: NotFound either way.
            EXPECT_EQ(d.code(), StatusCode::kNotFound);
          }
          break;
        }
        case 3: {
          auto known = ids.find(node);
          if (known != ids.end()) {
            // `a` may not have seen a node registered through `b` yet.
            Result<uint64_t> v = a.Heartbeat(known->second, node, {});
            if (!v.ok()) {
              EXPECT_EQ(v.status().code(), StatusCode::kNotFound);
            }
          }
          break;
        }
        default:
          clock.Advance(milliseconds(rnd.Uniform(3000)));
          break;
      }
      auto kv = store.Get("/cairn/map");
      ASSERT_TRUE(kv.ok() && kv->has_value());
      auto stored = DecodeClusterMap((*kv)->value);
      ASSERT_TRUE(stored.ok()) << stored.status().ToString();
      ASSERT_EQ(stored->version, version) << "step " << step;
      EXPECT_EQ(stored->Placed(), ids.size() >= 3);
      std::set<std::string> stored_collections;
      for (const auto& [name, c] : stored->collections) stored_collections.insert(name);
      ASSERT_EQ(stored_collections, collections) << "step " << step;
      for (const auto& [name, id] : ids) {
        const NodeEntry* n = stored->FindNodeByName(name);
        ASSERT_NE(n, nullptr);
        EXPECT_EQ(n->id, id);
        EXPECT_EQ(std::make_pair(n->host, n->port), addresses[name]);
      }
    }
  }
}

}  // namespace
}  // namespace cairn::metaserver

namespace cairn::metaserver {
namespace {

// Secondary index definitions in the map, and the progress heartbeats report.
TEST_F(ClusterStateTest, CreateDropAndListIndexes) {
  ClusterState state(&store_, &clock_, Options(8, 2));
  ASSERT_TRUE(state.Load().ok());
  const NodeId n1 = *state.RegisterNode("n1", "127.0.0.1", 7100);
  const NodeId n2 = *state.RegisterNode("n2", "127.0.0.2", 7100);
  ASSERT_TRUE(state.CreateCollection("orders").ok());
  const uint64_t v0 = state.Map()->version;

  auto c = state.CreateIndex("orders", " customer.country ");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->indexes, std::vector<std::string>{"customer.country"});
  EXPECT_EQ(state.Map()->version, v0 + 1);
  ASSERT_TRUE(state.CreateIndex("orders", "`first name`").ok());
  ASSERT_TRUE(state.CreateIndex("orders", "total").ok());
  EXPECT_EQ(state.Map()->collections.at("orders").indexes,
            (std::vector<std::string>{"`first name`", "customer.country", "total"}));

  // Errors: duplicates (in any spelling), bad paths, unknown collection.
  EXPECT_EQ(state.CreateIndex("orders", "customer . country").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(state.CreateIndex("orders", "customer.`country`").status().code(),
            StatusCode::kAlreadyExists);
  Result<CollectionEntry> bad = state.CreateIndex("orders", "a ==");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("bad index path"), std::string::npos)
      << bad.status().ToString();
  EXPECT_EQ(state.CreateIndex("orders", "").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(state.CreateIndex("nope", "a").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(state.DropIndex("orders", "nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(state.DropIndex("nope", "a").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(state.ListIndexes("nope").status().code(), StatusCode::kNotFound);
  const uint64_t v1 = state.Map()->version;
  EXPECT_EQ(v1, v0 + 3);  // failures write nothing

  // Survives a reload from the store (a new leader).
  ClusterState next(&store_, &clock_, Options(8, 2));
  ASSERT_TRUE(next.Load().ok());
  EXPECT_EQ(next.Map()->collections.at("orders").indexes.size(), 3u);

  // Progress: nothing reported yet; then n1 ready, n2 halfway.
  auto list = state.ListIndexes("orders");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[2].path, "total");
  EXPECT_EQ((*list)[2].nodes_total, 2);
  EXPECT_EQ((*list)[2].nodes_ready, 0);
  EXPECT_FALSE((*list)[2].ready);
  NodeReport r1;
  r1.indexes.push_back(IndexReport{"orders", "total", 10, 10, 8, true, ""});
  NodeReport r2;
  r2.indexes.push_back(IndexReport{"orders", "total", 5, 12, 4, false, "disk on fire"});
  ASSERT_TRUE(state.Heartbeat(n1, "n1", r1).ok());
  ASSERT_TRUE(state.Heartbeat(n2, "n2", r2).ok());
  list = state.ListIndexes("");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  const IndexStatus& t = (*list)[2];
  EXPECT_EQ(t.docs_indexed, 15);
  EXPECT_EQ(t.docs_total, 22);
  EXPECT_EQ(t.entries, 12);
  EXPECT_EQ(t.nodes_ready, 1);
  EXPECT_EQ(t.nodes_total, 2);
  EXPECT_FALSE(t.ready);
  EXPECT_EQ(t.error, "n2: disk on fire");
  r2.indexes[0] = IndexReport{"orders", "total", 12, 12, 9, true, ""};
  ASSERT_TRUE(state.Heartbeat(n2, "n2", r2).ok());
  list = state.ListIndexes("orders");
  EXPECT_TRUE((*list)[2].ready);
  // A DOWN node no longer counts.
  clock_.Advance(seconds(11));
  ASSERT_TRUE(state.Heartbeat(n1, "n1", r1).ok());
  state.Tick();
  list = state.ListIndexes("orders");
  EXPECT_EQ((*list)[2].nodes_total, 1);
  EXPECT_TRUE((*list)[2].ready);

  auto d = state.DropIndex("orders", "customer.country");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->indexes, (std::vector<std::string>{"`first name`", "total"}));
  EXPECT_EQ(state.Map()->version, v1 + 1);
  EXPECT_EQ(state.ListIndexes("orders")->size(), 2u);
}

}  // namespace
}  // namespace cairn::metaserver
