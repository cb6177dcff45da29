// SecondaryIndex (chunkserver/secondary_index.h) against a brute-force scan:
// random puts, updates, deletes and renames (JSON of mixed types, missing
// fields, non-JSON and too-large bodies) with random lookups (points, ranges
// of every class); builds racing writes; and the rebuild after a crash.
#include "chunkserver/secondary_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/random.h"
#include "query/evaluator.h"
#include "query/index_key.h"
#include "query/parser.h"
#include "tests/chunkserver/doc_test_util.h"

namespace cairn::chunkserver {
namespace {

using dtest::RigOptions;
using dtest::StoreRig;

constexpr uint64_t kMaxBody = 300;  // bodies above this are never indexed
const char* const kCollection = "c";

const std::vector<std::string>& Pool() {
  static const std::vector<std::string> kPool = {"null",
                                                 "true",
                                                 "false",
                                                 "0",
                                                 "-0.0",
                                                 "1",
                                                 "1.0",
                                                 "-1",
                                                 "2.5",
                                                 "-3",
                                                 "1e300",
                                                 "-1e-300",
                                                 "18446744073709551615",
                                                 "-9223372036854775808",
                                                 "9007199254740993",
                                                 "\"\"",
                                                 "\"a\"",
                                                 "\"ab\"",
                                                 "\"b\"",
                                                 "\"a\\u0000b\"",
                                                 "[]",
                                                 "[1]",
                                                 "[1,2]",
                                                 "[\"a\"]",
                                                 "{}",
                                                 "{\"x\":1}",
                                                 "{\"x\":1,\"y\":2}",
                                                 "{\"y\":[null]}"};
  return kPool;
}

std::string RandomBody(Random* r, uint64_t n) {
  const auto& pool = Pool();
  auto val = [&] { return pool[r->Uniform(pool.size())]; };
  switch (r->Uniform(14)) {
    case 0:
      return "not json";
    case 1:
      return "[1,2]";
    case 2:
      return "";
    case 3:  // too large to index, though it has every field
      return "{\"a\":" + val() + ",\"pad\":\"" + std::string(kMaxBody, 'p') + "\"}";
    default:
      break;
  }
  std::string out = "{";
  auto add = [&](const std::string& k, const std::string& v) {
    if (out.size() > 1) out += ",";
    out += "\"" + k + "\":" + v;
  };
  if (!r->OneIn(4)) add("a", val());
  if (!r->OneIn(4)) add("b", r->OneIn(4) ? val() : "{\"c\":" + val() + "}");
  if (!r->OneIn(3)) add("t", r->OneIn(2) ? "[" + val() + "," + val() + "]" : val());
  if (r->OneIn(2)) add("x y", val());
  if (r->OneIn(8)) add("a", "\"dup\"");  // a duplicate key: the first counts
  add("n", std::to_string(n));
  return out + "}";
}

query::Value PoolValue(Random* r) {
  const auto& pool = Pool();
  Result<query::Value> v = query::ParseValue(pool[r->Uniform(pool.size())]);
  EXPECT_TRUE(v.ok());
  return *v;
}

query::IndexLookup RandomLookup(Random* r, const std::vector<query::Path>& paths) {
  query::IndexLookup l;
  l.path = paths[r->Uniform(paths.size())];
  if (r->OneIn(2)) {
    l.kind = query::IndexLookup::Kind::kPoints;
    const uint64_t n = 1 + r->Uniform(3);
    for (uint64_t i = 0; i < n; ++i) l.points.push_back(PoolValue(r));
    std::sort(l.points.begin(), l.points.end(),
              [](const query::Value& a, const query::Value& b) { return Compare(a, b) < 0; });
    l.points.erase(std::unique(l.points.begin(), l.points.end()), l.points.end());
    return l;
  }
  l.kind = query::IndexLookup::Kind::kRange;
  const query::Value pivot = PoolValue(r);
  l.range.type = pivot.type();
  auto same_class = [&]() -> std::optional<query::Value> {
    for (int i = 0; i < 50; ++i) {
      query::Value v = PoolValue(r);
      if (v.type() == pivot.type()) return v;
    }
    return pivot;
  };
  if (!r->OneIn(3)) l.range.lower = same_class();
  if (!r->OneIn(3)) l.range.upper = same_class();
  l.range.lower_inclusive = r->OneIn(2);
  l.range.upper_inclusive = r->OneIn(2);
  return l;
}

Status PutBody(DocStore* store, PartitionId p, uint64_t lsn, const std::string& id,
               const std::string& body) {
  Mutation m;
  m.type = MutationType::kPut;
  m.partition = p;
  m.lsn = Lsn(lsn);
  m.epoch = Epoch(1);
  m.collection = kCollection;
  m.id = id;
  m.meta.size = body.size();
  for (size_t at = 0; at < body.size(); at += 100) {
    const std::string piece = body.substr(at, 100);
    ASSIGN_OR_RETURN(BlockRef ref, store->WriteBlock(std::as_bytes(std::span(piece))));
    m.blocks.push_back(ref);
  }
  return store->Apply(m).status();
}

// What a brute-force scan of the store finds for `l` on partition `p`.
std::vector<std::string> Scan(DocStore* store, PartitionId p, const query::IndexLookup& l) {
  std::vector<std::string> out;
  query::Document doc;
  std::string after;
  for (;;) {
    Result<ListPage> page = store->List(p, kCollection, after, 100);
    EXPECT_TRUE(page.ok());
    if (!page.ok()) return out;
    for (const ListItem& it : page->items) {
      auto e = store->Lookup(p, kCollection, it.id);
      EXPECT_TRUE(e.ok() && e->has_value());
      const DocEntry& entry = **e;
      if (entry.meta.size > kMaxBody) continue;
      std::string body(entry.meta.size, '\0');
      EXPECT_TRUE(store->ReadRange(entry, 0, std::as_writable_bytes(std::span(body))).ok());
      if (!doc.Load(it.id, body)) continue;
      std::optional<query::Value> v = query::ValueAt(l.path, doc);
      if (v && l.Contains(*v)) out.push_back(it.id);
    }
    if (!page->more) break;
    after = page->items.back().id;
  }
  return out;
}

RigOptions Rig() {
  RigOptions o;
  o.store.block_bytes = 4096;
  o.store.index_max_document_bytes = kMaxBody;
  return o;
}

SecondaryIndexOptions IndexOptions(bool background) {
  SecondaryIndexOptions o;
  o.max_document_bytes = kMaxBody;
  o.background = background;
  o.build_docs_per_second = 0;
  return o;
}

// A random workload over two partitions of one collection.
class Writer {
 public:
  Writer(DocStore* store, uint64_t seed) : store_(store), rnd_(seed) {
    for (uint32_t p = 0; p < 2; ++p) {
      lsn_[p] = store->partition_state(PartitionId(p)).last_lsn.value();
    }
  }

