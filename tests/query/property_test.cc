// Property tests: random documents (nested, mixed types, missing fields, some
// not JSON) and random queries; the library's distributed run (per partition:
// index candidates or a full scan, filter, sort key, top-k, projection; then
// the merge) must equal the brute-force oracle over all documents.
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include "common/random.h"
#include "query/evaluator.h"
#include "query/index_plan.h"
#include "query/parser.h"
#include "query/topk.h"
#include "tests/common/test_seeds.h"
#include "tests/query/generators.h"
#include "tests/query/oracle.h"

namespace cairn::query {
namespace {

using oracle::Json;
using testgen::Gen;

struct Stored {
  std::string id;
  std::string text;
};

// One partition's scan, the way a chunk server runs it.
std::vector<Row> ScanPartition(const Query& q, const std::vector<const Stored*>& docs,
                               const IndexPlan& plan, std::vector<std::string>* candidates) {
  Document doc;
  TopK top(RowOrder(q.sort), q.limit);
  for (const Stored* s : docs) {
    if (plan.kind == IndexPlan::Kind::kEmpty) break;
    if (!doc.Load(s->id, s->text)) continue;
    if (plan.kind == IndexPlan::Kind::kLookups) {
      // What the index would return: documents whose key a lookup contains.
      bool hit = false;
      for (const IndexLookup& l : plan.lookups) {
        const auto key = ValueAt(l.path, doc);
        hit = hit || (key.has_value() && l.Contains(*key));
      }
      if (!hit) continue;
    }
    candidates->push_back(s->id);
    if (!Matches(q.filter, doc)) continue;
    Row row{s->id, SortKeyOf(q.sort, doc), ""};
    if (!top.Admits(row)) continue;
    row.json = Project(q.fields, doc);
    top.Offer(std::move(row));
  }
  return top.Take();
}

struct Stats {
  int queries = 0;
  int nonempty = 0;
  int limited = 0;  // the limit cut the result
  int lookups = 0;  // an index drove the scan
  int empty_plans = 0;
};

void CheckOne(Stats* stats, Gen& g, const Query& q, const std::vector<Stored>& stored,
              const std::vector<oracle::Doc>& odocs, const std::string& trace) {
  // Indexes: none, or a random subset of the paths queries use.
  std::vector<Path> indexed;
  if (!g.OneIn(4)) {
    for (int i = 0; i < 12; ++i) indexed.push_back(Parse(g.PathText() + " exists")->filter.path);
  }
  const IndexPlan plan = PlanIndex(q.filter, indexed);

  const size_t partitions = 1 + g.U(8);
  std::vector<std::vector<const Stored*>> parts(partitions);
  for (const Stored& s : stored) parts[std::hash<std::string>()(s.id) % partitions].push_back(&s);
  std::vector<std::vector<Row>> runs;
  std::vector<std::string> candidates;
  for (const auto& p : parts) {
    std::vector<Row> run = ScanPartition(q, p, plan, &candidates);
    // The keys cross the wire as text (EncodeSortKeys) before the merge.
    for (Row& r : run) {
      auto keys = DecodeSortKeys(EncodeSortKeys(r.keys));
      ASSERT_TRUE(keys.ok()) << keys.status().ToString();
      r.keys = std::move(keys).value();
    }
    runs.push_back(std::move(run));
  }
  const std::vector<Row> got = MergeSorted(std::move(runs), RowOrder(q.sort), q.limit);

  const std::vector<oracle::Result> want = oracle::Run(q, odocs);
  ++stats->queries;
  stats->nonempty += want.empty() ? 0 : 1;
  stats->lookups += plan.kind == IndexPlan::Kind::kLookups ? 1 : 0;
  stats->empty_plans += plan.kind == IndexPlan::Kind::kEmpty ? 1 : 0;
  const std::string ctx = trace + " query: " + q.ToString() + " plan: " + plan.ToString();
  ASSERT_EQ(got.size(), want.size()) << ctx;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].id, want[i].id) << ctx << " row " << i;
    const Json row = Json::parse(got[i].json, nullptr, false);
    ASSERT_EQ(row, want[i].row) << ctx << " row " << i << ": " << got[i].json << " vs "
                                << want[i].row.dump();
  }
  // The plan is a superset: every match (without a limit) was a candidate.
  Query unlimited = q;
  unlimited.limit.reset();
  const auto all = oracle::Run(unlimited, odocs);
  stats->limited += all.size() > want.size() ? 1 : 0;
  for (const oracle::Result& r : all) {
    ASSERT_NE(std::find(candidates.begin(), candidates.end(), r.id), candidates.end())
        << ctx << " missed " << r.id;
  }
}

TEST(QueryProperty, DistributedRunEqualsBruteForce) {
  Stats stats;
  for (const uint64_t seed : test::Seeds(20, 501)) {
    Gen g(seed);
    std::vector<Stored> stored;
    std::vector<oracle::Doc> odocs;
    const int n = 50 + static_cast<int>(g.U(250));
    for (int i = 0; i < n; ++i) {
      stored.push_back({"id-" + std::to_string(i), g.DocText(i)});
      odocs.push_back(oracle::MakeDoc(stored.back().id, stored.back().text));
    }
    for (int k = 0; k < 60; ++k) {
      const std::string text = g.QueryText();
      auto q = Parse(text);
      ASSERT_TRUE(q.ok()) << test::SeedTrace(seed) << " " << text << ": " << q.status().ToString();
      // The canonical text parses back to the same tree.
      auto again = Parse(q->ToString());
      ASSERT_TRUE(again.ok()) << q->ToString();
      ASSERT_TRUE(SameTree(q->filter, again->filter)) << q->ToString();
      ASSERT_EQ(again->ToString(), q->ToString());
      CheckOne(&stats, g, *q, stored, odocs, test::SeedTrace(seed) + " text: " + text);
      if (HasFatalFailure()) return;
    }
  }
  // The generator must produce interesting cases, not only empty results.
  const int n = stats.queries;
  EXPECT_GT(stats.nonempty, n / 4) << stats.nonempty << " of " << n;
  EXPECT_GT(stats.limited, n / 20) << stats.limited << " of " << n;
  EXPECT_GT(stats.lookups, n / 10) << stats.lookups << " of " << n;
  std::cout << "queries " << n << ", non-empty " << stats.nonempty << ", cut by limit "
            << stats.limited << ", index-driven " << stats.lookups << ", empty plans "
            << stats.empty_plans << "\n";
}

// Single predicates over one document at a time, many of them: the evaluator
// alone against the oracle, with a readable failure.
TEST(QueryProperty, EveryPredicateAgreesWithOracle) {
  for (const uint64_t seed : test::Seeds(10, 502)) {
    Gen g(seed);
    std::vector<std::pair<std::string, std::string>> docs;
    for (int i = 0; i < 60; ++i) docs.emplace_back("id-" + std::to_string(i), g.DocText(i));
    Document doc;
    for (int k = 0; k < 400; ++k) {
      const std::string text = g.Filter(0);
      auto q = Parse(text);
      ASSERT_TRUE(q.ok()) << text;
      for (const auto& [id, body] : docs) {
        const bool got = doc.Load(id, body) && Matches(q->filter, doc);
        const oracle::Doc od = oracle::MakeDoc(id, body);
        const bool want = od.json.has_value() && oracle::Eval(q->filter, od);
        ASSERT_EQ(got, want) << test::SeedTrace(seed) << " query " << text << " doc " << body;
      }
    }
  }
}

}  // namespace
}  // namespace cairn::query
