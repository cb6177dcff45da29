// Compaction of DocStore against the model: random workloads that leave dead
// space, Compact(), reopen, compare; readers holding old DocEntries; power
// cuts inside a compaction; compaction running under concurrent writers and
// readers. CAIRN_SEED=<n> replays one seed.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

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

RigOptions SmallSegments(uint64_t seed) {
  RigOptions o;
  o.disks = 3;
  o.max_unit_bytes = 16 << 10;
  o.segment_bytes = seed % 2 == 0 ? 64 << 10 : 128 << 10;
  o.max_pending_bytes = 64 << 10;
  o.store.block_bytes = 8192;
  o.store.zstd_level = 1;
  o.store.cache_bytes = 64 << 10;
  o.store.checkpoint_part_bytes = 4096;
  o.store.compact_live_fraction = 0.7;
  o.store.max_segments_per_compaction = 6;
  return o;
}

WorkloadOptions Churn(uint32_t block_bytes) {
  WorkloadOptions w;
  w.partitions = 2;
  w.ids_per_collection = 6;  // many overwrites: dead space
  w.block_bytes = block_bytes;
  return w;
}

std::set<uint32_t> SegmentIds(raidlib::Volume* v) {
  std::set<uint32_t> out;
  for (const auto& s : v->Segments()) out.insert(s.id.value());
  return out;
}

TEST(DocStoreCompactionTest, AgainstTheModel) {
  dtest::QuietLogs quiet;
  uint64_t released_total = 0;
  for (uint64_t seed : Seeds(16, 21)) {
    SCOPED_TRACE(SeedTrace(seed));
    RigOptions ro = SmallSegments(seed);
    StoreRig rig(ro);
    ASSERT_TRUE(rig.Create().ok());
    ASSERT_TRUE(rig.Open().ok());
    Model model;
    Workload work(seed, Churn(ro.store.block_bytes), &model);
    work.set_crash_probe([&rig] { return rig.disk() != nullptr && rig.disk()->crashed(); });
    for (int round = 0; round < 4; ++round) {
      const std::string ctx = "round " + std::to_string(round);
      for (int i = 0; i < 60; ++i) {
        ASSERT_TRUE(work.Step(rig.store())) << ctx;
        if (i % 20 == 19) {  // seals the current segment
          ASSERT_TRUE(rig.Open().ok());
        }
      }
      const DocStoreStats before = rig.store()->stats();
      auto report = rig.store()->Compact();
      ASSERT_TRUE(report.ok()) << ctx << ": " << report.status().ToString();
      released_total += report->released.size();
      const DocStoreStats after = rig.store()->stats();
      EXPECT_EQ(after.live_bytes, before.live_bytes) << ctx;
      EXPECT_EQ(after.documents, before.documents) << ctx;
      if (!report->released.empty()) {
        EXPECT_LT(after.dead_bytes, before.dead_bytes) << ctx;
      }
      const std::set<uint32_t> segs = SegmentIds(rig.volume());
      for (SegmentId id : report->released) EXPECT_EQ(segs.count(id.value()), 0u) << ctx;
      dtest::ExpectStoreMatches(rig.store(), model, ctx + " after compaction");
      ASSERT_TRUE(rig.Open().ok());
      dtest::ExpectStoreMatches(rig.store(), model, ctx + " after compaction + reopen");
      if (HasFailure()) return;
    }
  }
  EXPECT_GT(released_total, 0u) << "no compaction released anything: the test is too gentle";
}

uint64_t AllocatedBytes(raidlib::Volume* v) {
  uint64_t n = 0;
  for (const auto& s : v->Segments()) n += s.allocated_bytes;
  return n;
}

