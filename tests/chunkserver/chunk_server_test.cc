// ChunkServer in-process over real mutual TLS on 127.0.0.1, with a fake
// metaserver (MetaClient): documents through the Thrift API, authorization,
// forwarding between two nodes, the certificate-name check, serving on with
// the last map while the metaserver is down, and a clean stop and reopen.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <string>

#include "ChunkService.h"
#include "chunkserver/chunk_server.h"
#include "common/checksum.h"
#include "common/partitioning.h"
#include "tests/common/test_pki.h"
#include "tests/common/test_seeds.h"
#include "tests/integration/tcp_proxy.h"
#include "thrift/rpc_client.h"

namespace cairn::chunkserver {
namespace {

constexpr uint32_t kParts = 8;

// A metaserver in memory: ids by name, partition p owned by owner_of(p).
class FakeMeta : public MetaClient {
 public:
  explicit FakeMeta(std::function<std::string(uint32_t)> owner_of)
      : owner_of_(std::move(owner_of)) {}
  Result<NodeId> Register(const std::string& name, const HostPort& advertise,
                          bool /*replication*/) override {
    MutexLock lock(&mu_);
    if (down_) return Status::Unavailable("fake metaserver down");
    auto it = ids_.find(name);
    if (it == ids_.end())
      it = ids_.emplace(name, NodeId(static_cast<uint32_t>(ids_.size() + 1))).first;
    addr_[name] = advertise;
    ++version_;
    return it->second;
  }
  Result<HeartbeatAnswer> Heartbeat(const HeartbeatInfo& info) override {
    MutexLock lock(&mu_);
    if (down_) return Status::Unavailable("fake metaserver down");
    ++heartbeats_;
    last_disks_ = info.disks.size();
    HeartbeatAnswer a;
    a.map_version = version_;
    return a;
  }
  Result<ClusterView> GetMap(uint64_t) override {
    MutexLock lock(&mu_);
    if (down_) return Status::Unavailable("fake metaserver down");
    ClusterView v;
    v.version = version_;
    v.partition_count = kParts;
    for (const auto& [name, id] : ids_) {
      v.nodes.push_back({id, name, addr_[name].host, addr_[name].port});
    }
    for (uint32_t p = 0; p < kParts; ++p) {
      auto it = ids_.find(owner_of_(p));
      PartitionPlacement pl;
      pl.epoch = Epoch(1);
      if (it != ids_.end()) pl.replicas.push_back(it->second);
      v.partitions.push_back(pl);
    }
    v.collections = collections_;
    return v;
  }
  void SetDown(bool down) {
    MutexLock lock(&mu_);
    down_ = down;
  }
  void AddCollection(const std::string& c) {
    MutexLock lock(&mu_);
    collections_.insert(c);
    ++version_;
  }
  uint64_t heartbeats() {
    MutexLock lock(&mu_);
    return heartbeats_;
  }
  size_t last_disks() {
    MutexLock lock(&mu_);
    return last_disks_;
  }

