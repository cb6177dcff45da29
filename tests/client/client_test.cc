// libcairn against fake services over real mutual TLS (fake_cluster.h):
// routing, retries with one request id, map refresh on NOT_PRIMARY,
// metaserver redirection, paged listing across partitions, copy-on-write,
// renames, a 64 MiB streamed put/get with bounded memory, and hash checks.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <fstream>
#include <iostream>
#include <set>

#include "client/cairn.h"
#include "common/partitioning.h"
#include "common/random.h"
#include "tests/client/fake_cluster.h"
#include "tests/common/sanitizers.h"
#include "tests/common/test_seeds.h"

namespace cairn::client {
namespace {

using test::FakeCluster;
using test::FakeClusterOptions;

std::string RandomBytes(Random& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng.Next());
  return s;
}

class ClientTest : public ::testing::Test {
 protected:
  void Start(FakeClusterOptions o = {}) {
    cluster_ = std::make_unique<FakeCluster>(o);
    ASSERT_EQ(cluster_->error(), "");
    auto c = Client::Create(Opts());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(c).value();
  }
  virtual Options Opts() { return cluster_->ClientOptions(); }
  std::string Read(const std::string& c, const std::string& id, ReadOptions ro = {}) {
    std::string out;
    Result<DocInfo> r = client_->Get(c, id, StringWriter(&out), ro);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return out;
  }

  test::QuietLogs quiet_;
  std::unique_ptr<FakeCluster> cluster_;
  std::unique_ptr<Client> client_;
};

TEST_F(ClientTest, PutGetStatDeleteRouteToThePrimary) {
  Start();
  Result<DocInfo> put = client_->Put("docs", "a", "hello");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->size, 5u);
  EXPECT_EQ(put->partition, PartitionOf("docs", "a", 8));
  EXPECT_EQ(Read("docs", "a"), "hello");
  Result<DocInfo> st = client_->Stat("docs", "a");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->version, put->version);
  // No routing error ever happened: every call went to the right node.
  EXPECT_EQ(cluster_->Calls("GetMap"), 1);
  ASSERT_TRUE(client_->Delete("docs", "a").ok());
  Result<DocInfo> gone = client_->Stat("docs", "a");
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
  EXPECT_NE(gone.status().message().find("docs/a"), std::string::npos) << gone.status().message();
}

