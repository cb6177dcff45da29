// QueryExecutor over a MemDisk-backed DocStore: random documents (nested,
// mixed types, missing fields, some not JSON, some over the body limit) and
// random queries (tests/query/generators.h); per partition the executor's
// rows, merged as libcairn merges them, must equal the brute-force oracle
// over every live document, with and without a (superset-returning, now and
// then failing) fake IndexSource, and with the real SecondaryIndex (whose
// ordered walk drives sorted queries with a limit). Plus the time and
// result-size limits, and the ordered walk's edge cases.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "chunkserver/doc_service.h"
#include "chunkserver/partition.h"
#include "chunkserver/query_executor.h"
#include "chunkserver/secondary_index.h"
#include "common/checksum.h"
#include "common/clock.h"
#include "common/partitioning.h"
#include "query/evaluator.h"
#include "query/parser.h"
#include "query/topk.h"
#include "tests/chunkserver/doc_test_util.h"
#include "tests/query/generators.h"
#include "tests/query/oracle.h"

namespace cairn::chunkserver {
namespace {

constexpr uint32_t kBlock = 4096;
constexpr uint32_t kParts = 8;
constexpr char kColl[] = "c";

PartitionId P(const std::string& id) { return PartitionOf(kColl, id, kParts); }

ClusterView MapOwnedBy(uint32_t owner) {
  ClusterView v;
  v.version = 1;
  v.partition_count = kParts;
  v.nodes.push_back({NodeId(1), "a", "127.0.0.1", 7001});
  for (uint32_t i = 0; i < kParts; ++i)
    v.partitions.push_back({Epoch(1), {NodeId(owner)}, {NodeId(owner)}});
  v.collections = {kColl};
  return v;
}

// One chunk server's store and document path, without the network.
class Node {
 public:
  Node() : rig_(RigOpts()), logic_(Limits(), 42) {
    EXPECT_TRUE(rig_.Create().ok());
    EXPECT_TRUE(rig_.Open().ok());
    logic_.SetSelf(NodeId(1));
    EXPECT_TRUE(logic_.UpdateMap(MapOwnedBy(1)));
    service_ = std::make_unique<DocService>(rig_.store(), &logic_, &clock_);
  }
  static dtest::RigOptions RigOpts() {
    dtest::RigOptions o;
    o.store.block_bytes = kBlock;
    o.segment_bytes = 4 << 20;
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
  void Put(const std::string& id, const std::string& body) {
    PutInput in;
    in.partition = P(id);
    in.epoch = Epoch(1);
    in.collection = kColl;
    in.id = id;
    in.size = body.size();
    in.body_hash = Checksum64(body.data(), body.size());
    in.body = body;
    Result<DocEntry> r = service_->Put(in);
    ASSERT_TRUE(r.ok()) << id << ": " << r.status().ToString();
  }
  void Delete(const std::string& id) {
    ASSERT_TRUE(service_->Delete({P(id), Epoch(1), {}, kColl, id, kAnyVersion}).ok());
  }
  DocStore* store() { return rig_.store(); }

 private:
  test::QuietLogs quiet_;
  dtest::StoreRig rig_;
  ManualClock clock_;
  PartitionLogic logic_;
  std::unique_ptr<DocService> service_;
};

// What a secondary index would answer, computed from the documents: every
// document whose whole value at the path the lookup contains, plus noise
// (ids that do not match, deleted and never-written ids): a superset, as
// the contract allows. Fails now and then (the executor must then scan).
class FakeIndex : public IndexSource {
 public:
  FakeIndex(const std::map<std::string, std::string>* live, std::vector<query::Path> ready,
            uint64_t seed)
      : live_(live), ready_(std::move(ready)), rnd_(seed) {}

  std::vector<query::Path> ReadyPaths(PartitionId, std::string_view) const override {
    return ready_;
  }
  Result<std::vector<std::string>> Lookup(PartitionId p, std::string_view collection,
                                          const query::IndexLookup& lookup) const override {
    EXPECT_EQ(collection, kColl);
    ++lookups_;
    if (rnd_.OneIn(10)) return Status::FailedPrecondition("index rebuilding");
    std::set<std::string> ids;
    query::Document doc;
    for (const auto& [id, body] : *live_) {
      if (P(id) != p) continue;
      if (rnd_.OneIn(7)) ids.insert(id);  // noise: not a real hit
      if (!doc.Load(id, body)) continue;
      std::optional<query::Value> v = query::ValueAt(lookup.path, doc);
      if (v && lookup.Contains(*v)) ids.insert(id);
    }
    ids.insert("ghost-" + std::to_string(rnd_.Uniform(5)));
    return std::vector<std::string>(ids.begin(), ids.end());
  }
  int lookups() const { return lookups_; }