 private:
  std::function<std::string(uint32_t)> owner_of_;
  Mutex mu_;
  bool down_ GUARDED_BY(mu_) = false;
  uint64_t version_ GUARDED_BY(mu_) = 1;
  uint64_t heartbeats_ GUARDED_BY(mu_) = 0;
  size_t last_disks_ GUARDED_BY(mu_) = 0;
  std::map<std::string, NodeId> ids_ GUARDED_BY(mu_);
  std::map<std::string, HostPort> addr_ GUARDED_BY(mu_);
  std::set<std::string> collections_ GUARDED_BY(mu_){"c"};
};

int64_t Hash(const std::string& s) { return static_cast<int64_t>(Checksum64(s.data(), s.size())); }

class ChunkServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(pki_.error(), "");
    for (const char* n : {"cs1", "cs2"}) ASSERT_TRUE(pki_.Issue(n, Role::kNode).ok());
    ASSERT_TRUE(pki_.Issue("alice", Role::kUser).ok());
    ASSERT_TRUE(pki_.Issue("root", Role::kAdmin).ok());
  }
  ChunkServerOptions Options(const std::string& name) {
    ChunkServerOptions o;
    o.name = name;
    o.listen = "127.0.0.1:0";
    for (int i = 0; i < 3; ++i)
      o.disks.push_back(dir_.path() + "/" + name + "/d" + std::to_string(i));
    o.metaservers = {"127.0.0.1:1"};
    const TlsOptions t = pki_.Options(name);
    o.tls_ca = t.ca_file;
    o.tls_cert = t.cert_file;
    o.tls_key = t.key_file;
    o.block_bytes = 64 << 10;
    o.heartbeat_interval_ms = 50;
    o.replication = false;  // the fake metaserver does not run failover
    return o;
  }
  std::unique_ptr<net::ConnectionPool> Pool(const std::string& who) {
    net::ClientOptions co;
    co.tls = pki_.Options(who);
    auto p = net::ConnectionPool::Create(co);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? std::move(*p) : nullptr;
  }
  static rpc::PutRequest PutReq(const std::string& id, const std::string& body) {
    rpc::PutRequest r;
    r.partition = static_cast<int32_t>(PartitionOf("c", id, kParts).value());
    r.epoch = 1;
    r.collection = "c";
    r.id = id;
    r.expected_version = 0;
    r.size = static_cast<int64_t>(body.size());
    r.body_hash = Hash(body);
    r.__set_body(body);
    return r;
  }
  static rpc::GetRequest GetReq(const std::string& id) {
    rpc::GetRequest g;
    g.partition = static_cast<int32_t>(PartitionOf("c", id, kParts).value());
    g.epoch = 1;
    g.collection = "c";
    g.id = id;
    g.offset = 0;
    g.length = 1 << 20;
    return g;
  }

  test::QuietLogs quiet_;
  test::TestPki pki_;
  test::TempDir dir_{"cairn-cs"};
};

