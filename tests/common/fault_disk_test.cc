// FaultDisk: every fault kind fires, only under its prefix, at the configured
// rate, and replays exactly from its seed.
#include "common/fault_disk.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <string>
#include <vector>

#include "common/mem_disk.h"

namespace cairn {
namespace {

std::vector<std::byte> Filled(size_t n, uint8_t v) {
  return std::vector<std::byte>(n, static_cast<std::byte>(v));
}

class FaultDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* d : {"/d0", "/d1", "/d10"}) {
      ASSERT_TRUE(mem_.CreateDir(d).ok());
      Put(std::string(d) + "/f", Filled(256, 0x5A));
    }
  }
  // Writes `data` to `path` on the underlying MemDisk (no faults).
  void Put(const std::string& path, const std::vector<std::byte>& data) {
    auto f = mem_.Open(path, OpenMode::kCreate);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->WriteAt(0, data).ok());
    ASSERT_TRUE((*f)->Sync().ok());
    ASSERT_TRUE(mem_.SyncDir(ParentPath(path)).ok());
  }
  std::vector<std::byte> Get(Disk& disk, const std::string& path) {
    auto r = ReadWholeFile(disk, path, 1 << 20);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::vector<std::byte>{};
  }

  MemDisk mem_;
};

TEST_F(FaultDiskTest, NoRulesPassesThrough) {
  FaultDisk disk(&mem_, 1);
  auto f = disk.Open("/d0/f", OpenMode::kReadWrite);
  ASSERT_TRUE(f.ok());
  std::vector<std::byte> buf(256);
  EXPECT_EQ(*(*f)->ReadAt(0, buf), 256u);
  EXPECT_EQ(buf, Filled(256, 0x5A));
  EXPECT_TRUE((*f)->WriteAt(0, Filled(4, 1)).ok());
  EXPECT_TRUE((*f)->Sync().ok());
  EXPECT_TRUE((*f)->Truncate(100).ok());
  EXPECT_EQ(*(*f)->Size(), 100u);
  EXPECT_TRUE(disk.SyncDir("/d0").ok());
  EXPECT_TRUE(disk.CreateDir("/d0/sub").ok());
  EXPECT_TRUE(disk.ListDir("/d0").ok());
  EXPECT_TRUE(disk.Stat("/d0/f").ok());
  EXPECT_TRUE(disk.Rename("/d0/f", "/d0/g").ok());
  EXPECT_TRUE(disk.Remove("/d0/g").ok());
  EXPECT_EQ(disk.injected(), 0u);
  // Errors of the base disk come through unchanged.
  EXPECT_EQ(disk.Open("/d0/none", OpenMode::kRead).status().code(), StatusCode::kNotFound);
}

TEST_F(FaultDiskTest, DeadFailsEverythingUnderPrefix) {
  FaultDisk disk(&mem_, 1);
  auto before = disk.Open("/d1/f", OpenMode::kReadWrite);  // opened while alive
  ASSERT_TRUE(before.ok());
  disk.Inject("/d1/", FaultKind::kDead);
  std::vector<std::byte> buf(16);
  EXPECT_EQ(disk.Open("/d1/f", OpenMode::kRead).status().code(), StatusCode::kIOError);
  EXPECT_EQ(disk.Open("/d1/new", OpenMode::kCreate).status().code(), StatusCode::kIOError);
  EXPECT_EQ((*before)->ReadAt(0, buf).status().code(), StatusCode::kIOError);
  EXPECT_EQ((*before)->WriteAt(0, buf).code(), StatusCode::kIOError);
  EXPECT_EQ((*before)->Sync().code(), StatusCode::kIOError);
  EXPECT_EQ((*before)->Truncate(0).code(), StatusCode::kIOError);
  EXPECT_FALSE((*before)->Size().ok());
  EXPECT_EQ(disk.Remove("/d1/f").code(), StatusCode::kIOError);
  EXPECT_EQ(disk.Rename("/d1/f", "/d1/g").code(), StatusCode::kIOError);
  EXPECT_EQ(disk.SyncDir("/d1").code(), StatusCode::kIOError);
  EXPECT_EQ(disk.ListDir("/d1").status().code(), StatusCode::kIOError);
  EXPECT_EQ(disk.Stat("/d1/f").status().code(), StatusCode::kIOError);
  EXPECT_EQ(disk.Stat("/d1").status().code(), StatusCode::kIOError);
  EXPECT_EQ(disk.CreateDir("/d1/sub").code(), StatusCode::kIOError);
  EXPECT_GT(disk.injected(), 10u);
  // Nothing changed underneath.
  EXPECT_EQ(Get(mem_, "/d1/f"), Filled(256, 0x5A));
  EXPECT_FALSE(mem_.Stat("/d1/new").ok());
  // Other disks, including one whose name shares the prefix text, work.
  for (const char* p : {"/d0/f", "/d10/f"}) {
    SCOPED_TRACE(p);
    EXPECT_EQ(Get(disk, p), Filled(256, 0x5A));
    auto f = disk.Open(p, OpenMode::kReadWrite);
    ASSERT_TRUE(f.ok());
    EXPECT_TRUE((*f)->WriteAt(0, buf).ok());
    EXPECT_TRUE((*f)->Sync().ok());
  }
  EXPECT_TRUE(disk.SyncDir("/d10").ok());
}