  void Step() {
    const PartitionId p(static_cast<uint32_t>(rnd_.Uniform(2)));
    const std::string id = "d" + std::to_string(rnd_.Uniform(30));
    uint64_t& lsn = lsn_[p.value()];
    const uint64_t op = rnd_.Uniform(10);
    auto exists = [&](const std::string& x) {
      auto e = store_->Lookup(p, kCollection, x);
      return e.ok() && e->has_value();
    };
    if (op < 6 || !exists(id)) {
      ++lsn;
      ASSERT_TRUE(PutBody(store_, p, lsn, id, RandomBody(&rnd_, lsn)).ok());
    } else if (op < 8) {
      Mutation m;
      m.type = MutationType::kDelete;
      m.partition = p;
      m.lsn = Lsn(++lsn);
      m.epoch = Epoch(1);
      m.collection = kCollection;
      m.id = id;
      ASSERT_TRUE(store_->Apply(m).ok());
    } else {
      Mutation m;
      m.type = MutationType::kRename;
      m.partition = p;
      m.lsn = Lsn(++lsn);
      m.epoch = Epoch(1);
      m.collection = kCollection;
      m.id = id;
      m.to_id = "d" + std::to_string(rnd_.Uniform(30));
      if (m.to_id == id) m.to_id += "x";
      m.replace = true;
      ASSERT_TRUE(store_->Apply(m).ok());
    }
  }

