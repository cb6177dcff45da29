// Secondary indexes on a real cluster (metaserver + 2 chunk servers on
// loopback): create an index on a loaded collection, watch the build progress
// through ListIndexes until ready, keep it maintained, rebuild it after a
// chunk server restart, drop it; the `cairn index` commands once.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/common/test_seeds.h"
#include "tests/integration/cluster_harness.h"
#include "tests/integration/integration_util.h"

#ifndef CAIRN_CLI_BIN
#define CAIRN_CLI_BIN "cairn"
#endif

namespace cairn::test {
namespace {

constexpr int kDocs = 3000;

std::string Body(int i) {
  // Every third document lacks the field; one is not JSON.
  if (i == 7) return "plain text";
  if (i % 3 == 0) return "{\"other\":" + std::to_string(i) + "}";
  return "{\"status\":\"s" + std::to_string(i % 10) + "\",\"n\":" + std::to_string(i) + "}";
}

int64_t Indexed(int docs) {  // documents of Body(0..docs-1) that have "status"
  int64_t n = 0;
  for (int i = 0; i < docs; ++i) n += (i != 7 && i % 3 != 0) ? 1 : 0;
  return n;
}

// Polls ListIndexes until `pred` holds for the one index of `coll` (or 60 s).
template <typename Pred>
Result<client::IndexStatus> WaitIndex(client::Client& c, const std::string& coll, Pred pred,
                                      bool* saw_partial = nullptr) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  client::IndexStatus last;
  while (std::chrono::steady_clock::now() < deadline) {
    Result<std::vector<client::IndexStatus>> l = c.ListIndexes(coll);
    if (!l.ok()) return l.status();
    if (l->size() == 1) {
      last = (*l)[0];
      if (saw_partial != nullptr && !last.ready && last.docs_indexed > 0 &&
          last.docs_indexed < last.docs_total) {
        *saw_partial = true;
      }
      if (pred(last)) return last;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Status::Timeout("index of " + coll + " never got there; last: " + last.path + " " +
                         std::to_string(last.docs_indexed) + "/" + std::to_string(last.docs_total) +
                         " entries " + std::to_string(last.entries) + " ready " +
                         std::to_string(last.nodes_ready) + "/" + std::to_string(last.nodes_total));
}

TEST(IntegrationIndex, CreateBuildProgressRestartDropAndCli) {
  QuietLogs quiet;
  ClusterOptions o;
  o.chunk_servers = 2;
  o.partitions = 8;
  // Slow builds, so that progress is visible in heartbeats.
  o.chunkserver_set = {"index_build_docs_per_s=1500", "heartbeat_interval_ms=100"};
  auto cluster_or = Cluster::Start(o);
  ASSERT_TRUE(cluster_or.ok()) << cluster_or.status().ToString();
  Cluster& cluster = **cluster_or;
  auto client_or = cluster.NewClient();
  ASSERT_TRUE(client_or.ok()) << client_or.status().ToString();
  client::Client& c = **client_or;
  const std::string coll = "orders";
  IT_ASSERT_OK(c.CreateCollection(coll));
  ParallelFor(kDocs, 8, [&](size_t i) {
    auto r = c.Put(coll, "o" + std::to_string(i), Body(static_cast<int>(i)));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
  });

  // Errors are clear.
  EXPECT_EQ(c.CreateIndex(coll, "status ==").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.CreateIndex("nope", "status").code(), StatusCode::kNotFound);

  IT_ASSERT_OK(c.CreateIndex(coll, "status"));
  EXPECT_EQ(c.CreateIndex(coll, "status").code(), StatusCode::kAlreadyExists);
  bool saw_partial = false;
  auto ready = WaitIndex(
      c, coll, [](const client::IndexStatus& s) { return s.ready; }, &saw_partial);
  ASSERT_TRUE(ready.ok()) << ready.status().ToString();
  EXPECT_EQ(ready->path, "status");
  EXPECT_EQ(ready->nodes_total, 2);
  EXPECT_EQ(ready->nodes_ready, 2);
  // Every replica scans its copy. A backup applies a commit when the next
  // message from its primary says so (a heartbeat at the latest), so a put
  // acknowledged just before the build may reach a backup's index through
  // the change feed instead of the scan, and not be in its totals.
  const int64_t copies = cluster.replication();
  EXPECT_LE(ready->docs_total, kDocs * copies);
  EXPECT_GE(ready->docs_total, copies == 1 ? kDocs : kDocs * copies - 64);
  EXPECT_EQ(ready->docs_indexed, ready->docs_total);
  auto full = WaitIndex(c, coll, [&](const client::IndexStatus& s) {
    return s.ready && s.entries == Indexed(kDocs) * copies;
  });
  EXPECT_TRUE(full.ok()) << full.status().ToString();
  std::cerr << "index build progress seen mid-way: " << (saw_partial ? "yes" : "no") << "\n";

  // Maintained: new documents and deletions show in the entry count.
  for (int i = kDocs; i < kDocs + 30; ++i) {
    IT_ASSERT_OK(c.Put(coll, "o" + std::to_string(i), Body(i)).status());
  }
  IT_ASSERT_OK(c.Delete(coll, "o1"));
  const int64_t want = (Indexed(kDocs + 30) - 1) * copies;
  auto maintained =
      WaitIndex(c, coll, [&](const client::IndexStatus& s) { return s.entries == want; });
  EXPECT_TRUE(maintained.ok()) << maintained.status().ToString();

  // A restarted chunk server rebuilds from its store (in-memory indexes).
  IT_ASSERT_OK(cluster.RestartChunkServer(0));
  auto rebuilt = WaitIndex(c, coll, [&](const client::IndexStatus& s) {
    return s.ready && s.entries == want && s.nodes_total == 2;
  });
  EXPECT_TRUE(rebuilt.ok()) << rebuilt.status().ToString();
  // The restarted node built it again (its log says so twice now).
  auto count_ready = [&] {
    const std::string log = Cluster::LogTail(cluster.ChunkServerLog(0), 1 << 22);
    size_t n = 0;
    for (size_t at = log.find("index orders status ready"); at != std::string::npos;
         at = log.find("index orders status ready", at + 1)) {
      ++n;
    }
    return n;
  };
  for (int i = 0; i < 300 && count_ready() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GE(count_ready(), 2u) << Cluster::LogTail(cluster.ChunkServerLog(0));
  rebuilt = WaitIndex(c, coll, [&](const client::IndexStatus& s) {
    return s.ready && s.entries == want && s.nodes_ready == 2;
  });
  EXPECT_TRUE(rebuilt.ok()) << rebuilt.status().ToString();

  // The CLI once: list (table and JSON), create, drop.
  auto conf = cluster.WriteClientConfig("client", cluster.UserTls());
  ASSERT_TRUE(conf.ok()) << conf.status().ToString();
  auto cli = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {CAIRN_CLI_BIN, "--config", *conf, "--timeout", "30"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = RunCommand(argv, std::chrono::seconds(60));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : CommandResult{};
  };
  CommandResult r = cli({"index", "list"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("status"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ready"), std::string::npos) << r.output;
  r = cli({"index", "create", coll, "`first name`"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = cli({"index", "create", coll, "a b"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("bad index path"), std::string::npos) << r.output;
  r = cli({"index", "list", coll, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"path\": \"`first name`\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"docs_total\""), std::string::npos) << r.output;
  r = cli({"status"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("indexes:"), std::string::npos) << r.output;
  r = cli({"index", "drop", coll, "`first name`"});
  EXPECT_EQ(r.exit_code, 0) << r.output;

  IT_ASSERT_OK(c.DropIndex(coll, "status"));
  EXPECT_EQ(c.DropIndex(coll, "status").code(), StatusCode::kNotFound);
  auto list = c.ListIndexes(coll);
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
  IT_EXPECT_OK(cluster.CheckAllRunning());
}

}  // namespace
}  // namespace cairn::test
