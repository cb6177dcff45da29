// The partition logic (partition.h) alone, and driven through DocService over
// a MemDisk-backed volume and DocStore with a ManualClock: routing checks,
// names and sizes, LSNs, expected versions, uploads and their expiry,
// copy-on-write kept blocks, body hashes, request-id retries.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>

#include "chunkserver/doc_service.h"
#include "chunkserver/partition.h"
#include "common/checksum.h"
#include "common/clock.h"
#include "common/partitioning.h"
#include "tests/chunkserver/doc_test_util.h"

namespace cairn::chunkserver {
namespace {

constexpr uint32_t kBlock = 4096;
constexpr uint32_t kParts = 8;

uint64_t Hash(const std::string& s) { return Checksum64(s.data(), s.size()); }

std::string Body(size_t n, uint64_t seed) {
  std::string s(n, '\0');
  Random r(seed);
  for (char& c : s) c = static_cast<char>('a' + r.Uniform(26));
  return s;
}

ClusterView MapOwnedBy(uint32_t owner, uint64_t version = 1, Epoch epoch = Epoch(1)) {
  ClusterView v;
  v.version = version;
  v.partition_count = kParts;
  v.nodes.push_back({NodeId(1), "a", "127.0.0.1", 7001});
  v.nodes.push_back({NodeId(2), "b", "127.0.0.1", 7002});
  for (uint32_t i = 0; i < kParts; ++i)
    v.partitions.push_back({epoch, {NodeId(owner)}, {NodeId(owner)}});
  v.collections = {"c", "d"};
  return v;
}

PartitionId P(const std::string& id, const std::string& coll = "c") {
  return PartitionOf(coll, id, kParts);
}

// An id in the same partition as `id` (for renames).
std::string SiblingOf(const std::string& id) {
  for (int i = 0;; ++i) {
    std::string s = id + "-" + std::to_string(i);
    if (P(s) == P(id)) return s;
  }
}

PutInput Put(const std::string& id, const std::string& body, int64_t expected = kAnyVersion) {
  PutInput in;
  in.partition = P(id);
  in.epoch = Epoch(1);
  in.collection = "c";
  in.id = id;
  in.expected_version = expected;
  in.size = body.size();
  in.body_hash = Hash(body);
  in.body = body;
  return in;
}

class DocServiceTest : public ::testing::Test {
 protected:
  DocServiceTest() : rig_(RigOpts()), logic_(Limits(), 42) {
    EXPECT_TRUE(rig_.Create().ok());
    EXPECT_TRUE(rig_.Open().ok());
    logic_.SetSelf(NodeId(1));
    EXPECT_TRUE(logic_.UpdateMap(MapOwnedBy(1)));
    service_ = std::make_unique<DocService>(rig_.store(), &logic_, &clock_);
  }
  static dtest::RigOptions RigOpts() {
    dtest::RigOptions o;
    o.store.block_bytes = kBlock;
    o.store.cache_bytes = 0;
    return o;
  }
  static PartitionLimits Limits() {
    PartitionLimits l;
    l.block_bytes = kBlock;
    l.max_document_bytes = 64 * kBlock;
    l.max_uploads = 4;
    l.upload_idle_timeout = std::chrono::seconds(60);
    return l;
  }
  std::string Read(const std::string& id) {
    Result<DocEntry> st = service_->Stat(P(id), Epoch(1), "c", id);
    EXPECT_TRUE(st.ok()) << st.status().ToString();
    if (!st.ok()) return "";
    std::string out;
    while (out.size() < st->meta.size) {
      Result<GetOutput> g =
          service_->Get(P(id), Epoch(1), "c", id, out.size(), 1u << 30, st->version);
      EXPECT_TRUE(g.ok()) << g.status().ToString();
      if (!g.ok()) return "";
      EXPECT_LE(g->data.size(), kBlock);  // at most one block per call
      EXPECT_FALSE(g->data.empty());
      if (g->data.empty()) break;
      out += g->data;
    }
    EXPECT_EQ(Hash(out), st->body_hash);
    return out;
  }
  // Uploads `body` block by block (in order) and returns the upload id.
  uint64_t Upload(const std::string& id, const std::string& body) {
    Result<uint64_t> u = service_->UploadBegin(P(id), Epoch(1), "c", id);
    EXPECT_TRUE(u.ok()) << u.status().ToString();
    for (uint32_t i = 0; i * kBlock < body.size(); ++i) {
      std::string b = body.substr(size_t{i} * kBlock, kBlock);
      Status s = service_->UploadBlock(*u, i, b, Hash(b));
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
    return *u;
  }

  test::QuietLogs quiet_;
  dtest::StoreRig rig_;
  ManualClock clock_;
  PartitionLogic logic_;
  std::unique_ptr<DocService> service_;
};

TEST(PartitionLogicTest, RoutingChecks) {
  PartitionLogic logic(PartitionLimits{}, 1);
  const PartitionId p = P("x");
  EXPECT_EQ(logic.CheckPartition(p, Epoch(1)).code(), StatusCode::kUnavailable);  // no map
  EXPECT_TRUE(logic.UpdateMap(MapOwnedBy(2, 5, Epoch(3))));
  EXPECT_FALSE(logic.UpdateMap(MapOwnedBy(1, 4)));  // older map ignored
  EXPECT_EQ(logic.CheckPartition(p, Epoch(3)).code(), StatusCode::kNotPrimary);  // no self yet
  logic.SetSelf(NodeId(1));
  EXPECT_EQ(logic.CheckPartition(p, Epoch(3)).code(), StatusCode::kNotPrimary);
  ASSERT_TRUE(logic.PrimaryOf(p).has_value());
  EXPECT_EQ(logic.PrimaryOf(p)->port, 7002);
  EXPECT_TRUE(logic.UpdateMap(MapOwnedBy(1, 6, Epoch(3))));
  EXPECT_TRUE(logic.CheckPartition(p, Epoch(3)).ok());
  EXPECT_EQ(logic.CheckPartition(p, Epoch(2)).code(), StatusCode::kStaleEpoch);
  EXPECT_EQ(logic.CheckPartition(p, Epoch(4)).code(), StatusCode::kUnavailable);
  EXPECT_EQ(logic.CheckPartition(PartitionId(kParts), Epoch(3)).code(),
            StatusCode::kInvalidArgument);
  // Names, partition of the document, collections.
  EXPECT_TRUE(logic.CheckRequest(p, Epoch(3), "c", "x").ok());
  const PartitionId other = PartitionId((p.value() + 1) % kParts);
  EXPECT_EQ(logic.CheckRequest(other, Epoch(3), "c", "x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(logic.CheckRequest(P("x", "nope"), Epoch(3), "nope", "x").code(),
            StatusCode::kNotFound);
  EXPECT_EQ(logic.CheckRequest(p, Epoch(3), ".bad", "x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(logic.CheckDocument(p, "c", std::string(256, 'x')).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(logic.CheckDocument(P("a/b"), "c", "a/b").code(), StatusCode::kInvalidArgument);
  // Unplaced partition.
  ClusterView v = MapOwnedBy(1, 7, Epoch(3));
  v.partitions[p.value()].replicas.clear();
  EXPECT_TRUE(logic.UpdateMap(v));
  EXPECT_EQ(logic.CheckPartition(p, Epoch(3)).code(), StatusCode::kUnavailable);
}

TEST(PartitionLogicTest, UploadIdsCarryThePartitionAndAreBounded) {
  PartitionLimits l;
  l.max_uploads = 2;
  PartitionLogic logic(l, 7);
  logic.SetSelf(NodeId(1));
  ASSERT_TRUE(logic.UpdateMap(MapOwnedBy(1)));
  const Nanos t0(1000);
  Result<uint64_t> a = logic.BeginUpload(P("x"), Epoch(1), "c", "x", t0);
  Result<uint64_t> b = logic.BeginUpload(P("y"), Epoch(1), "c", "y", t0);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_EQ(PartitionLogic::UploadPartition(*a), P("x"));
  EXPECT_EQ(PartitionLogic::UploadPartition(*b), P("y"));
  EXPECT_EQ(logic.BeginUpload(P("z"), Epoch(1), "c", "z", t0).status().code(),
            StatusCode::kUnavailable);
  // Hash and size checks of a block.
  EXPECT_EQ(logic.CheckUploadBlock(*a, 0, 10, 1, 2, t0).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(logic.CheckUploadBlock(*a, 0, 0, 1, 1, t0).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(logic.CheckUploadBlock(*a, 1u << 30, 10, 1, 1, t0).code(), StatusCode::kTooLarge);
  EXPECT_TRUE(logic.CheckUploadBlock(*a, 0, 10, 1, 1, t0).ok());
  // Expiry on the injected clock: b is touched later than a.
  BlockRef ref{.offset = 100, .stored_len = 10, .raw_len = 10, .hash = 1};
  EXPECT_TRUE(logic.AddUploadBlock(*a, 0, ref, {}, t0).empty());
  EXPECT_TRUE(logic.AddUploadBlock(*b, 0, ref, {}, t0 + std::chrono::minutes(5)).empty());
  EXPECT_TRUE(logic.ExpireUploads(t0 + std::chrono::minutes(9)).empty());
  std::vector<BlockRef> gone = logic.ExpireUploads(t0 + std::chrono::minutes(10));
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_FALSE(logic.HasUpload(*a));
  EXPECT_TRUE(logic.HasUpload(*b));
  // A block added to an ended session comes straight back to be forgotten.
  EXPECT_EQ(logic.AddUploadBlock(*a, 1, ref, {}, t0).size(), 1u);
  EXPECT_EQ(logic.AbortUpload(*a).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(logic.AbortUpload(*b).ok());
  EXPECT_EQ(logic.open_uploads(), 0u);
}

TEST_F(DocServiceTest, PutGetListRenameDelete) {
  const std::string body = Body(3 * kBlock / 4, 1);
  Result<DocEntry> put = service_->Put(Put("doc1", body));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->meta.size, body.size());
  EXPECT_EQ(put->body_hash, Hash(body));
  EXPECT_EQ(put->meta.mode, 0644u);
  EXPECT_EQ(put->meta.ctime_ns, clock_.WallNanos());
  // The LSN is the partition's next.
  EXPECT_EQ(rig_.store()->partition_state(P("doc1")).last_lsn, Lsn(1));
  EXPECT_EQ(put->version, 1u);
  EXPECT_EQ(Read("doc1"), body);

  Result<DocEntry> put2 = service_->Put(Put("doc1", "new", static_cast<int64_t>(put->version)));
  ASSERT_TRUE(put2.ok()) << put2.status().ToString();
  EXPECT_EQ(put2->version, 2u);
  EXPECT_EQ(Read("doc1"), "new");

  // Expected versions: -1 must not exist (else AlreadyExists), >0 exact (else
  // VersionMismatch).
  EXPECT_EQ(service_->Put(Put("doc1", "x", kMustNotExist)).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(service_->Put(Put("doc1", "x", 1)).status().code(), StatusCode::kVersionMismatch);
  EXPECT_EQ(service_->Put(Put("nodoc", "x", 5)).status().code(), StatusCode::kVersionMismatch);
  EXPECT_TRUE(service_->Put(Put("nodoc", "x", kMustNotExist)).ok());

  // Empty body.
  ASSERT_TRUE(service_->Put(Put("empty", "")).ok());
  EXPECT_EQ(Read("empty"), "");

  // Rename within the partition.
  const std::string to = SiblingOf("doc1");
  RenameInput rn{P("doc1"), Epoch(1), {}, "c", "doc1", to, false};
  Result<DocEntry> renamed = service_->Rename(rn);
  ASSERT_TRUE(renamed.ok()) << renamed.status().ToString();
  EXPECT_EQ(renamed->id, to);
  EXPECT_EQ(Read(to), "new");
  EXPECT_EQ(service_->Stat(P("doc1"), Epoch(1), "c", "doc1").status().code(),
            StatusCode::kNotFound);

  // List the partition.
  Result<ListPage> page = service_->List(P(to), Epoch(1), "c", "", 0);
  ASSERT_TRUE(page.ok());
  bool found = false;
  for (const ListItem& it : page->items) found |= it.id == to;
  EXPECT_TRUE(found);

  // Delete; a second delete is NotFound; a wrong expected version is a mismatch.
  DeleteInput del{P(to), Epoch(1), {}, "c", to, 1};
  EXPECT_EQ(service_->Delete(del).code(), StatusCode::kVersionMismatch);
  del.expected_version = kAnyVersion;
  EXPECT_TRUE(service_->Delete(del).ok());
  EXPECT_EQ(service_->Delete(del).code(), StatusCode::kNotFound);

  Result<uint64_t> count = service_->CountDocuments("c");
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 2u);  // nodoc, empty
  EXPECT_EQ(*service_->CountDocuments("d"), 0u);
}

TEST_F(DocServiceTest, RejectsBadInput) {
  PutInput in = Put("doc", "hello");
  in.body_hash ^= 1;
  EXPECT_EQ(service_->Put(in).status().code(), StatusCode::kInvalidArgument);
  in = Put("doc", "hello");
  in.size = 4;
  EXPECT_EQ(service_->Put(in).status().code(), StatusCode::kInvalidArgument);
  in = Put("doc", Body(kBlock + 1, 2));
  EXPECT_EQ(service_->Put(in).status().code(), StatusCode::kTooLarge);
  in = Put("doc", "x");
  in.size = 65 * uint64_t{kBlock};
  in.body.reset();
  EXPECT_EQ(service_->Put(in).status().code(), StatusCode::kTooLarge);
  in = Put("doc", "x");
  in.collection = "nope";
  in.partition = P("doc", "nope");
  EXPECT_EQ(service_->Put(in).status().code(), StatusCode::kNotFound);
  in = Put("doc", "x");
  in.epoch = Epoch(0);
  EXPECT_EQ(service_->Put(in).status().code(), StatusCode::kStaleEpoch);
  in = Put("doc", "x");
  in.id = "..";
  EXPECT_EQ(service_->Put(in).status().code(), StatusCode::kInvalidArgument);
  // Nothing was written by any of them.
  EXPECT_EQ(rig_.store()->stats().documents, 0u);
  EXPECT_EQ(rig_.store()->stats().mutations_applied, 0u);
}

TEST_F(DocServiceTest, NotPrimaryAfterTheMapMovesThePartition) {
  ASSERT_TRUE(service_->Put(Put("doc", "v1")).ok());
  ASSERT_TRUE(logic_.UpdateMap(MapOwnedBy(2, 2, Epoch(2))));
  EXPECT_EQ(service_->Put(Put("doc", "v2")).status().code(), StatusCode::kNotPrimary);
  EXPECT_EQ(service_->Stat(P("doc"), Epoch(1), "c", "doc").status().code(),
            StatusCode::kNotPrimary);
  ASSERT_TRUE(logic_.UpdateMap(MapOwnedBy(1, 3, Epoch(3))));
  EXPECT_EQ(service_->Put(Put("doc", "v2")).status().code(), StatusCode::kStaleEpoch);
  PutInput in = Put("doc", "v2");
  in.epoch = Epoch(3);
  Result<DocEntry> r = service_->Put(in);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(rig_.store()->partition_state(P("doc")).last_epoch, Epoch(3));
}

TEST_F(DocServiceTest, UploadCommitAndCopyOnWrite) {
  const std::string body = Body(5 * kBlock + 100, 3);
  const uint64_t up = Upload("big", body);
  PutInput in = Put("big", body);
  in.body.reset();
  in.upload_id = up;
  Result<DocEntry> v1 = service_->Put(in);
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  EXPECT_EQ(v1->blocks.size(), 6u);
  EXPECT_EQ(Read("big"), body);
  EXPECT_FALSE(logic_.HasUpload(up));  // consumed by the commit

  // Copy-on-write: change block 2 only, keep the others.
  std::string body2 = body;
  for (size_t i = 2 * kBlock; i < 3 * kBlock; ++i) body2[i] = 'Z';
  PutInput cow = Put("big", body2);
  cow.body.reset();
  for (uint32_t i = 0; i < 6; ++i) {
    BlockInput b;
    b.index = i;
    if (i == 2) {
      b.data = body2.substr(2 * kBlock, kBlock);
      b.data_hash = Hash(*b.data);
    } else {
      b.keep_from_version = v1->version;
    }
    cow.kept_blocks.push_back(b);
  }
  const uint64_t blocks_before = rig_.store()->stats().blocks_written;
  Result<DocEntry> v2 = service_->Put(cow);
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  EXPECT_EQ(rig_.store()->stats().blocks_written, blocks_before + 1);  // one new block stored
  EXPECT_EQ(v2->blocks[0], v1->blocks[0]);
  EXPECT_EQ(v2->blocks[5], v1->blocks[5]);
  EXPECT_NE(v2->blocks[2], v1->blocks[2]);
  EXPECT_EQ(Read("big"), body2);

  // Kept blocks must come from the current version.
  EXPECT_EQ(service_->Put(cow).status().code(), StatusCode::kVersionMismatch);
  // A wrong body hash with kept blocks is caught by reading back.
  for (BlockInput& b : cow.kept_blocks) {
    if (b.keep_from_version) b.keep_from_version = v2->version;
  }
  cow.body_hash ^= 1;
  EXPECT_EQ(service_->Put(cow).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Read("big"), body2);
  // Blocks must make up the body: every one but the last is block_bytes.
  PutInput trunc = Put("big", body2.substr(0, 2 * kBlock + 10));
  trunc.body.reset();
  for (uint32_t i = 0; i < 3; ++i) {
    BlockInput b;
    b.index = i;
    b.keep_from_version = v2->version;
    trunc.kept_blocks.push_back(b);
  }
  EXPECT_EQ(service_->Put(trunc).status().code(), StatusCode::kInvalidArgument);
  // Truncating at a block boundary keeps whole blocks and works.
  trunc = Put("big", body2.substr(0, 2 * kBlock));
  trunc.body.reset();
  trunc.kept_blocks.resize(2);
  trunc.kept_blocks[0] = {0, std::nullopt, std::nullopt, v2->version};
  trunc.kept_blocks[1] = {1, std::nullopt, std::nullopt, v2->version};
  ASSERT_TRUE(service_->Put(trunc).ok());
  EXPECT_EQ(Read("big"), body2.substr(0, 2 * kBlock));
}

TEST_F(DocServiceTest, UploadOutOfOrderAndResentBlocksAreVerifiedByReadingBack) {
  const std::string body = Body(3 * kBlock, 4);
  Result<uint64_t> up = service_->UploadBegin(P("doc"), Epoch(1), "c", "doc");
  ASSERT_TRUE(up.ok());
  for (uint32_t i : {2u, 0u, 1u, 1u}) {
    std::string b = body.substr(size_t{i} * kBlock, kBlock);
    ASSERT_TRUE(service_->UploadBlock(*up, i, b, Hash(b)).ok());
  }
  EXPECT_EQ(service_->UploadBlock(*up, 0, "xx", 0).code(), StatusCode::kInvalidArgument);
  PutInput in = Put("doc", body);
  in.body.reset();
  in.upload_id = *up;
  in.body_hash ^= 1;
  EXPECT_EQ(service_->Put(in).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(logic_.HasUpload(*up));  // a failed commit leaves the upload usable
  in.body_hash ^= 1;
  ASSERT_TRUE(service_->Put(in).ok());
  EXPECT_EQ(Read("doc"), body);
  // A missing block is refused.
  up = service_->UploadBegin(P("doc"), Epoch(1), "c", "doc");
  ASSERT_TRUE(up.ok());
  std::string b0 = body.substr(0, kBlock);
  ASSERT_TRUE(service_->UploadBlock(*up, 0, b0, Hash(b0)).ok());
  in.upload_id = *up;
  EXPECT_EQ(service_->Put(in).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(service_->UploadAbort(*up).ok());
  EXPECT_EQ(service_->UploadAbort(*up).code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->UploadBlock(*up, 1, b0, Hash(b0)).code(), StatusCode::kNotFound);
}

TEST_F(DocServiceTest, IdleUploadsExpireOnTheInjectedClock) {
  const std::string body = Body(2 * kBlock, 5);
  const uint64_t up = Upload("doc", body);
  clock_.Advance(std::chrono::seconds(59));
  EXPECT_EQ(service_->ExpireUploads(), 0u);
  EXPECT_TRUE(logic_.HasUpload(up));
  clock_.Advance(std::chrono::seconds(1));
  EXPECT_EQ(service_->ExpireUploads(), 2u);  // both blocks forgotten
  PutInput in = Put("doc", body);
  in.body.reset();
  in.upload_id = up;
  EXPECT_EQ(service_->Put(in).status().code(), StatusCode::kNotFound);
  // The bound on open sessions.
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(service_->UploadBegin(P("doc"), Epoch(1), "c", "doc").ok());
  EXPECT_EQ(service_->UploadBegin(P("doc"), Epoch(1), "c", "doc").status().code(),
            StatusCode::kUnavailable);
  clock_.Advance(std::chrono::seconds(61));
  EXPECT_TRUE(service_->UploadBegin(P("doc"), Epoch(1), "c", "doc").ok());  // expired first
}

TEST_F(DocServiceTest, RetriedRequestIdsGetTheFirstAnswer) {
  const std::string body = Body(2 * kBlock, 6);
  const uint64_t up = Upload("doc", body);
  PutInput in = Put("doc", body);
  in.body.reset();
  in.upload_id = up;
  in.request_id = RequestId{1, 2, 3};
  Result<DocEntry> first = service_->Put(in);
  ASSERT_TRUE(first.ok());
  // The retry's upload is gone, yet it gets the first answer.
  Result<DocEntry> again = service_->Put(in);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->version, first->version);
  EXPECT_EQ(rig_.store()->partition_state(P("doc")).last_lsn, Lsn(1));
  // Deletes and renames too.
  DeleteInput del{P("doc"), Epoch(1), RequestId{1, 2, 4}, "c", "doc", kAnyVersion};
  ASSERT_TRUE(service_->Delete(del).ok());
  EXPECT_TRUE(service_->Delete(del).ok());
  EXPECT_EQ(rig_.store()->partition_state(P("doc")).last_lsn, Lsn(2));
}

TEST_F(DocServiceTest, UnknownCollectionRefreshesTheMap) {
  int refreshes = 0;
  service_->SetMapRefresher([&] {
    ++refreshes;
    ClusterView v = MapOwnedBy(1, 2);
    v.collections.insert("fresh");
    logic_.UpdateMap(v);
  });
  PutInput in = Put("doc", "x");
  in.collection = "fresh";
  in.partition = P("doc", "fresh");
  ASSERT_TRUE(service_->Put(in).ok());
  EXPECT_EQ(refreshes, 1);
  in.collection = "still-missing";
  in.partition = P("doc", "still-missing");
  EXPECT_EQ(service_->Put(in).status().code(), StatusCode::kNotFound);
}

TEST_F(DocServiceTest, AcknowledgedPutsSurviveACrash) {
  std::map<std::string, std::string> acked;
  for (int i = 0; i < 20; ++i) {
    const std::string id = "d" + std::to_string(i);
    const std::string body = Body(static_cast<size_t>(i) * 200, static_cast<uint64_t>(i));
    Result<DocEntry> r = service_->Put(Put(id, body));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    acked[id] = body;
  }
  service_.reset();
  rig_.Crash(dtest::CrashMode::kDropUnsynced, 1);
  ASSERT_TRUE(rig_.Open().ok());
  service_ = std::make_unique<DocService>(rig_.store(), &logic_, &clock_);
  for (const auto& [id, body] : acked) EXPECT_EQ(Read(id), body) << id;
}

TEST_F(DocServiceTest, ConcurrentPutsToOnePartitionGetConsecutiveLsns) {
  // Ids of one partition, written from four threads at once.
  std::vector<std::string> ids;
  for (int i = 0; ids.size() < 40; ++i) {
    std::string id = "k" + std::to_string(i);
    if (P(id) == P("k0")) ids.push_back(id);
  }
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = t; i < ids.size(); i += 4) {
        if (!service_->Put(Put(ids[i], ids[i])).ok()) failures.fetch_add(1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(rig_.store()->partition_state(P("k0")).last_lsn, Lsn(ids.size()));
  for (const std::string& id : ids) EXPECT_EQ(Read(id), id);
}

}  // namespace
}  // namespace cairn::chunkserver