 private:
  const std::map<std::string, std::string>* live_;
  std::vector<query::Path> ready_;
  mutable Random rnd_;
  mutable int lookups_ = 0;
};

// The whole query over every partition, merged as libcairn does.
Result<std::vector<query::Row>> RunAll(const QueryExecutor& ex, const query::Query& q,
                                       const QueryLimits& limits, QueryStats* total) {
  std::vector<std::vector<query::Row>> runs;
  for (uint32_t p = 0; p < kParts; ++p) {
    ASSIGN_OR_RETURN(QueryOutput out, ex.Run(PartitionId(p), kColl, q, limits));
    for (query::Row& r : out.rows) {
      ASSIGN_OR_RETURN(r.keys, query::DecodeSortKeys(query::EncodeSortKeys(r.keys)));
    }
    total->docs_scanned += out.stats.docs_scanned;
    total->docs_skipped_large += out.stats.docs_skipped_large;
    total->docs_matched += out.stats.docs_matched;
    if (!out.stats.index_used.empty()) total->index_used = out.stats.index_used;
    runs.push_back(std::move(out.rows));
  }
  return query::MergeSorted(std::move(runs), query::RowOrder(q.sort), q.limit);
}

// The same over every partition at once with RunMerged (as a node runs the
// parts of one QueryPartitions call), or part by part when it declines.
Result<std::vector<query::Row>> RunAllMerged(const QueryExecutor& ex, const query::Query& q,
                                             const QueryLimits& limits, QueryStats* total) {
  std::vector<PartitionId> ps;
  for (uint32_t p = 0; p < kParts; ++p) ps.push_back(PartitionId(p));
  ASSIGN_OR_RETURN(std::optional<std::vector<QueryOutput>> outs,
                   ex.RunMerged(ps, kColl, q, limits));
  if (!outs) return RunAll(ex, q, limits, total);
  std::vector<std::vector<query::Row>> runs;
  for (QueryOutput& out : *outs) {
    for (query::Row& r : out.rows) {
      ASSIGN_OR_RETURN(r.keys, query::DecodeSortKeys(query::EncodeSortKeys(r.keys)));
    }
    total->docs_scanned += out.stats.docs_scanned;
    total->docs_skipped_large += out.stats.docs_skipped_large;
    total->docs_matched += out.stats.docs_matched;
    total->index_used = out.stats.index_used;
    runs.push_back(std::move(out.rows));
  }
  return query::MergeSorted(std::move(runs), query::RowOrder(q.sort), q.limit);
}

TEST(QueryExecutor, EqualsBruteForceWithAndWithoutIndex) {
  int queries = 0, nonempty = 0, indexed = 0, skipped_large = 0, walked = 0, merged_walks = 0;
  for (const uint64_t seed : test::Seeds(6, 601)) {
    query::testgen::Gen g(seed);
    Node node;
    std::map<std::string, std::string> live;
    const int n = 100 + static_cast<int>(g.U(200));
    for (int i = 0; i < n; ++i) {
      const std::string id = "id-" + std::to_string(i);
      live[id] = g.DocText(i);
      node.Put(id, live[id]);
      if (HasFatalFailure()) return;
    }
    // Some deletions and overwrites: only current versions may count.
    for (int i = 0; i < n / 10; ++i) {
      const std::string id = "id-" + std::to_string(g.U(static_cast<uint64_t>(n)));
      if (g.OneIn(2) && live.count(id)) {
        node.Delete(id);
        live.erase(id);
      } else {
        live[id] = g.DocText(i);
        node.Put(id, live[id]);
      }
      if (HasFatalFailure()) return;
    }
    QueryLimits limits;
    if (g.OneIn(2)) limits.max_body_bytes = 60 + g.U(100);  // some bodies skipped
    std::vector<query::oracle::Doc> odocs;
    uint64_t small = 0;
    for (const auto& [id, body] : live) {
      if (body.size() > limits.max_body_bytes) continue;
      ++small;
      odocs.push_back(query::oracle::MakeDoc(id, body));
    }
    std::vector<query::Path> ready;
    for (int i = 0; i < 6; ++i) {
      ready.push_back(query::Parse(g.PathText() + " exists")->filter.path);
    }
    FakeIndex index(&live, ready, seed);
    SecondaryIndexOptions sio;
    sio.background = false;
    sio.max_document_bytes = limits.max_body_bytes;  // as a chunk server configures it
    SecondaryIndex real(node.store(), sio);
    std::vector<std::string> texts;
    for (const query::Path& path : ready) texts.push_back(path.ToString());
    real.SetDefinitions({{kColl, texts}});
    real.BuildPending();
    const QueryExecutor scan(node.store(), nullptr, &RealClock());
    const QueryExecutor with_index(node.store(), &index, &RealClock());
    const QueryExecutor with_real(node.store(), &real, &RealClock());

    bool merged_next = false;
    for (int k = 0; k < 40; ++k) {
      const std::string text = g.QueryText();
      Result<query::Query> q = query::Parse(text);
      ASSERT_TRUE(q.ok()) << text;
      const std::vector<query::oracle::Result> want = query::oracle::Run(*q, odocs);
      ++queries;
      nonempty += want.empty() ? 0 : 1;
      // The real index twice: partition by partition, and merged.
      for (const QueryExecutor* ex : {&scan, &with_index, &with_real, &with_real}) {
        QueryStats st;
        const bool merged = ex == &with_real && merged_next;
        if (ex == &with_real) merged_next = !merged_next;
        Result<std::vector<query::Row>> got =
            merged ? RunAllMerged(*ex, *q, limits, &st) : RunAll(*ex, *q, limits, &st);
        const std::string ctx = test::SeedTrace(seed) + " query: " + text +
                                (ex == &scan ? " (scan)" : " (index: " + st.index_used + ")") +
                                (ex == &with_real ? " (real index)" : "") +
                                (merged ? " (merged)" : "");
        if (st.index_used.find("merged") != std::string::npos) ++merged_walks;
        ASSERT_TRUE(got.ok()) << ctx << ": " << got.status().ToString();
        ASSERT_EQ(got->size(), want.size()) << ctx;
        for (size_t i = 0; i < want.size(); ++i) {
          ASSERT_EQ((*got)[i].id, want[i].id) << ctx << " row " << i;
          EXPECT_EQ(query::oracle::Json::parse((*got)[i].json, nullptr, false), want[i].row)
              << ctx << " row " << i << ": " << (*got)[i].json;
        }
        if (ex == &scan) {
          // A full scan reads every live document under the body limit
          // (unless it stopped early: a limit in _id order).
          const bool id_order =
              q->limit &&
              (q->sort.empty() || (q->sort[0].path.ToString() == "_id" && !q->sort[0].descending));
          if (!id_order) {
            EXPECT_EQ(st.docs_scanned, small) << ctx;
            EXPECT_EQ(st.docs_skipped_large, live.size() - small) << ctx;
          } else {
            EXPECT_LE(st.docs_scanned, small) << ctx;
          }
          EXPECT_TRUE(st.index_used.empty()) << ctx;
          skipped_large += st.docs_skipped_large > 0 ? 1 : 0;
        } else {
          EXPECT_LE(st.docs_scanned, small) << ctx;
          indexed += st.index_used.empty() ? 0 : 1;
          if (st.index_used.starts_with("ordered walk")) ++walked;
        }
      }
    }
  }
  // The cases must be interesting, not all empty or all scans.
  EXPECT_GT(nonempty, queries / 4) << nonempty << " of " << queries;
  EXPECT_GT(indexed, queries / 20) << indexed << " of " << queries;
  EXPECT_GT(skipped_large, 0);
  EXPECT_GT(walked, 0);
  EXPECT_GT(merged_walks, 0);
}

// The ordered walk against the oracle: a field `v` of every type class with
// many ties, missing in some documents, a second sort key `w`, limits below
// and above the number of matches, ascending and descending, filters that
// do and do not bound or require `v`; between rounds, updates, deletions and
// new documents reach the index through the store's observer.
TEST(QueryExecutor, OrderedWalkEqualsOracle) {
  Node node;
  SecondaryIndexOptions sio;
  sio.background = false;
  SecondaryIndex index(node.store(), sio);
  index.SetDefinitions({{kColl, {"v", "w"}}});
  Random rnd(test::Seeds(1, 77)[0]);
  static const char* kValues[] = {"null",  "true", "false", "0",  "1",        "1.0",
                                  "2",     "2.5",  "-3",    "7",  "\"a\"",    "\"ab\"",
                                  "\"b\"", "[1]",  "[1,2]", "{}", "{\"x\":1}"};
  auto body = [&](int i) -> std::string {
    if (rnd.OneIn(25)) return "not json";
    std::string out = "{\"i\":" + std::to_string(i);
    if (!rnd.OneIn(6)) out += ",\"v\":" + std::string(kValues[rnd.Uniform(std::size(kValues))]);
    if (!rnd.OneIn(4)) out += ",\"w\":" + std::to_string(rnd.Uniform(3));
    return out + "}";
  };
  std::map<std::string, std::string> live;
  auto put = [&](const std::string& id) {
    live[id] = body(static_cast<int>(live.size()));
    node.Put(id, live[id]);
  };
  for (int i = 0; i < 150; ++i) put("d" + std::to_string(1000 + i));
  ASSERT_FALSE(HasFatalFailure());
  index.BuildPending();
  const QueryExecutor scan(node.store(), nullptr, &RealClock());
  const QueryExecutor walk(node.store(), &index, &RealClock());

  const std::vector<std::string> filters = {"",
                                            "v exists",
                                            "v >= 1",
                                            "v > 0 && v < 7",
                                            "v >= \"a\"",
                                            "v in [1, 2, \"b\", null]",
                                            "v ^= \"a\"",
                                            "w == 1",
                                            "v >= 1 || w == 2",
                                            "!(v == 1)",
                                            "v == 2 && w <= 1"};
  const std::vector<std::string> sorts = {"v", "-v", "v,w", "-v,w", "-v,-w", "v,-_id"};
  int walked = 0, cases = 0, merged_walks = 0;
  uint64_t merged_scanned = 0, alone_scanned = 0;
  for (int round = 0; round < 4; ++round) {
    for (const std::string& f : filters) {
      for (const std::string& sort : sorts) {
        for (const int limit : {1, 3, 8, 40, 500}) {
          const std::string text = f + "?sort=" + sort + "&limit=" + std::to_string(limit);
          Result<query::Query> q = query::Parse(text);
          ASSERT_TRUE(q.ok()) << text << ": " << q.status().ToString();
          std::vector<query::oracle::Doc> odocs;
          for (const auto& [id, b] : live) odocs.push_back(query::oracle::MakeDoc(id, b));
          const std::vector<query::oracle::Result> want = query::oracle::Run(*q, odocs);
          uint64_t walk_scanned = 0;
          for (const QueryExecutor* ex : {&scan, &walk, &walk}) {
            QueryStats st;
            const bool merged = ex == &walk && walk_scanned > 0;
            Result<std::vector<query::Row>> got = merged ? RunAllMerged(*ex, *q, QueryLimits(), &st)
                                                         : RunAll(*ex, *q, QueryLimits(), &st);
            if (merged) {
              if (st.index_used.find("merged") != std::string::npos) {
                ++merged_walks;
                if (limit <= 8) {
                  merged_scanned += st.docs_scanned;
                  alone_scanned += walk_scanned;
                }
              }
            } else if (ex == &walk && st.index_used.starts_with("ordered walk")) {
              walk_scanned = st.docs_scanned;
            }
            const std::string ctx = "round " + std::to_string(round) + " query: " + text + " (" +
                                    (st.index_used.empty() ? "scan" : st.index_used) + ")";
            ASSERT_TRUE(got.ok()) << ctx << ": " << got.status().ToString();
            ASSERT_EQ(got->size(), want.size()) << ctx;
            for (size_t i = 0; i < want.size(); ++i) {
              ASSERT_EQ((*got)[i].id, want[i].id) << ctx << " row " << i;
              EXPECT_EQ(query::oracle::Json::parse((*got)[i].json, nullptr, false), want[i].row)
                  << ctx << " row " << i;
            }
            if (ex == &walk && !merged && st.index_used.starts_with("ordered walk")) {
              ++walked;
              // A small limit reads far fewer documents than the collection.
              if (limit == 1 && f.empty() && sort[0] == '-') {
                EXPECT_LT(st.docs_scanned, live.size() / 2) << ctx;
              }
            }
          }
          ++cases;
        }
      }
    }
    // Changes between rounds: updates (re-filed under new keys), deletions,
    // new documents.
    for (int k = 0; k < 40; ++k) {
      auto it = live.begin();
      std::advance(it, static_cast<long>(rnd.Uniform(live.size())));
      const std::string id = it->first;
      if (rnd.OneIn(3)) {
        node.Delete(id);
        live.erase(id);
      } else {
        put(rnd.OneIn(2) ? id : "d" + std::to_string(2000 + round * 100 + k));
      }
      ASSERT_FALSE(HasFatalFailure());
    }
  }
  // Most of the cases can walk: all descending ones, ascending ones whose
  // filter needs v.
  EXPECT_GT(walked, cases / 3) << walked << " of " << cases;
  // Every query a partition walks alone, the partitions walk merged too
  // (limit 500 above the matches included: the walks run out as one), and
  // with a small limit they read far fewer documents together: about
  // `limit` in all (plus ties and rejects), not `limit` per partition.
  EXPECT_EQ(merged_walks, walked);
  EXPECT_LT(merged_scanned * 2, alone_scanned) << merged_scanned << " vs " << alone_scanned;
}

// Partitions of more than one scan page (QueryExecutor::kScanPage): every
// document is read once, with and without a limit.
TEST(QueryExecutor, ScanCrossesPages) {
  Node node;
  constexpr int kDocs = 9000;  // over kScanPage per partition on average
  for (int i = 0; i < kDocs; ++i) {
    node.Put("p" + std::to_string(100000 + i), "{\"n\":" + std::to_string(i) + "}");
    ASSERT_FALSE(HasFatalFailure());
  }
  const QueryExecutor ex(node.store(), nullptr, &RealClock());
  Result<query::Query> q = query::Parse("n >= 0 ?fields=_id");
  ASSERT_TRUE(q.ok());
  QueryStats st;
  Result<std::vector<query::Row>> r = RunAll(ex, *q, QueryLimits(), &st);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), static_cast<size_t>(kDocs));
  EXPECT_EQ(st.docs_scanned, static_cast<uint64_t>(kDocs));
  for (int i = 0; i < kDocs; ++i)
    ASSERT_EQ((*r)[static_cast<size_t>(i)].id, "p" + std::to_string(100000 + i));
  // In id order with a limit: stops early, same first rows.
  q = query::Parse("n >= 0 ?limit=5&fields=_id");
  ASSERT_TRUE(q.ok());
  QueryStats limited;
  r = RunAll(ex, *q, QueryLimits(), &limited);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 5u);
  EXPECT_EQ((*r)[4].id, "p100004");
  EXPECT_LE(limited.docs_scanned, 5u * kParts);
}