TEST_F(ChunkServerTest, DocumentsOverTlsAndAuthorization) {
  FakeMeta meta([](uint32_t) { return "cs1"; });
  auto server = ChunkServer::Start(Options("cs1"), {&meta});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const HostPort at{"127.0.0.1", (*server)->port()};
  auto alice = Pool("alice");
  ASSERT_NE(alice, nullptr);

  const std::string body = "hello, cairn";
  rpc::DocMeta put;
  ASSERT_TRUE(
      alice->Call<rpc::ChunkServiceClient>(at, [&](auto& c) { c.Put(put, PutReq("a", body)); })
          .ok());
  EXPECT_EQ(put.size, static_cast<int64_t>(body.size()));
  EXPECT_EQ(put.body_hash, Hash(body));
  EXPECT_EQ(put.block_bytes, 64 << 10);
  rpc::GetResult got;
  ASSERT_TRUE(
      alice->Call<rpc::ChunkServiceClient>(at, [&](auto& c) { c.Get(got, GetReq("a")); }).ok());
  EXPECT_EQ(got.data, body);
  EXPECT_EQ(got.meta.version, put.version);
  EXPECT_EQ(got.meta.body_hash, Hash(body));

  // A bad body hash is refused with INVALID_ARGUMENT and nothing is stored.
  rpc::PutRequest bad = PutReq("b", body);
  bad.body_hash ^= 1;
  Status s = alice->Call<rpc::ChunkServiceClient>(at, [&](auto& c) { c.Put(put, bad); });
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  // An unknown collection: NOT_FOUND after a map refresh; known once created.
  rpc::PutRequest other = PutReq("x", body);
  other.collection = "later";
  other.partition = static_cast<int32_t>(PartitionOf("later", "x", kParts).value());
  s = alice->Call<rpc::ChunkServiceClient>(at, [&](auto& c) { c.Put(put, other); });
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
  meta.AddCollection("later");
  std::this_thread::sleep_for(std::chrono::milliseconds(150));  // past the refresh rate limit
  s = alice->Call<rpc::ChunkServiceClient>(at, [&](auto& c) { c.Put(put, other); });
  EXPECT_TRUE(s.ok()) << s.ToString();

  // CountDocuments: nodes and admins only.
  int64_t n = -1;
  s = alice->Call<rpc::ChunkServiceClient>(at, [&](auto& c) { n = c.CountDocuments("c"); });
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  auto root = Pool("root");
  ASSERT_TRUE(
      root->Call<rpc::ChunkServiceClient>(at, [&](auto& c) { n = c.CountDocuments("c"); }).ok());
  EXPECT_EQ(n, 1);

  rpc::NodeStatus st;
  ASSERT_TRUE(alice->Call<rpc::ChunkServiceClient>(at, [&](auto& c) { c.GetStatus(st); }).ok());
  EXPECT_EQ(st.name, "cs1");
  EXPECT_EQ(st.node_id, 1);
  EXPECT_EQ(st.disks.size(), 3u);
  EXPECT_GT(st.capacity_bytes, 0);
  EXPECT_EQ(st.store.documents, 2);
  EXPECT_EQ(st.partitions.size(), kParts);
  EXPECT_TRUE(st.metaserver_reachable);
  for (int i = 0; i < 100 && meta.heartbeats() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GE(meta.heartbeats(), 2u);
  EXPECT_EQ(meta.last_disks(), 3u);
}

// An IndexSource given through ChunkServer::Seams drives ChunkService.Query:
// its candidates (a superset) are filtered, the plan is in the stats.
class OneIndex : public IndexSource {
 public:
  std::vector<query::Path> ReadyPaths(PartitionId, std::string_view) const override {
    return {query::Path{{"k"}}};
  }
  Result<std::vector<std::string>> Lookup(PartitionId, std::string_view,
                                          const query::IndexLookup&) const override {
    ++lookups;
    return std::vector<std::string>{"a", "b", "gone"};  // a superset, with an id not stored
  }
  mutable std::atomic<int> lookups{0};
};

TEST_F(ChunkServerTest, QueryUsesTheIndexSourceOfTheSeams) {
  FakeMeta meta([](uint32_t) { return "cs1"; });
  OneIndex index;
  ChunkServer::Seams seams{&meta};
  seams.index = &index;
  auto server = ChunkServer::Start(Options("cs1"), seams);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const HostPort at{"127.0.0.1", (*server)->port()};
  auto alice = Pool("alice");
  ASSERT_NE(alice, nullptr);
  // "a" and "b" in one partition, so one Query call sees both.
  std::string b = "b";
  for (int i = 0; PartitionOf("c", b, kParts) != PartitionOf("c", "a", kParts); ++i) {
    b = "b" + std::to_string(i);
  }
  for (const auto& doc :
       std::vector<std::pair<std::string, std::string>>{{"a", R"({"k":1})"}, {b, R"({"k":2})"}}) {
    rpc::DocMeta m;
    ASSERT_TRUE(alice
                    ->Call<rpc::ChunkServiceClient>(
                        at, [&](auto& c) { c.Put(m, PutReq(doc.first, doc.second)); })
                    .ok());
  }
  rpc::QueryRequest req;
  req.partition = static_cast<int32_t>(PartitionOf("c", "a", kParts).value());
  req.epoch = 1;
  req.collection = "c";
  req.query = "k == 1";
  rpc::QueryResult out;
  ASSERT_TRUE(alice->Call<rpc::ChunkServiceClient>(at, [&](auto& c) { c.Query(out, req); }).ok());
  ASSERT_EQ(out.rows.size(), 1u);
  EXPECT_EQ(out.rows[0].id, "a");
  EXPECT_EQ(out.rows[0].json, R"({"_id":"a","k":1})");
  EXPECT_FALSE(out.rows[0].__isset.sort_keys);          // no sort: no keys on the wire
  EXPECT_EQ(out.stats.docs_scanned, b == "b" ? 2 : 1);  // the candidates that exist
  EXPECT_NE(out.stats.index_used.find("k"), std::string::npos) << out.stats.index_used;
  EXPECT_EQ(index.lookups.load(), 1);
  // A filter no index fits scans; a sort sends the keys.
  req.query = "k exists ?sort=-k";
  ASSERT_TRUE(alice->Call<rpc::ChunkServiceClient>(at, [&](auto& c) { c.Query(out, req); }).ok());
  ASSERT_EQ(out.rows.size(), 2u);
  EXPECT_EQ(out.rows[0].id, b);
  EXPECT_EQ(out.rows[0].sort_keys, "[[2]]");
  EXPECT_TRUE(out.stats.index_used.empty());
  // A malformed query: INVALID_ARGUMENT with the parser's column.
  req.query = "k ==";
  Status s = alice->Call<rpc::ChunkServiceClient>(at, [&](auto& c) { c.Query(out, req); });
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("at column 5"), std::string::npos) << s.ToString();
}