TEST_F(ClientTest, VersionsAndNames) {
  Start();
  Result<DocInfo> v1 = client_->Put("docs", "x", "1");
  ASSERT_TRUE(v1.ok());
  WriteOptions create_only;
  create_only.expected_version = kMustNotExist;
  EXPECT_EQ(client_->Put("docs", "x", "2", create_only).status().code(),
            StatusCode::kAlreadyExists);
  WriteOptions exact;
  exact.expected_version = v1->version + 100;
  EXPECT_EQ(client_->Put("docs", "x", "2", exact).status().code(), StatusCode::kVersionMismatch);
  exact.expected_version = v1->version;
  exact.mode = 0600;
  exact.xattrs = std::map<std::string, std::string>{{"user.k", "v"}};
  Result<DocInfo> v2 = client_->Put("docs", "x", "2", exact);
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->mode, 0600u);
  EXPECT_EQ(v2->xattrs.at("user.k"), "v");
  EXPECT_EQ(client_->Put("nope", "x", "1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(client_->Put("docs", "a/b", "1").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->Put("bad name", "a", "1").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->Delete("docs", "x", v1->version).code(), StatusCode::kVersionMismatch);
}

class ShortTimeoutTest : public ClientTest {
 protected:
  Options Opts() override {
    Options o = cluster_->ClientOptions();
    o.call_timeout_ms = 300;
    return o;
  }
};

TEST_F(ShortTimeoutTest, LostReplyIsRetriedWithTheSameRequestId) {
  Start();
  ASSERT_TRUE(client_->Put("docs", "warm", "x").ok());
  // The put is applied, but its answer comes after the client gave up on
  // the connection; the retry must not apply it again.
  cluster_->DelayNext("Put", 900, 1);
  Result<DocInfo> r = client_->Put("docs", "once", "body");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(cluster_->Calls("Put"), 3);
  EXPECT_EQ(cluster_->Applied("Put"), 2);  // "warm" and "once", each once
  EXPECT_EQ(Read("docs", "once"), "body");
  // Same for a delete: the retry is answered from the deduplication table
  // rather than failing with NotFound.
  cluster_->DelayNext("Delete", 900, 1);
  EXPECT_TRUE(client_->Delete("docs", "once").ok());
  EXPECT_EQ(cluster_->Applied("Delete"), 1);
}

TEST_F(ShortTimeoutTest, LostCreateCollectionAnswerIsNotAnError) {
  Start();
  cluster_->DelayNext("CreateCollection", 900, 1);
  ASSERT_TRUE(client_->CreateCollection("late").ok());
  EXPECT_EQ(cluster_->Calls("CreateCollection"), 2);
  // Without a retry, an existing collection is an error.
  EXPECT_EQ(client_->CreateCollection("late").code(), StatusCode::kAlreadyExists);
}

TEST_F(ClientTest, UnavailableAndTimeoutAreRetriedOtherErrorsAreNot) {
  Start();
  cluster_->FailNext("Put", rpc::ErrorCode::UNAVAILABLE, 3);
  ASSERT_TRUE(client_->Put("docs", "u", "1").ok());
  EXPECT_EQ(cluster_->Calls("Put"), 4);
  cluster_->FailNext("Stat", rpc::ErrorCode::PERMISSION_DENIED, 1);
  EXPECT_EQ(client_->Stat("docs", "u").status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(cluster_->Calls("Stat"), 1);
  // A budget that runs out returns the last error.
  cluster_->FailNext("Stat", rpc::ErrorCode::TIMEOUT, 1000);
  Result<DocInfo> r = client_->Stat("docs", "u");
  EXPECT_EQ(r.status().code(), StatusCode::kTimeout);
  EXPECT_NE(r.status().message().find("attempts"), std::string::npos) << r.status().message();
}

TEST_F(ClientTest, NotPrimaryRefreshesTheMap) {
  Start();
  ASSERT_TRUE(client_->Put("docs", "m", "before").ok());
  const uint32_t p = PartitionOf("docs", "m", 8).value();
  const int old = cluster_->PrimaryOf(p);
  cluster_->MovePartition(p, 1 - old);
  const int maps = cluster_->Calls("GetMap");
  EXPECT_EQ(Read("docs", "m"), "before");
  EXPECT_EQ(cluster_->Calls("GetMap"), maps + 1);
  Result<DocInfo> r = client_->Put("docs", "m", "after");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Read("docs", "m"), "after");
  EXPECT_EQ(cluster_->Calls("GetMap"), maps + 1);
}

TEST_F(ClientTest, StaleEpochRefreshesTheMap) {
  Start();
  ASSERT_TRUE(client_->Put("docs", "e", "1").ok());
  const uint32_t p = PartitionOf("docs", "e", 8).value();
  cluster_->MovePartition(p, cluster_->PrimaryOf(p));  // same node, new epoch
  const int maps = cluster_->Calls("GetMap");
  ASSERT_TRUE(client_->Put("docs", "e", "2").ok());
  EXPECT_EQ(cluster_->Calls("GetMap"), maps + 1);
}

TEST_F(ClientTest, FollowerMetaserverRedirectsToTheLeader) {
  FakeClusterOptions o;
  o.metaservers = 3;
  o.leader = 2;
  Start(o);
  ASSERT_TRUE(client_->Put("docs", "f", "1").ok());
  Result<ClusterMap> m = client_->GetClusterMap();
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->nodes.size(), 2u);
  EXPECT_EQ(m->partition_count, 8u);
  ASSERT_TRUE(client_->CreateCollection("more").ok());
  Result<std::vector<CollectionStatus>> cs = client_->ListCollections();
  ASSERT_TRUE(cs.ok());
  ASSERT_EQ(cs->size(), 2u);
  EXPECT_EQ((*cs)[1].name, "more");
  ASSERT_TRUE(client_->Put("more", "y", "1").ok());
  EXPECT_EQ(client_->DropCollection("more").code(), StatusCode::kNotEmpty);
  ASSERT_TRUE(client_->Delete("more", "y").ok());
  EXPECT_TRUE(client_->DropCollection("more").ok());
  EXPECT_EQ(client_->CreateCollection("docs").code(), StatusCode::kAlreadyExists);
}

TEST_F(ClientTest, NoMetaserverIsUnavailable) {
  Start();
  Options o = cluster_->ClientOptions();
  o.metaservers = {{"127.0.0.1", 1}};
  o.deadline_ms = 300;
  auto c = Client::Create(o);
  ASSERT_TRUE(c.ok());
  Result<DocInfo> r = (*c)->Stat("docs", "a");
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
}