 private:
  DocStore* store_;
  Random rnd_;
  uint64_t lsn_[2] = {0, 0};
};

// What a brute-force scan finds for an ordered walk of `path` on `p` within
// `bound` (nullopt: every document with the path): (key, id), sorted.
std::vector<std::pair<std::string, std::string>> ScanEntries(
    DocStore* store, PartitionId p, const query::Path& path,
    const std::optional<query::IndexLookup>& bound) {
  std::vector<std::pair<std::string, std::string>> out;
  query::Document doc;
  std::string after;
  for (;;) {
    Result<ListPage> page = store->List(p, kCollection, after, 100);
    EXPECT_TRUE(page.ok());
    if (!page.ok()) return out;
    for (const ListItem& it : page->items) {
      auto e = store->Lookup(p, kCollection, it.id);
      EXPECT_TRUE(e.ok() && e->has_value());
      const DocEntry& entry = **e;
      if (entry.meta.size > kMaxBody) continue;
      std::string body(entry.meta.size, '\0');
      EXPECT_TRUE(store->ReadRange(entry, 0, std::as_writable_bytes(std::span(body))).ok());
      if (!doc.Load(it.id, body)) continue;
      std::optional<query::Value> v = query::ValueAt(path, doc);
      if (v && (!bound || bound->Contains(*v))) out.emplace_back(query::EncodeIndexKey(*v), it.id);
    }
    if (!page->more) break;
    after = page->items.back().id;
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Walks the whole index in pages of `page` entries: keys in the walk's
// order, every entry once.
void ExpectWalkMatchesScan(SecondaryIndex* ix, DocStore* store, PartitionId p,
                           const query::Path& path, bool descending,
                           const std::optional<query::IndexLookup>& bound, size_t page) {
  IndexWalkRequest req;
  req.path = path;
  req.descending = descending;
  req.bound = bound;
  req.max_entries = page;
  std::vector<std::pair<std::string, std::string>> got;
  for (int pages = 0;; ++pages) {
    ASSERT_LT(pages, 10000);
    Result<IndexWalkPage> r = ix->Walk(p, kCollection, req);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_LE(r->entries.size(), page);
    for (const IndexWalkEntry& e : r->entries) got.emplace_back(e.key, e.id);
    if (!r->more) break;
    ASSERT_FALSE(r->entries.empty());
    req.after = std::make_pair(r->entries.back().key, r->entries.back().id);
  }
  const std::string ctx = path.ToString() + (descending ? " desc" : " asc") + " page " +
                          std::to_string(page) + (bound ? " within " + bound->ToString() : "");
  for (size_t i = 1; i < got.size(); ++i) {
    const int c = got[i - 1].first.compare(got[i].first);
    ASSERT_TRUE(descending ? c >= 0 : c <= 0) << ctx << " at " << i;
  }
  std::sort(got.begin(), got.end());
  ASSERT_EQ(got, ScanEntries(store, p, path, bound)) << ctx;
}

void ExpectIndexMatchesScan(SecondaryIndex* ix, DocStore* store, Random* r, int lookups) {
  for (int i = 0; i < lookups / 4; ++i) {
    const PartitionId p(static_cast<uint32_t>(r->Uniform(2)));
    const std::vector<query::Path> ready = ix->ReadyPaths(p, kCollection);
    ASSERT_FALSE(ready.empty());
    std::optional<query::IndexLookup> bound;
    if (!r->OneIn(3)) bound = RandomLookup(r, ready);
    const query::Path path = bound ? bound->path : ready[r->Uniform(ready.size())];
    ExpectWalkMatchesScan(ix, store, p, path, r->OneIn(2), bound, 1 + r->Uniform(5));
    if (::testing::Test::HasFatalFailure()) return;
  }
  for (int i = 0; i < lookups; ++i) {
    const PartitionId p(static_cast<uint32_t>(r->Uniform(2)));
    const std::vector<query::Path> ready = ix->ReadyPaths(p, kCollection);
    ASSERT_FALSE(ready.empty());
    const query::IndexLookup l = RandomLookup(r, ready);
    Result<std::vector<std::string>> got = ix->Lookup(p, kCollection, l);
    ASSERT_TRUE(got.ok()) << l.ToString() << ": " << got.status().ToString();
    // Exact here (a superset would be allowed, but this index is exact).
    ASSERT_EQ(*got, Scan(store, p, l)) << "partition " << p.value() << ": " << l.ToString();
  }
}

std::map<std::string, std::vector<std::string>> Defs(const std::vector<std::string>& paths) {
  return {{kCollection, paths}};
}

TEST(SecondaryIndexTest, MatchesBruteForceScan) {
  test::QuietLogs quiet;
  for (uint64_t seed : test::Seeds(6, 61)) {
    SCOPED_TRACE(test::SeedTrace(seed));
    StoreRig rig(Rig());
    ASSERT_TRUE(rig.Create().ok());
    ASSERT_TRUE(rig.Open().ok());
    Random r(seed);
    Writer w(rig.store(), seed * 7 + 1);
    SecondaryIndex ix(rig.store(), IndexOptions(false));
    ix.SetDefinitions(Defs({"a", "b.c"}));
    EXPECT_TRUE(ix.ReadyPaths(PartitionId(0), kCollection).empty());
    ix.BuildPending();  // an empty collection
    EXPECT_EQ(ix.ReadyPaths(PartitionId(0), kCollection).size(), 2u);
    for (int round = 0; round < 8; ++round) {
      for (int i = 0; i < 40; ++i) {
        w.Step();
        if (HasFatalFailure()) return;
      }
      if (round == 3) {
        // A new index over loaded data: not ready until built.
        ix.SetDefinitions(Defs({"a", "b.c", "t", "`x y`"}));
        EXPECT_EQ(ix.ReadyPaths(PartitionId(1), kCollection).size(), 2u);
        query::IndexLookup l = RandomLookup(&r, {*query::ParseIndexPath("t")});
        EXPECT_EQ(ix.Lookup(PartitionId(0), kCollection, l).status().code(),
                  StatusCode::kFailedPrecondition);
        w.Step();  // a change while not built
        ix.BuildPending();
        EXPECT_EQ(ix.ReadyPaths(PartitionId(1), kCollection).size(), 4u);
      }
      ExpectIndexMatchesScan(&ix, rig.store(), &r, 60);
      if (HasFatalFailure()) return;
    }
    // Dropping one leaves the others.
    ix.SetDefinitions(Defs({"t", "`x y`", "a"}));
    EXPECT_EQ(ix.ReadyPaths(PartitionId(0), kCollection).size(), 3u);
    auto progress = ix.Progress();
    ASSERT_EQ(progress.size(), 3u);
    for (const IndexProgress& p : progress) {
      EXPECT_TRUE(p.ready) << p.path;
      EXPECT_EQ(p.docs_indexed, p.docs_total) << p.path;
    }
  }
}

TEST(SecondaryIndexTest, BuildRacesWrites) {
  test::QuietLogs quiet;
  for (uint64_t seed : test::Seeds(4, 62)) {
    SCOPED_TRACE(test::SeedTrace(seed));
    StoreRig rig(Rig());
    ASSERT_TRUE(rig.Create().ok());
    ASSERT_TRUE(rig.Open().ok());
    Writer w(rig.store(), seed);
    for (int i = 0; i < 200; ++i) w.Step();
    SecondaryIndexOptions o = IndexOptions(true);
    o.build_docs_per_second = 2000;  // slow enough for writes to land mid-build
    SecondaryIndex ix(rig.store(), o);
    std::atomic<bool> stop{false};
    std::thread writer([&] {
      while (!stop.load()) w.Step();
    });
    ix.SetDefinitions(Defs({"a", "b.c", "t"}));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (ix.ReadyPaths(PartitionId(0), kCollection).size() < 3 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    // Keep writing a little after ready, then compare.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    stop = true;
    writer.join();
    ASSERT_EQ(ix.ReadyPaths(PartitionId(0), kCollection).size(), 3u);
    Random r(seed);
    ExpectIndexMatchesScan(&ix, rig.store(), &r, 300);
  }
}

TEST(SecondaryIndexTest, RebuiltAfterCrash) {
  test::QuietLogs quiet;
  for (uint64_t seed : test::Seeds(4, 63)) {
    SCOPED_TRACE(test::SeedTrace(seed));
    StoreRig rig(Rig());
    ASSERT_TRUE(rig.Create().ok());
    ASSERT_TRUE(rig.Open().ok());
    {
      SecondaryIndex ix(rig.store(), IndexOptions(false));
      ix.SetDefinitions(Defs({"a", "t"}));
      ix.BuildPending();
      Writer w(rig.store(), seed);
      for (int i = 0; i < 150; ++i) w.Step();
      if (seed % 2 == 0) {
        ASSERT_TRUE(rig.store()->Checkpoint().ok());
      }
      ASSERT_EQ(ix.ReadyPaths(PartitionId(0), kCollection).size(), 2u);
    }
    rig.Crash(dtest::CrashMode::kDropUnsynced, seed);
    ASSERT_TRUE(rig.Open().ok());
    SecondaryIndex ix(rig.store(), IndexOptions(false));
    ix.SetDefinitions(Defs({"a", "t"}));
    // In memory only: nothing is ready until the rebuild has scanned it all.
    EXPECT_TRUE(ix.ReadyPaths(PartitionId(0), kCollection).empty());
    query::IndexLookup l;
    l.path = *query::ParseIndexPath("a");
    l.points = {query::Value::Int(1)};
    EXPECT_EQ(ix.Lookup(PartitionId(0), kCollection, l).status().code(),
              StatusCode::kFailedPrecondition);
    for (const IndexProgress& p : ix.Progress()) EXPECT_FALSE(p.ready);
    ix.BuildPending();
    EXPECT_EQ(ix.ReadyPaths(PartitionId(0), kCollection).size(), 2u);
    Random r(seed);
    ExpectIndexMatchesScan(&ix, rig.store(), &r, 200);
    // And maintained from there.
    Writer w(rig.store(), seed + 99);
    for (int i = 0; i < 10; ++i) w.Step();
  }
}

TEST(SecondaryIndexTest, EqualityAndRangeBasics) {
  StoreRig rig(Rig());
  ASSERT_TRUE(rig.Create().ok());
  ASSERT_TRUE(rig.Open().ok());
  SecondaryIndex ix(rig.store(), IndexOptions(false));
  ix.SetDefinitions(Defs({"a"}));
  ix.BuildPending();
  const PartitionId p(0);
  ASSERT_TRUE(PutBody(rig.store(), p, 1, "x", R"({"a":1})").ok());
  ASSERT_TRUE(PutBody(rig.store(), p, 2, "y", R"({"a":1.0})").ok());
  ASSERT_TRUE(PutBody(rig.store(), p, 3, "z", R"({"a":-5})").ok());
  ASSERT_TRUE(PutBody(rig.store(), p, 4, "s", R"({"a":"1"})").ok());
  ASSERT_TRUE(PutBody(rig.store(), p, 5, "n", R"({"b":1})").ok());
  query::IndexLookup eq;
  eq.path = *query::ParseIndexPath("a");
  eq.points = {query::Value::Int(1)};
  EXPECT_EQ(*ix.Lookup(p, kCollection, eq), (std::vector<std::string>{"x", "y"}));
  query::IndexLookup range;
  range.path = eq.path;
  range.kind = query::IndexLookup::Kind::kRange;
  range.range.type = query::TypeClass::kNumber;
  range.range.upper = query::Value::Int(1);
  range.range.upper_inclusive = false;
  EXPECT_EQ(*ix.Lookup(p, kCollection, range), (std::vector<std::string>{"z"}));
  range.range.upper.reset();
  EXPECT_EQ(*ix.Lookup(p, kCollection, range), (std::vector<std::string>{"x", "y", "z"}));
  // An update moves the entry; an update to a non-JSON body removes it.
  ASSERT_TRUE(PutBody(rig.store(), p, 6, "x", R"({"a":7})").ok());
  ASSERT_TRUE(PutBody(rig.store(), p, 7, "y", "nope").ok());
  EXPECT_EQ(*ix.Lookup(p, kCollection, eq), std::vector<std::string>{});
  auto progress = ix.Progress();
  ASSERT_EQ(progress.size(), 1u);
  EXPECT_EQ(progress[0].entries, 3u);  // x, z, s
}

}  // namespace
}  // namespace cairn::chunkserver
