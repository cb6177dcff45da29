// MemDisk: the in-memory disk whose Crash() keeps exactly what a real disk
// promises to keep. Crash tests of everything above it trust these semantics,
// so they are pinned down here, together with WriteFileAtomic and the path
// helpers.
#include "common/mem_disk.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "common/disk.h"
#include "common/random.h"
#include "tests/common/crash_point_disk.h"

namespace cairn {
namespace {

using CrashMode = MemDisk::CrashMode;

std::vector<std::byte> Bytes(const std::string& s) {
  std::vector<std::byte> out(s.size());
  for (size_t i = 0; i < s.size(); ++i) out[i] = static_cast<std::byte>(s[i]);
  return out;
}

std::vector<std::byte> Filled(size_t n, uint8_t v) {
  return std::vector<std::byte>(n, static_cast<std::byte>(v));
}

std::vector<std::byte> RandomBytes(Random* rng, size_t n) {
  std::vector<std::byte> out(n);
  for (auto& b : out) b = static_cast<std::byte>(rng->Next() & 0xFF);
  return out;
}

// The whole file, or the error of opening it.
Result<std::vector<std::byte>> Contents(Disk& disk, const std::string& path) {
  return ReadWholeFile(disk, path, 1ull << 30);
}

void WriteNew(Disk& disk, const std::string& path, std::span<const std::byte> data, bool sync) {
  auto f = disk.Open(path, OpenMode::kCreate);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_TRUE((*f)->WriteAt(0, data).ok());
  if (sync) {
    ASSERT_TRUE((*f)->Sync().ok());
  }
}

bool Exists(Disk& disk, const std::string& path) { return disk.Stat(path).ok(); }

uint64_t Seed(uint64_t dflt) {
  const char* env = std::getenv("CAIRN_SEED");  // NOLINT(concurrency-mt-unsafe)
  return env != nullptr ? std::strtoull(env, nullptr, 0) : dflt;
}

// ---- plain file-system semantics ----

TEST(MemDiskTest, OpenModes) {
  MemDisk disk;
  EXPECT_EQ(disk.Open("/a", OpenMode::kRead).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(disk.Open("/a", OpenMode::kReadWrite).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(disk.Open("/a", OpenMode::kCreateNew).ok());
  EXPECT_EQ(disk.Open("/a", OpenMode::kCreateNew).status().code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(disk.Open("/a", OpenMode::kCreate).ok());
  EXPECT_TRUE(disk.Open("/a", OpenMode::kRead).ok());
  EXPECT_TRUE(disk.Open("/a", OpenMode::kReadWrite).ok());
  // No parent directory.
  EXPECT_EQ(disk.Open("/nodir/a", OpenMode::kCreate).status().code(), StatusCode::kNotFound);
  // A directory is not a file.
  ASSERT_TRUE(disk.CreateDir("/dir").ok());
  EXPECT_EQ(disk.Open("/dir", OpenMode::kRead).status().code(), StatusCode::kInvalidArgument);
}

TEST(MemDiskTest, ReadWriteSizeAndHoles) {
  MemDisk disk;
  auto f = disk.Open("/f", OpenMode::kCreate);
  ASSERT_TRUE(f.ok());
  File& file = **f;
  ASSERT_TRUE(file.WriteAt(0, Bytes("hello")).ok());
  ASSERT_TRUE(file.WriteAt(10, Bytes("world")).ok());  // leaves a hole of zeros
  EXPECT_EQ(*file.Size(), 15u);

  std::vector<std::byte> buf(20, std::byte{0x77});
  auto n = file.ReadAt(0, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 15u);  // short read at end of file
  std::vector<std::byte> want = Bytes("hello");
  want.resize(10, std::byte{0});
  for (auto b : Bytes("world")) want.push_back(b);
  EXPECT_TRUE(std::equal(want.begin(), want.end(), buf.begin()));

  // Overwrite in the middle.
  ASSERT_TRUE(file.WriteAt(3, Bytes("XY")).ok());
  std::vector<std::byte> small(4);
  ASSERT_EQ(*file.ReadAt(2, small), 4u);
  EXPECT_EQ(small,
            (std::vector<std::byte>{std::byte{'l'}, std::byte{'X'}, std::byte{'Y'}, std::byte{0}}));
  // Reads at and past the end return nothing.
  EXPECT_EQ(*file.ReadAt(15, small), 0u);
  EXPECT_EQ(*file.ReadAt(1000, small), 0u);
  // An empty write is fine.
  EXPECT_TRUE(file.WriteAt(2, {}).ok());
  EXPECT_EQ(*file.Size(), 15u);
}

TEST(MemDiskTest, TruncateShrinksAndGrowsWithZeros) {
  MemDisk disk;
  auto f = disk.Open("/f", OpenMode::kCreate);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->WriteAt(0, Filled(100, 0xAB)).ok());
  ASSERT_TRUE((*f)->Truncate(40).ok());
  EXPECT_EQ(*(*f)->Size(), 40u);
  ASSERT_TRUE((*f)->Truncate(60).ok());
  auto c = Contents(disk, "/f");
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->size(), 60u);
  for (size_t i = 0; i < 60; ++i) {
    EXPECT_EQ((*c)[i], i < 40 ? std::byte{0xAB} : std::byte{0}) << i;
  }
}

TEST(MemDiskTest, ReadOnlyHandleCannotWrite) {
  MemDisk disk;
  WriteNew(disk, "/f", Bytes("abc"), true);
  auto f = disk.Open("/f", OpenMode::kRead);
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE((*f)->WriteAt(0, Bytes("x")).ok());
  EXPECT_FALSE((*f)->Truncate(0).ok());
  EXPECT_EQ(*Contents(disk, "/f"), Bytes("abc"));
}

TEST(MemDiskTest, DirectoriesListStatRemoveRename) {
  MemDisk disk;
  EXPECT_TRUE(disk.CreateDir("/d").ok());
  EXPECT_TRUE(disk.CreateDir("/d").ok());  // already there is fine
  EXPECT_EQ(disk.CreateDir("/x/y").code(), StatusCode::kNotFound);
  ASSERT_TRUE(disk.CreateDir("/d/sub").ok());
  WriteNew(disk, "/d/a", Bytes("1"), false);
  WriteNew(disk, "/d/b", Bytes("22"), false);
  WriteNew(disk, "/d/sub/c", Bytes("333"), false);
  EXPECT_EQ(disk.CreateDir("/d/a").code(), StatusCode::kAlreadyExists);

  auto names = disk.ListDir("/d");
  ASSERT_TRUE(names.ok());
  std::sort(names->begin(), names->end());
  EXPECT_EQ(*names, (std::vector<std::string>{"a", "b", "sub"}));
  EXPECT_EQ(disk.ListDir("/nope").status().code(), StatusCode::kNotFound);

  auto st = disk.Stat("/d/b");
  ASSERT_TRUE(st.ok());
  EXPECT_FALSE(st->is_dir);
  EXPECT_EQ(st->size, 2u);
  EXPECT_TRUE(disk.Stat("/d/sub")->is_dir);
  EXPECT_EQ(disk.Stat("/d/zz").status().code(), StatusCode::kNotFound);

  EXPECT_TRUE(disk.Rename("/d/a", "/d/sub/a2").ok());
  EXPECT_FALSE(Exists(disk, "/d/a"));
  EXPECT_EQ(*Contents(disk, "/d/sub/a2"), Bytes("1"));
  // Rename over an existing file replaces it.
  EXPECT_TRUE(disk.Rename("/d/b", "/d/sub/a2").ok());
  EXPECT_EQ(*Contents(disk, "/d/sub/a2"), Bytes("22"));
  EXPECT_EQ(disk.Rename("/d/missing", "/d/x").code(), StatusCode::kNotFound);
  EXPECT_EQ(disk.Rename("/d/sub/c", "/nodir/c").code(), StatusCode::kNotFound);
  EXPECT_TRUE(Exists(disk, "/d/sub/c"));  // a failed rename leaves the source

  EXPECT_TRUE(disk.Remove("/d/sub/c").ok());
  EXPECT_EQ(disk.Remove("/d/sub/c").code(), StatusCode::kNotFound);
  EXPECT_FALSE(Exists(disk, "/d/sub/c"));
}

TEST(MemDiskTest, RemoveDirRecursive) {
  MemDisk disk;
  ASSERT_TRUE(disk.CreateDir("/d").ok());
  ASSERT_TRUE(disk.CreateDir("/d/s").ok());
  ASSERT_TRUE(disk.CreateDir("/dd").ok());
  WriteNew(disk, "/d/s/f", Bytes("x"), true);
  WriteNew(disk, "/dd/f", Bytes("y"), true);
  ASSERT_TRUE(disk.SyncDir("/d/s").ok());
  ASSERT_TRUE(disk.SyncDir("/dd").ok());
  ASSERT_TRUE(disk.RemoveDirRecursive("/d").ok());
  EXPECT_FALSE(Exists(disk, "/d"));
  EXPECT_FALSE(Exists(disk, "/d/s/f"));
  EXPECT_TRUE(Exists(disk, "/dd/f"));  // a sibling with a common prefix stays
  // Gone for good, also after a crash.
  Random rng(1);
  disk.Crash(CrashMode::kDropUnsynced, &rng);
  EXPECT_FALSE(Exists(disk, "/d/s/f"));
  EXPECT_EQ(*Contents(disk, "/dd/f"), Bytes("y"));
}

// ---- crash semantics ----

TEST(MemDiskCrashTest, SyncedDataSurvivesUnsyncedIsDropped) {
  MemDisk disk;
  ASSERT_TRUE(disk.CreateDir("/d").ok());
  auto f = disk.Open("/d/f", OpenMode::kCreate);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(disk.SyncDir("/d").ok());
  ASSERT_TRUE((*f)->WriteAt(0, Filled(1000, 1)).ok());
  ASSERT_TRUE((*f)->Sync().ok());
  ASSERT_TRUE((*f)->WriteAt(500, Filled(1000, 2)).ok());  // overwrite + extend, unsynced
  ASSERT_TRUE((*f)->Truncate(100).ok());                  // unsynced truncation

  Random rng(7);
  disk.Crash(CrashMode::kDropUnsynced, &rng);
  EXPECT_EQ(*Contents(disk, "/d/f"), Filled(1000, 1));
  // The old handle is dead.
  std::vector<std::byte> buf(10);
  EXPECT_EQ((*f)->ReadAt(0, buf).status().code(), StatusCode::kIOError);
  EXPECT_EQ((*f)->WriteAt(0, buf).code(), StatusCode::kIOError);
  EXPECT_EQ((*f)->Sync().code(), StatusCode::kIOError);
  EXPECT_FALSE((*f)->Size().ok());
}

TEST(MemDiskCrashTest, SyncedTruncationSurvives) {
  MemDisk disk;
  WriteNew(disk, "/f", Filled(1000, 1), true);
  ASSERT_TRUE(disk.SyncDir("/").ok());
  auto f = disk.Open("/f", OpenMode::kReadWrite);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Truncate(10).ok());
  ASSERT_TRUE((*f)->Sync().ok());
  Random rng(7);
  disk.Crash(CrashMode::kDropUnsynced, &rng);
  EXPECT_EQ(*Contents(disk, "/f"), Filled(10, 1));
}

TEST(MemDiskCrashTest, NewFileVanishesUnlessDirectorySynced) {
  MemDisk disk;
  ASSERT_TRUE(disk.CreateDir("/d").ok());
  WriteNew(disk, "/d/synced_data_only", Bytes("data"), /*sync=*/true);
  Random rng(3);
  disk.Crash(CrashMode::kDropUnsynced, &rng);
  EXPECT_EQ(disk.Stat("/d/synced_data_only").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Exists(disk, "/d"));  // directories are durable once created

  // Name synced, data not: the file exists and is empty.
  WriteNew(disk, "/d/name_only", Bytes("data"), /*sync=*/false);
  ASSERT_TRUE(disk.SyncDir("/d").ok());
  disk.Crash(CrashMode::kDropUnsynced, &rng);
  auto c = Contents(disk, "/d/name_only");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->empty());

