// Bad input gets a clear error: the right code, and a message that names the
// problem (the directory, the number, the rule broken). Nothing here may crash,
// hang or quietly "repair" an operator's mistake.
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/checksum.h"
#include "common/mem_disk.h"
#include "raidlib/endian.h"
#include "raidlib/volume.h"
#include "raidlib/volume_format.h"

namespace cairn::raidlib {
namespace {

namespace fs = std::filesystem;

// EXPECT that `s` has `code` and its message contains every one of `words`.
void ExpectError(const Status& s, StatusCode code, const std::vector<std::string>& words) {
  EXPECT_EQ(s.code(), code) << s.ToString();
  for (const std::string& w : words) {
    EXPECT_NE(s.message().find(w), std::string::npos)
        << "message does not mention '" << w << "': " << s.ToString();
  }
}

class VolumeBadInputTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(mem_.CreateDir("/vol").ok()); }

  std::vector<std::string> Dirs(const std::string& prefix, int n) const {
    std::vector<std::string> dirs;
    for (int i = 0; i < n; ++i) dirs.push_back("/vol/" + prefix + std::to_string(i));
    return dirs;
  }
  VolumeOptions Options(const std::vector<std::string>& dirs) {
    VolumeOptions o;
    o.disk_dirs = dirs;
    o.max_unit_bytes = 4096;
    o.segment_bytes = 64 << 10;
    o.disk = &mem_;
    return o;
  }
  // Creates a volume over `dirs` and appends `bytes` bytes (synced).
  void CreateWithData(const std::vector<std::string>& dirs, size_t bytes) {
    ASSERT_TRUE(Volume::Create(Options(dirs)).ok());
    auto vol = Volume::Open(Options(dirs));
    ASSERT_TRUE(vol.ok()) << vol.status().ToString();
    data_.resize(bytes);
    for (size_t i = 0; i < bytes; ++i) data_[i] = static_cast<std::byte>(i * 7 + 3);
    if (bytes > 0) {
      ASSERT_TRUE((*vol)->Append(data_).ok());
      ASSERT_TRUE((*vol)->Sync().ok());
    }
  }
  void ExpectDataReadable(Volume& vol) {
    ASSERT_EQ(vol.end_offset(), data_.size());
    std::vector<std::byte> got(data_.size());
    Status s = vol.Read(0, got);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_TRUE(got == data_);
  }

  MemDisk mem_;
  std::vector<std::byte> data_;
};

// ---- Open ----

TEST_F(VolumeBadInputTest, OpenOnNonexistentPaths) {
  std::string tmpl = "/tmp/cairn-bad-input-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::string root = tmpl;
  VolumeOptions o;
  o.disk_dirs = {root + "/nope0", root + "/nope1", root + "/nope2"};
  auto vol = Volume::Open(o);
  std::error_code ec;
  fs::remove_all(root, ec);
  ASSERT_FALSE(vol.ok());
  ExpectError(vol.status(), StatusCode::kNotFound, {"no volume", root + "/nope0"});
  EXPECT_FALSE(fs::exists(root + "/nope0"));  // Open creates nothing
}