// Small documents committed one at a time: each commit is its own stripe of
// padded 4 KiB units behind 4 KiB headers, so a segment takes many times its
// data on disk though little in it is dead. Compaction picks such segments
// by how densely they were written and rewrites their live blocks in full
// stripes: the disk space shrinks, the data equals the model (also after a
// reopen, and after a power cut inside the compaction), and the space stays
// down through later passes.
TEST(DocStoreCompactionTest, SparseSegmentsOfSmallCommitsAreRewrittenDense) {
  dtest::QuietLogs quiet;
  int crashed_runs = 0;
  for (uint64_t seed : Seeds(8, 29)) {
    SCOPED_TRACE(SeedTrace(seed));
    Random rng(seed);
    // SmallSegments' store, on 4 disks with room for full stripes, picking
    // segments with the default threshold.
    RigOptions ro = SmallSegments(seed);
    ro.disks = 4;
    ro.max_unit_bytes = 64 << 10;
    ro.segment_bytes = 256 << 10;
    ro.max_pending_bytes = 256 << 10;
    ro.store.block_bytes = 4096;
    ro.store.compact_live_fraction = DocStoreOptions().compact_live_fraction;
    ro.store.max_segments_per_compaction = DocStoreOptions().max_segments_per_compaction;
    StoreRig rig(ro);
    ASSERT_TRUE(rig.Create().ok());
    ASSERT_TRUE(rig.Open().ok());
    Model model;
    WorkloadOptions wo;
    wo.partitions = 2;
    wo.ids_per_collection = 100000;  // nearly all new documents: little dead space
    wo.max_blocks = 1;
    wo.block_bytes = ro.store.block_bytes;
    Workload work(seed, wo, &model);
    work.set_crash_probe([&rig] { return rig.disk() != nullptr && rig.disk()->crashed(); });
    for (int i = 0; i < 150; ++i) ASSERT_TRUE(work.Step(rig.store())) << "step " << i;
    ASSERT_TRUE(rig.Open().ok());  // seals the segment being written
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(work.Step(rig.store()));
    // The premise: the sealed segments were written sparsely.
    uint64_t dense = 0, allocated = 0;
    for (const auto& seg : rig.volume()->Segments()) {
      if (!seg.sealed) continue;
      dense += seg.dense_bytes;
      allocated += seg.allocated_bytes;
    }
    ASSERT_GT(allocated, 0u);
    EXPECT_LT(dense * 3, allocated) << dense << " dense bytes in " << allocated;
    // ...and most of their logical bytes are live: by that share alone no
    // segment would be picked.
    const DocStoreStats st = rig.store()->stats();
    EXPECT_GT(st.live_bytes, st.dead_bytes)
        << st.live_bytes << " live, " << st.dead_bytes << " dead";
    const uint64_t allocated_before = AllocatedBytes(rig.volume());

    if (rng.OneIn(2)) {
      ++crashed_runs;
      const CrashMode mode = rng.OneIn(2) ? CrashMode::kDropUnsynced : CrashMode::kRandomPartial;
      rig.disk()->ArmCrash(rig.disk()->mutating_ops() + rng.Uniform(200), rng.OneIn(2), mode,
                           rng.Next());
      auto report = rig.store()->Compact();
      ASSERT_TRUE(report.ok() || rig.disk()->crashed()) << report.status().ToString();
      rig.Crash(mode, rng.Next());
      Status s = rig.Open();
      ASSERT_TRUE(s.ok()) << "reopen: " << s.ToString();
      work.ResolveInFlight(rig.store());
      dtest::ExpectStoreMatches(rig.store(), model, "after a power cut in compaction");
      if (HasFailure()) return;
    }
    auto report = rig.store()->Compact();
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    dtest::ExpectStoreMatches(rig.store(), model, "after compaction");
    ASSERT_TRUE(rig.Open().ok());
    dtest::ExpectStoreMatches(rig.store(), model, "after compaction + reopen");
    const uint64_t allocated_after = AllocatedBytes(rig.volume());
    EXPECT_LT(allocated_after * 3, allocated_before)
        << "compaction left " << allocated_after << " of " << allocated_before << " bytes";
    // Later passes (after a few more small commits and a sealed segment)
    // may copy live blocks again, since their segment is sparse too when
    // little is live, but the space stays down and nothing is lost.
    for (int pass = 0; pass < 3; ++pass) {
      for (int i = 0; i < 3; ++i) ASSERT_TRUE(work.Step(rig.store()));
      ASSERT_TRUE(rig.Open().ok());
      for (int i = 0; i < 3; ++i) ASSERT_TRUE(work.Step(rig.store()));
      auto again = rig.store()->Compact();
      ASSERT_TRUE(again.ok()) << again.status().ToString();
      EXPECT_LT(AllocatedBytes(rig.volume()) * 2, allocated_before) << "pass " << pass;
    }
    dtest::ExpectStoreMatches(rig.store(), model, "after more passes");
    ASSERT_TRUE(rig.Open().ok());
    dtest::ExpectStoreMatches(rig.store(), model, "after more passes + reopen");
    if (HasFailure()) return;
  }
  EXPECT_GT(crashed_runs, 0);
}

