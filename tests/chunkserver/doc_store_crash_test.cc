// Crash tests of DocStore: a random workload (with checkpoints and
// compactions mixed in) over a volume on a MemDisk, power cuts at random
// mutating disk calls (inside an Apply, a WriteBlock stream, a checkpoint,
// a compaction, a recovery), dropping unsynced writes or keeping a random
// part of them; after every reopen the store must equal the model: every
// acknowledged mutation visible with its exact bytes, the one in flight
// either whole or absent, nothing else.
//
// Every test loops over seeds; CAIRN_SEED=<n> replays one, CAIRN_LONG=1
// runs many more.
#include <gtest/gtest.h>

#include <string>

#include "tests/chunkserver/doc_test_util.h"
#include "tests/chunkserver/doc_workload.h"

namespace cairn::chunkserver {
namespace {

using dtest::CrashMode;
using dtest::Model;
using dtest::RigOptions;
using dtest::Seeds;
using dtest::SeedTrace;
using dtest::StoreRig;
using dtest::Workload;
using dtest::WorkloadOptions;

const char* ModeName(CrashMode m) {
  return m == CrashMode::kDropUnsynced ? "drop-unsynced" : "random-partial";
}

RigOptions RandomRig(Random* rng) {
  RigOptions o;
  const uint32_t disks[] = {2, 3, 3, 4};
  const uint32_t units[] = {4096, 16384};
  const uint64_t segs[] = {64 << 10, 128 << 10, 256 << 10};
  const uint64_t pend[] = {16 << 10, 64 << 10, 1 << 20};
  const uint32_t blocks[] = {4096, 16384};
  const uint64_t caches[] = {0, 64 << 10, 1 << 20};
  o.disks = disks[rng->Uniform(4)];
  o.max_unit_bytes = units[rng->Uniform(2)];
  o.segment_bytes = segs[rng->Uniform(3)];
  o.max_pending_bytes = pend[rng->Uniform(3)];
  o.store.block_bytes = blocks[rng->Uniform(2)];
  o.store.cache_bytes = caches[rng->Uniform(3)];
  o.store.zstd_level = 1;
  o.store.checkpoint_part_bytes = 4096;  // several parts per checkpoint
  o.store.compact_live_fraction = 0.6;
  return o;
}

std::string Describe(const RigOptions& o) {
  return "disks=" + std::to_string(o.disks) + " unit=" + std::to_string(o.max_unit_bytes) +
         " segment=" + std::to_string(o.segment_bytes) +
         " pending=" + std::to_string(o.max_pending_bytes) +
         " block=" + std::to_string(o.store.block_bytes) +
         " cache=" + std::to_string(o.store.cache_bytes);
}

// One seed: several lives, each ended by a power cut somewhere in the next
// stretch of work; recovery is sometimes cut too.
void RunCrashLives(uint64_t seed, CrashMode mode, int lives, int max_steps) {
  SCOPED_TRACE(SeedTrace(seed) + " mode=" + ModeName(mode));
  Random rng(seed);
  RigOptions ro = RandomRig(&rng);
  SCOPED_TRACE(Describe(ro));
  StoreRig rig(ro);
  ASSERT_TRUE(rig.Create().ok());
  ASSERT_TRUE(rig.Open().ok());
  Model model;
  WorkloadOptions wo;
  wo.partitions = 3;
  wo.ids_per_collection = 10;
  wo.block_bytes = ro.store.block_bytes;
  Workload work(seed * 31 + 7, wo, &model);
  work.set_crash_probe([&rig] { return rig.disk() != nullptr && rig.disk()->crashed(); });

  for (int life = 0; life < lives; ++life) {
    const std::string ctx = "life " + std::to_string(life);
    // Cut the power at one of the next few hundred disk writes.
    const uint64_t now = rig.disk()->mutating_ops();
    rig.disk()->ArmCrash(now + 1 + rng.Uniform(400), rng.OneIn(2), mode, rng.Next());
    for (int step = 0; step < max_steps && !rig.disk()->crashed(); ++step) {
      const uint64_t r = rng.Uniform(100);
      if (r < 5) {
        Status s = rig.store()->Checkpoint();
        ASSERT_TRUE(s.ok() || rig.disk()->crashed()) << ctx << ": checkpoint: " << s.ToString();
      } else if (r < 9) {
        auto c = rig.store()->Compact();
        ASSERT_TRUE(c.ok() || rig.disk()->crashed())
            << ctx << ": compact: " << c.status().ToString();
      } else {
        const bool ok = work.Step(rig.store());
        if (::testing::Test::HasFailure()) return;
        ASSERT_TRUE(ok || rig.disk()->crashed()) << ctx << ": step failed without a crash";
      }
    }
    rig.Crash(mode, rng.Next());  // no-op for the disk if it already crashed

    // Recovery itself may be cut (it writes: torn-range root, checkpoint,
    // raidlib's own recovery); then it runs again.
    if (rng.OneIn(4)) {
      StoreRig::Arm arm{rng.Uniform(30), rng.OneIn(2), mode, rng.Next()};
      Status s = rig.Open(arm);
      if (rig.disk()->crashed()) {
        rig.Crash(mode, 0);
      } else {
        ASSERT_TRUE(s.ok()) << ctx << ": reopen (armed, no crash): " << s.ToString();
        rig.disk()->Disarm();
      }
    }
    if (rig.store() == nullptr) {
      Status s = rig.Open();
      ASSERT_TRUE(s.ok()) << ctx << ": reopen: " << s.ToString();
    }
    work.ResolveInFlight(rig.store());
    dtest::ExpectStoreMatches(rig.store(), model, ctx + " after reopen");
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(DocStoreCrashTest, RandomCrashesDropUnsynced) {
  dtest::QuietLogs quiet;
  for (uint64_t seed : Seeds(24, 11)) {
    RunCrashLives(seed, CrashMode::kDropUnsynced, 10, 80);
    if (HasFailure()) return;
  }
}

TEST(DocStoreCrashTest, RandomCrashesRandomPartial) {
  dtest::QuietLogs quiet;
  for (uint64_t seed : Seeds(24, 12)) {
    RunCrashLives(seed, CrashMode::kRandomPartial, 10, 80);
    if (HasFailure()) return;
  }
}

// Power cuts aimed inside Checkpoint(): between its records, after the sync,
// around the root update, and right after it (before later appends).
TEST(DocStoreCrashTest, CrashInsideCheckpoint) {
  dtest::QuietLogs quiet;
  for (uint64_t seed : Seeds(40, 13)) {
    SCOPED_TRACE(SeedTrace(seed));
    Random rng(seed);
    RigOptions ro = RandomRig(&rng);
    StoreRig rig(ro);
    ASSERT_TRUE(rig.Create().ok());
    ASSERT_TRUE(rig.Open().ok());
    Model model;
    WorkloadOptions wo;
    wo.block_bytes = ro.store.block_bytes;
    Workload work(seed, wo, &model);
    work.set_crash_probe([&rig] { return rig.disk() != nullptr && rig.disk()->crashed(); });
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < 25; ++i) ASSERT_TRUE(work.Step(rig.store()));
      // Measure how many disk writes a checkpoint takes now...
      uint64_t before = rig.disk()->mutating_ops();
      ASSERT_TRUE(rig.store()->Checkpoint().ok());
      const uint64_t cost = rig.disk()->mutating_ops() - before;
      for (int i = 0; i < 3; ++i) ASSERT_TRUE(work.Step(rig.store()));
      // ...and cut the next one somewhere inside (or just after).
      const CrashMode mode = rng.OneIn(2) ? CrashMode::kDropUnsynced : CrashMode::kRandomPartial;
      before = rig.disk()->mutating_ops();
      rig.disk()->ArmCrash(before + rng.Uniform(cost + 3), rng.OneIn(2), mode, rng.Next());
      Status s = rig.store()->Checkpoint();
      if (!rig.disk()->crashed()) {
        ASSERT_TRUE(s.ok()) << s.ToString();
        // Cut right after the root moved, before anything else is appended.
        for (int i = 0; i < 2 && !rig.disk()->crashed(); ++i) work.Step(rig.store());
        if (HasFailure()) return;
      }
      rig.Crash(mode, rng.Next());
      ASSERT_TRUE(rig.Open().ok());
      work.ResolveInFlight(rig.store());
      dtest::ExpectStoreMatches(rig.store(), model, "round " + std::to_string(round));
      if (HasFailure()) return;
    }
  }
}

// A torn tail must be skipped durably before new records follow it: crash
// mid-stream of a large upload, reopen, write, crash again, reopen.
TEST(DocStoreCrashTest, TornTailThenMoreCrashes) {
  dtest::QuietLogs quiet;
  for (uint64_t seed : Seeds(24, 14)) {
    SCOPED_TRACE(SeedTrace(seed));
    Random rng(seed);
    RigOptions ro = RandomRig(&rng);
    ro.max_pending_bytes = 16 << 10;  // stripes go out while the stream runs
    StoreRig rig(ro);
    ASSERT_TRUE(rig.Create().ok());
    ASSERT_TRUE(rig.Open().ok());
    Model model;
    WorkloadOptions wo;
    wo.block_bytes = ro.store.block_bytes;
    Workload work(seed, wo, &model);
    work.set_crash_probe([&rig] { return rig.disk() != nullptr && rig.disk()->crashed(); });
    for (int round = 0; round < 8; ++round) {
      for (int i = 0; i < 4; ++i) {
        ASSERT_TRUE(work.Step(rig.store()));
      }
      // An upload that never commits, cut by a partial crash.
      for (int i = 0; i < 6; ++i) {
        dtest::ModelBlock b{rng.Next(), ro.store.block_bytes, false};
        ASSERT_TRUE(rig.store()->WriteBlock(dtest::BlockBytes(b)).ok());
      }
      rig.Crash(CrashMode::kRandomPartial, rng.Next());
      ASSERT_TRUE(rig.Open().ok());
      work.ResolveInFlight(rig.store());
      dtest::ExpectStoreMatches(rig.store(), model, "round " + std::to_string(round));
      if (HasFailure()) return;
    }
  }
}

}  // namespace
}  // namespace cairn::chunkserver

