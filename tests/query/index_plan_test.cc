// Which index fits: the lookups the planner picks, and that they hold what
// the filter can match.
#include "query/index_plan.h"

#include <gtest/gtest.h>

#include <string>

#include "query/parser.h"

namespace cairn::query {
namespace {

std::vector<Path> Paths(std::initializer_list<const char*> texts) {
  std::vector<Path> out;
  for (const char* t : texts) out.push_back(Parse(std::string(t) + " exists")->filter.path);
  return out;
}

std::string PlanOf(std::string_view query, const std::vector<Path>& indexed) {
  auto q = Parse(query);
  EXPECT_TRUE(q.ok()) << query;
  return q.ok() ? PlanIndex(q->filter, indexed).ToString() : "";
}

TEST(QueryIndexPlan, SinglePredicates) {
  const auto idx = Paths({"status", "total", "customer.country", "name"});
  EXPECT_EQ(PlanOf("status == \"paid\"", idx), "status in [\"paid\"]");
  EXPECT_EQ(PlanOf("customer.country in [\"FR\",\"DE\",\"FR\"]", idx),
            "customer.country in [\"DE\",\"FR\"]");
  EXPECT_EQ(PlanOf("total >= 100", idx), "total number [100, +inf]");
  EXPECT_EQ(PlanOf("total > 100", idx), "total number (100, +inf]");
  EXPECT_EQ(PlanOf("total < 1.5", idx), "total number [-inf, 1.5)");
  EXPECT_EQ(PlanOf("total <= \"x\"", idx), "total string [-inf, \"x\"]");
  EXPECT_EQ(PlanOf("name ^= \"ab\"", idx), "name string [\"ab\", \"ac\")");
  // U+10FFFF, the last code point: its last byte is bumped (0xFF never occurs in UTF-8).
  const IndexPlan last = PlanIndex(Parse("name ^= \"\xf4\x8f\xbf\xbf\"")->filter, idx);
  ASSERT_EQ(last.kind, IndexPlan::Kind::kLookups);
  EXPECT_EQ(last.lookups[0].range.lower->str(), "\xf4\x8f\xbf\xbf");
  EXPECT_EQ(last.lookups[0].range.upper->str(), "\xf4\x8f\xbf\xc0");
  EXPECT_FALSE(last.lookups[0].range.upper_inclusive);
  EXPECT_EQ(PlanOf("name ^= \"\"", idx), "name string [\"\", +inf]");
  EXPECT_EQ(PlanOf("status in []", idx), "empty");
}

TEST(QueryIndexPlan, NeverIndexed) {
  const auto idx = Paths({"status", "tags"});
  for (const char* q : {"status != \"x\"", "status exists", "tags contains 1", "!(status == 1)",
                        "other == 1", "", "status.x == 1"}) {
    EXPECT_EQ(PlanOf(q, idx), "full scan") << q;
  }
  EXPECT_EQ(PlanOf("status == 1", {}), "full scan");
}

TEST(QueryIndexPlan, ConjunctionsPickTheMostSelective) {
  const auto idx = Paths({"status", "total", "country"});
  EXPECT_EQ(PlanOf("status == \"paid\" && total >= 100", idx), "status in [\"paid\"]");
  EXPECT_EQ(PlanOf("total >= 100 && country in [\"FR\",\"DE\"]", idx),
            "country in [\"DE\",\"FR\"]");
  EXPECT_EQ(PlanOf("country in [1,2,3] && status == 1", idx), "status in [1]");
  EXPECT_EQ(PlanOf("other == 1 && total < 5", idx), "total number [-inf, 5)");
  // Ranges on one path are intersected; a two-sided range beats a one-sided one.
  EXPECT_EQ(PlanOf("total >= 100 && total < 200", idx), "total number [100, 200)");
  EXPECT_EQ(PlanOf("total > 5 && total >= 5", idx), "total number (5, +inf]");
  EXPECT_EQ(PlanOf("total >= 5 && total > 5", idx), "total number (5, +inf]");
  EXPECT_EQ(PlanOf("total <= 5 && total < 5", idx), "total number [-inf, 5)");
  EXPECT_EQ(PlanOf("total < 9 && total <= 7", idx), "total number [-inf, 7]");
  EXPECT_EQ(PlanOf("total >= 5 && total <= 5", idx), "total number [5, 5]");
  EXPECT_EQ(PlanOf("status > 1 && total >= 1 && total <= 2", idx), "total number [1, 2]");
  // Impossible conjunctions read nothing.
  EXPECT_EQ(PlanOf("total > 5 && total < 1", idx), "empty");
  EXPECT_EQ(PlanOf("total > 5 && total < 5", idx), "empty");
  EXPECT_EQ(PlanOf("total >= 5 && total < 5", idx), "empty");
  EXPECT_EQ(PlanOf("total > 1 && total < \"a\"", idx), "empty");
  EXPECT_EQ(PlanOf("status == 1 && status == 2", idx), "empty");
  // Points filtered by a range on the same path.
  EXPECT_EQ(PlanOf("total in [1, 5, 10, \"x\"] && total >= 5", idx), "total in [5,10]");
  EXPECT_EQ(PlanOf("total == 1 && total == 1.0", idx), "total in [1]");
}

TEST(QueryIndexPlan, Disjunctions) {
  const auto idx = Paths({"status", "total"});
  EXPECT_EQ(PlanOf("status == 1 || total > 3", idx), "status in [1] | total number (3, +inf]");
  EXPECT_EQ(PlanOf("status == 1 || other == 2", idx), "full scan");
  EXPECT_EQ(PlanOf("status in [] || total in []", idx), "empty");
  EXPECT_EQ(PlanOf("status in [] || total == 2", idx), "total in [2]");
  EXPECT_EQ(PlanOf("(status == 1 || status == 2) && other == 3", idx),
            "status in [1] | status in [2]");
  EXPECT_EQ(PlanOf("(status == 1 || status == 2) && total == 3", idx), "total in [3]");
}

TEST(QueryIndexPlan, LookupContains) {
  auto q = Parse("total >= 1 && total < 2");
  const IndexPlan p = PlanIndex(q->filter, Paths({"total"}));
  ASSERT_EQ(p.kind, IndexPlan::Kind::kLookups);
  const IndexLookup& l = p.lookups[0];
  EXPECT_TRUE(l.Contains(Value::Int(1)));
  EXPECT_TRUE(l.Contains(Value::Double(1.999)));
  EXPECT_FALSE(l.Contains(Value::Int(2)));
  EXPECT_FALSE(l.Contains(Value::Str("1")));
  EXPECT_FALSE(l.Contains(Value::Double(0.5)));
  auto in = Parse("total in [1, \"a\"]");
  const IndexPlan pi = PlanIndex(in->filter, Paths({"total"}));
  EXPECT_TRUE(pi.lookups[0].Contains(Value::Double(1.0)));
  EXPECT_TRUE(pi.lookups[0].Contains(Value::Str("a")));
  EXPECT_FALSE(pi.lookups[0].Contains(Value::Bool(true)));
}

}  // namespace
}  // namespace cairn::query