TEST_F(FaultDiskTest, ReadErrorFailsReadsOnly) {
  FaultDisk disk(&mem_, 2);
  disk.Inject("/d0/", FaultKind::kReadError);
  auto f = disk.Open("/d0/f", OpenMode::kReadWrite);
  ASSERT_TRUE(f.ok());
  std::vector<std::byte> buf(16);
  EXPECT_EQ((*f)->ReadAt(0, buf).status().code(), StatusCode::kIOError);
  EXPECT_TRUE((*f)->WriteAt(0, Filled(16, 7)).ok());
  EXPECT_TRUE((*f)->Sync().ok());
  EXPECT_TRUE((*f)->Size().ok());
  EXPECT_TRUE(disk.SyncDir("/d0").ok());
  EXPECT_EQ(disk.ListDir("/d0").status().code(), StatusCode::kIOError);
  EXPECT_EQ(Get(mem_, "/d0/f")[0], std::byte{7});  // the write landed
  EXPECT_EQ(Get(disk, "/d1/f"), Filled(256, 0x5A));
}

TEST_F(FaultDiskTest, WriteErrorFailsWritesAndTruncatesOnly) {
  FaultDisk disk(&mem_, 3);
  auto f = disk.Open("/d0/f", OpenMode::kReadWrite);
  ASSERT_TRUE(f.ok());
  disk.Inject("/d0/", FaultKind::kWriteError);
  EXPECT_EQ((*f)->WriteAt(0, Filled(16, 7)).code(), StatusCode::kIOError);
  EXPECT_EQ((*f)->Truncate(0).code(), StatusCode::kIOError);
  EXPECT_EQ(disk.Open("/d0/f", OpenMode::kReadWrite).status().code(), StatusCode::kIOError);
  EXPECT_EQ(disk.CreateDir("/d0/x").code(), StatusCode::kIOError);
  EXPECT_EQ(disk.Rename("/d1/f", "/d0/g").code(), StatusCode::kIOError);  // target under prefix
  EXPECT_TRUE((*f)->Sync().ok());
  EXPECT_EQ(Get(disk, "/d0/f"), Filled(256, 0x5A));  // reads fine, nothing changed
  EXPECT_TRUE(disk.Open("/d0/f", OpenMode::kRead).ok());
  auto g = disk.Open("/d1/f", OpenMode::kReadWrite);
  ASSERT_TRUE(g.ok());
  EXPECT_TRUE((*g)->WriteAt(0, Filled(16, 7)).ok());
}

TEST_F(FaultDiskTest, SyncErrorFailsSyncsOnly) {
  FaultDisk disk(&mem_, 4);
  disk.Inject("/d0/", FaultKind::kSyncError);
  auto f = disk.Open("/d0/f", OpenMode::kReadWrite);
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE((*f)->WriteAt(0, Filled(16, 7)).ok());
  EXPECT_EQ((*f)->Sync().code(), StatusCode::kIOError);
  EXPECT_EQ(disk.SyncDir("/d0").code(), StatusCode::kIOError);
  EXPECT_TRUE(disk.SyncDir("/d1").ok());
  // The failed sync did not make the write durable.
  Random rng(1);
  mem_.Crash(MemDisk::CrashMode::kDropUnsynced, &rng);
  EXPECT_EQ(Get(mem_, "/d0/f"), Filled(256, 0x5A));
}

TEST_F(FaultDiskTest, LostWriteReportsSuccessAndStoresNothing) {
  FaultDisk disk(&mem_, 5);
  disk.Inject("/d0/", FaultKind::kLostWrite);
  auto f = disk.Open("/d0/f", OpenMode::kReadWrite);
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE((*f)->WriteAt(0, Filled(16, 7)).ok());
  EXPECT_TRUE((*f)->WriteAt(1000, Filled(16, 7)).ok());
  EXPECT_TRUE((*f)->Sync().ok());
  EXPECT_EQ(Get(mem_, "/d0/f"), Filled(256, 0x5A));
  EXPECT_EQ(Get(disk, "/d0/f"), Filled(256, 0x5A));
  EXPECT_EQ(disk.injected(), 2u);
  auto g = disk.Open("/d1/f", OpenMode::kReadWrite);
  ASSERT_TRUE(g.ok());
  EXPECT_TRUE((*g)->WriteAt(0, Filled(16, 7)).ok());
  EXPECT_EQ(Get(mem_, "/d1/f")[0], std::byte{7});
}

