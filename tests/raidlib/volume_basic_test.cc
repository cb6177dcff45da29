// Basic behaviour of a healthy volume: append, sync, read back, reopen,
// segments, group commit from many threads.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <thread>

#include "common/mem_disk.h"
#include "common/random.h"
#include "raidlib/volume.h"

namespace cairn::raidlib {
namespace {

std::vector<std::byte> Pattern(uint64_t seed, size_t n) {
  Random rng(seed);
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(rng.Next());
  return v;
}

VolumeOptions Options(MemDisk* disk, uint32_t n) {
  VolumeOptions o;
  for (uint32_t i = 0; i < n; ++i) o.disk_dirs.push_back("/d" + std::to_string(i));
  o.max_unit_bytes = 64 * 1024;
  o.segment_bytes = 512 * 1024;
  o.max_pending_bytes = 256 * 1024;
  o.disk = disk;
  return o;
}

class VolumeBasic : public ::testing::TestWithParam<uint32_t> {};

TEST_P(VolumeBasic, AppendSyncReadReopen) {
  MemDisk disk;
  VolumeOptions o = Options(&disk, GetParam());
  ASSERT_TRUE(Volume::Create(o).ok());
  std::vector<std::byte> model;
  {
    auto v = Volume::Open(o);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    Random rng(GetParam());
    for (int i = 0; i < 200; ++i) {
      size_t n = 1 + rng.Uniform(i % 10 == 0 ? 300000 : 5000);
      auto data = Pattern(static_cast<uint64_t>(i), n);
      auto off = (*v)->Append(data);
      ASSERT_TRUE(off.ok());
      EXPECT_EQ(*off, model.size());
      model.insert(model.end(), data.begin(), data.end());
      if (rng.OneIn(5)) {
        ASSERT_TRUE((*v)->Sync().ok());
      }
      // Unsynced and synced bytes alike read back at once.
      std::vector<std::byte> back(n);
      ASSERT_TRUE((*v)->Read(*off, back).ok());
      ASSERT_EQ(back, data);
    }
    ASSERT_TRUE((*v)->Sync().ok());
    EXPECT_EQ((*v)->durable_offset(), model.size());
    std::vector<std::byte> all(model.size());
    ASSERT_TRUE((*v)->Read(0, all).ok());
    EXPECT_EQ(all, model);
    EXPECT_GT((*v)->Segments().size(), 1u);  // rolled over 1 MiB segments
    EXPECT_EQ((*v)->stats().corruptions_detected, 0u);
  }
  auto v = Volume::Open(o);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ((*v)->end_offset(), model.size());
  std::vector<std::byte> all(model.size());
  ASSERT_TRUE((*v)->Read(0, all).ok());
  EXPECT_EQ(all, model);
  // Random ranged reads, crossing stripes and units.
  Random rng(99);
  for (int i = 0; i < 300; ++i) {
    uint64_t off = rng.Uniform(model.size());
    size_t n = static_cast<size_t>(1 + rng.Uniform(std::min<uint64_t>(200000, model.size() - off)));
    std::vector<std::byte> part(n);
    ASSERT_TRUE((*v)->Read(off, part).ok());
    ASSERT_TRUE(std::equal(part.begin(), part.end(), model.begin() + static_cast<long>(off)));
  }
  auto scrub = (*v)->Scrub();
  ASSERT_TRUE(scrub.ok());
  EXPECT_TRUE(scrub->clean());
  EXPECT_GT(scrub->stripes_checked, 0u);
}

INSTANTIATE_TEST_SUITE_P(Widths, VolumeBasic, ::testing::Values(1u, 2u, 3u, 4u, 6u));

TEST(VolumeBasicMisc, SmallAppendsUseNarrowStripes) {
  MemDisk disk;
  VolumeOptions o = Options(&disk, 5);
  ASSERT_TRUE(Volume::Create(o).ok());
  auto v = Volume::Open(o);
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE((*v)->Append(Pattern(1, 100)).ok());
  ASSERT_TRUE((*v)->Sync().ok());
  // One data unit plus parity: only two of the five disks got a segment file.
  int with_files = 0;
  for (int i = 0; i < 5; ++i) {
    auto names = disk.ListDir("/d" + std::to_string(i));
    ASSERT_TRUE(names.ok());
    with_files += names->size() > 1 ? 1 : 0;
  }
  EXPECT_EQ(with_files, 2);
}

// The header cache is used from header_cache_from on: small units (a small
// append synced alone) and reads near the start of a unit read the header
// with the chunks and leave the cache alone; reads deeper in a large unit
// keep its header, and a second such read finds it.
TEST(VolumeBasicMisc, HeaderCacheServesOnlyReadsDeepInAUnit) {
  MemDisk disk;
  VolumeOptions o = Options(&disk, 3);
  ASSERT_TRUE(Volume::Create(o).ok());
  auto v = Volume::Open(o);
  ASSERT_TRUE(v.ok());
  const std::vector<std::byte> small = Pattern(2, 300);
  ASSERT_TRUE((*v)->Append(small).ok());
  ASSERT_TRUE((*v)->Sync().ok());
  const std::vector<std::byte> big = Pattern(3, 128 * 1024);  // two 64 KiB data units
  ASSERT_TRUE((*v)->Append(big).ok());
  ASSERT_TRUE((*v)->Sync().ok());
  std::vector<std::byte> got(4096);
  auto read = [&](uint64_t at, const std::vector<std::byte>& want, uint64_t in) {
    ASSERT_TRUE(
        (*v)->Read(at, std::span(got).first(std::min<size_t>(4096, want.size() - in))).ok());
    EXPECT_EQ(0,
              std::memcmp(got.data(), want.data() + in, std::min<size_t>(4096, want.size() - in)));
  };
  read(0, small, 0);  // a 4 KiB unit
  read(300, big, 0);  // the start of a large unit
  EXPECT_EQ((*v)->stats().header_cache_misses, 0u);
  EXPECT_EQ((*v)->stats().header_cache_bytes, 0u);
  read(300 + 40 * 1024, big, 40 * 1024);  // 40 KiB into the first data unit
  EXPECT_EQ((*v)->stats().header_cache_misses, 1u);
  EXPECT_GT((*v)->stats().header_cache_bytes, 0u);
  read(300 + 50 * 1024, big, 50 * 1024);  // the same unit: its header is kept
  EXPECT_EQ((*v)->stats().header_cache_hits, 1u);
  EXPECT_EQ((*v)->stats().header_cache_misses, 1u);
}

TEST(VolumeBasicMisc, ReleasedSegmentIsGoneAndStaysGone) {
  MemDisk disk;
  VolumeOptions o = Options(&disk, 3);
  ASSERT_TRUE(Volume::Create(o).ok());
  auto v = Volume::Open(o);
  ASSERT_TRUE(v.ok());
  auto data = Pattern(5, 6 << 20);
  ASSERT_TRUE((*v)->Append(data).ok());
  ASSERT_TRUE((*v)->Sync().ok());
  auto segs = (*v)->Segments();
  ASSERT_GE(segs.size(), 3u);
  ASSERT_TRUE(segs[0].sealed);
  EXPECT_FALSE(segs.back().sealed);
  EXPECT_EQ((*v)->ReleaseSegment(segs.back().id).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE((*v)->ReleaseSegment(segs[1].id).ok());
  std::vector<std::byte> buf(10);
  EXPECT_EQ((*v)->Read(segs[1].logical_start, buf).code(), StatusCode::kNotFound);
  ASSERT_TRUE((*v)->Read(segs[0].logical_start, buf).ok());
  v->reset();
  auto again = Volume::Open(o);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*again)->Read(segs[1].logical_start, buf).code(), StatusCode::kNotFound);
  std::vector<std::byte> tail(segs.back().logical_end - segs.back().logical_start);
  ASSERT_TRUE((*again)->Read(segs.back().logical_start, tail).ok());
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(),
                         data.begin() + static_cast<long>(segs.back().logical_start)));
  EXPECT_EQ((*again)->end_offset(), data.size());
}