// A reader holding a DocEntry from before a compaction reads the right bytes
// or gets Unavailable; a copy-on-write put naming the old blocks is
// translated or refused with Unavailable. Never other bytes.
TEST(DocStoreCompactionTest, StaleEntriesNeverReadWrongBytes) {
  dtest::QuietLogs quiet;
  for (uint64_t seed : Seeds(10, 22)) {
    SCOPED_TRACE(SeedTrace(seed));
    RigOptions ro = SmallSegments(seed);
    ro.store.compact_live_fraction = 1.0;  // compact every sealed segment
    StoreRig rig(ro);
    ASSERT_TRUE(rig.Create().ok());
    ASSERT_TRUE(rig.Open().ok());
    Model model;
    Workload work(seed, Churn(ro.store.block_bytes), &model);
    work.set_crash_probe([&rig] { return rig.disk() != nullptr && rig.disk()->crashed(); });
    for (int i = 0; i < 40; ++i) ASSERT_TRUE(work.Step(rig.store()));
    ASSERT_TRUE(rig.Open().ok());
    std::vector<std::pair<dtest::Key, DocEntry>> old;
    for (const auto& [key, doc] : model.docs) {
      auto e =
          rig.store()->Lookup(PartitionId(std::get<0>(key)), std::get<1>(key), std::get<2>(key));
      ASSERT_TRUE(e.ok() && e->has_value());
      old.emplace_back(key, **e);
    }
    const Model snapshot = model;
    uint64_t unavailable = 0;
    for (int gen = 0; gen < 2; ++gen) {
      ASSERT_TRUE(rig.Open().ok());  // seal
      auto report = rig.store()->Compact();
      ASSERT_TRUE(report.ok()) << report.status().ToString();
      for (const auto& [key, entry] : old) {
        std::vector<std::byte> got(static_cast<size_t>(entry.meta.size));
        Status s = rig.store()->ReadRange(entry, 0, got);
        if (s.code() == StatusCode::kUnavailable) {
          ++unavailable;
          continue;
        }
        ASSERT_TRUE(s.ok()) << s.ToString();
        std::vector<std::byte> want(got.size());
        dtest::ModelRead(snapshot.docs.at(key), 0, want);
        ASSERT_TRUE(got == want) << "stale entry read other bytes, gen " << gen;
      }
    }
    // Old references in a put: translated (then the document reads right)
    // or refused.
    for (const auto& [key, entry] : old) {
      const auto& [p, c, id] = key;
      Mutation m = dtest::PutMutation(p, model.NextLsn(p), c, id, snapshot.docs.at(key).blocks,
                                      entry.blocks);
      Result<ApplyResult> r = rig.store()->Apply(m);
      if (!r.ok()) {
        ASSERT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
        continue;
      }
      model.last_lsn[p] = m.lsn.value();
      dtest::ModelDoc d = snapshot.docs.at(key);
      d.version = r->version;
      d.meta = m.meta;
      model.docs[key] = d;
    }
    dtest::ExpectStoreMatches(rig.store(), model, "after stale puts");
    ASSERT_TRUE(rig.Open().ok());
    dtest::ExpectStoreMatches(rig.store(), model, "after stale puts + reopen");
    (void)unavailable;
    if (HasFailure()) return;
  }
}