namespace cairn::chunkserver {
namespace {

// Every reopen after a torn tail adds a skip to the volume root; before the
// root's list can fill, recovery folds them into a checkpoint.
TEST(DocStoreCrashTest, ManyTornTailsFoldIntoACheckpoint) {
  dtest::QuietLogs quiet;
  const uint64_t seed = Seeds(1, 15).front();
  SCOPED_TRACE(SeedTrace(seed));
  Random rng(seed);
  RigOptions ro;
  ro.disks = 2;
  ro.max_unit_bytes = 4096;  // 4 KiB stripes: records straddle them
  ro.max_pending_bytes = 4096;
  ro.store.block_bytes = 8192;
  StoreRig rig(ro);
  ASSERT_TRUE(rig.Create().ok());
  ASSERT_TRUE(rig.Open().ok());
  Model model;
  WorkloadOptions wo;
  wo.block_bytes = 4096;
  Workload work(seed, wo, &model);
  int torn_opens = 0;
  bool folded = false;
  for (int round = 0; round < 1000 && !folded; ++round) {
    ASSERT_TRUE(work.Step(rig.store()));
    // The segment this life writes to exists durably (a step may not sync).
    ASSERT_TRUE(rig.volume()->Sync().ok());
    // A stream that never commits; its tail is cut mid-record.
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(rig.store()->WriteBlock(dtest::BlockBytes({rng.Next(), 5000, false})).ok());
    }
    rig.Crash(CrashMode::kRandomPartial, rng.Next());
    ASSERT_TRUE(rig.Open().ok());
    ++torn_opens;
    folded = rig.store()->stats().checkpoints > 0;
    work.ResolveInFlight(rig.store());
    if (round % 10 == 0 || folded) {
      dtest::ExpectStoreMatches(rig.store(), model, "round " + std::to_string(round));
    }
    if (HasFailure()) return;
  }
  EXPECT_TRUE(folded) << "no checkpoint after " << torn_opens << " reopens";
}

}  // namespace
}  // namespace cairn::chunkserver
