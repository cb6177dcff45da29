// DocStore behaviour over a raidlib volume on a MemDisk: put/get/range/list,
// delete, rename, versions, expected-version conflicts, request-id
// deduplication across restarts, large documents streamed block by block,
// copy-on-write block reuse, the block cache and the statistics.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/chunkserver/doc_test_util.h"

namespace cairn::chunkserver {
namespace {

using dtest::BlockBytes;
using dtest::ModelBlock;
using dtest::PutMutation;
using dtest::RigOptions;
using dtest::StoreRig;

std::vector<std::byte> Bytes(const std::string& s) {
  std::vector<std::byte> out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

std::string ReadAll(DocStore* store, const DocEntry& e) {
  std::string out(static_cast<size_t>(e.meta.size), '\0');
  Status s = store->ReadRange(e, 0, std::as_writable_bytes(std::span(out)));
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

class DocStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RigOptions o;
    o.store.block_bytes = 64;  // small blocks: many per document
    Start(o);
  }
  void Start(RigOptions o) {
    rig_ = std::make_unique<StoreRig>(o);
    ASSERT_TRUE(rig_->Create().ok());
    Reopen();
  }
  void Reopen() {
    Status s = rig_->Open();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  DocStore* store() { return rig_->store(); }

  // Puts `body` cut into block_bytes blocks; returns the result.
  Result<ApplyResult> Put(const std::string& collection, const std::string& id,
                          const std::string& body, int64_t expected = kAnyVersion,
                          RequestId rid = {}, uint32_t partition = 1) {
    std::vector<BlockRef> refs;
    const size_t bs = store()->options().block_bytes;
    for (size_t at = 0; at < body.size(); at += bs) {
      ASSIGN_OR_RETURN(BlockRef r, store()->WriteBlock(Bytes(body.substr(at, bs))));
      refs.push_back(r);
    }
    Mutation m;
    m.partition = PartitionId(partition);
    m.lsn = Lsn(++lsn_[partition]);
    m.epoch = Epoch(3);
    m.request_id = rid;
    m.collection = collection;
    m.id = id;
    m.expected_version = expected;
    m.meta.size = body.size();
    m.meta.mtime_ns = 111;
    m.meta.ctime_ns = 222;
    m.meta.mode = 0600;
    m.meta.uid = 7;
    m.meta.gid = 8;
    m.meta.xattrs["user.k"] = "v";
    m.body_hash = Checksum64(body.data(), body.size());
    m.blocks = refs;
    auto r = store()->Apply(m);
    if (!r.ok() || r->deduplicated) --lsn_[partition];  // the LSN was not used
    return r;
  }

  Result<ApplyResult> Simple(MutationType type, const std::string& collection,
                             const std::string& id, const std::string& to = "",
                             int64_t expected = kAnyVersion, bool replace = false,
                             RequestId rid = {}, uint32_t partition = 1) {
    Mutation m;
    m.type = type;
    m.partition = PartitionId(partition);
    m.lsn = Lsn(++lsn_[partition]);
    m.epoch = Epoch(3);
    m.request_id = rid;
    m.collection = collection;
    m.id = id;
    m.to_id = to;
    m.expected_version = expected;
    m.replace = replace;
    auto r = store()->Apply(m);
    if (!r.ok() || r->deduplicated) --lsn_[partition];
    return r;
  }

  std::optional<DocEntry> Get(const std::string& collection, const std::string& id,
                              uint32_t partition = 1) {
    auto r = store()->Lookup(PartitionId(partition), collection, id);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::nullopt;
  }

  std::unique_ptr<StoreRig> rig_;
  std::map<uint32_t, uint64_t> lsn_;
};

TEST_F(DocStoreTest, PutGetRangeListDeleteRename) {
  const std::string body = "hello, world! " + std::string(300, 'x') + " the end";
  auto r = Put("notes", "a.txt", body);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->version, 1u);
  EXPECT_FALSE(r->deduplicated);

  auto e = Get("notes", "a.txt");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->meta.size, body.size());
  EXPECT_EQ(e->blocks.size(), (body.size() + 63) / 64);
  EXPECT_EQ(e->meta.mode, 0600u);
  EXPECT_EQ(e->meta.xattrs.at("user.k"), "v");
  EXPECT_EQ(ReadAll(store(), *e), body);