// Power cuts at random disk writes inside Compact(): copying, the
// checkpoint, the root, the segment releases.
TEST(DocStoreCompactionTest, CrashDuringCompaction) {
  dtest::QuietLogs quiet;
  for (uint64_t seed : Seeds(40, 23)) {
    SCOPED_TRACE(SeedTrace(seed));
    Random rng(seed);
    RigOptions ro = SmallSegments(seed);
    StoreRig rig(ro);
    ASSERT_TRUE(rig.Create().ok());
    ASSERT_TRUE(rig.Open().ok());
    Model model;
    Workload work(seed, Churn(ro.store.block_bytes), &model);
    work.set_crash_probe([&rig] { return rig.disk() != nullptr && rig.disk()->crashed(); });
    for (int round = 0; round < 3; ++round) {
      const std::string ctx = "round " + std::to_string(round);
      for (int i = 0; i < 40; ++i) {
        ASSERT_TRUE(work.Step(rig.store())) << ctx;
        if (i % 15 == 14) {
          ASSERT_TRUE(rig.Open().ok());
        }
      }
      const CrashMode mode = rng.OneIn(2) ? CrashMode::kDropUnsynced : CrashMode::kRandomPartial;
      const uint64_t before = rig.disk()->mutating_ops();
      rig.disk()->ArmCrash(before + rng.Uniform(120), rng.OneIn(2), mode, rng.Next());
      auto report = rig.store()->Compact();
      ASSERT_TRUE(report.ok() || rig.disk()->crashed())
          << ctx << ": " << report.status().ToString();
      for (int i = 0; i < 3 && !rig.disk()->crashed(); ++i) work.Step(rig.store());
      if (HasFailure()) return;
      rig.Crash(mode, rng.Next());
      Status s = rig.Open();
      ASSERT_TRUE(s.ok()) << ctx << ": reopen: " << s.ToString();
      work.ResolveInFlight(rig.store());
      dtest::ExpectStoreMatches(rig.store(), model, ctx + " after crash in compaction");
      // And compaction finishes cleanly afterwards.
      ASSERT_TRUE(rig.store()->Compact().ok());
      dtest::ExpectStoreMatches(rig.store(), model, ctx + " after a clean compaction");
      if (HasFailure()) return;
    }
  }
}

// Writers on their own partitions, readers checking every document they see
// against the block list it carries, and compactions and checkpoints, all at
// once. Afterwards (and after a reopen) the store equals the writers' models.
TEST(DocStoreCompactionTest, ConcurrentWritersReadersAndCompaction) {
  dtest::QuietLogs quiet;
  for (uint64_t seed : Seeds(4, 24)) {
    SCOPED_TRACE(SeedTrace(seed));
    RigOptions ro = SmallSegments(seed);
    ro.store.compact_live_fraction = 0.9;
    StoreRig rig(ro);
    ASSERT_TRUE(rig.Create().ok());
    ASSERT_TRUE(rig.Open().ok());
    DocStore* store = rig.store();
    constexpr int kWriters = 3;
    std::vector<Model> models(kWriters);
    std::atomic<bool> stop{false};
    std::atomic<int> writers_left{kWriters};
    std::atomic<uint64_t> reads{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kWriters; ++t) {
      threads.emplace_back([&, t] {
        WorkloadOptions wo = Churn(ro.store.block_bytes);
        wo.partition_base = static_cast<uint32_t>(10 * t);
        Workload work(seed * 100 + static_cast<uint64_t>(t), wo, &models[static_cast<size_t>(t)]);
        work.set_tolerate_unavailable(true);
        for (int i = 0; i < 120; ++i) {
          if (!work.Step(store)) {
            ADD_FAILURE() << "writer " << t << " step " << i;
            break;
          }
        }
        --writers_left;
      });
    }
    threads.emplace_back([&] {  // reader
      Random rng(seed);
      while (!stop.load()) {
        const uint32_t p = static_cast<uint32_t>(10 * rng.Uniform(kWriters) + rng.Uniform(2));
        const std::string coll = rng.OneIn(2) ? "alpha" : "beta.docs";
        auto page = store->List(PartitionId(p), coll, "", 100);
        if (!page.ok()) {
          ADD_FAILURE() << page.status().ToString();
          return;
        }
        for (const ListItem& item : page->items) {
          auto e = store->Lookup(PartitionId(p), coll, item.id);
          if (!e.ok() || !e->has_value()) continue;  // gone meanwhile
          const DocEntry& entry = **e;
          dtest::ModelDoc d;
          d.blocks = dtest::ParseBlocks(entry.meta.xattrs.at("user.model"));
          std::vector<std::byte> got(static_cast<size_t>(entry.meta.size));
          Status s = store->ReadRange(entry, 0, got);
          if (s.code() == StatusCode::kUnavailable) continue;  // compacted away: look up again
          if (!s.ok()) {
            ADD_FAILURE() << "read: " << s.ToString();
            return;
          }
          std::vector<std::byte> want(got.size());
          dtest::ModelRead(d, 0, want);
          if (got != want) {
            ADD_FAILURE() << "concurrent read returned wrong bytes for " << entry.id;
            return;
          }
          ++reads;
        }
      }
    });
    int compactions = 0;
    while (writers_left.load() > 0) {
      auto r = store->Compact();
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      compactions += r->released.empty() ? 0 : 1;
      ASSERT_TRUE(store->Checkpoint().ok());
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    stop = true;
    for (auto& th : threads) th.join();
    if (HasFailure()) return;
    EXPECT_GT(reads.load(), 0u);
    Model all;
    for (const Model& m : models) {
      all.docs.insert(m.docs.begin(), m.docs.end());
      all.last_lsn.insert(m.last_lsn.begin(), m.last_lsn.end());
    }
    dtest::ExpectStoreMatches(store, all, "after the concurrent run");
    ASSERT_TRUE(rig.Open().ok());
    dtest::ExpectStoreMatches(rig.store(), all, "after the concurrent run + reopen");
    (void)compactions;
  }
}

}  // namespace
}  // namespace cairn::chunkserver

