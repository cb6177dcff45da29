// 10,000 documents through a real cluster (3 chunk servers, 4 disks each):
// put, read back byte-exact, listed (count and order), renamed, deleted.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "tests/common/test_seeds.h"
#include "tests/integration/cluster_harness.h"
#include "tests/integration/integration_util.h"

namespace cairn::test {
namespace {

constexpr size_t kDocs = 10000;
constexpr int kThreads = 8;
constexpr uint64_t kSeed = 3001;

// Ids of several shapes: plain, with spaces, UTF-8, dots, long, odd bytes
// (anything but '/' and NUL is allowed).
std::string DocId(size_t i) {
  char num[16];
  std::snprintf(num, sizeof(num), "%05zu", i);
  switch (i % 10) {
    case 0:
      return std::string("with space ") + num;
    case 1:
      return std::string("caf\xC3\xA9-") + num;
    case 2:
      return std::string("..dots.") + num + ".json";
    case 3:
      return std::string(200, 'L') + num;
    case 4:
      return std::string("\x01\x7F\xFF-") + num;
    default:
      return std::string("doc-") + num;
  }
}

// Mostly small bodies, some empty, a few over one block (streamed).
size_t DocSize(size_t i) {
  if (i % 997 == 0) return 0;
  if (i % 2500 == 7) return (1u << 20) + 12345;  // 4 documents above one block
  uint64_t s = i * 7919 + 17;
  return static_cast<size_t>(1 + SplitMix64(s) % 4096);
}

TEST(IntegrationDocs, TenThousandDocumentsPutReadListRenameDelete) {
  QuietLogs quiet;
  auto cluster_or = Cluster::Start(ClusterOptions{});
  ASSERT_TRUE(cluster_or.ok()) << cluster_or.status().ToString();
  Cluster& cluster = **cluster_or;
  auto client_or = cluster.NewClient();
  ASSERT_TRUE(client_or.ok()) << client_or.status().ToString();
  client::Client& c = **client_or;
  const std::string coll = "docs";
  IT_ASSERT_OK(c.CreateCollection(coll));

  std::vector<std::string> ids(kDocs);
  std::vector<std::string> bodies(kDocs);
  for (size_t i = 0; i < kDocs; ++i) {
    ids[i] = DocId(i);
    bodies[i] = MakeBody(kSeed, i, DocSize(i));
  }

  // Put, all new (kMustNotExist).
  std::atomic<int> failures{0};
  std::vector<int64_t> versions(kDocs, 0);
  ParallelFor(kDocs, kThreads, [&](size_t i) {
    client::WriteOptions w;
    w.expected_version = client::kMustNotExist;
    auto r = c.Put(coll, ids[i], bodies[i], w);
    if (!r.ok()) {
      if (failures.fetch_add(1) < 10) ADD_FAILURE() << "put " << i << ": " << r.status().ToString();
      return;
    }
    EXPECT_EQ(r->size, bodies[i].size()) << i;
    versions[i] = r->version;
  });
  ASSERT_EQ(failures.load(), 0);

  // Read back, byte-exact; stat agrees.
  ParallelFor(kDocs, kThreads, [&](size_t i) {
    std::string got;
    auto r = c.Get(coll, ids[i], client::StringWriter(&got));
    if (!r.ok() || got != bodies[i]) {
      if (failures.fetch_add(1) < 10) {
        ADD_FAILURE() << "get " << i << ": " << r.status().ToString() << " size " << got.size()
                      << " want " << bodies[i].size();
      }
      return;
    }
    EXPECT_EQ(r->version, versions[i]);
    if (i % 50 == 0) {
      auto st = c.Stat(coll, ids[i]);
      EXPECT_TRUE(st.ok()) << st.status().ToString();
      if (st.ok()) {
        EXPECT_EQ(st->size, bodies[i].size());
      }
    }
  });
  ASSERT_EQ(failures.load(), 0);

  // A range read of a streamed document.
  {
    const size_t big = 7;  // DocSize(7) is above one block
    ASSERT_GT(bodies[big].size(), 1u << 20);
    std::string got;
    client::ReadOptions ro;
    ro.offset = (1u << 20) - 100;
    ro.length = 300;
    auto r = c.Get(coll, ids[big], client::StringWriter(&got), ro);
    IT_ASSERT_OK(r.status());
    EXPECT_EQ(got, bodies[big].substr((1u << 20) - 100, 300));
  }

  // List: every id once, sorted bytewise, pages of 1000.
  auto list_all = [&](uint32_t limit) {
    std::vector<client::DocInfo> all;
    client::ListOptions lo;
    lo.limit = limit;
    for (int pages = 0; pages < 100000; ++pages) {
      auto page = c.List(coll, lo);
      EXPECT_TRUE(page.ok()) << page.status().ToString();
      if (!page.ok()) break;
      EXPECT_LE(page->items.size(), limit);
      for (client::DocInfo& d : page->items) all.push_back(std::move(d));
      if (page->next_cursor.empty()) break;
      lo.cursor = page->next_cursor;
    }
    return all;
  };
  std::vector<std::string> sorted_ids = ids;
  std::sort(sorted_ids.begin(), sorted_ids.end());
  std::map<std::string, size_t> index_of;
  for (size_t i = 0; i < kDocs; ++i) index_of[ids[i]] = i;
  {
    std::vector<client::DocInfo> listed = list_all(1000);
    ASSERT_EQ(listed.size(), kDocs);
    for (size_t k = 0; k < kDocs; ++k) {
      ASSERT_EQ(listed[k].id, sorted_ids[k]) << "position " << k;
      const size_t i = index_of[listed[k].id];
      EXPECT_EQ(listed[k].size, bodies[i].size()) << k;
      EXPECT_EQ(listed[k].version, versions[i]) << k;
    }
  }
  // A small page size gives the same listing.
  {
    std::vector<client::DocInfo> listed = list_all(777);
    ASSERT_EQ(listed.size(), kDocs);
    for (size_t k = 0; k < kDocs; ++k) ASSERT_EQ(listed[k].id, sorted_ids[k]) << k;
  }

  // Rename every 10th document; the old name is gone, the new one has the body.
  std::vector<size_t> renamed;
  for (size_t i = 3; i < kDocs; i += 10) renamed.push_back(i);
  ParallelFor(renamed.size(), kThreads, [&](size_t k) {
    const size_t i = renamed[k];
    const std::string to = "renamed-" + ids[i];
    auto r = c.Rename(coll, ids[i], to);
    if (!r.ok()) {
      if (failures.fetch_add(1) < 10)
        ADD_FAILURE() << "rename " << i << ": " << r.status().ToString();
      return;
    }
    ids[i] = to;
  });
  ASSERT_EQ(failures.load(), 0);
  ParallelFor(renamed.size(), kThreads, [&](size_t k) {
    const size_t i = renamed[k];
    std::string got;
    auto r = c.Get(coll, ids[i], client::StringWriter(&got));
    EXPECT_TRUE(r.ok()) << ids[i] << ": " << r.status().ToString();
    EXPECT_TRUE(got == bodies[i]) << "renamed " << i;
    auto old = c.Stat(coll, ids[i].substr(8));
    EXPECT_EQ(old.status().code(), StatusCode::kNotFound) << old.status().ToString();
  });
  {
    std::vector<client::DocInfo> listed = list_all(1000);
    std::vector<std::string> want = ids;
    std::sort(want.begin(), want.end());
    ASSERT_EQ(listed.size(), kDocs);
    for (size_t k = 0; k < kDocs; ++k) ASSERT_EQ(listed[k].id, want[k]) << k;
  }

  // The collection cannot be dropped while it has documents.
  EXPECT_EQ(c.DropCollection(coll).code(), StatusCode::kNotEmpty);

  // Delete everything; reads say NotFound; the listing is empty; drop works.
  ParallelFor(kDocs, kThreads, [&](size_t i) {
    Status s = c.Delete(coll, ids[i]);
    if (!s.ok() && failures.fetch_add(1) < 10)
      ADD_FAILURE() << "delete " << i << ": " << s.ToString();
  });
  ASSERT_EQ(failures.load(), 0);
  for (size_t i = 0; i < kDocs; i += 101) {
    std::string got;
    auto r = c.Get(coll, ids[i], client::StringWriter(&got));
    EXPECT_EQ(r.status().code(), StatusCode::kNotFound) << r.status().ToString();
  }
  EXPECT_EQ(list_all(1000).size(), 0u);
  IT_EXPECT_OK(c.DropCollection(coll));
  IT_EXPECT_OK(cluster.CheckAllRunning());
}

// A collection is usable as soon as CreateCollection returns: the chunk
// server that sees an unknown collection refreshes its map
// (docs/design-store.md, "Cluster bootstrap and placement"). Collections
// created in quick succession: a refresh must not be skipped because another
// one just happened.
TEST(IntegrationDocs, PutRightAfterCreateCollection) {
  QuietLogs quiet;
  ClusterOptions o;
  o.chunk_servers = 1;
  o.partitions = 4;
  auto cluster_or = Cluster::Start(o);
  ASSERT_TRUE(cluster_or.ok()) << cluster_or.status().ToString();
  auto client_or = (*cluster_or)->NewClient();
  ASSERT_TRUE(client_or.ok()) << client_or.status().ToString();
  client::Client& c = **client_or;
  int not_found = 0;
  for (int i = 0; i < 10; ++i) {
    const std::string coll = "fresh" + std::to_string(i);
    IT_ASSERT_OK(c.CreateCollection(coll));
    auto r = c.Put(coll, "first", "a document put right after the collection was created");
    if (!r.ok()) {
      ++not_found;
      ADD_FAILURE() << coll << ": " << r.status().ToString();
    }
  }
  EXPECT_EQ(not_found, 0) << "puts into a just-created collection failed";
}

}  // namespace
}  // namespace cairn::test