TEST(VolumeBasicMisc, ConcurrentAppendersGroupCommit) {
  MemDisk disk;
  VolumeOptions o = Options(&disk, 4);
  ASSERT_TRUE(Volume::Create(o).ok());
  auto v = Volume::Open(o);
  ASSERT_TRUE(v.ok());
  constexpr int kThreads = 4;
  constexpr int kEach = 200;
  std::vector<std::vector<std::pair<uint64_t, std::vector<std::byte>>>> written(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto data = Pattern(static_cast<uint64_t>(t * 100000 + i), 64 + static_cast<size_t>(i));
        auto off = (*v)->Append(data);
        ASSERT_TRUE(off.ok());
        ASSERT_TRUE((*v)->Sync().ok());
        written[static_cast<size_t>(t)].push_back({*off, data});
      }
    });
  }
  for (auto& th : threads) th.join();
  // Fewer group commits than Sync calls shows the sharing; all data is there.
  EXPECT_LE((*v)->stats().syncs, uint64_t{kThreads * kEach});
  for (const auto& list : written) {
    for (const auto& [off, data] : list) {
      std::vector<std::byte> back(data.size());
      ASSERT_TRUE((*v)->Read(off, back).ok());
      ASSERT_EQ(back, data);
    }
  }
}

TEST(VolumeBasicMisc, EmptyVolumeReopens) {
  MemDisk disk;
  VolumeOptions o = Options(&disk, 3);
  ASSERT_TRUE(Volume::Create(o).ok());
  for (int i = 0; i < 3; ++i) {
    auto v = Volume::Open(o);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ((*v)->end_offset(), 0u);
    std::vector<std::byte> one(1);
    EXPECT_EQ((*v)->Read(0, one).code(), StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace cairn::raidlib

namespace cairn::raidlib {
namespace {

TEST(VolumeAppRoot, SurvivesReopenAndCrashWhole) {
  MemDisk disk;
  VolumeOptions o = Options(&disk, 3);
  ASSERT_TRUE(Volume::Create(o).ok());
  Random rng(3);
  {
    auto v = Volume::Open(o);
    ASSERT_TRUE(v.ok());
    EXPECT_TRUE((*v)->app_root().empty());
    ASSERT_TRUE((*v)->SetAppRoot(Pattern(1, 100)).ok());
    EXPECT_EQ((*v)->app_root(), Pattern(1, 100));
    std::vector<std::byte> too_big(kMaxAppRootBytes + 1);
    EXPECT_EQ((*v)->SetAppRoot(too_big).code(), StatusCode::kInvalidArgument);
  }
  disk.Crash(MemDisk::CrashMode::kRandomPartial, &rng);
  auto v = Volume::Open(o);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)->app_root(), Pattern(1, 100));
}

// Segments() runs concurrently with write-outs that cross segment
// boundaries: a segment it reports sealed must be complete, i.e. its
// logical_end never changes afterwards.
TEST(VolumeSegments, SealedMeansComplete) {
  MemDisk disk;
  VolumeOptions o = Options(&disk, 3);
  o.segment_bytes = 256 * 1024;
  ASSERT_TRUE(Volume::Create(o).ok());
  auto v = Volume::Open(o);
  ASSERT_TRUE(v.ok());
  std::atomic<bool> done{false};
  std::map<SegmentId, uint64_t> sealed_end;
  std::string violation;
  std::thread watcher([&] {
    while (!done.load()) {
      for (const SegmentInfo& s : (*v)->Segments()) {
        if (!s.sealed) continue;
        auto [it, fresh] = sealed_end.emplace(s.id, s.logical_end);
        if (!fresh && it->second != s.logical_end && violation.empty()) {
          violation = "segment " + std::to_string(s.id.value()) + " reported sealed at end " +
                      std::to_string(it->second) + ", later " + std::to_string(s.logical_end);
        }
      }
    }
  });
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE((*v)->Append(Pattern(static_cast<uint64_t>(i), 200000)).ok());
    if (i % 7 == 0) {
      ASSERT_TRUE((*v)->Sync().ok());
    }
  }
  ASSERT_TRUE((*v)->Sync().ok());
  done = true;
  watcher.join();
  EXPECT_EQ(violation, "");
  for (const SegmentInfo& s : (*v)->Segments()) {
    if (sealed_end.count(s.id) != 0) {
      EXPECT_EQ(sealed_end[s.id], s.logical_end) << s.id;
    }
  }
  EXPECT_GT(sealed_end.size(), 10u);
}

// Reads racing the release of their segment either finish with the right
// bytes or answer NotFound; never DataLoss, and no disk is blamed.
TEST(VolumeSegments, ReadsRacingReleaseAreExactOrNotFound) {
  MemDisk disk;
  VolumeOptions o = Options(&disk, 3);
  o.segment_bytes = 256 * 1024;
  ASSERT_TRUE(Volume::Create(o).ok());
  auto v = Volume::Open(o);
  ASSERT_TRUE(v.ok());
  std::vector<std::byte> model;
  for (int i = 0; i < 200; ++i) {
    auto data = Pattern(static_cast<uint64_t>(i), 50000);
    ASSERT_TRUE((*v)->Append(data).ok());
    model.insert(model.end(), data.begin(), data.end());
  }
  ASSERT_TRUE((*v)->Sync().ok());
  std::vector<SegmentInfo> segs = (*v)->Segments();
  ASSERT_GT(segs.size(), 4u);
  std::atomic<bool> done{false};
  std::atomic<int> exact{0}, not_found{0}, other{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      Random rng(static_cast<uint64_t>(t));
      while (!done.load()) {
        const SegmentInfo& s = segs[rng.Uniform(segs.size() - 1)];
        const uint64_t len = std::min<uint64_t>(30000, s.logical_end - s.logical_start);
        const uint64_t off =
            s.logical_start + rng.Uniform(s.logical_end - s.logical_start - len + 1);
        std::vector<std::byte> out(len);
        Status st = (*v)->Read(off, out);
        if (st.ok() && std::equal(out.begin(), out.end(), model.begin() + static_cast<long>(off))) {
          ++exact;
        } else if (st.code() == StatusCode::kNotFound) {
          ++not_found;
        } else {
          ++other;
        }
      }
    });
  }
  for (size_t i = 0; i + 1 < segs.size(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ASSERT_TRUE((*v)->ReleaseSegment(segs[i].id).ok());
  }
  done = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_GT(exact.load(), 0);
  EXPECT_GT(not_found.load(), 0);
  for (const DiskStatus& d : (*v)->disks()) {
    EXPECT_EQ(d.state, DiskState::kHealthy);
    EXPECT_EQ(d.io_errors, 0u);
    EXPECT_EQ(d.checksum_errors, 0u);
  }
}

}  // namespace
}  // namespace cairn::raidlib