TEST_F(ClientTest, ListPagesAcrossPartitionsInIdOrder) {
  Start();
  std::set<std::string> ids;
  for (int i = 0; i < 300; ++i) {
    std::string id = "doc-" + std::to_string(i * 7919 % 1000);
    ASSERT_TRUE(client_->Put("docs", id, id).ok());
    ids.insert(id);
  }
  for (uint32_t limit : {1u, 37u, 1000u}) {
    std::vector<std::string> seen;
    ListOptions lo;
    lo.limit = limit;
    int pages = 0;
    for (;;) {
      Result<ListResult> r = client_->List("docs", lo);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_LE(r->items.size(), limit);
      for (const DocInfo& d : r->items) seen.push_back(d.id);
      ++pages;
      if (r->next_cursor.empty()) break;
      lo.cursor = r->next_cursor;
      ASSERT_LT(pages, 1000);
    }
    EXPECT_EQ(seen, std::vector<std::string>(ids.begin(), ids.end())) << "limit " << limit;
  }
}

TEST_F(ClientTest, MultiBlockPutGetAndRanges) {
  Start();
  Random rng(test::Seeds(1, 31)[0]);
  const std::string body = RandomBytes(rng, 5 * 64 * 1024 + 123);
  Result<DocInfo> r = client_->Put("docs", "big", body);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // The fakes' 64 KiB blocks, learned with one GetStatus (the client's own
  // default is 1 MiB).
  EXPECT_EQ(cluster_->Calls("UploadBlock"), 6);
  ASSERT_TRUE(client_->Put("docs", "big2", body).ok());
  EXPECT_EQ(cluster_->Calls("GetStatus"), 1);
  EXPECT_EQ(cluster_->Body("docs", "big"), body);
  EXPECT_EQ(Read("docs", "big"), body);
  ReadOptions ro;
  ro.offset = 64 * 1024 - 10;
  ro.length = 64 * 1024 + 20;
  EXPECT_EQ(Read("docs", "big", ro), body.substr(ro.offset, *ro.length));
  ro.offset = body.size() - 5;
  ro.length = 100;
  EXPECT_EQ(Read("docs", "big", ro), body.substr(body.size() - 5));
  ro.if_version = r->version + 1;
  std::string out;
  EXPECT_EQ(client_->Get("docs", "big", StringWriter(&out), ro).status().code(),
            StatusCode::kVersionMismatch);
}

TEST_F(ClientTest, HashMismatchIsCorruption) {
  Start();
  Random rng(test::Seeds(1, 32)[0]);
  const std::string body = RandomBytes(rng, 3 * 64 * 1024);
  ASSERT_TRUE(client_->Put("docs", "h", body).ok());
  ASSERT_TRUE(client_->Put("docs", "s", "small").ok());
  cluster_->CorruptGets(true);
  std::string out;
  EXPECT_EQ(client_->Get("docs", "h", StringWriter(&out)).status().code(), StatusCode::kCorruption);
  out.clear();
  EXPECT_EQ(client_->Get("docs", "s", StringWriter(&out)).status().code(), StatusCode::kCorruption);
}