  // Both synced: survives whole.
  WriteNew(disk, "/d/both", Bytes("data"), /*sync=*/true);
  ASSERT_TRUE(disk.SyncDir("/d").ok());
  disk.Crash(CrashMode::kDropUnsynced, &rng);
  EXPECT_EQ(*Contents(disk, "/d/both"), Bytes("data"));
}

TEST(MemDiskCrashTest, SyncDirCoversOnlyThatDirectory) {
  MemDisk disk;
  ASSERT_TRUE(disk.CreateDir("/a").ok());
  ASSERT_TRUE(disk.CreateDir("/b").ok());
  WriteNew(disk, "/a/f", Bytes("a"), true);
  WriteNew(disk, "/b/f", Bytes("b"), true);
  ASSERT_TRUE(disk.SyncDir("/a").ok());
  EXPECT_EQ(disk.SyncDir("/missing").code(), StatusCode::kNotFound);
  Random rng(3);
  disk.Crash(CrashMode::kDropUnsynced, &rng);
  EXPECT_TRUE(Exists(disk, "/a/f"));
  EXPECT_FALSE(Exists(disk, "/b/f"));
}

TEST(MemDiskCrashTest, RenameAndRemoveDurableOnlyAfterSyncDir) {
  MemDisk disk;
  ASSERT_TRUE(disk.CreateDir("/d").ok());
  WriteNew(disk, "/d/a", Bytes("A"), true);
  WriteNew(disk, "/d/victim", Bytes("V"), true);
  ASSERT_TRUE(disk.SyncDir("/d").ok());
  Random rng(5);

  // Not synced: the crash undoes the rename and the removal.
  ASSERT_TRUE(disk.Rename("/d/a", "/d/b").ok());
  ASSERT_TRUE(disk.Remove("/d/victim").ok());
  EXPECT_FALSE(Exists(disk, "/d/a"));
  disk.Crash(CrashMode::kDropUnsynced, &rng);
  EXPECT_EQ(*Contents(disk, "/d/a"), Bytes("A"));
  EXPECT_FALSE(Exists(disk, "/d/b"));
  EXPECT_EQ(*Contents(disk, "/d/victim"), Bytes("V"));

  // Synced: they stick.
  ASSERT_TRUE(disk.Rename("/d/a", "/d/b").ok());
  ASSERT_TRUE(disk.Remove("/d/victim").ok());
  ASSERT_TRUE(disk.SyncDir("/d").ok());
  disk.Crash(CrashMode::kDropUnsynced, &rng);
  EXPECT_FALSE(Exists(disk, "/d/a"));
  EXPECT_EQ(*Contents(disk, "/d/b"), Bytes("A"));
  EXPECT_FALSE(Exists(disk, "/d/victim"));
}

TEST(MemDiskCrashTest, RenameAcrossDirectoriesNeedsBothSynced) {
  MemDisk disk;
  ASSERT_TRUE(disk.CreateDir("/x").ok());
  ASSERT_TRUE(disk.CreateDir("/y").ok());
  WriteNew(disk, "/x/f", Bytes("F"), true);
  ASSERT_TRUE(disk.SyncDir("/x").ok());
  ASSERT_TRUE(disk.Rename("/x/f", "/y/f").ok());
  ASSERT_TRUE(disk.SyncDir("/y").ok());  // target named, source not yet dropped
  Random rng(5);
  disk.Crash(CrashMode::kDropUnsynced, &rng);
  EXPECT_EQ(*Contents(disk, "/y/f"), Bytes("F"));
  EXPECT_EQ(*Contents(disk, "/x/f"), Bytes("F"));
}

TEST(MemDiskCrashTest, RandomPartialKeepsOnlyPrefixesOfUnsyncedWrites) {
  // Durable: 64 KiB of 0xAA. Then 32 unsynced writes of distinct values to
  // disjoint ranges. After a partial crash each range must hold a prefix of
  // its write followed by the old bytes: never other bytes, never a suffix.
  constexpr size_t kWrites = 32;
  constexpr size_t kLen = 1024;
  bool saw_lost = false, saw_whole = false, saw_torn = false;
  const uint64_t first = Seed(1);
  const uint64_t count = std::getenv("CAIRN_SEED") != nullptr ? 1 : 40;  // NOLINT
  for (uint64_t seed = first; seed < first + count; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    MemDisk disk;
    WriteNew(disk, "/f", Filled(kWrites * 2 * kLen, 0xAA), true);
    ASSERT_TRUE(disk.SyncDir("/").ok());
    auto f = disk.Open("/f", OpenMode::kReadWrite);
    ASSERT_TRUE(f.ok());
    for (size_t w = 0; w < kWrites; ++w) {
      ASSERT_TRUE((*f)->WriteAt(w * 2 * kLen, Filled(kLen, static_cast<uint8_t>(w + 1))).ok());
    }
    Random rng(seed);
    disk.Crash(CrashMode::kRandomPartial, &rng);
    auto c = Contents(disk, "/f");
    ASSERT_TRUE(c.ok());
    ASSERT_EQ(c->size(), kWrites * 2 * kLen);
    for (size_t w = 0; w < kWrites; ++w) {
      const size_t base = w * 2 * kLen;
      size_t kept = 0;
      while (kept < kLen && (*c)[base + kept] == static_cast<std::byte>(w + 1)) ++kept;
      for (size_t i = kept; i < 2 * kLen; ++i) {
        ASSERT_EQ((*c)[base + i], std::byte{0xAA}) << "write " << w << " byte " << i;
      }
      if (kept == 0)
        saw_lost = true;
      else if (kept == kLen)
        saw_whole = true;
      else
        saw_torn = true;
    }
  }
  if (std::getenv("CAIRN_SEED") == nullptr) {  // NOLINT(concurrency-mt-unsafe)
    EXPECT_TRUE(saw_lost);
    EXPECT_TRUE(saw_whole);
    EXPECT_TRUE(saw_torn);
  }
}

TEST(MemDiskCrashTest, RandomPartialCanExtendAndIsDeterministic) {
  auto run = [](uint64_t seed) {
    MemDisk disk;
    WriteNew(disk, "/f", Filled(100, 1), true);
    EXPECT_TRUE(disk.SyncDir("/").ok());
    auto f = disk.Open("/f", OpenMode::kReadWrite);
    EXPECT_TRUE(f.ok());
    Random data(seed * 31);
    for (int i = 0; i < 20; ++i) {
      uint64_t off = data.Uniform(4000);
      EXPECT_TRUE((*f)->WriteAt(off, RandomBytes(&data, 1 + data.Uniform(500))).ok());
    }
    Random rng(seed);
    disk.Crash(CrashMode::kRandomPartial, &rng);
    return *Contents(disk, "/f");
  };
  size_t max_size = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    auto a = run(seed);
    EXPECT_EQ(a, run(seed)) << "seed " << seed;
    EXPECT_GE(a.size(), 100u);
    max_size = std::max(max_size, a.size());
  }
  EXPECT_GT(max_size, 100u);  // some unsynced extension survived somewhere
}