TEST_F(ChunkServerTest, UsersAreForwardedNodesAreNot) {
  // Even partitions on cs1, odd ones on cs2.
  FakeMeta meta([](uint32_t p) { return p % 2 == 0 ? "cs1" : "cs2"; });
  auto s1 = ChunkServer::Start(Options("cs1"), {&meta});
  ASSERT_TRUE(s1.ok()) << s1.status().ToString();
  auto s2 = ChunkServer::Start(Options("cs2"), {&meta});
  ASSERT_TRUE(s2.ok()) << s2.status().ToString();
  (*s1)->RefreshMap();  // learn cs2's registration
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  (*s1)->RefreshMap();
  const HostPort at1{"127.0.0.1", (*s1)->port()};
  auto alice = Pool("alice");
  auto node = Pool("cs2");  // a node identity calling cs1

  int forwarded = 0;
  for (int i = 0; i < 20; ++i) {
    const std::string id = "doc" + std::to_string(i);
    const bool odd = PartitionOf("c", id, kParts).value() % 2 == 1;
    rpc::DocMeta m;
    Status s =
        alice->Call<rpc::ChunkServiceClient>(at1, [&](auto& c) { c.Put(m, PutReq(id, id)); });
    ASSERT_TRUE(s.ok()) << id << ": " << s.ToString();
    // The document lives on its partition's owner.
    DocStore* owner = odd ? (*s2)->store() : (*s1)->store();
    auto e = owner->Lookup(PartitionOf("c", id, kParts), "c", id);
    ASSERT_TRUE(e.ok() && e->has_value()) << id;
    rpc::GetResult g;
    ASSERT_TRUE(
        alice->Call<rpc::ChunkServiceClient>(at1, [&](auto& c) { c.Get(g, GetReq(id)); }).ok());
    EXPECT_EQ(g.data, id);
    if (odd) {
      ++forwarded;
      s = node->Call<rpc::ChunkServiceClient>(at1, [&](auto& c) { c.Get(g, GetReq(id)); });
      EXPECT_EQ(s.code(), StatusCode::kNotPrimary) << s.ToString();
    }
  }
  EXPECT_GT(forwarded, 0);
}

