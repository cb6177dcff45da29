// Two metaservers in one process over one MemMetaStore (real clock, 1 s
// election lease), called through mutual TLS: leadership and redirection,
// failover after a resignation and after a crash (the new leader serves the
// map the old one wrote), and who may call what.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <thread>

#include "ChunkService.h"
#include "metaserver/mem_meta_store.h"
#include "metaserver/meta_server.h"
#include "tests/common/test_seeds.h"
#include "tests/metaserver/meta_test_util.h"
#include "thrift/rpc_errors.h"
#include "thrift/rpc_server.h"

namespace cairn::metaserver {
namespace {

using testing::MetaClient;
using testing::PoolFor;
using testing::TempDir;
using testing::TestCerts;

class MetaServerTest : public ::testing::Test {
 protected:
  MetaServerOptions Options(const std::string& name) {
    MetaServerOptions o;
    TlsOptions tls = certs_.Node(name);
    o.name = name;
    o.listen = "127.0.0.1:0";
    o.store = "memory";
    o.tls_ca = tls.ca_file;
    o.tls_cert = tls.cert_file;
    o.tls_key = tls.key_file;
    o.partitions = 8;
    o.initial_nodes = 2;
    o.election_ttl_s = 1;
    o.replication = 1;  // one copy, failover off (failover_server_test has the rest)
    o.failover = false;
    return o;
  }
  std::unique_ptr<MetaServer> StartServer(const std::string& name) {
    auto s = MetaServer::Start(Options(name), &store_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) return nullptr;
    EXPECT_TRUE((*s)->WaitForElection(std::chrono::seconds(5)).ok());
    return std::move(s).value();
  }
  static HostPort At(const MetaServer& s) { return HostPort{"127.0.0.1", s.port()}; }
  // Waits until `s` leads.
  static bool BecomesLeader(MetaServer& s, std::chrono::seconds within) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      if (s.IsLeader()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  test::QuietLogs quiet_;
  TempDir dir_;
  TestCerts certs_{dir_.path()};
  MemMetaStore store_;  // real clock: the election lease expires in real time
};

TEST_F(MetaServerTest, FollowerNamesTheLeaderAndTakesOverAfterResign) {
  auto a = StartServer("m1");
  ASSERT_TRUE(a && BecomesLeader(*a, std::chrono::seconds(5)));
  auto b = StartServer("m2");
  ASSERT_TRUE(b);
  EXPECT_FALSE(b->IsLeader());

  auto admin = PoolFor(certs_.For(Role::kAdmin, "root"));
  MetaClient to_a(admin.get(), At(*a));
  MetaClient to_b(admin.get(), At(*b));
  ASSERT_TRUE(to_a.Create("orders").ok());
  Status s = to_b.Create("other").status();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("not the leader; leader is 127.0.0.1:" + std::to_string(a->port())),
            std::string::npos)
      << s.ToString();
  EXPECT_EQ(to_b.GetMap().status().code(), StatusCode::kUnavailable);