TEST_F(FaultDiskTest, ReadBitFlipFlipsExactlyOneBitOfWhatWasRead) {
  FaultDisk disk(&mem_, 6);
  disk.Inject("/d0/", FaultKind::kReadBitFlip);
  auto f = disk.Open("/d0/f", OpenMode::kRead);
  ASSERT_TRUE(f.ok());
  std::vector<size_t> flipped_at;
  for (int i = 0; i < 200; ++i) {
    std::vector<std::byte> buf(300, std::byte{0});
    auto n = (*f)->ReadAt(0, buf);
    ASSERT_TRUE(n.ok());
    ASSERT_EQ(*n, 256u);
    int bits = 0;
    for (size_t j = 0; j < buf.size(); ++j) {
      std::byte want = j < 256 ? std::byte{0x5A} : std::byte{0};
      bits += std::popcount(static_cast<unsigned>(buf[j] ^ want));
      if (buf[j] != want) {
        EXPECT_LT(j, 256u) << "flip outside the bytes read";
        flipped_at.push_back(j);
      }
    }
    EXPECT_EQ(bits, 1);
  }
  // The flips land all over, not always on one byte.
  std::sort(flipped_at.begin(), flipped_at.end());
  flipped_at.erase(std::unique(flipped_at.begin(), flipped_at.end()), flipped_at.end());
  EXPECT_GT(flipped_at.size(), 50u);
  // The stored bytes are untouched; an empty read flips nothing.
  EXPECT_EQ(Get(mem_, "/d0/f"), Filled(256, 0x5A));
  std::vector<std::byte> past(8);
  EXPECT_EQ(*(*f)->ReadAt(1000, past), 0u);
  EXPECT_EQ(Get(disk, "/d1/f"), Filled(256, 0x5A));
}

TEST_F(FaultDiskTest, OneInFiresAtRoughlyThatRateAndCountsInjected) {
  FaultDisk disk(&mem_, 7);
  disk.Inject("/d0/", FaultKind::kReadError, 4);
  auto f = disk.Open("/d0/f", OpenMode::kRead);
  ASSERT_TRUE(f.ok());
  std::vector<std::byte> buf(8);
  uint64_t failures = 0;
  for (int i = 0; i < 4000; ++i) {
    if (!(*f)->ReadAt(0, buf).ok()) ++failures;
  }
  EXPECT_GT(failures, 800u);
  EXPECT_LT(failures, 1200u);
  EXPECT_EQ(disk.injected(), failures);
}

TEST_F(FaultDiskTest, SameSeedReplaysSameFaults) {
  auto pattern = [&](uint64_t seed) {
    FaultDisk disk(&mem_, seed);
    disk.Inject("/d0/", FaultKind::kReadError, 3);
    disk.Inject("/d0/", FaultKind::kReadBitFlip, 2);
    auto f = disk.Open("/d0/f", OpenMode::kRead);
    std::string out;
    std::vector<std::byte> buf(256);
    for (int i = 0; i < 300; ++i) {
      auto n = (*f)->ReadAt(0, buf);
      if (!n.ok()) {
        out += 'E';
        continue;
      }
      size_t at = 0;
      while (at < buf.size() && buf[at] == std::byte{0x5A}) ++at;
      out += std::to_string(at) + ",";
    }
    return out;
  };
  EXPECT_EQ(pattern(11), pattern(11));
  EXPECT_NE(pattern(11), pattern(12));
}

TEST_F(FaultDiskTest, ClearFaultsByPrefixAndAll) {
  FaultDisk disk(&mem_, 8);
  disk.Inject("/d0/", FaultKind::kReadError);
  disk.Inject("/d1/", FaultKind::kReadError);
  std::vector<std::byte> buf(8);
  auto f0 = disk.Open("/d0/f", OpenMode::kRead);
  auto f1 = disk.Open("/d1/f", OpenMode::kRead);
  ASSERT_TRUE(f0.ok() && f1.ok());
  EXPECT_FALSE((*f0)->ReadAt(0, buf).ok());
  EXPECT_FALSE((*f1)->ReadAt(0, buf).ok());
  disk.ClearFaults("/d0/");
  EXPECT_TRUE((*f0)->ReadAt(0, buf).ok());
  EXPECT_FALSE((*f1)->ReadAt(0, buf).ok());
  disk.Inject("/d0/", FaultKind::kDead);
  disk.ClearFaults();
  EXPECT_TRUE((*f0)->ReadAt(0, buf).ok());
  EXPECT_TRUE((*f1)->ReadAt(0, buf).ok());
  EXPECT_TRUE(disk.Open("/d0/f", OpenMode::kReadWrite).ok());
}

TEST_F(FaultDiskTest, FaultsOnlyApplyToTheirKind) {
  // A read-flip rule never fails a call; a lost-write rule never alters a read.
  FaultDisk disk(&mem_, 9);
  disk.Inject("/d0/", FaultKind::kReadBitFlip);
  disk.Inject("/d0/", FaultKind::kLostWrite);
  auto f = disk.Open("/d0/f", OpenMode::kReadWrite);
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE((*f)->Sync().ok());
  EXPECT_TRUE((*f)->Truncate(256).ok());
  EXPECT_TRUE(disk.SyncDir("/d0").ok());
  EXPECT_TRUE(disk.ListDir("/d0").ok());
  EXPECT_TRUE(disk.Stat("/d0/f").ok());
}

}  // namespace
}  // namespace cairn