namespace cairn::chunkserver {
namespace {

// Blocks of an upload in progress (written, not yet named by a put) are
// moved by compaction like live ones: the put that finally names them by
// the offsets WriteBlock returned still works. Forgotten ones are not kept.
TEST(DocStoreCompactionTest, UploadInProgressSurvivesCompaction) {
  dtest::QuietLogs quiet;
  RigOptions ro = SmallSegments(1);
  ro.store.compact_live_fraction = 1.0;
  StoreRig rig(ro);
  ASSERT_TRUE(rig.Create().ok());
  ASSERT_TRUE(rig.Open().ok());
  DocStore* store = rig.store();
  std::vector<dtest::ModelBlock> kept_blocks, forgotten_blocks;
  std::vector<BlockRef> kept, forgotten;
  for (uint64_t i = 0; i < 12; ++i) {
    kept_blocks.push_back({100 + i, 8192, false});
    auto r = store->WriteBlock(dtest::BlockBytes(kept_blocks.back()));
    ASSERT_TRUE(r.ok());
    kept.push_back(*r);
    forgotten_blocks.push_back({200 + i, 8192, false});
    r = store->WriteBlock(dtest::BlockBytes(forgotten_blocks.back()));
    ASSERT_TRUE(r.ok());
    forgotten.push_back(*r);
  }
  store->ForgetBlocks(forgotten);
  // Fill segments with other data until the upload's are sealed, compact.
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(
        store->WriteBlock(dtest::BlockBytes({900u + static_cast<uint64_t>(i), 8192, false})).ok());
  }
  ASSERT_TRUE(rig.volume()->Sync().ok());
  const uint64_t first_seg_end = rig.volume()->Segments().front().logical_end;
  ASSERT_LT(kept.front().offset, first_seg_end);
  ASSERT_TRUE(rig.volume()->Segments().front().sealed);
  for (int round = 0; round < 2; ++round) {
    auto report = store->Compact();
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_FALSE(report->released.empty());
  }
  Mutation m = dtest::PutMutation(1, 1, "up", "loaded", kept_blocks, kept);
  auto r = store->Apply(m);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  dtest::ModelDoc want{r->version, m.meta, m.body_hash, kept_blocks};
  dtest::ExpectDocMatches(store, {1, "up", "loaded"}, want, "after compactions");
  Mutation lost = dtest::PutMutation(1, 2, "up", "lost", forgotten_blocks, forgotten);
  EXPECT_EQ(store->Apply(lost).status().code(), StatusCode::kUnavailable);
  ASSERT_TRUE(rig.Open().ok());
  dtest::ExpectDocMatches(rig.store(), {1, "up", "loaded"}, want, "after reopen");
}

}  // namespace
}  // namespace cairn::chunkserver