TEST_F(VolumeBadInputTest, OpenOnEmptyDirectoriesIsNotFound) {
  const auto dirs = Dirs("e", 3);
  for (const auto& d : dirs) ASSERT_TRUE(mem_.CreateDir(d).ok());
  auto vol = Volume::Open(Options(dirs));
  ASSERT_FALSE(vol.ok());
  ExpectError(vol.status(), StatusCode::kNotFound, {"no volume", dirs[0]});
  VolumeOptions ro = Options(dirs);
  ro.read_only = true;
  auto vol_ro = Volume::Open(ro);
  ASSERT_FALSE(vol_ro.ok());
  EXPECT_EQ(vol_ro.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(mem_.ListDir(dirs[0]).value().empty());  // nothing written
}

TEST_F(VolumeBadInputTest, OpenWithTooFewOrTooManyDirectories) {
  const auto dirs = Dirs("d", 3);
  ASSERT_NO_FATAL_FAILURE(CreateWithData(dirs, 10000));
  auto fewer = Volume::Open(Options({dirs[0], dirs[1]}));
  ASSERT_FALSE(fewer.ok());
  ExpectError(fewer.status(), StatusCode::kInvalidArgument, {"3 disks", "2 directories"});

  ASSERT_TRUE(mem_.CreateDir("/vol/extra").ok());
  auto more = Volume::Open(Options({dirs[0], dirs[1], dirs[2], "/vol/extra"}));
  ASSERT_FALSE(more.ok());
  ExpectError(more.status(), StatusCode::kInvalidArgument, {"3 disks", "4 directories"});
  // The refused opens changed nothing: the right set still opens, all healthy.
  auto right = Volume::Open(Options(dirs));
  ASSERT_TRUE(right.ok()) << right.status().ToString();
  for (const auto& d : (*right)->disks()) EXPECT_EQ(d.state, DiskState::kHealthy);
  ExpectDataReadable(**right);
}

TEST_F(VolumeBadInputTest, OpenWithDirectoriesInAnotherOrder) {
  const auto dirs = Dirs("d", 3);
  ASSERT_NO_FATAL_FAILURE(CreateWithData(dirs, 10000));
  auto swapped = Volume::Open(Options({dirs[1], dirs[0], dirs[2]}));
  ASSERT_FALSE(swapped.ok());
  ExpectError(swapped.status(), StatusCode::kInvalidArgument,
              {dirs[1], "disk 1", "disk 0", "order"});
  VolumeOptions ro = Options({dirs[0], dirs[2], dirs[1]});
  ro.read_only = true;
  auto swapped_ro = Volume::Open(ro);
  ASSERT_FALSE(swapped_ro.ok());
  EXPECT_EQ(swapped_ro.status().code(), StatusCode::kInvalidArgument);
  auto right = Volume::Open(Options(dirs));
  ASSERT_TRUE(right.ok()) << right.status().ToString();
  for (const auto& d : (*right)->disks()) EXPECT_EQ(d.state, DiskState::kHealthy);
  ExpectDataReadable(**right);
}

TEST_F(VolumeBadInputTest, OpenWithADiskOfAnotherVolumeMixedIn) {
  const auto a = Dirs("a", 3);
  const auto b = Dirs("b", 3);
  ASSERT_NO_FATAL_FAILURE(CreateWithData(b, 5000));
  ASSERT_NO_FATAL_FAILURE(CreateWithData(a, 10000));
  auto mixed = Volume::Open(Options({a[0], a[1], b[2]}));
  ASSERT_FALSE(mixed.ok());
  ExpectError(mixed.status(), StatusCode::kInvalidArgument, {b[2], "belongs to volume"});
  auto right = Volume::Open(Options(a));
  ASSERT_TRUE(right.ok()) << right.status().ToString();
  for (const auto& d : (*right)->disks()) EXPECT_EQ(d.state, DiskState::kHealthy);
  ExpectDataReadable(**right);
}

// The odd one out is named even when it comes first: two of three disks agree.
TEST_F(VolumeBadInputTest, ForeignDiskInTheFirstSlotIsTheOneNamed) {
  const auto a = Dirs("a", 3);
  const auto b = Dirs("b", 3);
  ASSERT_NO_FATAL_FAILURE(CreateWithData(b, 5000));
  ASSERT_NO_FATAL_FAILURE(CreateWithData(a, 10000));
  auto mixed = Volume::Open(Options({b[0], a[1], a[2]}));
  ASSERT_FALSE(mixed.ok());
  ExpectError(mixed.status(), StatusCode::kInvalidArgument, {b[0]});
}

TEST_F(VolumeBadInputTest, SuperblockOfAnotherFormatVersion) {
  const auto dirs = Dirs("d", 3);
  ASSERT_NO_FATAL_FAILURE(CreateWithData(dirs, 10000));
  for (const auto& d : dirs) {
    const std::string path = d + "/" + kSuperblockName;
    auto bytes = ReadWholeFile(mem_, path, kSuperblockMaxBytes);
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    std::vector<std::byte>& b = *bytes;
    ASSERT_GT(b.size(), 16u + 8u);
    ASSERT_EQ(GetLE<uint32_t>(b.data() + 8), kFormatVersion);
    PutLE<uint32_t>(b.data() + 8, kFormatVersion + 1);
    // A valid checksum, so that the version check (not the checksum) fires.
    PutLE<uint64_t>(b.data() + b.size() - 8,
                    Checksum64(std::span<const std::byte>(b.data(), b.size() - 8)));
    ASSERT_TRUE(WriteFileAtomic(mem_, path, b).ok());
  }
  const std::string newer = std::to_string(kFormatVersion + 1);
  auto vol = Volume::Open(Options(dirs));
  ASSERT_FALSE(vol.ok());
  ExpectError(vol.status(), StatusCode::kInvalidArgument,
              {"version " + newer, "not supported", kSuperblockName});
  VolumeOptions ro = Options(dirs);
  ro.read_only = true;
  auto vol_ro = Volume::Open(ro);
  ASSERT_FALSE(vol_ro.ok());
  EXPECT_EQ(vol_ro.status().code(), StatusCode::kInvalidArgument);
  // Nothing was "repaired" into the current version.
  auto bytes = ReadWholeFile(mem_, dirs[0] + "/" + kSuperblockName, kSuperblockMaxBytes);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(GetLE<uint32_t>(bytes->data() + 8), kFormatVersion + 1);
}

TEST_F(VolumeBadInputTest, CorruptSuperblockOnOneDiskFailsThatDiskOnly) {
  const auto dirs = Dirs("d", 3);
  ASSERT_NO_FATAL_FAILURE(CreateWithData(dirs, 30000));
  // A flipped bit in the middle of disk 1's superblock.
  ASSERT_TRUE(mem_.FlipBit(dirs[1] + "/" + kSuperblockName, 8 * 40 + 3).ok());
  {
    VolumeOptions ro = Options(dirs);
    ro.read_only = true;
    auto vol = Volume::Open(ro);
    ASSERT_TRUE(vol.ok()) << vol.status().ToString();
    EXPECT_EQ((*vol)->disks()[1].state, DiskState::kFailed);
    ExpectDataReadable(**vol);
  }
  auto vol = Volume::Open(Options(dirs));
  ASSERT_TRUE(vol.ok()) << vol.status().ToString();
  EXPECT_EQ((*vol)->disks()[0].state, DiskState::kHealthy);
  EXPECT_EQ((*vol)->disks()[1].state, DiskState::kFailed);
  EXPECT_EQ((*vol)->disks()[2].state, DiskState::kHealthy);
  ExpectDataReadable(**vol);
  // Replacing the disk (the same one back) makes it whole again.
  ASSERT_TRUE((*vol)->ReplaceDisk(DiskIndex(1)).ok());
  (*vol)->WaitForBackgroundWork();
  EXPECT_EQ((*vol)->disks()[1].state, DiskState::kHealthy);
  EXPECT_EQ((*vol)->rebuild_progress().error, "");
  ExpectDataReadable(**vol);
}

// ---- Create ----

TEST_F(VolumeBadInputTest, CreateOnANonEmptyDirectory) {
  const auto dirs = Dirs("d", 3);
  ASSERT_TRUE(mem_.CreateDir(dirs[1]).ok());
  {
    auto f = mem_.Open(dirs[1] + "/precious.txt", OpenMode::kCreateNew);
    ASSERT_TRUE(f.ok());
  }
  Status s = Volume::Create(Options(dirs));
  ExpectError(s, StatusCode::kAlreadyExists, {dirs[1], "not empty"});
  // Checked before anything is written: no disk got a superblock.
  EXPECT_FALSE(mem_.Stat(dirs[0]).ok());
  EXPECT_FALSE(mem_.Stat(dirs[1] + "/" + kSuperblockName).ok());
  EXPECT_TRUE(mem_.Stat(dirs[1] + "/precious.txt").ok());

  // An existing volume is a full directory too.
  const auto other = Dirs("v", 2);
  ASSERT_TRUE(Volume::Create(Options(other)).ok());
  ExpectError(Volume::Create(Options(other)), StatusCode::kAlreadyExists, {other[0], "not empty"});
}

TEST_F(VolumeBadInputTest, CreateWhereADirectoryIsAFile) {
  {
    auto f = mem_.Open("/vol/file", OpenMode::kCreateNew);
    ASSERT_TRUE(f.ok());
  }
  ExpectError(Volume::Create(Options({"/vol/d0", "/vol/file"})), StatusCode::kInvalidArgument,
              {"/vol/file", "not a directory"});
}

TEST_F(VolumeBadInputTest, CreateWithNoDisksOrTooMany) {
  ExpectError(Volume::Create(Options({})), StatusCode::kInvalidArgument, {"at least one"});
  ExpectError(Volume::Create(Options(Dirs("d", 17))), StatusCode::kInvalidArgument,
              {"at most 16", "17"});
  EXPECT_FALSE(mem_.Stat("/vol/d0").ok());  // nothing created
  EXPECT_TRUE(Volume::Create(Options(Dirs("d", 16))).ok());
}

TEST_F(VolumeBadInputTest, CreateWithDuplicateDirectories) {
  ExpectError(Volume::Create(Options({"/vol/d0", "/vol/d1", "/vol/d0"})),
              StatusCode::kInvalidArgument, {"/vol/d0", "twice"});
  ExpectError(Volume::Create(Options({"/vol/d0", "/vol/d0/"})), StatusCode::kInvalidArgument,
              {"/vol/d0", "twice"});
  EXPECT_FALSE(mem_.Stat("/vol/d0").ok());
  // Open refuses duplicates as well.
  auto vol = Volume::Open(Options({"/vol/d0", "/vol/d0"}));
  ASSERT_FALSE(vol.ok());
  EXPECT_EQ(vol.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(VolumeBadInputTest, CreateWithBadMaxUnitBytes) {
  const auto dirs = Dirs("d", 3);
  for (uint32_t bad : {0u, 1000u, 4097u, 6000u, kMaxUnitBytes + 4096, 32u << 20}) {
    VolumeOptions o = Options(dirs);
    o.max_unit_bytes = bad;
    o.segment_bytes = 1ull << 30;
    ExpectError(Volume::Create(o), StatusCode::kInvalidArgument,
                {"max_unit_bytes", std::to_string(bad)});
  }
  EXPECT_FALSE(mem_.Stat(dirs[0]).ok());
  VolumeOptions o = Options(dirs);
  o.max_unit_bytes = kMaxUnitBytes;  // the largest allowed
  o.segment_bytes = 256ull << 20;
  EXPECT_TRUE(Volume::Create(o).ok());
}

// ---- Operations ----

TEST_F(VolumeBadInputTest, ReadPastTheEnd) {
  const auto dirs = Dirs("d", 3);
  ASSERT_NO_FATAL_FAILURE(CreateWithData(dirs, 1000));
  auto vol = Volume::Open(Options(dirs));
  ASSERT_TRUE(vol.ok());
  ASSERT_EQ((*vol)->end_offset(), 1000u);
  std::vector<std::byte> buf(20);
  ExpectError((*vol)->Read(1000, std::span(buf).first(1)), StatusCode::kInvalidArgument,
              {"past the end", "1000"});
  ExpectError((*vol)->Read(990, buf), StatusCode::kInvalidArgument, {"past the end", "1010"});
  ExpectError((*vol)->Read(UINT64_MAX - 5, buf), StatusCode::kInvalidArgument, {"past the end"});
  // Unsynced appends are readable; one byte beyond them is not.
  ASSERT_TRUE((*vol)->Append(std::span(buf).first(10)).ok());
  EXPECT_TRUE((*vol)->Read(1000, std::span(buf).first(10)).ok());
  ExpectError((*vol)->Read(1000, std::span(buf).first(11)), StatusCode::kInvalidArgument,
              {"past the end"});
  EXPECT_TRUE((*vol)->Read(990, buf).ok());
}

TEST_F(VolumeBadInputTest, WritesOnAReadOnlyVolume) {
  const auto dirs = Dirs("d", 3);
  ASSERT_NO_FATAL_FAILURE(CreateWithData(dirs, 5000));
  VolumeOptions ro = Options(dirs);
  ro.read_only = true;
  auto vol = Volume::Open(ro);
  ASSERT_TRUE(vol.ok()) << vol.status().ToString();
  const uint64_t epoch = (*vol)->epoch();
  std::vector<std::byte> buf(100);
  auto off = (*vol)->Append(buf);
  ASSERT_FALSE(off.ok());
  ExpectError(off.status(), StatusCode::kFailedPrecondition, {"read-only"});
  ExpectError((*vol)->Sync(), StatusCode::kFailedPrecondition, {"read-only"});
  ExpectError((*vol)->ReplaceDisk(DiskIndex(0)), StatusCode::kFailedPrecondition, {"read-only"});
  ExpectError((*vol)->ReleaseSegment(SegmentId(0)), StatusCode::kFailedPrecondition, {"read-only"});
  EXPECT_EQ((*vol)->end_offset(), 5000u);
  EXPECT_EQ((*vol)->epoch(), epoch);
  ExpectDataReadable(**vol);
}

TEST_F(VolumeBadInputTest, ReplaceAHealthyDiskOrOneThatDoesNotExist) {
  const auto dirs = Dirs("d", 3);
  ASSERT_NO_FATAL_FAILURE(CreateWithData(dirs, 5000));
  auto vol = Volume::Open(Options(dirs));
  ASSERT_TRUE(vol.ok());
  ExpectError((*vol)->ReplaceDisk(DiskIndex(1)), StatusCode::kFailedPrecondition,
              {"disk 1", "healthy", "failed"});
  ExpectError((*vol)->ReplaceDisk(DiskIndex(1), "/vol/spare"), StatusCode::kFailedPrecondition,
              {"disk 1"});
  EXPECT_FALSE(mem_.Stat("/vol/spare").ok());  // refused before touching it
  ExpectError((*vol)->ReplaceDisk(DiskIndex(3)), StatusCode::kInvalidArgument, {"3"});
  for (const auto& d : (*vol)->disks()) EXPECT_EQ(d.state, DiskState::kHealthy);
  EXPECT_FALSE((*vol)->rebuild_progress().active);
}

TEST_F(VolumeBadInputTest, ReleaseTheCurrentUnsealedSegment) {
  const auto dirs = Dirs("d", 3);
  ASSERT_TRUE(Volume::Create(Options(dirs)).ok());
  auto vol = Volume::Open(Options(dirs));
  ASSERT_TRUE(vol.ok());
  std::vector<std::byte> buf(3000, std::byte{1});
  ASSERT_TRUE((*vol)->Append(buf).ok());
  ASSERT_TRUE((*vol)->Sync().ok());
  const auto segs = (*vol)->Segments();
  ASSERT_FALSE(segs.empty());
  ASSERT_FALSE(segs.back().sealed);
  const SegmentId current = segs.back().id;
  ExpectError((*vol)->ReleaseSegment(current), StatusCode::kFailedPrecondition,
              {std::to_string(current.value()), "not sealed"});
  // The data is untouched.
  std::vector<std::byte> got(buf.size());
  ASSERT_TRUE((*vol)->Read(0, got).ok());
  EXPECT_TRUE(got == buf);
  EXPECT_EQ((*vol)->Segments().size(), segs.size());
}

}  // namespace
}  // namespace cairn::raidlib
