// The retry policy (client/retry.h) and the list merge (client/list_merge.h):
// I/O-free, on a manual clock.
#include <gtest/gtest.h>

#include <set>

#include "client/list_merge.h"
#include "client/retry.h"

namespace cairn::client {
namespace {

TEST(Retry, ClassifiesCodes) {
  EXPECT_EQ(Classify(Status(StatusCode::kNotPrimary, "x")), RetryAction::kRefreshAndRetry);
  EXPECT_EQ(Classify(Status(StatusCode::kStaleEpoch, "x")), RetryAction::kRefreshAndRetry);
  EXPECT_EQ(Classify(Status::Unavailable("x")), RetryAction::kRefreshAndRetry);
  EXPECT_EQ(Classify(Status::Timeout("x")), RetryAction::kRefreshAndRetry);
  EXPECT_EQ(Classify(Status::NotFound("x")), RetryAction::kFail);
  EXPECT_EQ(Classify(Status::VersionMismatch("x")), RetryAction::kFail);
  EXPECT_EQ(Classify(Status::PermissionDenied("x")), RetryAction::kFail);
}

TEST(Retry, BackoffGrowsWithJitterAndStopsAtTheBudget) {
  ManualClock clock;
  RetryOptions o;
  o.max_attempts = 6;
  o.initial_backoff = std::chrono::milliseconds(10);
  o.max_backoff = std::chrono::milliseconds(50);
  Backoff b(o, &clock, std::chrono::seconds(100), 42);
  std::vector<Nanos> delays;
  Nanos d;
  while (b.NextDelay(&d)) delays.push_back(d);
  ASSERT_EQ(delays.size(), 5u);  // 6 attempts = 5 waits
  EXPECT_EQ(b.attempts(), 6);
  const int64_t caps_ms[] = {10, 20, 40, 50, 50};
  for (size_t i = 0; i < delays.size(); ++i) {
    EXPECT_GE(delays[i], o.min_backoff);
    EXPECT_LE(delays[i], std::chrono::milliseconds(caps_ms[i])) << i;
  }
}

TEST(Retry, BackoffNeverWaitsPastTheDeadline) {
  ManualClock clock;
  RetryOptions o;
  o.max_attempts = 1000;
  Backoff b(o, &clock, std::chrono::milliseconds(300), 7);
  Nanos d, total(0);
  int waits = 0;
  while (b.NextDelay(&d)) {
    clock.Advance(d);
    total += d;
    ++waits;
  }
  EXPECT_LT(total, std::chrono::milliseconds(300));
  EXPECT_GT(waits, 1);
  EXPECT_LT(waits, 1000);
}

TEST(Retry, JitterDependsOnTheSeed) {
  ManualClock clock;
  RetryOptions o;
  std::set<int64_t> seen;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    Backoff b(o, &clock, std::chrono::seconds(10), seed);
    Nanos d;
    ASSERT_TRUE(b.NextDelay(&d));
    ASSERT_TRUE(b.NextDelay(&d));
    seen.insert(d.count());
  }
  EXPECT_GT(seen.size(), 10u);
}

DocInfo Doc(std::string id) {
  DocInfo d;
  d.id = std::move(id);
  return d;
}

TEST(ListMerge, StopsAtTheSmallestLastIdOfAPartitionWithMore) {
  std::vector<PartitionPage> pages(3);
  pages[0].items = {Doc("a"), Doc("d"), Doc("g")};
  pages[0].more = true;  // ids after g may sort before h
  pages[1].items = {Doc("b"), Doc("h")};
  pages[2].items = {Doc("c"), Doc("e"), Doc("f")};
  pages[2].more = true;  // cutoff f
  Result<ListResult> r = MergePages(pages, 100);
  ASSERT_TRUE(r.ok());
  std::vector<std::string> ids;
  for (const DocInfo& d : r->items) ids.push_back(d.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"a", "b", "c", "d", "e", "f"}));
  EXPECT_EQ(r->next_cursor, "f");
}

TEST(ListMerge, CutsToTheLimitAndEndsWithAnEmptyCursor) {
  std::vector<PartitionPage> pages(2);
  pages[0].items = {Doc("a"), Doc("c")};
  pages[1].items = {Doc("b"), Doc("d")};
  Result<ListResult> r = MergePages(pages, 3);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->items.size(), 3u);
  EXPECT_EQ(r->next_cursor, "c");
  Result<ListResult> all = MergePages(pages, 4);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->items.size(), 4u);
  EXPECT_EQ(all->next_cursor, "");
}

TEST(ListMerge, RefusesPagesWithoutProgressOrOrder) {
  std::vector<PartitionPage> pages(1);
  pages[0].more = true;
  EXPECT_EQ(MergePages(pages, 10).status().code(), StatusCode::kInvalidArgument);
  pages[0].items = {Doc("b"), Doc("a")};
  EXPECT_EQ(MergePages(pages, 10).status().code(), StatusCode::kInvalidArgument);
}

TEST(ListMerge, PerPartitionLimit) {
  EXPECT_EQ(PerPartitionLimit(1000, 1), 1000u);
  EXPECT_EQ(PerPartitionLimit(1000, 64), 32u);
  EXPECT_EQ(PerPartitionLimit(10, 64), 10u);
  EXPECT_EQ(PerPartitionLimit(100, 64), 16u);
}

}  // namespace
}  // namespace cairn::client