  a->Stop();  // resigns: b takes over at once, from the store's map
  ASSERT_TRUE(BecomesLeader(*b, std::chrono::seconds(5)));
  auto map = to_b.GetMap();
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  ASSERT_EQ(map->collections.size(), 1u);
  EXPECT_EQ(map->collections[0].name, "orders");
  EXPECT_EQ(map->partition_count, 8);
  EXPECT_EQ(map->initial_nodes, 2);
  EXPECT_TRUE(to_b.Create("other").ok());
}

TEST_F(MetaServerTest, CrashedLeaderIsReplacedAfterItsLease) {
  auto a = StartServer("m1");
  ASSERT_TRUE(a && BecomesLeader(*a, std::chrono::seconds(5)));
  auto b = StartServer("m2");
  ASSERT_TRUE(b);
  auto node = PoolFor(certs_.Node("n1"));
  ASSERT_TRUE(MetaClient(node.get(), At(*a)).Register("n1", "127.0.0.1", 7100).ok());

  const auto crashed = std::chrono::steady_clock::now();
  a->Abandon();  // no resignation: the 1 s lease must run out first
  ASSERT_TRUE(BecomesLeader(*b, std::chrono::seconds(10)));
  const auto took = std::chrono::steady_clock::now() - crashed;
  EXPECT_GE(took, std::chrono::milliseconds(500));
  auto map = MetaClient(node.get(), At(*b)).GetMap();
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  ASSERT_EQ(map->nodes.size(), 1u);
  EXPECT_EQ(map->nodes[0].name, "n1");
  EXPECT_EQ(map->nodes[0].state, rpc::NodeState::UP);  // a new leader's grace
  EXPECT_EQ(map->nodes[0].last_heartbeat_ms, 0);
}

TEST_F(MetaServerTest, WhoMayCallWhat) {
  auto a = StartServer("m1");
  ASSERT_TRUE(a && BecomesLeader(*a, std::chrono::seconds(5)));
  auto n1 = PoolFor(certs_.Node("n1"));
  auto n2 = PoolFor(certs_.Node("n2"));
  auto user = PoolFor(certs_.For(Role::kUser, "alice"));
  MetaClient as_n1(n1.get(), At(*a));
  MetaClient as_n2(n2.get(), At(*a));
  MetaClient as_user(user.get(), At(*a));

  // Nodes register only as themselves; users not at all.
  EXPECT_EQ(as_n1.Register("n2", "127.0.0.1", 7101).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(as_user.Register("alice", "127.0.0.1", 7101).status().code(),
            StatusCode::kPermissionDenied);
  auto id1 = as_n1.Register("n1", "127.0.0.1", 7100);
  ASSERT_TRUE(id1.ok()) << id1.status().ToString();
  EXPECT_EQ(*id1, 1);
  // Placement waits for initial_nodes = 2.
  auto before = as_user.GetMap();
  ASSERT_TRUE(before.ok());
  EXPECT_TRUE(before->partitions[0].replicas.empty());
  auto id2 = as_n2.Register("n2", "127.0.0.2", 7100);
  ASSERT_TRUE(id2.ok());
  EXPECT_EQ(*id2, 2);

  // Heartbeats only for one's own id.
  auto v = as_n1.Heartbeat(*id1);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(as_n1.Heartbeat(*id2).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(as_user.Heartbeat(*id1).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(as_n1.Heartbeat(99).status().code(), StatusCode::kNotFound);

  auto map = as_user.GetMap();
  ASSERT_TRUE(map.ok());
  EXPECT_EQ(map->version, *v);
  ASSERT_EQ(map->partitions.size(), 8u);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(map->partitions[static_cast<size_t>(i)].replicas, std::vector<int32_t>{1 + i % 2});
    EXPECT_EQ(map->partitions[static_cast<size_t>(i)].epoch, 1);
  }
  EXPECT_EQ(map->nodes[0].capacity_bytes, 1000);
  EXPECT_GT(map->nodes[0].last_heartbeat_ms, 0);

  // Users manage collections.
  ASSERT_TRUE(as_user.Create("c1").ok());
  EXPECT_EQ(as_user.Create("c1").status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(as_user.Create("bad/name").status().code(), StatusCode::kInvalidArgument);
  auto list = as_n1.List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "c1");
  EXPECT_EQ(as_user.Drop("nope").code(), StatusCode::kNotFound);
  // The chunk servers at 127.0.0.1:7100 and 127.0.0.2:7100 do not exist: a
  // drop cannot be decided.
  Status drop = as_user.Drop("c1");
  EXPECT_EQ(drop.code(), StatusCode::kUnavailable) << drop.ToString();
  EXPECT_NE(drop.message().find("cannot ask node n1"), std::string::npos) << drop.ToString();
  EXPECT_EQ(as_user.List()->size(), 1u);
}

// A chunk server that only counts documents: `counts` per collection.
class CountingChunkService : public rpc::ChunkServiceNull {
 public:
  int64_t CountDocuments(const std::string& collection) override {
    const Identity* caller = net::CurrentCaller();
    if (caller == nullptr || caller->role != Role::kNode) {
      throw net::ToCairnError(Status::PermissionDenied("nodes only"));
    }
    calls++;
    auto it = counts.find(collection);
    return it == counts.end() ? 0 : it->second;
  }
  std::map<std::string, int64_t> counts;
  std::atomic<int> calls{0};
};

TEST_F(MetaServerTest, DropAsksTheChunkServersThatHoldPartitions) {
  auto a = StartServer("m1");
  ASSERT_TRUE(a && BecomesLeader(*a, std::chrono::seconds(5)));
  auto chunk1 = std::make_shared<CountingChunkService>();
  auto chunk2 = std::make_shared<CountingChunkService>();
  net::ServerOptions so;
  so.tls = certs_.Node("n1");
  auto server1 =
      net::RpcServer::Start(so, std::make_shared<rpc::ChunkServiceProcessor>(chunk1), "chunk1");
  so.tls = certs_.Node("n2");
  auto server2 =
      net::RpcServer::Start(so, std::make_shared<rpc::ChunkServiceProcessor>(chunk2), "chunk2");
  ASSERT_TRUE(server1.ok() && server2.ok());
  auto n1 = PoolFor(certs_.Node("n1"));
  auto n2 = PoolFor(certs_.Node("n2"));
  auto user = PoolFor(certs_.For(Role::kUser, "alice"));
  MetaClient as_user(user.get(), At(*a));
  ASSERT_TRUE(MetaClient(n1.get(), At(*a)).Register("n1", "127.0.0.1", (*server1)->port()).ok());
  ASSERT_TRUE(MetaClient(n2.get(), At(*a)).Register("n2", "127.0.0.1", (*server2)->port()).ok());
  ASSERT_TRUE(as_user.Create("full").ok());
  ASSERT_TRUE(as_user.Create("empty").ok());
  chunk2->counts["full"] = 5;

  Status s = as_user.Drop("full");
  EXPECT_EQ(s.code(), StatusCode::kNotEmpty) << s.ToString();
  EXPECT_NE(s.message().find("node n2"), std::string::npos) << s.ToString();
  ASSERT_TRUE(as_user.Drop("empty").ok());
  EXPECT_GE(chunk1->calls.load(), 2);
  EXPECT_GE(chunk2->calls.load(), 2);
  auto list = as_user.List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "full");

  (*server2)->Stop();  // a holder that cannot be asked
  chunk2->counts.clear();
  EXPECT_EQ(as_user.Drop("full").code(), StatusCode::kUnavailable);
  EXPECT_EQ(as_user.List()->size(), 1u);
}

TEST_F(MetaServerTest, RefusesAnotherPartitionCountAndBadOptions) {
  {
    auto a = StartServer("m1");
    ASSERT_TRUE(a && BecomesLeader(*a, std::chrono::seconds(5)));
  }
  MetaServerOptions o = Options("m2");
  o.partitions = 16;
  auto s = MetaServer::Start(o, &store_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("has 8 partitions"), std::string::npos);

  o = Options("m2");
  o.partitions = 12;
  EXPECT_EQ(MetaServer::Start(o, &store_).status().code(), StatusCode::kInvalidArgument);
  o = Options("m2");
  o.name = "m3";  // the certificate says node:m2
  EXPECT_EQ(MetaServer::Start(o, &store_).status().code(), StatusCode::kInvalidArgument);
  o = Options("m2");
  o.store = "zookeeper";
  EXPECT_EQ(MetaServer::Start(o, &store_).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cairn::metaserver