  // Ranged reads across block boundaries, and the edges.
  for (uint64_t off : {0ul, 1ul, 63ul, 64ul, 100ul, 250ul, body.size() - 1, body.size()}) {
    for (size_t len : {0ul, 1ul, 64ul, 129ul}) {
      if (off + len > body.size()) continue;
      std::string part(len, '\0');
      Status s = store()->ReadRange(*e, off, std::as_writable_bytes(std::span(part)));
      ASSERT_TRUE(s.ok()) << s.ToString();
      EXPECT_EQ(part, body.substr(off, len)) << off << "+" << len;
    }
  }
  std::string past(2, '\0');
  EXPECT_EQ(store()->ReadRange(*e, body.size() - 1, std::as_writable_bytes(std::span(past))).code(),
            StatusCode::kInvalidArgument);

  // An empty document has no blocks.
  ASSERT_TRUE(Put("notes", "empty", "").ok());
  auto empty = Get("notes", "empty");
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->meta.size, 0u);
  EXPECT_TRUE(empty->blocks.empty());

  for (int i = 0; i < 20; ++i) ASSERT_TRUE(Put("notes", "n" + std::to_string(100 + i), "x").ok());
  auto page = store()->List(PartitionId(1), "notes", "", 5);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 5u);
  EXPECT_TRUE(page->more);
  EXPECT_EQ(page->items[0].id, "a.txt");
  EXPECT_EQ(page->items[1].id, "empty");
  EXPECT_EQ(page->items[2].id, "n100");
  EXPECT_EQ(page->items[0].meta.size, body.size());
  page = store()->List(PartitionId(1), "notes", "n117", 5);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_FALSE(page->more);
  EXPECT_EQ(page->items[1].id, "n119");
  EXPECT_TRUE(store()->List(PartitionId(2), "notes", "", 5)->items.empty());
  EXPECT_EQ(store()->List(PartitionId(1), "notes", "", 0).status().code(),
            StatusCode::kInvalidArgument);

  // Rename keeps the body, gives a new version.
  auto rn = Simple(MutationType::kRename, "notes", "a.txt", "b.txt");
  ASSERT_TRUE(rn.ok()) << rn.status().ToString();
  EXPECT_FALSE(Get("notes", "a.txt").has_value());
  auto b = Get("notes", "b.txt");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->version, rn->version);
  EXPECT_EQ(ReadAll(store(), *b), body);
  // Onto an existing id: only with replace.
  EXPECT_EQ(Simple(MutationType::kRename, "notes", "b.txt", "empty").status().code(),
            StatusCode::kAlreadyExists);
  ASSERT_TRUE(Simple(MutationType::kRename, "notes", "b.txt", "empty", kAnyVersion, true).ok());
  auto replaced = Get("notes", "empty");
  ASSERT_TRUE(replaced.has_value());
  EXPECT_EQ(ReadAll(store(), *replaced), body);
  EXPECT_EQ(Simple(MutationType::kRename, "notes", "nope", "x").status().code(),
            StatusCode::kNotFound);

  ASSERT_TRUE(Simple(MutationType::kDelete, "notes", "empty").ok());
  EXPECT_FALSE(Get("notes", "empty").has_value());
  EXPECT_EQ(Simple(MutationType::kDelete, "notes", "empty").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store()->stats().documents, 20u);

  // All of it survives a restart (log replay), then a checkpoint + restart.
  for (int round = 0; round < 2; ++round) {
    if (round == 1) {
      ASSERT_TRUE(store()->Checkpoint().ok());
    }
    Reopen();
    EXPECT_EQ(store()->stats().documents, 20u);
    EXPECT_FALSE(Get("notes", "empty").has_value());
    auto n = Get("notes", "n105");
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(ReadAll(store(), *n), "x");
    EXPECT_EQ(store()->partition_state(PartitionId(1)).last_lsn.value(), lsn_[1]);
  }
}