// A clock that moves 10 ms every time it is read.
class TickingClock : public Clock {
 public:
  Nanos Now() override { return now_ += std::chrono::milliseconds(10); }
  int64_t WallNanos() override { return now_.count(); }
  void SleepFor(Nanos d) override { now_ += d; }

 private:
  Nanos now_{0};
};

TEST(QueryExecutor, TimeAndResultLimits) {
  Node node;
  for (int i = 0; i < 200; ++i) {
    node.Put("d" + std::to_string(i),
             R"({"n":)" + std::to_string(i) + R"(,"pad":")" + std::string(100, 'x') + "\"}");
  }
  TickingClock clock;
  const QueryExecutor ex(node.store(), nullptr, &clock);
  Result<query::Query> all = query::Parse("n >= 0");
  ASSERT_TRUE(all.ok());

  QueryLimits limits;
  limits.time_limit = std::chrono::milliseconds(15);
  QueryStats st;
  Result<std::vector<query::Row>> r = RunAll(ex, *all, limits, &st);
  ASSERT_EQ(r.status().code(), StatusCode::kLimitExceeded) << r.status().ToString();
  EXPECT_NE(r.status().message().find("time limit of 15 ms"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("query_time_limit_ms"), std::string::npos);

  limits = QueryLimits();
  limits.max_result_bytes = 1000;
  r = RunAll(ex, *all, limits, &st);
  ASSERT_EQ(r.status().code(), StatusCode::kLimitExceeded) << r.status().ToString();
  EXPECT_NE(r.status().message().find("result-size limit of 1000 bytes"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("query_max_result_bytes"), std::string::npos);

  // A limit or a projection keeps the result under the same bound.
  for (const char* text : {"n >= 0 ?limit=3&sort=-n", "n >= 0 ?fields=_id"}) {
    Result<query::Query> q = query::Parse(text);
    ASSERT_TRUE(q.ok());
    r = RunAll(ex, *q, limits, &st);
    ASSERT_TRUE(r.ok()) << text << ": " << r.status().ToString();
    EXPECT_EQ(r->size(), std::string(text).find("limit") != std::string::npos ? 3u : 200u);
  }
  Result<query::Query> top = query::Parse("?limit=2&sort=-n&fields=n");
  ASSERT_TRUE(top.ok());
  r = RunAll(ex, *top, QueryLimits(), &st);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].json, R"({"_id":"d199","n":199})");
  EXPECT_EQ((*r)[1].json, R"({"_id":"d198","n":198})");
}

}  // namespace
}  // namespace cairn::chunkserver
