// Chunk servers killed with SIGKILL while writers run, then restarted: every
// acknowledged document is intact with its acknowledged content.
//
// Each writer owns its documents, so the expected state of a document is
// known: the body of its last acknowledged put, or one of the puts that
// failed after it (a failed put may or may not have been applied), or absent
// when no put of it was ever acknowledged.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/common/test_seeds.h"
#include "tests/integration/cluster_harness.h"
#include "tests/integration/integration_util.h"
#include "tests/integration/writer_model.h"

namespace cairn::test {
namespace {

constexpr int kWriters = 4;
constexpr int kDocsPerWriter = 60;

TEST(IntegrationCrash, SigkillChunkServersWhileWritingLosesNothingAcknowledged) {
  QuietLogs quiet;
  const uint64_t seed = Seeds(1, 77)[0];
  SCOPED_TRACE(SeedTrace(seed));
  auto cluster_or = Cluster::Start(ClusterOptions{});
  ASSERT_TRUE(cluster_or.ok()) << cluster_or.status().ToString();
  Cluster& cluster = **cluster_or;
  auto client_or = cluster.NewClient();
  ASSERT_TRUE(client_or.ok()) << client_or.status().ToString();
  client::Client& c = **client_or;
  IT_ASSERT_OK(c.CreateCollection("crash"));

  std::atomic<bool> stop{false};
  std::vector<WriterState> states(kWriters);
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back(RunWriter, std::ref(c), std::string("crash"), w, kDocsPerWriter, seed,
                         std::cref(stop), &states[static_cast<size_t>(w)], kStreamedPutEvery);
  }
  // Kill one chunk server after another while the writers run, restart each.
  for (int round = 0; round < 4; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    const int victim = round % cluster.chunk_server_count();
    IT_EXPECT_OK(cluster.KillChunkServer(victim));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    IT_EXPECT_OK(cluster.RestartChunkServer(victim));
  }
  // Then all of them at once.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  for (int i = 0; i < cluster.chunk_server_count(); ++i) IT_EXPECT_OK(cluster.KillChunkServer(i));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int i = 0; i < cluster.chunk_server_count(); ++i) {
    IT_EXPECT_OK(cluster.RestartChunkServer(i));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  stop = true;
  for (std::thread& t : writers) t.join();

  int acked = 0;
  int failed = 0;
  for (const WriterState& s : states) {
    acked += s.acked;
    failed += s.failed;
  }
  std::printf("writers: %d acknowledged, %d failed operations\n", acked, failed);
  EXPECT_GT(acked, 100) << "the writers made too little progress to test anything";

  VerifyAll(c, "crash", states, "after the kills");

  // Once more after a crash of everything with no writer running: the
  // recovery replays the same log.
  for (int i = 0; i < cluster.chunk_server_count(); ++i) IT_EXPECT_OK(cluster.KillChunkServer(i));
  for (int i = 0; i < cluster.chunk_server_count(); ++i) {
    IT_EXPECT_OK(cluster.RestartChunkServer(i));
  }
  VerifyAll(c, "crash", states, "after a second crash");
  // A clean stop and start too.
  IT_EXPECT_OK(cluster.StopChunkServer(0));
  IT_EXPECT_OK(cluster.RestartChunkServer(0));
  VerifyAll(c, "crash", states, "after a clean restart");
  IT_EXPECT_OK(cluster.CheckAllRunning());
}

}  // namespace
}  // namespace cairn::test
