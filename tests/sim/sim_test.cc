// The replication simulation over many seeds (sim_cluster.h). Each shard of
// the CI sweep is one ctest entry. CAIRN_SIM_SEED=<n> replays exactly one
// seed (in every shard's place: run with --gtest_filter=*Shard/0 and
// CAIRN_SIM_VERBOSE=1 for a trace); CAIRN_SIM_SEEDS=<n> sweeps n seeds per
// shard (the long sweep by hand).
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "common/logging.h"
#include "tests/sim/sim_cluster.h"

namespace cairn::sim {
namespace {

constexpr uint64_t kShards = 4;
// 500 seeds in CI (5-25 s per shard); a sanitizer build is ~5x slower and
// runs 100.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr uint64_t kSeedsPerShard = 25;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr uint64_t kSeedsPerShard = 25;
#else
constexpr uint64_t kSeedsPerShard = 125;
#endif
#else
constexpr uint64_t kSeedsPerShard = 125;
#endif

const char* Env(const char* name) {
  return std::getenv(name);  // NOLINT(concurrency-mt-unsafe)
}

bool Verbose() { return Env("CAIRN_SIM_VERBOSE") != nullptr; }

// An always-on check inside the replication code aborts the process: name the
// seed first (async-signal-safe: a preformatted line and write(2)).
char g_abort_line[128];

void OnAbort(int) {
  const ssize_t n = write(STDERR_FILENO, g_abort_line, std::strlen(g_abort_line));
  (void)n;
}

void ArmAbortReport(uint64_t seed) {
  std::snprintf(g_abort_line, sizeof(g_abort_line),
                "\nsim: aborted in seed %llu (replay with CAIRN_SIM_SEED=%llu)\n",
                static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  std::signal(SIGABRT, OnAbort);
}

// The cluster shape varies with the seed: 3-5 nodes, R = 2 or 3, 2-8
// partitions (R = 3 on 3 nodes leaves no spare for replacement; 5 nodes do),
// and so does the network.
SimOptions OptionsFor(uint64_t seed) {
  SimOptions o;
  o.seed = seed;
  o.nodes = 3 + static_cast<uint32_t>(seed % 3);
  o.replication = (seed / 3) % 4 == 0 ? 2 : 3;
  o.partitions = 2u << ((seed / 12) % 3);
  // Every fifth seed a storm: many lost and duplicated messages, some late
  // by more than the timeouts.
  if (seed % 5 == 4) {
    o.drop_one_in = 8;
    o.duplicate_one_in = 10;
    o.slow_one_in = 10;
    o.slow_max = std::chrono::milliseconds(2500);
  }
  o.verbose = Verbose();
  return o;
}

class SimSweep : public ::testing::TestWithParam<uint64_t> {};

TEST_P(SimSweep, Shard) {
  const uint64_t shard = GetParam();
  std::vector<uint64_t> seeds;
  if (const char* one = Env("CAIRN_SIM_SEED"); one != nullptr && *one != '\0') {
    if (shard != 0) GTEST_SKIP() << "CAIRN_SIM_SEED runs in shard 0 only";
    seeds.push_back(std::strtoull(one, nullptr, 0));
  } else {
    uint64_t count = kSeedsPerShard;
    if (const char* n = Env("CAIRN_SIM_SEEDS"); n != nullptr && *n != '\0') {
      count = std::strtoull(n, nullptr, 0);
    }
    for (uint64_t i = 0; i < count; ++i) seeds.push_back(1 + shard + i * kShards);
  }
  SimStats total;
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t seed : seeds) {
    ArmAbortReport(seed);
    const SimOptions o = OptionsFor(seed);
    SimStats st;
    Status s = RunSimulation(o, &st);
    ASSERT_TRUE(s.ok()) << s.ToString() << "\n  (" << o.nodes << " nodes, R=" << o.replication
                        << ", " << o.partitions << " partitions; events " << st.events << ", acked "
                        << st.writes_acked << ", crashes " << st.crashes << ", promotions "
                        << st.promotions << ")";
    total.events += st.events;
    total.writes_acked += st.writes_acked;
    total.reads_checked += st.reads_checked;
    total.crashes += st.crashes;
    total.promotions += st.promotions;
    total.snapshots += st.snapshots;
    total.map_changes += st.map_changes;
    total.joins += st.joins;
    total.replacements += st.replacements;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << seeds.size() << " seeds in " << secs << " s: " << total.events << " events, "
            << total.writes_acked << " writes acknowledged, " << total.reads_checked
            << " reads checked, " << total.crashes << " crashes, " << total.promotions
            << " promotions, " << total.map_changes << " map changes, " << total.snapshots
            << " snapshots installed, " << total.joins << " joins, " << total.replacements
            << " replacements\n";
  // The faults must actually exercise failover, or the sweep proves little.
  if (seeds.size() >= 20) {
    EXPECT_GT(total.promotions, seeds.size());
    EXPECT_GT(total.crashes, seeds.size());
    EXPECT_GT(total.snapshots, 0u);
    EXPECT_GT(total.joins, seeds.size());
    EXPECT_GT(total.replacements, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, SimSweep, ::testing::Range<uint64_t>(0, kShards));

// Without faults every write is acknowledged and nothing fails over.
TEST(Sim, NoFaults) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    SimOptions o;
    o.seed = seed;
    o.faults = false;
    SimStats st;
    Status s = RunSimulation(o, &st);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_GT(st.writes_acked, 500u);
    EXPECT_EQ(st.promotions, 0u);
    EXPECT_EQ(st.crashes, 0u);
  }
}

// The same seed gives the same run.
TEST(Sim, Deterministic) {
  SimOptions o;
  o.seed = 4242;
  SimStats a, b;
  ASSERT_TRUE(RunSimulation(o, &a).ok());
  ASSERT_TRUE(RunSimulation(o, &b).ok());
  EXPECT_EQ(a.events, b.events);
  EXPECT_EQ(a.writes_acked, b.writes_acked);
  EXPECT_EQ(a.messages, b.messages);
}

// The checks catch a real bug: backups that acknowledge before their append
// is durable lose acknowledged writes when they crash.
TEST(Sim, CatchesAckBeforeDurable) {
  int failed = 0;
  std::string first;
  for (uint64_t seed = 1; seed <= 20 && failed == 0; ++seed) {
    SimOptions o;
    o.seed = seed;
    o.bug = InjectedBug::kAckBeforeDurable;
    Status s = RunSimulation(o, nullptr);
    if (!s.ok()) {
      failed++;
      first = s.ToString();
    }
  }
  EXPECT_GT(failed, 0) << "the injected bug went unnoticed";
  std::cout << "found: " << first << "\n";
}

}  // namespace
}  // namespace cairn::sim