// The batch read paths a query uses: LookupMany and ListEntries give what
// Lookup gives; a kNoFill read returns the same bytes and caches nothing.
TEST_F(DocStoreTest, BatchLookupsAndUncachedReads) {
  std::map<std::string, std::string> bodies;
  for (int i = 0; i < 30; ++i) {
    const std::string id = "d" + std::to_string(100 + i);
    bodies[id] = std::string(static_cast<size_t>(i * 7), static_cast<char>('a' + i % 26)) + id;
    ASSERT_TRUE(Put("c", id, bodies[id]).ok());
  }
  ASSERT_TRUE(Simple(MutationType::kDelete, "c", "d105").ok());
  bodies.erase("d105");

  const std::vector<std::string> ids = {"d110", "d105", "nope", "d100", "d129"};
  auto many = store()->LookupMany(PartitionId(1), "c", ids);
  ASSERT_TRUE(many.ok()) << many.status().ToString();
  ASSERT_EQ(many->size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ((*many)[i], Get("c", ids[i])) << ids[i];
  }
  EXPECT_FALSE((*many)[1].has_value());
  EXPECT_FALSE((*many)[2].has_value());
  std::vector<std::string> too_many(DocStore::kMaxLookupBatch + 1, "x");
  EXPECT_EQ(store()->LookupMany(PartitionId(1), "c", too_many).status().code(),
            StatusCode::kInvalidArgument);

  // Reopen: an empty cache, then read everything through pages of 7
  // without filling it.
  Reopen();
  std::vector<std::string> listed;
  std::string after;
  for (;;) {
    auto page = store()->ListEntries(PartitionId(1), "c", after, 7);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    for (const DocEntry& e : page->entries) {
      EXPECT_EQ(std::optional<DocEntry>(e), Get("c", e.id));
      std::string out(static_cast<size_t>(e.meta.size), '\0');
      Status s = store()->ReadRange(e, 0, std::as_writable_bytes(std::span(out)),
                                    DocStore::CacheUse::kNoFill);
      ASSERT_TRUE(s.ok()) << s.ToString();
      EXPECT_EQ(out, bodies[e.id]);
      listed.push_back(e.id);
    }
    if (!page->more) break;
    after = page->entries.back().id;
  }
  EXPECT_EQ(listed.size(), bodies.size());
  EXPECT_TRUE(std::is_sorted(listed.begin(), listed.end()));
  EXPECT_EQ(store()->stats().cache_bytes, 0u);
  // A normal read fills the cache; a kNoFill read of a cached document
  // neither needs nor changes it.
  auto e = Get("c", "d129");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(ReadAll(store(), *e), bodies["d129"]);
  const uint64_t cached = store()->stats().cache_bytes;
  EXPECT_GT(cached, 0u);
  for (const auto& [id, body] : bodies) {
    auto d = Get("c", id);
    ASSERT_TRUE(d.has_value());
    std::string out(static_cast<size_t>(d->meta.size), '\0');
    ASSERT_TRUE(
        store()
            ->ReadRange(*d, 0, std::as_writable_bytes(std::span(out)), DocStore::CacheUse::kNoFill)
            .ok());
    EXPECT_EQ(out, body);
    // A part of a block may come from the cache.
    if (out.size() > 3) {
      std::string part(out.size() - 3, '\0');
      ASSERT_TRUE(store()
                      ->ReadRange(*d, 1, std::as_writable_bytes(std::span(part)),
                                  DocStore::CacheUse::kNoFill)
                      .ok());
      EXPECT_EQ(part, body.substr(1, body.size() - 3));
    }
  }
  EXPECT_EQ(store()->stats().cache_bytes, cached);
}