TEST_F(ClientTest, WriteRangeSendsOnlyTheTouchedBlocks) {
  Start();
  Random rng(test::Seeds(1, 33)[0]);
  const size_t bb = 64 * 1024;
  std::string body = RandomBytes(rng, 4 * bb + 100);
  Result<DocInfo> v1 = client_->Put("docs", "cow", body);
  ASSERT_TRUE(v1.ok());
  const int64_t before = cluster_->UploadedBytes();
  const std::string patch = RandomBytes(rng, 50);
  Result<DocInfo> v2 = client_->WriteRange("docs", "cow", bb + bb / 2, patch, v1->version);
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  body.replace(bb + bb / 2, patch.size(), patch);
  EXPECT_EQ(Read("docs", "cow"), body);
  // One changed block: sent inside the put, no upload.
  EXPECT_EQ(cluster_->UploadedBytes(), before);
  EXPECT_EQ(cluster_->Calls("UploadBegin"), 1);  // the first put's only
  EXPECT_EQ(cluster_->LastKeptBlocks(), (std::vector<int32_t>{0, 2, 3, 4}));
  EXPECT_EQ(cluster_->LastInlineBlocks(), (std::vector<int32_t>{1}));
  // Across a block boundary and past the end (the document grows).
  const std::string tail = RandomBytes(rng, 200);
  Result<DocInfo> v3 = client_->WriteRange("docs", "cow", 4 * bb + 50, tail);
  ASSERT_TRUE(v3.ok()) << v3.status().ToString();
  body.resize(4 * bb + 50);
  body += tail;
  EXPECT_EQ(v3->size, body.size());
  EXPECT_EQ(Read("docs", "cow"), body);
  EXPECT_EQ(cluster_->LastKeptBlocks(), (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(cluster_->LastInlineBlocks(), (std::vector<int32_t>{4}));
  // Across a boundary: two changed blocks go through an upload of just those.
  const std::string across = RandomBytes(rng, 20);
  Result<DocInfo> v4 = client_->WriteRange("docs", "cow", bb - 10, across, v3->version);
  ASSERT_TRUE(v4.ok()) << v4.status().ToString();
  body.replace(bb - 10, across.size(), across);
  EXPECT_EQ(Read("docs", "cow"), body);
  EXPECT_EQ(cluster_->UploadedBytes() - before, static_cast<int64_t>(2 * bb));
  EXPECT_EQ(cluster_->LastKeptBlocks(), (std::vector<int32_t>{2, 3, 4}));
  EXPECT_EQ(client_->WriteRange("docs", "cow", 0, "x", v1->version).status().code(),
            StatusCode::kVersionMismatch);
}

TEST_F(ClientTest, RenameInOnePartitionAndAcross) {
  Start();
  // Find names in the same and in different partitions.
  std::string same, other;
  const PartitionId pa = PartitionOf("docs", "src", 8);
  for (int i = 0; same.empty() || other.empty(); ++i) {
    const std::string id = "to-" + std::to_string(i);
    (PartitionOf("docs", id, 8) == pa ? same : other) = id;
  }
  Random rng(test::Seeds(1, 34)[0]);
  const std::string body = RandomBytes(rng, 3 * 64 * 1024 + 5);
  WriteOptions wo;
  wo.mode = 0640;
  ASSERT_TRUE(client_->Put("docs", "src", body, wo).ok());
  Result<DocInfo> r1 = client_->Rename("docs", "src", same);
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  EXPECT_EQ(cluster_->Applied("Rename"), 1);
  Result<DocInfo> r2 = client_->Rename("docs", same, other);
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(cluster_->Applied("Rename"), 1);  // a copy and a delete
  EXPECT_EQ(r2->mode, 0640u);
  EXPECT_EQ(Read("docs", other), body);
  EXPECT_EQ(client_->Stat("docs", same).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(client_->Put("docs", "src", "x").ok());
  EXPECT_EQ(client_->Rename("docs", "src", other).status().code(), StatusCode::kAlreadyExists);
  RenameOptions replace;
  replace.replace = true;
  ASSERT_TRUE(client_->Rename("docs", "src", other, replace).ok());
  EXPECT_EQ(Read("docs", other), "x");
}

int64_t PeakRssKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

int64_t CurrentRssKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

class BigTest : public ClientTest {
 protected:
  Options Opts() override {
    Options o = cluster_->ClientOptions();
    return o;
  }
};

TEST_F(BigTest, StreamsA64MiBBodyWithBoundedMemory) {
  FakeClusterOptions fo;
  fo.block_bytes = 1 << 20;
  Start(fo);
  const uint64_t size = (64ull << 20) + 12345;
  const int64_t rss_before = CurrentRssKiB();
  uint64_t pos = 0;
  Reader synthetic = [&](char* buf, size_t n) -> Result<size_t> {
    const size_t k = static_cast<size_t>(std::min<uint64_t>(n, size - pos));
    for (size_t i = 0; i < k; ++i) buf[i] = test::SyntheticByte(pos + i);
    pos += k;
    return k;
  };
  Result<DocInfo> put = client_->PutStream("docs", "synthetic-64m", synthetic);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->size, size);
  uint64_t got = 0;
  bool same = true;
  Writer check = [&](std::string_view data) {
    for (size_t i = 0; i < data.size() && same; ++i) {
      same = data[i] == test::SyntheticByte(got + i);
    }
    got += data.size();
    return Status::Ok();
  };
  Result<DocInfo> get = client_->Get("docs", "synthetic-64m", check);
  ASSERT_TRUE(get.ok()) << get.status().ToString();
  EXPECT_EQ(got, size);
  EXPECT_TRUE(same);
  // Client and fake servers share this process; neither keeps the body.
  // A few 1 MiB blocks in flight (client, Thrift buffers, server) fit well
  // under 48 MiB; a client that held the body would need 64.
  const int64_t grown_mib = (PeakRssKiB() - rss_before) / 1024;
  std::cerr << "peak RSS grew by " << grown_mib << " MiB\n";
  if (test::kAddressSanitizer) return;  // ASan keeps freed memory in quarantine (256 MiB)
  EXPECT_LT(grown_mib, 48) << "peak RSS grew by " << grown_mib << " MiB";
}

}  // namespace
}  // namespace cairn::client