TEST(MemDiskCrashTest, RandomPartialNeverResurrectsUnsyncedNames) {
  MemDisk disk;
  ASSERT_TRUE(disk.CreateDir("/d").ok());
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    WriteNew(disk, "/d/tmp" + std::to_string(seed), Bytes("x"), false);
    Random rng(seed);
    disk.Crash(CrashMode::kRandomPartial, &rng);
    EXPECT_FALSE(Exists(disk, "/d/tmp" + std::to_string(seed)));
  }
}

TEST(MemDiskCrashTest, TestHelpersChangeDurableContents) {
  MemDisk disk;
  WriteNew(disk, "/f", Filled(100, 0), true);
  ASSERT_TRUE(disk.SyncDir("/").ok());
  ASSERT_TRUE(disk.Corrupt("/f", 10, Filled(5, 0xEE)).ok());
  ASSERT_TRUE(disk.FlipBit("/f", 8 * 50 + 3).ok());
  ASSERT_TRUE(disk.TruncateFile("/f", 80).ok());
  EXPECT_EQ(disk.Corrupt("/f", 78, Filled(5, 1)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(disk.FlipBit("/f", 8 * 80).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(disk.Corrupt("/nope", 0, Filled(1, 1)).code(), StatusCode::kNotFound);
  std::vector<std::byte> want = Filled(80, 0);
  for (size_t i = 10; i < 15; ++i) want[i] = std::byte{0xEE};
  want[50] = std::byte{0x08};
  EXPECT_EQ(*Contents(disk, "/f"), want);
  Random rng(1);
  disk.Crash(CrashMode::kDropUnsynced, &rng);
  EXPECT_EQ(*Contents(disk, "/f"), want);
  // Truncating to a larger size does not grow the file.
  ASSERT_TRUE(disk.TruncateFile("/f", 1000).ok());
  EXPECT_EQ(Contents(disk, "/f")->size(), 80u);
}

// ---- WriteFileAtomic and ReadWholeFile ----

TEST(WriteFileAtomicTest, CreatesAndReplaces) {
  MemDisk disk;
  ASSERT_TRUE(disk.CreateDir("/d").ok());
  ASSERT_TRUE(WriteFileAtomic(disk, "/d/f", Bytes("first")).ok());
  EXPECT_EQ(*Contents(disk, "/d/f"), Bytes("first"));
  ASSERT_TRUE(WriteFileAtomic(disk, "/d/f", Bytes("2nd")).ok());
  EXPECT_EQ(*Contents(disk, "/d/f"), Bytes("2nd"));
  auto names = disk.ListDir("/d");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{"f"});  // no temp file left behind
  // Durable on return.
  Random rng(1);
  disk.Crash(CrashMode::kRandomPartial, &rng);
  EXPECT_EQ(*Contents(disk, "/d/f"), Bytes("2nd"));
  EXPECT_EQ(WriteFileAtomic(disk, "/nodir/f", Bytes("x")).code(), StatusCode::kNotFound);
}

TEST(WriteFileAtomicTest, ReadWholeFileLimits) {
  MemDisk disk;
  ASSERT_TRUE(WriteFileAtomic(disk, "/f", Filled(100, 3)).ok());
  EXPECT_EQ(ReadWholeFile(disk, "/f", 100)->size(), 100u);
  EXPECT_EQ(ReadWholeFile(disk, "/f", 99).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadWholeFile(disk, "/none", 99).status().code(), StatusCode::kNotFound);
}

// Crashes WriteFileAtomic at every mutating step, before and after the step,
// in both crash modes: the file must hold the old contents or the new, whole.
TEST(WriteFileAtomicTest, CrashAtAnyPointLeavesOldOrNew) {
  const std::vector<std::byte> old_data = Filled(5000, 0x11);
  const std::vector<std::byte> new_data = Filled(3000, 0x22);
  for (bool existed : {true, false}) {
    for (CrashMode mode : {CrashMode::kDropUnsynced, CrashMode::kRandomPartial}) {
      for (bool after : {false, true}) {
        bool completed = false;
        for (uint64_t op = 0; !completed && op < 100; ++op) {
          for (uint64_t seed = 1; seed <= 8; ++seed) {
            SCOPED_TRACE("existed=" + std::to_string(existed) +
                         " mode=" + std::to_string(static_cast<int>(mode)) +
                         " after=" + std::to_string(after) + " op=" + std::to_string(op) +
                         " seed=" + std::to_string(seed));
            MemDisk mem;
            ASSERT_TRUE(mem.CreateDir("/d").ok());
            if (existed) {
              ASSERT_TRUE(WriteFileAtomic(mem, "/d/f", old_data).ok());
              // A stale temp file from an earlier crash must not matter.
              WriteNew(mem, "/d/f.tmp", Filled(9000, 0x33), true);
              ASSERT_TRUE(mem.SyncDir("/d").ok());
            }
            testutil::CrashPointDisk disk(&mem);
            disk.ArmCrash(op, after, mode, seed);
            Status s = WriteFileAtomic(disk, "/d/f", new_data);
            if (!disk.crashed()) {
              ASSERT_TRUE(s.ok()) << s.ToString();
              completed = true;
              Random rng(seed);
              mem.Crash(mode, &rng);
            }
            auto c = Contents(mem, "/d/f");
            if (s.ok()) {
              ASSERT_TRUE(c.ok());
              EXPECT_EQ(*c, new_data);
            } else if (c.ok()) {
              EXPECT_TRUE(*c == new_data || (existed && *c == old_data)) << "size " << c->size();
            } else {
              EXPECT_FALSE(existed) << c.status().ToString();
              EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
            }
          }
        }
        EXPECT_TRUE(completed);
      }
    }
  }
}

// ---- path helpers ----

TEST(PathTest, JoinAndParent) {
  EXPECT_EQ(JoinPath("/a", "b"), "/a/b");
  EXPECT_EQ(JoinPath("/a/", "b"), "/a/b");
  EXPECT_EQ(JoinPath("", "b"), "b");
  EXPECT_EQ(JoinPath("/", "b"), "/b");
  EXPECT_EQ(ParentPath("/a/b"), "/a");
  EXPECT_EQ(ParentPath("/a"), "/");
  EXPECT_EQ(ParentPath("a/b/c"), "a/b");
  EXPECT_EQ(ParentPath("a"), ".");
}

}  // namespace
}  // namespace cairn