TEST_F(DocStoreTest, VersionsAndExpectedVersionConflicts) {
  auto v1 = Put("c", "d", "one");
  ASSERT_TRUE(v1.ok());
  auto v2 = Put("c", "d", "two", static_cast<int64_t>(v1->version));
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  EXPECT_GT(v2->version, v1->version);

  const uint64_t end = rig_->volume()->end_offset();
  const Lsn last = store()->partition_state(PartitionId(1)).last_lsn;
  // Stale expected version, must-not-exist on an existing doc, exact version
  // on a missing doc: all FailedPrecondition, nothing written.
  auto stale = Put("c", "d", "three", static_cast<int64_t>(v1->version));
  EXPECT_EQ(stale.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(stale.status().message().find("version mismatch"), std::string::npos);
  EXPECT_EQ(Simple(MutationType::kDelete, "c", "d", "", static_cast<int64_t>(v1->version))
                .status()
                .code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(Simple(MutationType::kRename, "c", "d", "e", static_cast<int64_t>(v1->version))
                .status()
                .code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(store()->partition_state(PartitionId(1)).last_lsn, last);
  // The failed put wrote its block (WriteBlock is not undone) but no record.
  const uint64_t after_blocks = rig_->volume()->end_offset();
  EXPECT_EQ(Put("c", "d", "", kMustNotExist).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(Put("c", "new", "", 99).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(rig_->volume()->end_offset(), after_blocks);
  EXPECT_GE(after_blocks, end);
  auto cur = Get("c", "d");
  ASSERT_TRUE(cur.has_value());
  EXPECT_EQ(cur->version, v2->version);
  EXPECT_EQ(ReadAll(store(), *cur), "two");

  // Create-only succeeds when absent; the exact version succeeds.
  ASSERT_TRUE(Put("c", "new", "n", kMustNotExist).ok());
  ASSERT_TRUE(Simple(MutationType::kDelete, "c", "d", "", static_cast<int64_t>(v2->version)).ok());
  // Versions keep growing across delete and re-create.
  auto again = Put("c", "d", "back");
  ASSERT_TRUE(again.ok());
  EXPECT_GT(again->version, v2->version);
}

TEST_F(DocStoreTest, LsnAndEpochOrder) {
  ASSERT_TRUE(Put("c", "a", "x").ok());
  Mutation m = PutMutation(1, lsn_[1], "c", "b", {}, {});  // the same LSN again
  m.epoch = Epoch(3);
  EXPECT_EQ(store()->Apply(m).status().code(), StatusCode::kInvalidArgument);
  m.lsn = Lsn(lsn_[1] - 1);  // an older one
  EXPECT_EQ(store()->Apply(m).status().code(), StatusCode::kInvalidArgument);
  m.lsn = Lsn(lsn_[1] + 1);
  m.epoch = Epoch(2);  // older than the partition's
  EXPECT_EQ(store()->Apply(m).status().code(), StatusCode::kStaleEpoch);
  m.epoch = Epoch(4);
  ASSERT_TRUE(store()->Apply(m).ok());
  ++lsn_[1];
  EXPECT_EQ(store()->partition_state(PartitionId(1)).last_epoch, Epoch(4));
  // Partitions are independent.
  Mutation other = PutMutation(9, 1, "c", "a", {}, {});
  ASSERT_TRUE(store()->Apply(other).ok());
  EXPECT_EQ(store()->partitions().size(), 2u);
}

TEST_F(DocStoreTest, BadArguments) {
  EXPECT_EQ(Put(".hidden", "a", "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Put("sp ace", "a", "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Put("c", "a/b", "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Put("c", "..", "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Put("c", std::string(256, 'a'), "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Put(std::string(129, 'a'), "a", "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Put(std::string(128, 'a'), std::string(255, 'b'), "x").ok());
  EXPECT_EQ(store()->WriteBlock({}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store()->WriteBlock(std::vector<std::byte>(65)).status().code(),
            StatusCode::kInvalidArgument);

  // Size must match the blocks; block references must name block records.
  auto ref = store()->WriteBlock(Bytes("abc"));
  ASSERT_TRUE(ref.ok());
  Mutation m = PutMutation(1, 100, "c", "x", {}, {*ref});
  m.epoch = Epoch(3);
  m.meta.size = 4;
  EXPECT_EQ(store()->Apply(m).status().code(), StatusCode::kInvalidArgument);
  m.meta.size = 3;
  BlockRef forged = *ref;
  forged.offset += 1;
  m.blocks = {forged};
  EXPECT_EQ(store()->Apply(m).status().code(), StatusCode::kInvalidArgument);
  forged = *ref;
  forged.hash ^= 1;
  m.blocks = {forged};
  EXPECT_EQ(store()->Apply(m).status().code(), StatusCode::kInvalidArgument);
  forged = *ref;
  forged.offset = 1ull << 40;
  m.blocks = {forged};
  EXPECT_EQ(store()->Apply(m).status().code(), StatusCode::kInvalidArgument);
  m.blocks = {*ref};
  EXPECT_TRUE(store()->Apply(m).ok());
}

TEST_F(DocStoreTest, RequestIdDedupAcrossRestart) {
  const RequestId rid{1, 2, 3};
  auto first = Put("c", "d", "payload", kAnyVersion, rid);
  ASSERT_TRUE(first.ok());
  const uint64_t lsn_after = lsn_[1];
  // A retry (even with other content) returns the first answer; nothing runs.
  auto retry = Put("c", "d", "other payload", kAnyVersion, rid);
  ASSERT_TRUE(retry.ok());
  EXPECT_TRUE(retry->deduplicated);
  EXPECT_EQ(retry->version, first->version);
  EXPECT_EQ(ReadAll(store(), *Get("c", "d")), "payload");

  // Delete with a request id, then retry it after a restart: not NotFound.
  const RequestId del{1, 2, 4};
  auto d1 = Simple(MutationType::kDelete, "c", "d", "", kAnyVersion, false, del);
  ASSERT_TRUE(d1.ok());
  for (int round = 0; round < 3; ++round) {
    if (round == 1) {
      ASSERT_TRUE(store()->Checkpoint().ok());
    }
    if (round == 2) {
      rig_->Crash(dtest::CrashMode::kDropUnsynced, 1);  // acknowledged = synced
    }
    Reopen();
    auto again = Put("c", "d", "payload", kAnyVersion, rid);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_TRUE(again->deduplicated) << "round " << round;
    EXPECT_EQ(again->version, first->version);
    auto d2 = Simple(MutationType::kDelete, "c", "d", "", kAnyVersion, false, del);
    ASSERT_TRUE(d2.ok()) << d2.status().ToString();
    EXPECT_TRUE(d2->deduplicated);
    EXPECT_EQ(d2->lsn, d1->lsn);
    EXPECT_FALSE(Get("c", "d").has_value());
    EXPECT_EQ(lsn_[1], lsn_after + 1);
  }
}

TEST_F(DocStoreTest, DedupTableIsBounded) {
  RigOptions o;
  o.store.dedup_entries_per_partition = 4;
  Start(o);
  auto put = [&](uint64_t i) {
    auto r = Put("c", "d" + std::to_string(i), "x", kAnyVersion, RequestId{9, 9, i});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && r->deduplicated;
  };
  for (uint64_t i = 1; i <= 6; ++i) EXPECT_FALSE(put(i));
  // The table holds 3..6: those are answered, 2 runs again (and evicts 3).
  for (uint64_t i : {6u, 5u, 4u, 3u}) EXPECT_TRUE(put(i)) << i;
  EXPECT_FALSE(put(2));
  // The same table after a restart from the log, then from a checkpoint.
  for (int round = 0; round < 2; ++round) {
    if (round == 1) {
      ASSERT_TRUE(store()->Checkpoint().ok());
    }
    Reopen();
    for (uint64_t i : {2u, 4u, 5u, 6u}) EXPECT_TRUE(put(i)) << "round " << round << " id " << i;
  }
  EXPECT_FALSE(put(3));
}

TEST_F(DocStoreTest, CopyOnWriteStoresOneBlock) {
  RigOptions o;
  o.store.block_bytes = 4096;
  Start(o);
  std::vector<ModelBlock> blocks;
  for (uint64_t i = 0; i < 16; ++i) blocks.push_back({1000 + i, 4096, i % 2 == 0});
  auto refs = dtest::WriteBlocks(store(), blocks, {});
  ASSERT_TRUE(refs.ok());
  ASSERT_TRUE(store()->Apply(PutMutation(1, 1, "c", "big", blocks, *refs)).ok());
  const DocStoreStats before = store()->stats();
  const uint64_t end_before = rig_->volume()->end_offset();

  // Change block 5 only: one new block, fifteen references kept.
  auto e = Get("c", "big");
  ASSERT_TRUE(e.has_value());
  std::vector<std::optional<BlockRef>> kept(e->blocks.begin(), e->blocks.end());
  blocks[5] = {77, 4096, false};
  kept[5].reset();
  auto refs2 = dtest::WriteBlocks(store(), blocks, kept);
  ASSERT_TRUE(refs2.ok());
  ASSERT_TRUE(store()->Apply(PutMutation(1, 2, "c", "big", blocks, *refs2)).ok());
  const DocStoreStats after = store()->stats();
  EXPECT_EQ(after.blocks_written, before.blocks_written + 1);
  // One incompressible 4 KiB block plus a small record went into the log.
  EXPECT_LT(rig_->volume()->end_offset() - end_before, 4096u + 1024u);
  auto e2 = Get("c", "big");
  ASSERT_TRUE(e2.has_value());
  for (size_t i = 0; i < 16; ++i) {
    if (i == 5) {
      EXPECT_NE(e2->blocks[i].offset, e->blocks[i].offset);
    } else {
      EXPECT_EQ(e2->blocks[i], e->blocks[i]) << i;
    }
  }
  // Live bytes: the old block 5 is dead now, the new one live.
  EXPECT_EQ(after.live_bytes,
            before.live_bytes - e->blocks[5].record_len() + e2->blocks[5].record_len());
  dtest::ModelDoc want{e2->version, e2->meta, e2->body_hash, blocks};
  dtest::ExpectDocMatches(store(), {1, "c", "big"}, want, "after COW");
  Reopen();
  dtest::ExpectDocMatches(store(), {1, "c", "big"}, want, "after COW + reopen");

  // Compressible blocks are stored compressed, random ones raw.
  EXPECT_EQ(e2->blocks[0].codec, BlockCodec::kZstd);
  EXPECT_LT(e2->blocks[0].stored_len, 4096u / 4);
  EXPECT_EQ(e2->blocks[1].codec, BlockCodec::kRaw);
  EXPECT_EQ(e2->blocks[1].stored_len, 4096u);
}

TEST_F(DocStoreTest, LargeDocumentsStreamWithBoundedMemory) {
  RigOptions o;
  o.max_unit_bytes = 1 << 20;
  o.segment_bytes = 16 << 20;
  o.max_pending_bytes = 4 << 20;
  o.store.block_bytes = 1 << 20;
  o.store.cache_bytes = 3 << 20;  // three blocks
  Start(o);
  // 40 MiB, streamed one 1 MiB block at a time: the test never holds more
  // than one block, and neither does the store (its cache is capped).
  const uint32_t kBlocks = 40;
  std::vector<ModelBlock> blocks;
  std::vector<BlockRef> refs;
  for (uint32_t i = 0; i < kBlocks; ++i) {
    blocks.push_back({5000 + i, 1u << 20, i % 3 != 0});
    std::vector<std::byte> bytes = BlockBytes(blocks.back());
    auto r = store()->WriteBlock(bytes);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    refs.push_back(*r);
  }
  blocks.push_back({6000, 12345, false});  // a short last block
  refs.push_back(*store()->WriteBlock(BlockBytes(blocks.back())));
  ASSERT_TRUE(store()->Apply(PutMutation(1, 1, "big", "movie.bin", blocks, refs)).ok());
  dtest::ModelDoc want{1, PutMutation(1, 1, "big", "movie.bin", blocks, {}).meta,
                       dtest::ModelBodyHash(blocks), blocks};

  for (int round = 0; round < 2; ++round) {
    auto e = Get("big", "movie.bin");
    ASSERT_TRUE(e.has_value());
    ASSERT_EQ(e->meta.size, 40ull * (1 << 20) + 12345);
    // Sequential reads in 256 KiB pieces, each checked against the model.
    std::vector<std::byte> got(256 << 10);
    std::vector<std::byte> expect(got.size());
    for (uint64_t off = 0; off < e->meta.size; off += got.size()) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(got.size(), e->meta.size - off));
      ASSERT_TRUE(store()->ReadRange(*e, off, std::span(got).first(n)).ok());
      dtest::ModelRead(want, off, std::span(expect).first(n));
      ASSERT_TRUE(std::equal(got.begin(), got.begin() + static_cast<ptrdiff_t>(n), expect.begin()))
          << "at " << off;
      ASSERT_LE(store()->stats().cache_bytes, o.store.cache_bytes);
    }
    {
      const DocStoreStats s = store()->stats();
      EXPECT_GE(s.cache_hits, 3u * kBlocks);  // 256 KiB pieces of 1 MiB blocks
      EXPECT_GT(s.cache_hit_rate, 0.7);
      EXPECT_LE(s.cache_bytes, o.store.cache_bytes);
    }
    // Random small ranges, some spanning a block boundary.
    Random rng(42);
    for (int i = 0; i < 50; ++i) {
      const uint64_t off = rng.Uniform(e->meta.size - 5000);
      const size_t n = 1 + static_cast<size_t>(rng.Uniform(4999));
      ASSERT_TRUE(store()->ReadRange(*e, off, std::span(got).first(n)).ok());
      dtest::ModelRead(want, off, std::span(expect).first(n));
      ASSERT_TRUE(std::equal(got.begin(), got.begin() + static_cast<ptrdiff_t>(n), expect.begin()));
    }
    Reopen();
  }
}

// Small reads of raw (incompressible) blocks read only their slice from the
// volume: nothing enters the block cache, the bytes are right, and they stay
// right after a reopen; a large read of the same block still goes through
// the cache (and checks the whole-block hash). Compressed blocks always go
// through the cache.
TEST_F(DocStoreTest, SmallReadsOfRawBlocksReadOnlyTheirSlice) {
  RigOptions o;
  o.max_unit_bytes = 1 << 20;
  o.segment_bytes = 16 << 20;
  o.store.block_bytes = 256 << 10;
  o.store.cache_bytes = 4 << 20;
  Start(o);
  std::vector<ModelBlock> blocks;
  std::vector<BlockRef> refs;
  for (uint32_t i = 0; i < 8; ++i) {
    blocks.push_back({700 + i, 256u << 10, i == 7});  // the last one compresses
    auto r = store()->WriteBlock(BlockBytes(blocks.back()));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    refs.push_back(*r);
  }
  ASSERT_TRUE(store()->Apply(PutMutation(1, 1, "db", "pages", blocks, refs)).ok());
  dtest::ModelDoc want{1, PutMutation(1, 1, "db", "pages", blocks, {}).meta,
                       dtest::ModelBodyHash(blocks), blocks};
  for (int round = 0; round < 2; ++round) {
    auto e = Get("db", "pages");
    ASSERT_TRUE(e.has_value());
    ASSERT_EQ(e->blocks[0].codec, BlockCodec::kRaw);
    ASSERT_EQ(e->blocks[7].codec, BlockCodec::kZstd);
    Random rng(static_cast<uint64_t>(7 + round));
    std::vector<std::byte> got(64 << 10), expect(64 << 10);
    const uint64_t raw_end = 7ull * (256u << 10);
    for (int i = 0; i < 200; ++i) {
      const size_t n = i % 2 == 0 ? 4096 : 1 + static_cast<size_t>(rng.Uniform(16 << 10));
      const uint64_t off = rng.Uniform(raw_end - n);
      ASSERT_TRUE(store()->ReadRange(*e, off, std::span(got).first(n)).ok());
      dtest::ModelRead(want, off, std::span(expect).first(n));
      ASSERT_TRUE(std::equal(got.begin(), got.begin() + static_cast<ptrdiff_t>(n), expect.begin()))
          << "at " << off << "+" << n;
    }
    EXPECT_EQ(store()->stats().cache_bytes, 0u) << "small raw reads filled the cache";
    // A small read of the compressed block decompresses it into the cache.
    ASSERT_TRUE(store()->ReadRange(*e, raw_end + 10, std::span(got).first(4096)).ok());
    dtest::ModelRead(want, raw_end + 10, std::span(expect).first(4096));
    EXPECT_TRUE(std::equal(got.begin(), got.begin() + 4096, expect.begin()));
    EXPECT_EQ(store()->stats().cache_bytes, 256u << 10);
    // A large read of a raw block takes the whole-block path.
    std::vector<std::byte> big(128 << 10), big_expect(128 << 10);
    ASSERT_TRUE(store()->ReadRange(*e, 0, big).ok());
    dtest::ModelRead(want, 0, big_expect);
    EXPECT_TRUE(big == big_expect);
    EXPECT_EQ(store()->stats().cache_bytes, 512u << 10);
    Reopen();
  }
}

TEST_F(DocStoreTest, ConcurrentWritersAndReaders) {
  const int kThreads = 4;
  const int kPerThread = 40;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  // Each thread owns a partition (LSNs are per partition).
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 1; i <= kPerThread; ++i) {
        const std::string body = "t" + std::to_string(t) + "-" + std::to_string(i);
        auto ref = store()->WriteBlock(Bytes(body));
        if (!ref.ok()) {
          ++failures;
          continue;
        }
        Mutation m;
        m.partition = PartitionId(static_cast<uint32_t>(10 + t));
        m.lsn = Lsn(static_cast<uint64_t>(i));
        m.collection = "c";
        m.id = "d" + std::to_string(i % 7);
        m.meta.size = body.size();
        m.blocks = {*ref};
        if (!store()->Apply(m).ok()) ++failures;
        auto e = store()->Lookup(m.partition, "c", m.id);
        if (!e.ok() || !e->has_value() || ReadAll(store(), **e) != body) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store()->stats().mutations_applied, static_cast<uint64_t>(kThreads * kPerThread));
  Reopen();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(store()->partition_state(PartitionId(static_cast<uint32_t>(10 + t))).last_lsn.value(),
              static_cast<uint64_t>(kPerThread));
    EXPECT_EQ(store()->partition_state(PartitionId(static_cast<uint32_t>(10 + t))).documents, 7u);
  }
}

TEST_F(DocStoreTest, OpenRefusesAForeignRoot) {
  rig_->Close(false);
  {
    raidlib::VolumeOptions vo = rig_->VolumeOptionsFor(rig_->mem());
    auto v = raidlib::Volume::Open(vo);
    ASSERT_TRUE(v.ok());
    const std::vector<std::byte> junk(64, std::byte{0x5A});
    ASSERT_TRUE((*v)->SetAppRoot(junk).ok());
  }
  Status s = rig_->Open();
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.ToString();
}

}  // namespace
}  // namespace cairn::chunkserver
