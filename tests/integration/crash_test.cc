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

namespace cairn::test {
namespace {

constexpr int kWriters = 4;
constexpr int kDocsPerWriter = 60;

struct DocHistory {
  std::optional<std::string> acked;    // last acknowledged body
  std::vector<std::string> uncertain;  // failed puts after it
  bool deleted_acked = false;          // last acknowledged op was a delete
  int64_t acked_version = 0;
};

struct WriterState {
  std::map<std::string, DocHistory> docs;
  int acked = 0;
  int failed = 0;
};

void RunWriter(client::Client& c, int w, uint64_t seed, const std::atomic<bool>& stop,
               WriterState* state) {
  uint64_t rng = seed * 31 + static_cast<uint64_t>(w);
  uint64_t n = 0;
  while (!stop.load()) {
    const uint64_t r = SplitMix64(rng);
    const std::string id = "w" + std::to_string(w) + "-" + std::to_string(r % kDocsPerWriter);
    DocHistory& h = state->docs[id];
    ++n;
    if (r % 23 == 0 && h.acked.has_value()) {
      // A delete now and then.
      Status s = c.Delete("crash", id);
      if (s.ok() || s.code() == StatusCode::kNotFound) {
        h.acked.reset();
        h.uncertain.clear();
        h.deleted_acked = true;
        ++state->acked;
      } else {
        // Either applied or not: absent or the previous body.
        h.uncertain.push_back(*h.acked);
        h.deleted_acked = false;
        h.acked.reset();
        ++state->failed;
      }
      continue;
    }
    size_t size = static_cast<size_t>(SplitMix64(rng) % 6000);
    if (n % 97 == 0) size = (1u << 20) + 4321;  // a streamed put now and then
    std::string body = MakeBody(seed, (static_cast<uint64_t>(w) << 32) | n, size);
    auto put = c.Put("crash", id, body);
    if (put.ok()) {
      h.acked = std::move(body);
      h.acked_version = put->version;
      h.uncertain.clear();
      h.deleted_acked = false;
      ++state->acked;
    } else {
      h.uncertain.push_back(std::move(body));
      ++state->failed;
    }
  }
}

// Checks every document of every writer against its history.
void VerifyAll(client::Client& c, const std::vector<WriterState>& states, const char* when) {
  int checked = 0;
  for (const WriterState& s : states) {
    for (const auto& [id, h] : s.docs) {
      std::string got;
      auto r = c.Get("crash", id, client::StringWriter(&got));
      ++checked;
      if (r.status().code() == StatusCode::kNotFound) {
        // Absent is right when no put was acknowledged since the last
        // acknowledged (or possibly applied) delete.
        EXPECT_FALSE(h.acked.has_value())
            << when << ": " << id << " acknowledged (" << (h.acked ? h.acked->size() : 0)
            << " bytes, version " << h.acked_version << ") but NotFound";
        continue;
      }
      if (!r.ok()) {
        ADD_FAILURE() << when << ": get " << id << ": " << r.status().ToString();
        continue;
      }
      const bool is_acked = h.acked.has_value() && got == *h.acked;
      const bool is_uncertain =
          std::find(h.uncertain.begin(), h.uncertain.end(), got) != h.uncertain.end();
      EXPECT_TRUE(is_acked || is_uncertain)
          << when << ": " << id << " has " << got.size() << " bytes (version " << r->version
          << ") matching neither the acknowledged body ("
          << (h.acked ? std::to_string(h.acked->size()) + " bytes, version " +
                            std::to_string(h.acked_version)
                      : std::string("none"))
          << ") nor any of " << h.uncertain.size() << " unacknowledged puts";
    }
  }
  EXPECT_GT(checked, 0);
}

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
    writers.emplace_back(RunWriter, std::ref(c), w, seed, std::cref(stop),
                         &states[static_cast<size_t>(w)]);
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

  VerifyAll(c, states, "after the kills");

  // Once more after a crash of everything with no writer running: the
  // recovery replays the same log.
  for (int i = 0; i < cluster.chunk_server_count(); ++i) IT_EXPECT_OK(cluster.KillChunkServer(i));
  for (int i = 0; i < cluster.chunk_server_count(); ++i) {
    IT_EXPECT_OK(cluster.RestartChunkServer(i));
  }
  VerifyAll(c, states, "after a second crash");
  // A clean stop and start too.
  IT_EXPECT_OK(cluster.StopChunkServer(0));
  IT_EXPECT_OK(cluster.RestartChunkServer(0));
  VerifyAll(c, states, "after a clean restart");
  IT_EXPECT_OK(cluster.CheckAllRunning());
}

}  // namespace
}  // namespace cairn::test