// peer_addresses (a test and operations hook): calls cs1 forwards to cs2 go
// to the address given for cs2 (here a proxy), not to the one cs2
// advertises; cut the proxy and they fail while cs2 still serves directly.
TEST_F(ChunkServerTest, ForwardsThroughAPeerAddressGivenForThePeer) {
  FakeMeta meta([](uint32_t p) { return p % 2 == 0 ? "cs1" : "cs2"; });
  auto s2 = ChunkServer::Start(Options("cs2"), {&meta});
  ASSERT_TRUE(s2.ok()) << s2.status().ToString();
  const HostPort at2{"127.0.0.1", (*s2)->port()};
  test::TcpProxy proxy;
  proxy.Start(at2);
  ChunkServerOptions o = Options("cs1");
  o.peer_addresses = {"cs2"};
  EXPECT_EQ(ChunkServer::Start(o, {&meta}).status().code(), StatusCode::kInvalidArgument);
  o.peer_addresses = {"cs2=" + proxy.address()};
  auto s1 = ChunkServer::Start(o, {&meta});
  ASSERT_TRUE(s1.ok()) << s1.status().ToString();
  (*s1)->RefreshMap();
  const HostPort at1{"127.0.0.1", (*s1)->port()};
  auto alice = Pool("alice");
  std::string odd_id;
  for (int i = 0; odd_id.empty(); ++i) {
    const std::string id = "doc" + std::to_string(i);
    if (PartitionOf("c", id, kParts).value() % 2 == 1) odd_id = id;
  }
  rpc::DocMeta m;
  Status s = alice->Call<rpc::ChunkServiceClient>(
      at1, [&](auto& c) { c.Put(m, PutReq(odd_id, "through the proxy")); });
  ASSERT_TRUE(s.ok()) << s.ToString();
  proxy.Cut();
  rpc::GetResult g;
  s = alice->Call<rpc::ChunkServiceClient>(at1, [&](auto& c) { c.Get(g, GetReq(odd_id)); });
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  s = alice->Call<rpc::ChunkServiceClient>(at2, [&](auto& c) { c.Get(g, GetReq(odd_id)); });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(g.data, "through the proxy");
}

TEST_F(ChunkServerTest, RefusesACertificateOfAnotherName) {
  FakeMeta meta([](uint32_t) { return "cs1"; });
  ChunkServerOptions o = Options("cs1");
  o.name = "cs2";
  auto server = ChunkServer::Start(o, {&meta});
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(server.status().message().find("node:cs1"), std::string::npos)
      << server.status().ToString();
}

TEST_F(ChunkServerTest, ServesWithTheLastMapWhileTheMetaserverIsDownAndReopens) {
  FakeMeta meta([](uint32_t) { return "cs1"; });
  meta.SetDown(true);
  auto server = ChunkServer::Start(Options("cs1"), {&meta});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const HostPort at{"127.0.0.1", (*server)->port()};
  auto alice = Pool("alice");
  rpc::DocMeta m;
  Status s = alice->Call<rpc::ChunkServiceClient>(at, [&](auto& c) { c.Put(m, PutReq("a", "1")); });
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();  // no map yet
  meta.SetDown(false);
  (*server)->HeartbeatOnce();  // registers and fetches the map
  ASSERT_TRUE(
      alice->Call<rpc::ChunkServiceClient>(at, [&](auto& c) { c.Put(m, PutReq("a", "1")); }).ok());
  meta.SetDown(true);
  (*server)->HeartbeatOnce();
  EXPECT_FALSE((*server)->metaserver_reachable());
  ASSERT_TRUE(
      alice->Call<rpc::ChunkServiceClient>(at, [&](auto& c) { c.Put(m, PutReq("b", "2")); }).ok());
  ASSERT_TRUE((*server)->Stop().ok());
  server->reset();

  meta.SetDown(false);
  server = ChunkServer::Start(Options("cs1"), {&meta});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const HostPort at2{"127.0.0.1", (*server)->port()};
  for (const char* id : {"a", "b"}) {
    rpc::GetResult g;
    ASSERT_TRUE(
        alice->Call<rpc::ChunkServiceClient>(at2, [&](auto& c) { c.Get(g, GetReq(id)); }).ok());
    EXPECT_EQ(g.data, std::string(id) == "a" ? "1" : "2");
  }
}

}  // namespace
}  // namespace cairn::chunkserver
